#!/usr/bin/env python3
"""Concurrency torture through tandem for minutes (scripts/test runs it for seconds).

tests/clients/node/torture.js runs --sessions mysql2 sessions for --time seconds: they pipeline,
leave mid-result, quit mid-transaction, use temporary tables, user variables, cursors and
KILL QUERY, and each checks it only ever sees its own data. This runs it directly against a
MariaDB testbed of its own (a primary and two replicas) as the baseline, then through a release
tandem whose pool is --pool connections per backend (default: sessions + 8, enough for the
sessions that pin theirs with a temporary table; a smaller pool makes the others wait, and then
fail with ER 1040, as with any proxy), with the replicas taking reads.

    benches/torture.py [--time 180] [--sessions 32] [--pool N]

Exits 1 if any check failed (through tandem or directly); prints the operations counted.
"""

import argparse
import os
import subprocess
import sys
import tempfile

from benchlib import ROOT, sh, stop, wait_http


def torture(port, seconds, sessions):
    env = dict(os.environ, TANDEM_PORT=str(port), TORTURE_SECONDS=str(seconds),
               TORTURE_SESSIONS=str(sessions))
    p = subprocess.run(["node", os.path.join(ROOT, "tests/clients/node/torture.js")], env=env,
                       capture_output=True, text=True, timeout=seconds + 300)
    out = p.stdout + p.stderr
    failures = [line for line in out.splitlines() if line.startswith("not ok")]
    summary = [line for line in out.splitlines() if line.startswith("torture:")]
    return p.returncode, failures, summary[-1] if summary else out[-2000:]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--time", type=int, default=180, help="seconds per run")
    ap.add_argument("--sessions", type=int, default=32)
    ap.add_argument("--pool", type=int, default=0,
                    help="mysql.pool.max_backend_connections (0: sessions + 8)")
    ap.add_argument("--base-port", type=int, default=24706)
    ap.add_argument("--dir", default="/tmp/tandem-bench-torture")
    ap.add_argument("--tandem-port", type=int, default=24800)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/tandem"),
                    help="the tandem to test (default: a fresh release build)")
    args = ap.parse_args()

    if args.pool == 0:
        args.pool = args.sessions + 8
    sh(os.path.join(ROOT, "scripts/install-deps"))
    if args.binary == os.path.join(ROOT, "target/release/tandem"):
        sh("cargo", "build", "--release", "--quiet", cwd=ROOT)
    sh(os.path.join(ROOT, "scripts/testbed"), "start", args.dir, str(args.base_port), "2")
    cfg = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    cfg.write(f"""
[admin]
listen = "127.0.0.1:{args.tandem_port + 1}"
[mysql]
listen = "127.0.0.1:{args.tandem_port}"
[mysql.pool]
max_backend_connections = {args.pool}
[mysql.routing]
consistency = "session"
[[mysql.users]]
user = "app"
password = "apppass"
[mysql.monitor]
user = "monitor"
password = "monitorpass"
""" + "".join(f"""
[[mysql.backends]]
name = "db{k + 1}"
address = "127.0.0.1:{args.base_port + k}"
role = "{'primary' if k == 0 else 'replica'}"
""" for k in range(3)))
    cfg.close()
    tandem = subprocess.Popen([args.binary, "run", "--config", cfg.name],
                              env=dict(os.environ, RUST_LOG="warn"))
    failed = False
    try:
        wait_http(f"http://127.0.0.1:{args.tandem_port + 1}/health")
        for name, port in (("direct", args.base_port), ("tandem", args.tandem_port)):
            rc, failures, summary = torture(port, args.time, args.sessions)
            print(f"{name:<6} {summary}", flush=True)
            for line in failures:
                print(f"  {line}")
            failed |= rc != 0
    finally:
        stop(tandem)
        sh(os.path.join(ROOT, "scripts/testbed"), "stop", args.dir)
        os.unlink(cfg.name)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
