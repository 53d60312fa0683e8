-- Plain reads: each may run on a replica.

-- expect: read decider=lexer
SELECT 1

-- expect: read
select * from users where id = 1

-- expect: read
SeLeCt id, email FROM users WHERE id IN (1, 2, 3) ORDER BY id DESC LIMIT 10 OFFSET 20

-- expect: read
SELECT 1 FROM DUAL

-- expect: read
SELECT NOW(), UUID(), RAND(), CURDATE(), UTC_TIMESTAMP(), SYSDATE()

-- expect: read
SELECT SLEEP(1)

-- expect: read
SELECT BENCHMARK(1000, MD5('x'))

-- expect: read
SELECT u.id, COUNT(p.id) AS posts
FROM users u
LEFT JOIN posts p ON p.user_id = u.id
GROUP BY u.id
HAVING COUNT(p.id) > 2
ORDER BY posts DESC

-- expect: read
SELECT * FROM posts WHERE user_id IN (SELECT id FROM users WHERE email LIKE '%@example.com')

-- expect: read
SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM comments c WHERE c.user_id = u.id)

-- expect: read
SELECT * FROM users WHERE NOT EXISTS(SELECT 1 FROM posts WHERE posts.user_id = users.id)

-- expect: read
SELECT * FROM t1 WHERE a = ANY (SELECT b FROM t2)

-- expect: read
SELECT * FROM t1 WHERE a > ALL (SELECT b FROM t2) AND c <> SOME (SELECT d FROM t3)

-- expect: read
SELECT a FROM t1 UNION SELECT b FROM t2 UNION ALL SELECT c FROM t3

-- expect: read
(SELECT a FROM t1 ORDER BY a LIMIT 1) UNION (SELECT b FROM t2 ORDER BY b LIMIT 1)

-- expect: read
((SELECT 1)) UNION ALL ((SELECT 2))

-- expect: read
SELECT a FROM t1 INTERSECT SELECT a FROM t2 EXCEPT (SELECT a FROM t3)

-- expect: read
TABLE users

-- expect: read
TABLE users ORDER BY id LIMIT 5

-- expect: read
VALUES (1, 2), (3, 4)

-- expect: read
VALUES ROW(1, 'a'), ROW(2, 'b')

-- expect: read
WITH recent AS (SELECT * FROM posts ORDER BY created_at DESC LIMIT 5) SELECT * FROM recent

-- expect: read
WITH RECURSIVE seq (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 10)
SELECT n FROM seq

-- expect: read
WITH a AS (SELECT 1 AS x), b (y) AS (SELECT x FROM a) SELECT * FROM a JOIN b ON a.x = b.y

-- expect: read
WITH `quoted cte` AS (SELECT 1) TABLE `quoted cte`

-- expect: read
WITH cte AS (SELECT 1 AS x) (SELECT x FROM cte) UNION (SELECT 2)

-- expect: read
(WITH cte AS (SELECT 1) SELECT * FROM cte)

-- expect: read
SELECT id, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY created_at) AS rn FROM posts

-- expect: read
SELECT id, SUM(amount) OVER w, RANK() OVER w, LAG(amount, 1) OVER w
FROM payments
WINDOW w AS (PARTITION BY account ORDER BY paid_at ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)

-- expect: read
SELECT DENSE_RANK() OVER (ORDER BY score), NTILE(4) OVER (ORDER BY score), CUME_DIST() OVER (ORDER BY score) FROM s

-- expect: read
SELECT FIRST_VALUE(a) OVER (ORDER BY b), LAST_VALUE(a) OVER (ORDER BY b), NTH_VALUE(a, 2) OVER (ORDER BY b) FROM t

-- expect: read
SELECT PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY price) OVER (PARTITION BY category) FROM products

-- expect: read
SELECT JSON_EXTRACT(doc, '$.a'), JSON_UNQUOTE(JSON_EXTRACT(doc, '$.b')), doc->'$.c', doc->>'$.d' FROM j

