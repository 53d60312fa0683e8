-- SHOW, DESCRIBE, EXPLAIN, ANALYZE, HELP.

-- expect: read
SHOW TABLES

-- expect: read
show full tables from appdb like 'post%'

-- expect: read
SHOW DATABASES

-- expect: read
SHOW COLUMNS FROM users

-- expect: read
SHOW FULL COLUMNS FROM users FROM appdb

-- expect: read
SHOW INDEX FROM users

-- expect: read
SHOW CREATE TABLE users

-- expect: read
SHOW CREATE VIEW v

-- expect: read
SHOW CREATE PROCEDURE p

-- expect: read
SHOW TABLE STATUS LIKE 'users'

-- expect: read
SHOW VARIABLES LIKE 'max%'

-- expect: read
SHOW SESSION VARIABLES WHERE Variable_name = 'sql_mode'

-- expect: read
SHOW GRANTS

-- expect: read
SHOW GRANTS FOR CURRENT_USER()

-- expect: read
SHOW CHARACTER SET

-- expect: read
SHOW COLLATION WHERE Charset = 'utf8mb4'

-- expect: read
SHOW ENGINES

-- expect: read
SHOW PLUGINS

-- expect: read
SHOW PRIVILEGES

-- expect: read
SHOW PROCEDURE STATUS WHERE Db = 'appdb'

-- expect: read
SHOW FUNCTION STATUS

-- expect: read
SHOW TRIGGERS

-- expect: read
SHOW EVENTS

-- expect: read
SHOW OPEN TABLES

-- expect: read flags=server_state
SHOW GLOBAL VARIABLES LIKE 'read_only'

-- expect: read flags=server_state
SHOW GLOBAL STATUS LIKE 'Threads%'

-- expect: read flags=server_state
SHOW PROCESSLIST

-- expect: read flags=server_state
SHOW FULL PROCESSLIST

-- expect: read flags=server_state
SHOW MASTER STATUS

-- expect: read flags=server_state
SHOW SLAVE STATUS

-- expect: read flags=server_state
SHOW REPLICA STATUS

-- expect: read flags=server_state
SHOW ALL SLAVES STATUS

-- expect: read flags=server_state
SHOW BINARY LOGS

-- expect: read flags=server_state
SHOW BINLOG EVENTS IN 'mysql-bin.000001'

-- expect: read flags=server_state
SHOW ENGINE INNODB STATUS

-- expect: read flags=server_state
SHOW EXPLAIN FOR 42

-- expect: read
DESCRIBE users

-- expect: read
DESC users email

-- expect: read
describe appdb.users

-- expect: read
EXPLAIN users

-- expect: read
EXPLAIN SELECT * FROM users WHERE id = 1

-- expect: read
EXPLAIN EXTENDED SELECT * FROM users

-- expect: read
EXPLAIN PARTITIONS SELECT * FROM t

-- expect: read
EXPLAIN FORMAT=JSON SELECT * FROM users

-- expect: read
EXPLAIN FORMAT = TREE TABLE users

-- expect: read
DESCRIBE SELECT 1

-- expect: read
EXPLAIN (SELECT 1) UNION (SELECT 2)

-- expect: read
EXPLAIN WITH c AS (SELECT 1) SELECT * FROM c

-- expect: read flags=locking_read
EXPLAIN SELECT * FROM t FOR UPDATE

-- expect: read flags=stored_function
EXPLAIN SELECT * FROM t WHERE id = (SELECT my_func(1))

-- Explaining a write runs nothing, but the plan that matters is the primary's.
-- expect: write
EXPLAIN UPDATE users SET email = 'x' WHERE id = 1

-- expect: write
EXPLAIN DELETE FROM users WHERE id = 1

-- expect: write
EXPLAIN INSERT INTO t SELECT * FROM u

-- expect: write
EXPLAIN REPLACE INTO t VALUES (1)

-- MariaDB ANALYZE and MySQL EXPLAIN ANALYZE execute the statement.
-- expect: read
ANALYZE SELECT * FROM users

-- expect: read
ANALYZE FORMAT=JSON SELECT * FROM users WHERE id > 1

-- expect: write
ANALYZE UPDATE users SET email = LOWER(email)

-- expect: write
ANALYZE DELETE FROM logs WHERE id < 10

-- expect: read
EXPLAIN ANALYZE SELECT * FROM users

-- expect: write
EXPLAIN ANALYZE DELETE FROM t

-- expect: read flags=locking_read
ANALYZE SELECT * FROM t FOR UPDATE

-- expect: read flags=server_state
EXPLAIN FOR CONNECTION 42

-- expect: read flags=into_variable,user_var_assign
EXPLAIN FORMAT=JSON INTO @plan SELECT * FROM users

-- expect: other decider=unknown
EXPLAIN

-- expect: other decider=unknown
ANALYZE

-- expect: read
HELP 'contents'

-- expect: read
help select
