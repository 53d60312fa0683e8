-- Reads that must stay on the primary, and near-misses that must not.

-- Locking reads
-- expect: read flags=locking_read
SELECT * FROM accounts WHERE id = 1 FOR UPDATE

-- expect: read flags=locking_read
SELECT * FROM accounts WHERE id = 1 FOR SHARE

-- expect: read flags=locking_read
SELECT * FROM accounts WHERE id = 1 LOCK IN SHARE MODE

-- expect: read flags=locking_read
SELECT * FROM jobs WHERE state = 'new' ORDER BY id LIMIT 10 FOR UPDATE SKIP LOCKED

-- expect: read flags=locking_read
SELECT * FROM jobs WHERE id = 3 FOR UPDATE NOWAIT

-- expect: read flags=locking_read
SELECT * FROM jobs WHERE id = 3 FOR UPDATE WAIT 5

-- expect: read flags=locking_read
SELECT * FROM t1 JOIN t2 USING (id) FOR UPDATE OF t1

-- expect: read flags=locking_read
select * from t for update

-- expect: read flags=locking_read
SELECT * FROM t
FOR
UPDATE

-- expect: read flags=locking_read
SELECT * FROM t1 WHERE a IN (SELECT a FROM t2 LOCK IN SHARE MODE)

-- expect: read flags=locking_read
SELECT (SELECT b FROM t2 WHERE t2.a = t1.a FOR UPDATE) FROM t1

-- expect: read flags=locking_read
(SELECT a FROM t1 FOR UPDATE) UNION (SELECT a FROM t2)

-- expect: read flags=locking_read
WITH c AS (SELECT * FROM t) SELECT * FROM c FOR UPDATE

-- expect: read flags=locking_read
SELECT * FROM t /* comment */ FOR /* another */ UPDATE

-- expect: read
SELECT * FROM t WHERE note = 'FOR UPDATE'

-- expect: read
SELECT "FOR SHARE", `for update` FROM t

-- INTO
-- expect: write flags=into_outfile
SELECT * FROM users INTO OUTFILE '/tmp/users.csv' FIELDS TERMINATED BY ','

-- expect: write flags=into_outfile
SELECT * INTO OUTFILE '/tmp/u.txt' FROM users

-- expect: write flags=into_outfile
SELECT doc FROM j WHERE id = 1 INTO DUMPFILE '/tmp/doc.bin'

-- expect: write flags=into_outfile
TABLE users INTO OUTFILE '/tmp/t.csv'

-- expect: read flags=into_variable,user_var_assign
SELECT COUNT(*) INTO @n FROM users

-- expect: read flags=into_variable,user_var_assign
SELECT id, email FROM users WHERE id = 1 INTO @id, @email

-- expect: read flags=into_variable,user_var_assign,locking_read
SELECT id INTO @id FROM users WHERE id = 1 FOR UPDATE

-- expect: read flags=into_variable
SELECT id INTO v_id FROM users LIMIT 1

-- User variables
-- expect: read flags=user_var_assign
SELECT @a := 1

-- expect: read flags=user_var_assign,user_var_read
SELECT @rn := @rn + 1 AS rn, name FROM users

-- expect: read flags=user_var_read
SELECT * FROM users WHERE id = @id

-- expect: read flags=user_var_read
SELECT @a = 1

-- expect: read flags=user_var_read
SELECT @`quoted var`, @'single', @"double"

-- expect: read flags=user_var_assign
SELECT (@x := 5) * 2

-- Named locks
-- expect: read flags=side_effect,lock_function
SELECT GET_LOCK('job-1', 10)

-- expect: read flags=side_effect,lock_function
SELECT RELEASE_LOCK('job-1')

-- expect: read flags=side_effect,lock_function
SELECT RELEASE_ALL_LOCKS()

-- expect: read flags=side_effect,lock_function
SELECT IS_FREE_LOCK('job-1')

-- expect: read flags=side_effect,lock_function
SELECT IS_USED_LOCK('job-1')

-- expect: read flags=side_effect,lock_function
SELECT get_lock ('x', 0)

-- expect: read flags=side_effect,lock_function
SELECT id FROM jobs WHERE GET_LOCK(CONCAT('job-', id), 0) = 1

-- expect: read
SELECT 'GET_LOCK(1)', get_lock_count FROM t

-- Session functions and variables
-- expect: read flags=last_insert_id
SELECT LAST_INSERT_ID()

