-- Schema changes (implicit commit), temporary tables (no commit, session-bound),
-- stored programs, accounts and administration.

-- expect: ddl flags=implicit_commit decider=lexer
CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, price DECIMAL(10, 2))

-- expect: ddl flags=implicit_commit
create table if not exists t2 like t

-- expect: ddl flags=implicit_commit
CREATE TABLE t3 AS SELECT * FROM t

-- expect: ddl flags=implicit_commit
CREATE OR REPLACE TABLE t4 (a INT) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4

-- expect: ddl flags=temp_table
CREATE TEMPORARY TABLE tmp_ids (id INT)

-- expect: ddl flags=temp_table
create temporary table if not exists tmp_ids select id from users

-- expect: ddl flags=temp_table
CREATE OR REPLACE TEMPORARY TABLE tmp_x (a INT)

-- expect: ddl flags=temp_table
DROP TEMPORARY TABLE tmp_ids

-- expect: ddl flags=temp_table
DROP TEMPORARY TABLE IF EXISTS tmp_a, tmp_b

-- expect: ddl flags=temp_table
CREATE TEMPORARY SEQUENCE tmp_seq

-- expect: ddl flags=implicit_commit
DROP TABLE t

-- expect: ddl flags=implicit_commit
DROP TABLE IF EXISTS t1, t2 CASCADE

-- expect: ddl flags=implicit_commit
ALTER TABLE users ADD COLUMN bio TEXT, ALGORITHM=INPLACE, LOCK=NONE

-- expect: ddl flags=implicit_commit
ALTER ONLINE TABLE users ADD INDEX idx_email (email)

-- expect: ddl flags=implicit_commit
ALTER IGNORE TABLE users DROP INDEX idx_email

-- expect: ddl flags=implicit_commit
CREATE INDEX idx_a ON t (a)

-- expect: ddl flags=implicit_commit
CREATE UNIQUE INDEX idx_b ON t (b)

-- expect: ddl flags=implicit_commit
CREATE FULLTEXT INDEX ft ON posts (title, body)

-- expect: ddl flags=implicit_commit
DROP INDEX idx_a ON t

-- expect: ddl flags=implicit_commit
RENAME TABLE a TO b, c TO d

-- expect: ddl flags=implicit_commit
TRUNCATE TABLE logs

-- expect: ddl flags=implicit_commit
truncate logs

-- expect: ddl flags=implicit_commit
CREATE DATABASE shop CHARACTER SET utf8mb4

-- expect: ddl flags=implicit_commit
DROP SCHEMA IF EXISTS shop

-- expect: ddl flags=implicit_commit
ALTER DATABASE shop CHARACTER SET utf8mb4

-- expect: ddl flags=implicit_commit
CREATE VIEW v AS SELECT * FROM users WHERE active

-- expect: ddl flags=implicit_commit
CREATE OR REPLACE ALGORITHM=MERGE DEFINER='app'@'%' SQL SECURITY INVOKER VIEW v2 AS SELECT 1

-- expect: ddl flags=implicit_commit
CREATE DEFINER=user@localhost VIEW v3 AS SELECT 1

-- expect: ddl flags=implicit_commit
CREATE DEFINER = CURRENT_USER() VIEW v4 AS SELECT 1

-- expect: ddl flags=implicit_commit
DROP VIEW v

-- expect: ddl flags=implicit_commit
CREATE PROCEDURE p(IN x INT) BEGIN SELECT x; UPDATE t SET a = x; END

-- expect: ddl flags=implicit_commit
CREATE DEFINER=`app`@`%` PROCEDURE p2()
BEGIN
  DECLARE done INT DEFAULT 0;
  IF done THEN
    SELECT 1;
  ELSE
    SELECT CASE WHEN done THEN 1 ELSE 2 END;
  END IF;
  WHILE done < 3 DO
    SET done = done + 1;
  END WHILE;
  lbl: LOOP
    LEAVE lbl;
  END LOOP lbl;
  CASE done WHEN 1 THEN SELECT 1; ELSE BEGIN END; END CASE;
END

-- expect: ddl flags=implicit_commit,multi_statement
CREATE PROCEDURE p3() BEGIN SELECT 1; END; SELECT 2

-- expect: ddl flags=implicit_commit
CREATE FUNCTION f(x INT) RETURNS INT DETERMINISTIC RETURN x * 2

-- expect: ddl flags=implicit_commit
CREATE FUNCTION f2() RETURNS INT READS SQL DATA BEGIN DECLARE n INT; SELECT COUNT(*) INTO n FROM t; RETURN n; END

