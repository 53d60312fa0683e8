-- MariaDB specifics: executable comments, SET STATEMENT, compound statements,
-- sequences, RETURNING, system versioning, Oracle-mode sequence syntax.

-- mysqldump headers
-- expect: set flags=session_variable,executable_comment
/*!40101 SET NAMES utf8 */

-- expect: set flags=user_var_assign,executable_comment
/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */

-- expect: set flags=user_var_assign,session_variable,executable_comment
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */

-- expect: set flags=session_variable,user_var_read,executable_comment
/*!40101 SET CHARACTER_SET_CLIENT = @OLD_CHARACTER_SET_CLIENT */;

-- expect: set flags=session_variable,executable_comment
/*M!100616 SET NOTE_VERBOSITY=@@NOTE_VERBOSITY, NOTE_VERBOSITY=0 */

-- expect: ddl flags=implicit_commit,executable_comment
/*!50001 DROP VIEW IF EXISTS `v` */

-- expect: ddl flags=implicit_commit,executable_comment
CREATE TABLE t (a INT) /*!50100 PARTITION BY HASH (a) PARTITIONS 4 */

-- expect: read flags=calc_found_rows,executable_comment
SELECT /*!50000 SQL_CALC_FOUND_ROWS */ * FROM posts LIMIT 10

-- expect: read flags=locking_read,executable_comment
SELECT * FROM t /*!50000 FOR UPDATE */

-- expect: read flags=stored_function,executable_comment
SELECT /*M!100100 my_func(1), */ 1

-- expect: read flags=executable_comment
SELECT /*!STRAIGHT_JOIN*/ a FROM t1, t2

-- expect: write flags=executable_comment
/*!DELETE*/ FROM t WHERE id = 1

-- expect: read flags=executable_comment
SELECT 1 /*!, 2 */

-- A replica-safe read must stay one when a server skips the versioned comment.
-- expect: read flags=executable_comment,mode_dependent,implicit_commit
/*!99999 SELECT 1 FROM */ DROP TABLE t

-- expect: read flags=executable_comment
SELECT id /*!50100 , email */ FROM users

-- Optimizer hints are comments, not code
-- expect: read
SELECT /*+ MAX_EXECUTION_TIME(1000) */ * FROM t

-- expect: read
SELECT /*+ SET_VAR(sort_buffer_size = 16M) */ name FROM users ORDER BY name

-- SET STATEMENT .. FOR: the inner statement decides
-- expect: read
SET STATEMENT max_statement_time=1 FOR SELECT * FROM users

-- expect: write
SET STATEMENT sql_log_bin=0, foreign_key_checks=0 FOR DELETE FROM t

-- expect: read flags=locking_read
SET STATEMENT innodb_lock_wait_timeout=1 FOR SELECT * FROM t FOR UPDATE

-- expect: ddl flags=implicit_commit
set statement lock_wait_timeout = 5 for alter table t add column c int

-- expect: read
SET STATEMENT sql_mode = 'ANSI_QUOTES' FOR SELECT "a" FROM t

-- expect: read flags=mode_dependent,stored_function
SET STATEMENT sql_mode = 'ANSI_QUOTES' FOR SELECT "f"(1)

-- expect: other decider=unknown
SET STATEMENT x=1

-- Compound statements outside stored programs
-- expect: write
BEGIN NOT ATOMIC
  DECLARE n INT DEFAULT 0;
  SELECT COUNT(*) INTO n FROM t;
  IF n > 0 THEN
    DELETE FROM t;
  END IF;
END

-- expect: write flags=multi_statement
BEGIN NOT ATOMIC SELECT 1; END; SELECT 2

-- Sequences
-- expect: ddl flags=implicit_commit
CREATE SEQUENCE order_seq START WITH 1000 INCREMENT BY 1 CACHE 100

-- expect: ddl flags=implicit_commit
DROP SEQUENCE IF EXISTS order_seq

-- expect: write flags=side_effect
INSERT INTO orders (id) VALUES (NEXT VALUE FOR order_seq)

-- expect: write flags=side_effect
INSERT INTO orders (id) VALUES (NEXTVAL(order_seq))

-- expect: read flags=side_effect
SELECT order_seq.nextval

-- expect: read flags=side_effect
SELECT order_seq.currval FROM dual

-- expect: read
SELECT * FROM order_seq

-- RETURNING
-- expect: write
INSERT INTO t (a) VALUES (1) RETURNING id, a

-- expect: write
REPLACE INTO t VALUES (1) RETURNING *

-- System-versioned tables
-- expect: read
SELECT * FROM t FOR SYSTEM_TIME BETWEEN (NOW() - INTERVAL 1 DAY) AND (NOW())

-- expect: read
SELECT * FROM t FOR SYSTEM_TIME FROM '2024-01-01' TO '2024-02-01'

-- expect: ddl flags=implicit_commit
ALTER TABLE t ADD SYSTEM VERSIONING

-- expect: write
DELETE HISTORY FROM t BEFORE SYSTEM_TIME '2024-01-01'

-- Sequence engine and misc
-- expect: read
SELECT seq FROM seq_1_to_10

-- expect: read
SELECT * FROM t1 WHERE a IN (SELECT a FROM t2) LIMIT ROWS EXAMINED 1000

-- expect: read
SELECT JSON_ARRAY_INTERSECT('[1,2]', '[2]'), JSON_OBJECT_FILTER_KEYS('{}', '[]'), JSON_KEY_VALUE('{}', '$')

-- expect: read
SELECT KDF('key', 'salt', 'info', 'hkdf', 256), CRC32C('x'), FORMAT_PICO_TIME(1000)