-- expect: read flags=last_insert_id
select last_insert_id() as id

-- expect: read flags=last_insert_id
SELECT @@identity

-- expect: read flags=last_insert_id
SELECT @@IDENTITY, 1

-- expect: read flags=last_insert_id
SELECT @@last_insert_id

-- expect: read flags=last_insert_id
SELECT @@session.insert_id

-- expect: read flags=found_rows
SELECT FOUND_ROWS()

-- expect: read flags=calc_found_rows
SELECT SQL_CALC_FOUND_ROWS * FROM posts LIMIT 10

-- expect: read flags=row_count
SELECT ROW_COUNT()

-- expect: read flags=diagnostics_area
SELECT @@warning_count

-- expect: read flags=diagnostics_area
SELECT @@session.error_count, 1

-- Sequences (MariaDB)
-- expect: read flags=side_effect
SELECT NEXTVAL(order_seq)

-- expect: read flags=side_effect
SELECT SETVAL(order_seq, 100)

-- expect: read flags=side_effect
SELECT LASTVAL(order_seq)

-- expect: read flags=side_effect
SELECT NEXT VALUE FOR order_seq

-- expect: read flags=side_effect
SELECT PREVIOUS VALUE FOR order_seq

-- expect: read flags=side_effect
select next value for s1, 2

-- Server-specific values
-- expect: read flags=server_state
SELECT @@read_only

-- expect: read flags=server_state
SELECT @@global.read_only, @@innodb_read_only

-- The answering server's identity: true on whichever server runs it, and how
-- operators (and tandem's tests) see which backend answered. A replica may.
-- expect: read
SELECT @@server_id, @@hostname

-- expect: read
SELECT @@port, @@server_uuid, @@report_host

-- expect: read flags=server_state
SELECT @@gtid_current_pos

-- expect: read flags=server_state
SELECT @@last_gtid

-- expect: read flags=server_state
SELECT CONNECTION_ID()

-- expect: read flags=server_state
SELECT LOAD_FILE('/etc/hostname')

-- expect: read flags=replication_wait
SELECT MASTER_GTID_WAIT('0-1-100', 5)

-- expect: read flags=replication_wait
SELECT MASTER_POS_WAIT('mysql-bin.000001', 4, 5)

-- expect: read flags=replication_wait
SELECT WAIT_FOR_EXECUTED_GTID_SET('uuid:1-5', 1)

-- expect: read flags=server_state
SELECT BINLOG_GTID_POS('mysql-bin.000001', 4)

-- Harmless system variables
-- expect: read
SELECT @@version, @@session.sql_mode, @@global.max_connections, @@time_zone, @@autocommit

-- expect: read
SELECT @@session.auto_increment_increment AS auto_increment_increment, @@character_set_client AS character_set_client, @@character_set_connection AS character_set_connection, @@collation_server AS collation_server, @@init_connect AS init_connect, @@interactive_timeout AS interactive_timeout, @@license AS license, @@lower_case_table_names AS lower_case_table_names, @@max_allowed_packet AS max_allowed_packet, @@net_write_timeout AS net_write_timeout, @@sql_mode AS sql_mode, @@system_time_zone AS system_time_zone, @@time_zone AS time_zone, @@transaction_isolation AS transaction_isolation, @@wait_timeout AS wait_timeout

-- Several traps at once
-- expect: read flags=locking_read,side_effect,lock_function,last_insert_id,user_var_assign
SELECT @x := LAST_INSERT_ID(), GET_LOCK('a', 1) FROM t FOR UPDATE

-- Minified SQL: no whitespace around the traps
-- expect: read flags=user_var_assign
SELECT@a:=1

-- expect: read flags=user_var_assign
SELECT 1 FROM t WHERE a=1 AND@b:=2

-- expect: read flags=locking_read
SELECT(1)FOR UPDATE

-- expect: read flags=side_effect,lock_function
SELECT	GET_LOCK('x',0)

-- expect: read flags=locking_read
WITH c AS (SELECT * FROM t FOR UPDATE) SELECT * FROM c

-- LAST_INSERT_ID(expr) sets the value it later returns.
-- expect: read flags=last_insert_id
SELECT LAST_INSERT_ID(42)

-- expect: read flags=into_variable,user_var_assign
SELECT 1 FROM dual WHERE 1=1 INTO @x

-- expect: read flags=user_var_read
SELECT * FROM café WHERE naïve = @v