-- expect: ddl flags=implicit_commit
CREATE AGGREGATE FUNCTION agg(x INT) RETURNS INT BEGIN RETURN 1; END

-- expect: ddl flags=implicit_commit
CREATE FUNCTION my_udf RETURNS STRING SONAME 'my_udf.so'

-- expect: ddl flags=implicit_commit
CREATE TRIGGER trg BEFORE INSERT ON t FOR EACH ROW SET NEW.created_at = NOW()

-- expect: ddl flags=implicit_commit
CREATE TRIGGER trg2 AFTER UPDATE ON t FOR EACH ROW BEGIN INSERT INTO audit VALUES (OLD.id); END

-- expect: ddl flags=implicit_commit
CREATE EVENT e ON SCHEDULE EVERY 1 HOUR DO BEGIN DELETE FROM logs WHERE ts < NOW() - INTERVAL 1 DAY; END

-- expect: ddl flags=implicit_commit
ALTER EVENT e DISABLE

-- expect: ddl flags=implicit_commit
DROP PROCEDURE IF EXISTS p

-- expect: ddl flags=implicit_commit
DROP FUNCTION f

-- expect: ddl flags=implicit_commit
DROP TRIGGER trg

-- expect: ddl flags=implicit_commit
CREATE SEQUENCE s START WITH 1 INCREMENT BY 1

-- expect: ddl flags=implicit_commit
ALTER SEQUENCE s RESTART 100

-- expect: ddl flags=implicit_commit
CREATE SERVER srv FOREIGN DATA WRAPPER mysql OPTIONS (HOST 'h')

-- expect: admin flags=implicit_commit
CREATE USER 'bob'@'%' IDENTIFIED BY 'pw'

-- expect: admin flags=implicit_commit
ALTER USER 'bob'@'%' IDENTIFIED BY 'pw2'

-- expect: admin flags=implicit_commit
DROP USER IF EXISTS bob

-- expect: admin flags=implicit_commit
RENAME USER bob TO robert

-- expect: admin flags=implicit_commit
CREATE ROLE reader

-- expect: admin flags=implicit_commit
DROP ROLE reader

-- expect: admin flags=implicit_commit
GRANT SELECT ON appdb.* TO 'bob'@'%'

-- expect: admin flags=implicit_commit
REVOKE ALL PRIVILEGES ON *.* FROM bob

-- expect: admin flags=implicit_commit
FLUSH PRIVILEGES

-- expect: admin flags=implicit_commit
FLUSH TABLES WITH READ LOCK

-- expect: admin flags=implicit_commit
FLUSH LOCAL STATUS

-- expect: admin
KILL 42

-- expect: admin
KILL QUERY 42

-- expect: admin
KILL CONNECTION 42

-- expect: admin flags=implicit_commit
RESET MASTER

-- expect: admin flags=implicit_commit
RESET QUERY CACHE

-- expect: admin
PURGE BINARY LOGS BEFORE '2024-01-01'

-- expect: admin flags=implicit_commit
CHANGE MASTER TO MASTER_HOST='db1', MASTER_USE_GTID=slave_pos

-- expect: admin flags=implicit_commit
CHANGE REPLICATION SOURCE TO SOURCE_HOST='db1'

-- expect: admin flags=implicit_commit
INSTALL PLUGIN example SONAME 'ha_example.so'

-- expect: admin flags=implicit_commit
UNINSTALL SONAME 'ha_example'

-- expect: admin
SHUTDOWN

-- expect: admin
BINLOG 'base64=='

-- expect: admin flags=implicit_commit
CACHE INDEX t1 IN hot_cache

-- expect: admin flags=implicit_commit
LOAD INDEX INTO CACHE t1

-- expect: admin flags=implicit_commit
OPTIMIZE TABLE t

-- expect: admin flags=implicit_commit
OPTIMIZE NO_WRITE_TO_BINLOG TABLE t

-- expect: admin flags=implicit_commit
REPAIR TABLE t QUICK

-- expect: admin flags=implicit_commit
CHECK TABLE t EXTENDED

-- expect: admin flags=implicit_commit
ANALYZE TABLE t

-- expect: admin flags=implicit_commit
ANALYZE LOCAL TABLE t1, t2

-- expect: admin
CHECKSUM TABLE t

-- expect: admin
BACKUP STAGE START

-- expect: admin
ALTER INSTANCE ROTATE INNODB MASTER KEY
