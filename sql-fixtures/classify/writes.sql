-- Writes: always the primary.

-- expect: write decider=lexer
INSERT INTO users (email) VALUES ('a@example.com')

-- expect: write
insert into users set email = 'b@example.com'

-- expect: write
INSERT IGNORE INTO tags (name) VALUES ('x'), ('y')

-- expect: write
INSERT INTO users (id, email) VALUES (1, 'a') ON DUPLICATE KEY UPDATE email = VALUES(email)

-- expect: write
INSERT INTO users (id, email) VALUES (1, 'a') AS new ON DUPLICATE KEY UPDATE email = new.email

-- expect: write
INSERT INTO archive SELECT * FROM posts WHERE created_at < '2020-01-01'

-- expect: write
INSERT INTO archive (id) WITH old AS (SELECT id FROM posts) SELECT id FROM old

-- expect: write
INSERT DELAYED INTO log VALUES (1)

-- expect: write
INSERT INTO t VALUES (1) RETURNING id

-- expect: write flags=user_var_read
INSERT INTO t (a) VALUES (@a)

-- expect: write flags=last_insert_id
INSERT INTO child (parent_id) VALUES (LAST_INSERT_ID())

-- expect: write
REPLACE INTO users (id, email) VALUES (1, 'c@example.com')

-- expect: write
REPLACE users SET id = 2, email = 'd'

-- expect: write
UPDATE users SET email = 'x' WHERE id = 1

-- expect: write
UPDATE LOW_PRIORITY IGNORE users SET email = LOWER(email)

-- expect: write
UPDATE posts SET views = views + 1 WHERE id = (SELECT MAX(id) FROM (SELECT id FROM posts) AS p)

-- expect: write
UPDATE posts p JOIN users u ON u.id = p.user_id SET p.title = u.email WHERE u.id = 1

-- expect: write flags=user_var_assign,user_var_read
UPDATE t SET pos = (@p := @p + 1) ORDER BY id

-- expect: write
DELETE FROM comments WHERE id = 1

-- expect: write
delete from comments

-- expect: write
DELETE QUICK IGNORE FROM comments WHERE post_id IN (SELECT id FROM posts WHERE user_id = 3)

-- expect: write
DELETE c FROM comments c JOIN posts p ON p.id = c.post_id WHERE p.id = 1

-- expect: write
DELETE FROM t WHERE id = 1 RETURNING *

-- expect: write decider=lexer
WITH old AS (SELECT id FROM posts WHERE created_at < '2020-01-01') DELETE FROM posts WHERE id IN (SELECT id FROM old)

-- expect: write
WITH x AS (SELECT 1 AS v) UPDATE t JOIN x SET t.a = x.v

-- expect: write
WITH RECURSIVE r (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) DELETE FROM t WHERE id IN (SELECT n FROM r)

-- expect: write
LOAD DATA INFILE '/tmp/users.csv' INTO TABLE users FIELDS TERMINATED BY ','

-- expect: write
LOAD DATA LOCAL INFILE 'users.csv' REPLACE INTO TABLE users

-- expect: write
LOAD XML LOCAL INFILE 'x.xml' INTO TABLE t ROWS IDENTIFIED BY '<row>'

-- expect: write
CALL refresh_stats()

-- expect: write
CALL db.proc

-- expect: write flags=user_var_read
CALL p(@out)

-- expect: write
DO 1 + 1

-- expect: write
HANDLER users OPEN

-- expect: write
HANDLER users READ `PRIMARY` FIRST

-- expect: write
HANDLER users READ NEXT LIMIT 5

-- expect: write
HANDLER users CLOSE

-- expect: write
UPDATE t SET note = 'SELECT * FROM x'

-- expect: write
DELETE FROM `select` WHERE `from` = 'where'

-- A shape the lexer does not walk goes to sqlparser. MERGE is no MariaDB/MySQL
-- statement (the server rejects it); sqlparser sees a write, so: primary.
-- expect: write decider=parser
WITH src AS (SELECT 1 AS id) MERGE INTO t USING src ON t.id = src.id WHEN MATCHED THEN DELETE

-- Neither the lexer nor sqlparser understands it: primary.
-- expect: other decider=unknown flags=stored_function
WITH a AS MATERIALIZED (SELECT 1) SELECT * FROM a

-- expect: other decider=unknown flags=stored_function
WITH a AS (SELECT 1) CALL p()

-- expect: other decider=unknown
WITH a AS (SELECT 1)
