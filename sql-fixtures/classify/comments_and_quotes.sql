-- Comments, hints, quoting modes, multi-statements, odd whitespace, broken input.

-- Comments before the first keyword
-- expect: read
/* x */ SELECT 1

-- expect: read
-- leading line comment
SELECT 1

-- expect: write
# hash comment
DELETE FROM t

-- expect: write
/* multi
   line */ /* two */ UPDATE t SET a = 1

-- expect: read
--	tab after dashes
SELECT 1

-- Dash-dash without a space is not a comment: --1 is minus minus one.
-- expect: read
SELECT 1--1

-- expect: read
SELECT 1 -- FOR UPDATE

-- expect: read
SELECT 1 # FOR UPDATE

-- expect: read
SELECT 1 /* FOR UPDATE */

-- expect: read
SELECT 1 /* unbalanced ' quote in a comment */, 'a'

-- expect: read
SELECT '/* not a comment */', '-- nor this', '# nor this'

-- Hints
-- expect: read hint=primary
/* tandem:primary */ SELECT 1

-- expect: read hint=replica
/* tandem:replica */ SELECT * FROM users

-- expect: read hint=backend:db3
/* tandem:backend=db3 */ SELECT 1

-- expect: read hint=replica
/*tandem:replica*/SELECT 1

-- expect: read hint=primary
/*  TANDEM : PRIMARY  */ select 1

-- expect: read hint=backend:replica-2.dc1
/* tandem: backend = replica-2.dc1 */ SELECT 1

-- expect: read hint=replica
-- tandem:replica
SELECT 1

-- expect: read hint=primary
# tandem:primary
SELECT 1

-- expect: read hint=replica
/* app: checkout */ /* tandem:replica */ SELECT 1

-- expect: read hint=replica
( /* tandem:replica */ SELECT 1)

-- A hint is reported even where the router must not honour it.
-- expect: write hint=replica
/* tandem:replica */ DELETE FROM t

-- Only comments before the first keyword count.
-- expect: read
SELECT /* tandem:replica */ 1

-- expect: read
SELECT 1 /* tandem:primary */

-- expect: read
/* tandem:somewhere */ SELECT 1

-- expect: read
/* tandem:backend=bad name */ SELECT 1

-- expect: read
/* not a hint tandem:replica */ SELECT 1

-- expect: read flags=executable_comment,mode_dependent
/*!50000 SELECT */ /* tandem:replica */ 1

-- Quotes and escapes
-- expect: read
SELECT 'it''s', "say ""hi""", 'back\\slash'

-- expect: read flags=mode_dependent,multi_statement
SELECT 'a\'; DELETE FROM t; -- '

-- expect: read flags=multi_statement options=no_backslash_escapes
SELECT 'a\'; DELETE FROM t; -- '

-- expect: read
SELECT 'a\'b', 'c\\', "d\"e"

-- expect: read options=no_backslash_escapes
SELECT 'a\', 'b'

-- expect: read flags=stored_function options=ansi_quotes
SELECT "f"(1)

-- expect: read options=ansi_quotes
SELECT "id", "select" FROM "users" WHERE 'x' = 'y'

-- expect: read flags=locking_read options=ansi_quotes
SELECT "a" FROM "t" FOR UPDATE

-- expect: read flags=mode_dependent,stored_function
SELECT "f"(1)

-- expect: read options=ansi_quotes
SELECT "FOR UPDATE" FROM t

-- expect: read flags=mode_dependent,locking_read
SELECT "a\" FOR UPDATE -- "

-- expect: read
SELECT `a``b` FROM `weird ``name`

-- expect: read
SELECT `GET_LOCK` FROM t

-- expect: read
SELECT 'x' AS `FOR`, 1 AS `UPDATE`

-- Multi-statements
-- expect: read
SELECT 1;

-- expect: read
SELECT 1 ;  -- trailing comment

-- expect: read
SELECT 1;;

-- expect: read flags=multi_statement
SELECT 1; SELECT 2

-- expect: read flags=multi_statement
SELECT 1;SELECT 2;

-- expect: read flags=multi_statement,side_effect,lock_function
SELECT 1; SELECT GET_LOCK('a', 1)

-- expect: set flags=user_var_assign,multi_statement,user_var_read
SET @a = 1; SELECT @a

-- expect: read flags=multi_statement
SELECT begin FROM t; DELETE FROM t

-- expect: read flags=multi_statement,temp_table
SELECT 1; CREATE TEMPORARY TABLE x (a INT)

-- expect: read
SELECT ';' AS semi, ";" AS dq, `;` FROM t

-- expect: read
SELECT 1 /* ; DELETE FROM t */

-- expect: read
SELECT 1 -- ; DELETE FROM t

-- expect: other decider=unknown flags=multi_statement
;SELECT 1

-- Whitespace, case and parentheses
-- expect: read escapes
\n\n   SELECT 1

-- expect: read escapes
\t\r\nselect\t1

-- expect: read
   (SELECT 1)

-- expect: read
((((SELECT 1))))

-- expect: read
( ( SELECT a FROM t ) UNION ( SELECT b FROM u ) ) ORDER BY 1

-- expect: write
  update t set a = 1

-- expect: write
DeLeTe FROM t

-- expect: other decider=unknown
(UPDATE t SET a = 1)

-- expect: other decider=unknown
((

-- Broken or empty input
-- expect: other decider=unknown escapes
\x20

-- expect: other decider=unknown
/* only a comment */

-- expect: other decider=unknown
-- only a comment

-- expect: read flags=unterminated decider=unknown
SELECT 'unterminated

-- expect: read flags=unterminated decider=unknown
SELECT "unterminated

-- expect: read flags=unterminated decider=unknown
SELECT `unterminated

-- expect: read flags=unterminated decider=unknown
SELECT 1 /* unterminated

-- expect: read flags=unterminated decider=unknown
SELECT 'a\'

-- expect: other decider=unknown
FROBNICATE the database

-- expect: other decider=unknown
12345

-- expect: other decider=unknown flags=user_var_assign
@a := 1

-- expect: read escapes
SELECT '\xff\xfe' FROM t

-- expect: read escapes
SELECT 'caf\xc3\xa9', `t\xc3\xa9` FROM t

-- expect: other decider=unknown escapes
\xff\xfe SELECT
