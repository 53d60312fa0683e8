#!/usr/bin/env python3
"""mysql-connector-python (default settings and auth) against a MySQL endpoint: the testbed
primary directly, or tandem.

See harness.py for the environment. Tables are named py_connector_<pid>, so concurrent runs
(direct and proxied) do not collide. Exits 1 if any check failed.
"""

import os

import mysql.connector

from harness import Runner, expect, target

EMOJI = "emoji 😀🎉🦀 ü 日本"


def main():
    cfg = target()
    t = f"py_connector_{os.getpid()}"
    r = Runner("connector")

    def connect():
        # Defaults on purpose (auth plugin, C extension or pure Python, collation): a proxy must
        # serve the driver as users install it. Only the charset is chosen, for the emoji check.
        return mysql.connector.connect(
            host=cfg["host"], port=cfg["port"], user=cfg["user"], password=cfg["password"],
            database=cfg["database"], charset="utf8mb4", connection_timeout=10,
        )

    conns = []

    def check_connect():
        conns.append(connect())

    if not r.check("connect", check_connect):
        r.finish()
    c = conns[0]

    def check_select():
        cur = c.cursor()
        cur.execute("SELECT 1, DATABASE()")
        expect(cur.fetchone(), (1, cfg["database"]), "(1, DATABASE())")
        cur.execute("SELECT COUNT(*) FROM users")
        expect(cur.fetchone()[0], 20, "seed users")
        cur.close()

    def check_create():
        cur = c.cursor()
        cur.execute(f"DROP TABLE IF EXISTS {t}")
        cur.execute(
            f"CREATE TABLE {t} (id INT AUTO_INCREMENT PRIMARY KEY, i INT NULL, f DOUBLE NULL,"
            " s VARCHAR(100) NULL, b BLOB NULL, UNIQUE KEY uq_s (s))"
            " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        )
        cur.close()

    def check_params():
        blob = b"\x00\x01binary\xff\xfe\x00end"
        cur = c.cursor()
        cur.execute(f"INSERT INTO {t} (i, f, s, b) VALUES (%s, %s, %s, %s)", (42, 3.5, "hello", blob))
        expect(cur.rowcount, 1, "rowcount")
        expect(cur.lastrowid >= 1, True, "lastrowid >= 1")
        c.commit()
        cur.execute(f"SELECT i, f, s, b FROM {t} WHERE s = %s", ("hello",))
        i, f, s, b = cur.fetchone()
        expect((i, f, s, bytes(b)), (42, 3.5, "hello", blob), "row")
        cur.close()

    def check_prepared():
        cur = c.cursor(prepared=True)  # COM_STMT_PREPARE / COM_STMT_EXECUTE
        ins = f"INSERT INTO {t} (i, f, s) VALUES (?, ?, ?)"
        for row in [(1, 0.5, "p1"), (2, None, "p2"), (3, -1.25, EMOJI)]:
            cur.execute(ins, row)
        c.commit()
        sel = f"SELECT i, f, s FROM {t} WHERE i BETWEEN ? AND ? ORDER BY i"
        cur.execute(sel, (1, 3))
        rows = [tuple(x) for x in cur.fetchall()]
        expect(rows, [(1, 0.5, "p1"), (2, None, "p2"), (3, -1.25, EMOJI)], "prepared rows")
        cur.execute(sel, (2, 2))  # same statement, new parameters
        expect([tuple(x) for x in cur.fetchall()], [(2, None, "p2")], "re-executed rows")
        cur.close()

    def check_rollback():
        cur = c.cursor()
        c.commit()  # autocommit is off by default: end the implicit transaction of earlier reads
        c.start_transaction()
        cur.execute(f"INSERT INTO {t} (i, s) VALUES (%s, %s)", (100, "rolled-back"))
        cur.execute(f"SELECT COUNT(*) FROM {t} WHERE s = 'rolled-back'")
        inside = cur.fetchone()[0]
        c.rollback()
        cur.execute(f"SELECT COUNT(*) FROM {t} WHERE s = 'rolled-back'")
        expect((inside, cur.fetchone()[0]), (1, 0), "(inside, after rollback)")
        cur.close()

    def expect_error(sql, args, code):
        cur = c.cursor()
        try:
            cur.execute(sql, args)
            cur.fetchall()
        except mysql.connector.Error as e:
            expect(e.errno, code, f"error code ({e})")
        else:
            raise AssertionError(f"no error for {sql}")
        finally:
            cur.close()
        c.rollback()

    def check_emoji():
        cur = c.cursor()
        cur.execute(f"INSERT INTO {t} (s) VALUES (%s)", (f"text {EMOJI}",))
        cur.execute(f"SELECT s, CHAR_LENGTH(s) FROM {t} WHERE id = %s", (cur.lastrowid,))
        expect(cur.fetchone(), (f"text {EMOJI}", len(EMOJI) + 5), "(text, CHAR_LENGTH)")
        cur.execute("SELECT title FROM posts WHERE id = 1")
        expect(cur.fetchone()[0], "Hello world 👋", "seed title")
        c.commit()
        cur.close()

    def check_usable():
        cur = c.cursor()
        cur.execute("SELECT 6")
        expect(cur.fetchone()[0], 6, "SELECT 6")
        cur.close()

    def check_drop():
        cur = c.cursor()
        cur.execute(f"DROP TABLE {t}")
        cur.close()

    r.check("select", check_select)
    r.check("create table", check_create)
    r.check("parameterised insert/select", check_params)
    r.check("prepared cursor", check_prepared)
    r.check("transaction rollback", check_rollback)
    r.check("error 1062 duplicate key", lambda: expect_error(f"INSERT INTO {t} (s) VALUES (%s)", ("hello",), 1062))
    r.check("error 1064 syntax", lambda: expect_error("SELEC 1", None, 1064))
    r.check("connection usable after errors", check_usable)
    r.check("utf8mb4 emoji round-trip", check_emoji)
    r.check("drop table", check_drop)
    c.close()
    r.finish()


if __name__ == "__main__":
    main()