-- expect: read
SELECT JSON_OBJECT('id', id, 'tags', JSON_ARRAY(1, 2)), JSON_ARRAYAGG(id), JSON_OBJECTAGG(k, v) FROM t GROUP BY g

-- expect: read
SELECT * FROM j WHERE JSON_CONTAINS(doc, '1', '$.a') AND JSON_VALID(doc) AND JSON_LENGTH(doc) > 2

-- expect: read
SELECT jt.* FROM j, JSON_TABLE(j.doc, '$[*]' COLUMNS (
  rowid FOR ORDINALITY,
  name VARCHAR(40) PATH '$.name',
  NESTED PATH '$.tags[*]' COLUMNS (tag VARCHAR(20) PATH '$')
)) AS jt

-- expect: read
SELECT JSON_DETAILED(doc), JSON_COMPACT(doc), JSON_QUERY(doc, '$.a'), JSON_VALUE(doc, '$.b') FROM j

-- expect: read
SELECT CAST(price AS DECIMAL(10, 2)), CONVERT(name USING utf8mb4), CAST(ts AS DATETIME(6)), CONVERT('1', SIGNED)

-- expect: read
SELECT CONCAT(first, ' ', last), UPPER(email), SUBSTRING(bio FROM 1 FOR 20), TRIM(LEADING '0' FROM code) FROM users

-- expect: read
SELECT DATE_ADD(created_at, INTERVAL 1 DAY), DATE_FORMAT(NOW(), '%Y'), EXTRACT(YEAR FROM created_at) FROM posts

-- expect: read
SELECT IF(a > 1, 'x', 'y'), IFNULL(b, 0), COALESCE(c, d, 0), NULLIF(e, 0), CASE WHEN f THEN (1) ELSE (2) END FROM t

-- expect: read
SELECT REPLACE(title, 'a', 'b'), INSERT(title, 1, 2, 'x'), LEFT(title, 3), RIGHT(title, 2), REPEAT('ab', 3) FROM posts

-- expect: read
SELECT MATCH(title, body) AGAINST ('+rust -java' IN BOOLEAN MODE) AS score FROM posts WHERE MATCH(title) AGAINST('x')

-- expect: read
SELECT GROUP_CONCAT(DISTINCT tag ORDER BY tag SEPARATOR ', ') FROM tags

-- expect: read
SELECT * FROM users FORCE INDEX (PRIMARY) WHERE id > 10

-- expect: read
SELECT * FROM users USE INDEX FOR ORDER BY (idx_email) IGNORE KEY (idx_x) ORDER BY email

-- expect: read
SELECT * FROM t PARTITION (p0, p1)

-- expect: read
SELECT * FROM t1 JOIN t2 USING (id) NATURAL JOIN t3 STRAIGHT_JOIN t4 ON t4.a = t1.a

-- expect: read
SELECT * FROM (SELECT 1 AS a, 2 AS b) AS d (x, y)

-- expect: read
SELECT * FROM t1, LATERAL (SELECT * FROM t2 WHERE t2.a = t1.a LIMIT 1) AS l

-- expect: read
SELECT a FROM t WHERE (a, b) IN ((1, 2), (3, 4))

-- expect: read
SELECT a DIV (2), a MOD (3), MOD(a, 4), NOT (a), a XOR (b), a REGEXP ('^x'), a RLIKE ('y') FROM t

-- expect: read
SELECT a FROM t WHERE a BETWEEN (1) AND (2) AND b LIKE ('x%') AND c IN (SELECT 1)

-- expect: read
SELECT HIGH_PRIORITY SQL_NO_CACHE SQL_SMALL_RESULT DISTINCT a FROM t

-- expect: read
SELECT STRAIGHT_JOIN a FROM t1, t2

-- expect: read
SELECT id FROM posts ORDER BY FIELD(status, 'draft', 'published'), (id)

-- expect: read
SELECT ST_AsText(ST_GeomFromText('POINT(1 1)')), ST_Distance_Sphere(POINT(0, 0), POINT(1, 1))

