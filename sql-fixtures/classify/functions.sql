-- Builtin versus stored functions. A call of a name that is not a builtin is a
-- stored function (or a UDF): primary, unless the user declared it read-only.

-- expect: read flags=stored_function
SELECT my_func(1)

-- expect: read flags=stored_function
SELECT id, compute_score(id) FROM users

-- expect: read options=read_only_functions:compute_score
SELECT compute_score(id) FROM users

-- expect: read options=read_only_functions:compute_score
SELECT COMPUTE_SCORE(id) FROM users

-- expect: read flags=stored_function options=read_only_functions:compute_score
SELECT compute_score(id), audit_log(id) FROM users

-- expect: read options=read_only_functions:f1|f2
SELECT f1(1), f2(2)

-- expect: read flags=stored_function
SELECT appdb.f1(1)

-- expect: read options=read_only_functions:appdb.f1
SELECT appdb.f1(1)

-- expect: read flags=stored_function options=read_only_functions:appdb.f1
SELECT other.f1(1)

-- expect: read options=read_only_functions:f1
SELECT `appdb`.`f1`(1)

-- A schema-qualified call is never a builtin, even with a builtin's name.
-- expect: read flags=stored_function
SELECT appdb.now()

-- expect: read flags=stored_function
SELECT `now`()

-- expect: read flags=stored_function
SELECT sys_exec('rm -rf /')

-- expect: read flags=stored_function
SELECT * FROM users WHERE id = get_user_id('alice')

-- expect: read flags=stored_function
SELECT * FROM users WHERE id IN (SELECT user_id FROM t WHERE log_access(user_id) = 1)

-- expect: read flags=stored_function
SELECT my_func (1)

-- expect: read flags=stored_function
SELECT any(1)

-- expect: read flags=stored_function
SELECT path(1), columns(2)

-- expect: read flags=stored_function
SELECT uuid_v5(1)

-- expect: read flags=stored_function
WITH x AS (SELECT f(1) AS v) SELECT v FROM x

-- expect: read flags=stored_function
SELECT * FROM (SELECT f(1)) AS d

-- expect: read flags=stored_function,user_var_read
SELECT f(@a)

-- Names that are builtins in MariaDB or MySQL
-- expect: read
SELECT UUID_TO_BIN(UUID()), BIN_TO_UUID(x), IS_UUID(y), ANY_VALUE(z), REGEXP_LIKE(a, 'b') FROM t

-- expect: read
SELECT VEC_DISTANCE_EUCLIDEAN(v, VEC_FROMTEXT('[1,2]')), UUID_V7(), SYS_GUID() FROM t

-- expect: read
SELECT JSON_SCHEMA_VALID('{}', doc), JSON_OVERLAPS(a, b), JSON_PRETTY(doc), JSON_SEARCH(doc, 'one', 'x') FROM j

-- expect: read
SELECT AES_ENCRYPT('x', 'k'), AES_DECRYPT(y, 'k'), RANDOM_BYTES(16), COMPRESS('x'), UNCOMPRESS(y), TO_BASE64('x') FROM t

-- expect: read
SELECT FORMAT(1234.5, 2), FORMAT_BYTES(1024), LPAD('a', 3, '0'), RPAD('a', 3, '0'), ELT(1, 'a'), MAKE_SET(1, 'a')

-- expect: read
SELECT ST_Contains(g1, g2), ST_Intersects(g1, g2), MBRContains(g1, g2), ST_SRID(g1), ST_X(p), ST_Y(p) FROM geo

-- expect: read
SELECT CURRENT_ROLE(), ROLES_GRAPHML(), ICU_VERSION(), STATEMENT_DIGEST('SELECT 1')

-- expect: read
SELECT GTID_SUBSET('a:1', 'a:1-2'), GTID_SUBTRACT('a:1-3', 'a:1')

-- expect: read
SELECT EXTRACTVALUE('<a>1</a>', '/a'), UPDATEXML('<a>1</a>', '/a', '<b/>')

-- expect: read
SELECT ADD_MONTHS(d, 1), TO_CHAR(d, 'YYYY'), CHR(65), MEDIAN(x) OVER () FROM t

-- expect: read
SELECT GROUPING(a), a FROM t GROUP BY a WITH ROLLUP

-- Function-like keywords are not calls
-- expect: read
SELECT a FROM t WHERE a IN (1) AND EXISTS (SELECT 1) AND (b) AND NOT (c) OR (d) XOR (e)

-- expect: read
SELECT CAST(a AS CHAR(10)), CAST(b AS BINARY(4)), CAST(c AS UNSIGNED), CAST(d AS DOUBLE), CAST(e AS FLOAT(5))

-- expect: read
SELECT BINARY('a'), BINARY 'b'

-- Stored functions in writes and other statements go to the primary anyway
-- expect: write
INSERT INTO audit (msg) VALUES (format_msg('x'))

-- expect: write
UPDATE t SET a = my_func(a)

-- expect: write
CALL my_proc(1, 2)

-- expect: write
DO my_func(1)

-- expect: write flags=side_effect,lock_function
DO GET_LOCK('a', 10)

-- expect: write flags=side_effect,lock_function
DO RELEASE_LOCK('a')

-- expect: write
DO SLEEP(1)
