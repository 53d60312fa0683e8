#!/usr/bin/env python3
"""PyMySQL (default settings and auth) against a MySQL endpoint: the testbed primary, or tandem.

See harness.py for the environment. Tables are named py_pymysql_<pid>, so concurrent runs
(direct and proxied) do not collide. Exits 1 if any check failed.
"""

import os

import pymysql

from harness import Runner, expect, target

EMOJI = "emoji 😀🎉🦀 ü 日本"


def main():
    cfg = target()
    t = f"py_pymysql_{os.getpid()}"
    r = Runner("pymysql")

    def connect():
        return pymysql.connect(
            host=cfg["host"], port=cfg["port"], user=cfg["user"], password=cfg["password"],
            database=cfg["database"], charset="utf8mb4", connect_timeout=10,
        )

    conns = []

    def check_connect():
        conns.append(connect())

    if not r.check("connect", check_connect):
        r.finish()
    c = conns[0]

    def check_select():
        with c.cursor() as cur:
            cur.execute("SELECT 1, DATABASE(), VERSION()")
            one, db, version = cur.fetchone()
            expect((one, db), (1, cfg["database"]), "(1, DATABASE())")
            expect(bool(version), True, "VERSION() non-empty")
            cur.execute("SELECT COUNT(*) FROM users")
            expect(cur.fetchone()[0], 20, "seed users")

    def check_create():
        with c.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {t}")
            cur.execute(
                f"CREATE TABLE {t} (id INT AUTO_INCREMENT PRIMARY KEY, i INT NULL, f DOUBLE NULL,"
                " s VARCHAR(100) NULL, b BLOB NULL, UNIQUE KEY uq_s (s))"
                " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
            )
        c.commit()

    def check_params():
        blob = b"\x00\x01binary\xff\xfe\x00end"
        with c.cursor() as cur:
            n = cur.execute(f"INSERT INTO {t} (i, f, s, b) VALUES (%s, %s, %s, %s)", (42, 3.5, "hello", blob))
            expect(n, 1, "affected rows")
            expect(cur.lastrowid >= 1, True, "lastrowid >= 1")
            n = cur.executemany(f"INSERT INTO {t} (i, s) VALUES (%s, %s)", [(1, "a"), (2, "b"), (3, None)])
            expect(n, 3, "executemany rows")
            c.commit()
            cur.execute(f"SELECT i, f, s, b FROM {t} WHERE s = %s", ("hello",))
            expect(cur.fetchone(), (42, 3.5, "hello", blob), "row")
            cur.execute(f"SELECT i FROM {t} WHERE s IS NULL")
            expect(cur.fetchall(), ((3,),), "NULL row")

    def check_rollback():
        with c.cursor() as cur:
            c.begin()
            cur.execute(f"INSERT INTO {t} (i, s) VALUES (%s, %s)", (100, "rolled-back"))
            cur.execute(f"SELECT COUNT(*) FROM {t} WHERE s = 'rolled-back'")
            inside = cur.fetchone()[0]
            c.rollback()
            cur.execute(f"SELECT COUNT(*) FROM {t} WHERE s = 'rolled-back'")
            expect((inside, cur.fetchone()[0]), (1, 0), "(inside, after rollback)")

    def check_commit():
        with c.cursor() as cur:
            cur.execute(f"INSERT INTO {t} (i, s) VALUES (%s, %s)", (101, "committed"))
        c.commit()
        other = connect()
        try:
            with other.cursor() as cur:
                cur.execute(f"SELECT COUNT(*) FROM {t} WHERE s = 'committed'")
                expect(cur.fetchone()[0], 1, "rows seen by second connection")
        finally:
            other.close()

    def expect_error(sql, args, code):
        with c.cursor() as cur:
            try:
                cur.execute(sql, args)
            except pymysql.MySQLError as e:
                expect(e.args[0], code, f"error code ({e})")
            else:
                raise AssertionError(f"no error for {sql}")
        c.rollback()

    def check_emoji():
        with c.cursor() as cur:
            cur.execute(f"INSERT INTO {t} (s) VALUES (%s)", (EMOJI,))
            cur.execute(f"SELECT s, CHAR_LENGTH(s) FROM {t} WHERE id = %s", (cur.lastrowid,))
            expect(cur.fetchone(), (EMOJI, len(EMOJI)), "(text, CHAR_LENGTH)")
            cur.execute("SELECT bio FROM users WHERE id = 1")
            expect(cur.fetchone()[0], "Ships on Fridays 🚀", "seed bio")
        c.commit()

    def check_usable():
        with c.cursor() as cur:
            cur.execute("SELECT 6")
            expect(cur.fetchone()[0], 6, "SELECT 6")

    def check_drop():
        with c.cursor() as cur:
            cur.execute(f"DROP TABLE {t}")

    r.check("select", check_select)
    r.check("create table", check_create)
    r.check("parameterised insert/select", check_params)
    r.check("transaction rollback", check_rollback)
    r.check("transaction commit visible to another connection", check_commit)
    r.check("error 1062 duplicate key", lambda: expect_error(f"INSERT INTO {t} (s) VALUES (%s)", ("hello",), 1062))
    r.check("error 1064 syntax", lambda: expect_error("SELEC 1", None, 1064))
    r.check("error 1146 unknown table", lambda: expect_error(f"SELECT * FROM py_no_such_{os.getpid()}", None, 1146))
    r.check("connection usable after errors", check_usable)
    r.check("utf8mb4 emoji round-trip", check_emoji)
    r.check("drop table", check_drop)
    c.close()
    r.finish()


if __name__ == "__main__":
    main()