-- expect: read
SELECT MAX(a), MIN(a), AVG(a), STDDEV(a), VARIANCE(a), BIT_OR(a), COUNT(DISTINCT a) FROM t

-- expect: read
SELECT a, SUM(b) FROM t GROUP BY a WITH ROLLUP

-- expect: read
SELECT HEX(x'4142'), UNHEX('41'), N'abc', _utf8mb4'abc' COLLATE utf8mb4_bin, b'0101', 0x41

-- expect: read
SELECT INET_ATON('10.0.0.1'), INET6_NTOA(UNHEX('00')), UUID_SHORT(), CRC32('x'), SHA2('x', 256), MD5('y')

-- expect: read
SELECT DATABASE(), SCHEMA(), USER(), CURRENT_USER(), SESSION_USER(), VERSION(), CHARSET('a'), COLLATION('a')

-- expect: read
SELECT CURRENT_USER, CURRENT_DATE, CURRENT_TIMESTAMP, LOCALTIME

-- expect: read
SELECT GREATEST(1, 2), LEAST(1, 2), ABS(-1), ROUND(1.5), FLOOR(1.5), CEIL(1.2), POW(2, 3), SQRT(4), PI()

-- expect: read
SELECT 1.5e-3, -.5, 0x1F + 1, 1 << 2, 3 & 1, 4 | 2, ~0, !0, 5 % 2, 'a' <=> 'b', 1 != 2, 2 <> 3

-- expect: read
SELECT a FROM t WHERE a MEMBER OF('[1, 2]')

-- expect: read
SELECT POSITION('a' IN 'abc'), LOCATE('b', 'abc'), INSTR('abc', 'c'), CHAR(65 USING latin1)

-- expect: read
SELECT DEFAULT(col), VALUES(col) FROM t

-- expect: read
SELECT WEIGHT_STRING('ab' AS CHAR(4)), INTERVAL(5, 1, 10, 100)

-- expect: read
SELECT a FROM t WHERE b IS NOT NULL AND c IS TRUE AND d IS UNKNOWN

-- expect: read
SELECT TIMESTAMPDIFF(SECOND, a, b), TIMESTAMP('2024-01-01'), YEAR(d), MONTH(d), WEEK(d), QUARTER(d), DAYNAME(d) FROM t

-- expect: read
SELECT * FROM information_schema.tables WHERE table_schema = 'appdb'

-- expect: read
SELECT * FROM mysql.user

-- expect: read
SELECT t.*, t.`order`, `t`.`select` FROM `t`

-- expect: read
SELECT a AS `update`, b AS `delete`, c AS "for update" FROM t

-- expect: read
SELECT `update` FROM `insert` WHERE `delete` = 1

-- expect: read
SELECT update_time, share_count, lock_mode, into_count FROM stats

-- expect: read
SELECT next, value FROM t

-- expect: read
SELECT 'FOR UPDATE', 'LOCK IN SHARE MODE', 'INTO OUTFILE', 'GET_LOCK(1)', '@a := 1'

-- expect: read
SELECT * FROM users WHERE email = ? AND id > ?

-- expect: read
SELECT ROW(1, 2) = ROW(1, 2), EXISTS(SELECT 1)

-- expect: read
SELECT REGEXP_REPLACE(a, 'x', 'y'), REGEXP_SUBSTR(a, 'z'), SOUNDEX(a), a SOUNDS LIKE ('b') FROM t

-- expect: read
SELECT COLUMN_GET(dyn, 'color' AS CHAR), COLUMN_JSON(dyn) FROM items

-- expect: read
SELECT NVL(a, 0), NVL2(a, 1, 0), DECODE_HISTOGRAM('SINGLE_PREC_HB', 'x'), SFORMAT('{}', 1), NATURAL_SORT_KEY(a) FROM t

-- expect: read
SELECT * FROM t FOR SYSTEM_TIME ALL WHERE a = 1

-- expect: read
SELECT * FROM t FOR SYSTEM_TIME AS OF TIMESTAMP '2024-01-01 00:00:00'
