-- Session state: SET, USE, text-protocol prepared statements, diagnostics.

-- expect: set flags=autocommit,session_variable autocommit=off
SET autocommit=0

-- expect: set flags=autocommit,session_variable autocommit=on
SET autocommit = 1

-- expect: set flags=autocommit,session_variable autocommit=off
set AUTOCOMMIT = OFF

-- expect: set flags=autocommit,session_variable autocommit=on
SET @@autocommit := ON

-- expect: set flags=autocommit,session_variable autocommit=off
SET SESSION autocommit = false

-- expect: set flags=autocommit,session_variable autocommit=on
SET @@session.autocommit = 'ON'

-- expect: set flags=autocommit,session_variable,user_var_read
SET autocommit = @saved

-- expect: set flags=global_variable
SET GLOBAL autocommit = 0

-- expect: set flags=session_variable
SET NAMES utf8mb4

-- expect: set flags=session_variable
SET NAMES 'utf8mb4' COLLATE 'utf8mb4_unicode_ci'

-- expect: set flags=session_variable
set names default

-- expect: set flags=session_variable
SET CHARACTER SET utf8

-- expect: set flags=session_variable
SET CHARSET 'latin1'

-- expect: set flags=session_variable
SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ZERO_DATE'

-- expect: set flags=session_variable
SET sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')

-- expect: set flags=session_variable
SET @@session.time_zone = '+00:00'

-- expect: set flags=session_variable
SET time_zone = 'Europe/Paris', @@max_execution_time = 1000

-- expect: set flags=session_variable
SET LOCAL sql_select_limit = DEFAULT

-- expect: set flags=session_variable
SET sql_log_bin = 0

-- expect: set flags=global_variable
SET GLOBAL max_connections = 500

-- expect: set flags=global_variable
SET @@global.slow_query_log = ON

-- expect: set flags=global_variable
SET PERSIST max_connections = 200

-- expect: set flags=global_variable
SET GLOBAL validate_password.policy = LOW

-- expect: set flags=global_variable,session_variable
SET GLOBAL wait_timeout = 60, SESSION wait_timeout = 60

-- expect: set flags=global_variable
SET GLOBAL a = 1, b = 2

-- expect: set flags=user_var_assign
SET @a = 1

-- expect: set flags=user_var_assign
SET @a := 'x', @b = 2

-- expect: set flags=user_var_assign,user_var_read
SET @a = @b + 1

-- expect: set flags=user_var_assign,session_variable
SET @old_mode = @@sql_mode, sql_mode = ''

-- expect: set flags=user_var_assign,last_insert_id
SET @id = LAST_INSERT_ID()

-- expect: set flags=user_var_assign,stored_function
SET @v = my_func(1)

-- expect: set flags=user_var_assign,side_effect,lock_function
SET @l = GET_LOCK('a', 1)

-- expect: set flags=user_var_assign
SET @n = (SELECT COUNT(*) FROM users)

-- expect: set flags=user_var_assign,side_effect
SET @id = NEXT VALUE FOR order_seq

-- expect: set flags=session_variable
SET ROLE app_reader

-- expect: set flags=session_variable
SET ROLE NONE

-- expect: admin flags=implicit_commit
SET PASSWORD = PASSWORD('secret')

-- expect: admin flags=implicit_commit
SET PASSWORD FOR 'app'@'%' = 'hash'

-- expect: admin flags=implicit_commit
SET DEFAULT ROLE app_reader FOR 'app'@'%'

-- expect: other decider=unknown
SET

-- expect: other decider=unknown
SET x

-- expect: use name=appdb decider=lexer
USE appdb

-- expect: use name=my-db
use `my-db`;

-- expect: use name=AppDB
USE AppDB

-- expect: other decider=unknown
USE

-- expect: other decider=unknown
USE a b

-- expect: sql_prepare name=stmt1
PREPARE stmt1 FROM 'SELECT * FROM users WHERE id = ?'

-- expect: sql_prepare flags=user_var_read name=s
PREPARE s FROM @sql

-- expect: sql_execute name=stmt1
EXECUTE stmt1

-- expect: sql_execute flags=user_var_read name=stmt1
EXECUTE stmt1 USING @id, @name

-- expect: sql_deallocate name=stmt1
DEALLOCATE PREPARE stmt1

-- expect: sql_deallocate name=stmt1
DROP PREPARE stmt1

-- expect: write
EXECUTE IMMEDIATE 'SELECT 1'

-- expect: write flags=user_var_read
EXECUTE IMMEDIATE @sql USING 1

-- expect: other decider=unknown
PREPARE stmt1

-- expect: diagnostics
SHOW WARNINGS

-- expect: diagnostics
show warnings limit 10

-- expect: diagnostics
SHOW ERRORS

-- expect: diagnostics
SHOW COUNT(*) WARNINGS

-- expect: diagnostics
SHOW COUNT(*) ERRORS

-- expect: diagnostics flags=user_var_assign
GET DIAGNOSTICS @n = NUMBER
-- (the variable is assigned on the backend that answers)
-- a comment line inside the statement is part of it

-- expect: diagnostics flags=user_var_assign
GET DIAGNOSTICS CONDITION 1 @state = RETURNED_SQLSTATE, @msg = MESSAGE_TEXT

-- expect: diagnostics flags=user_var_assign
GET CURRENT DIAGNOSTICS @rows = ROW_COUNT

-- expect: diagnostics
GET STACKED DIAGNOSTICS CONDITION 1 v = MESSAGE_TEXT

-- expect: diagnostics
SHOW STATUS LIKE 'Handler_read%'

-- expect: diagnostics
SHOW SESSION STATUS

-- expect: diagnostics
SHOW PROFILES

-- expect: diagnostics
SHOW PROFILE FOR QUERY 1
