#!/usr/bin/env python3
"""caching_sha2_password against tandem configured with default_auth_plugin =
"caching_sha2_password" and TLS: fast auth for a user with a configured password, full
auth for a hash-only user over TLS (clear text) and over plain TCP (RSA key exchange).

Environment: TANDEM_HOST, TANDEM_PORT (see harness.py). Users: app/apppass (password in
tandem's config), app2/app2pass (only its hash in tandem's config).
"""

import ssl

import mysql.connector
import pymysql

from harness import Runner, expect, target


def main():
    cfg = target()
    r = Runner("sha2")
    no_verify = ssl.create_default_context()
    no_verify.check_hostname = False
    no_verify.verify_mode = ssl.CERT_NONE

    def pymysql_login(user, password, tls):
        c = pymysql.connect(
            host=cfg["host"], port=cfg["port"], user=user, password=password,
            database="appdb", connect_timeout=10, ssl=no_verify if tls else None,
        )
        with c.cursor() as cur:
            cur.execute("SELECT CURRENT_USER()")
            expect(cur.fetchone()[0].split("@")[0], user, "current user")
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        c.close()

    r.check("pymysql fast auth (password configured)",
            lambda: pymysql_login("app", "apppass", False))
    r.check("pymysql full auth over TLS (hash only)",
            lambda: pymysql_login("app2", "app2pass", True))
    r.check("pymysql full auth with RSA (hash only, no TLS)",
            lambda: pymysql_login("app2", "app2pass", False))

    def wrong_password():
        try:
            pymysql_login("app2", "nope", False)
        except pymysql.err.OperationalError as e:
            expect(e.args[0], 1045, "error code")
            return
        raise AssertionError("login with a wrong password succeeded")

    r.check("pymysql wrong password over RSA is 1045", wrong_password)

    def connector_fast():
        c = mysql.connector.connect(
            host=cfg["host"], port=cfg["port"], user="app", password="apppass",
            database="appdb", connection_timeout=10,
        )
        cur = c.cursor()
        cur.execute("SELECT 1")
        expect(cur.fetchone()[0], 1, "select 1")
        c.close()

    r.check("mysql-connector fast auth", connector_fast)
    r.finish()


if __name__ == "__main__":
    main()
