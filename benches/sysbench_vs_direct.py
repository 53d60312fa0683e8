#!/usr/bin/env python3
"""tandem vs direct MariaDB under sysbench, in interleaved rounds.

Starts the testbed (scripts/testbed: the primary, plus --replicas N replicas
that tandem splits reads over) and a release tandem in front of it, prepares sysbench tables, then for every workload x ps-mode x
thread count runs `direct` and `tandem` back to back, ROUNDS times, and
prints the median TPS, p95 latency, the ratio tandem/direct, and CPU seconds
per 1,000 queries of tandem and of mariadbd (from /proc/PID/stat) during the
tandem runs. Absolute numbers on a shared 2-core machine are noise; the
ratios measured in the same run are the result.

    benches/sysbench_vs_direct.py [--rounds 3] [--time 10] [--threads 1,16,64]
        [--tests oltp_point_select,oltp_read_only] [--ps-modes disable,auto]
        [--pool 32 --max-connections 400]   (256 client threads on a 32-connection pool)

Not a pass/fail test: it prints numbers and exits 0 unless something broke.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import ROOT, cpu_seconds, sh, stop, wait_http




def sysbench(test, port, threads, seconds, ps_mode, action="run", extra=()):
    cmd = [
        "sysbench", test,
        "--db-driver=mysql", "--mysql-host=127.0.0.1", f"--mysql-port={port}",
        "--mysql-user=app", "--mysql-password=apppass", "--mysql-db=sbtest",
        "--tables=4", "--table-size=10000", f"--threads={threads}",
        f"--time={seconds}", "--events=0", f"--db-ps-mode={ps_mode}",
        "--percentile=95", "--rand-type=uniform", *extra, action,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    if out.returncode != 0:
        sys.exit(f"sysbench failed ({' '.join(cmd)}):\n{out.stdout}\n{out.stderr}")
    return out.stdout


def wait_replicas_caught_up(base_port, replicas):
    """Waits (bounded) until every replica has the primary's GTID position."""
    def q(port, sql):
        return subprocess.run(["mariadb", "-h127.0.0.1", f"-P{port}", "-uapp", "-papppass", "-N", "-B", "-e", sql],
                              capture_output=True, text=True, check=True).stdout.strip()
    want = q(base_port, "SELECT @@gtid_binlog_pos")
    deadline = time.time() + 120
    for i in range(replicas):
        while q(base_port + 1 + i, "SELECT @@gtid_slave_pos") != want:
            if time.time() > deadline:
                sys.exit("replicas did not catch up after prepare")
            time.sleep(0.2)


def parse(out):
    tps = float(re.search(r"transactions:\s+\d+\s+\(([\d.]+) per sec", out).group(1))
    queries = int(re.search(r"queries:\s+(\d+)", out).group(1))
    p95 = float(re.search(r"95th percentile:\s+([\d.]+)", out).group(1))
    errors = int(re.search(r"errors:\s+(\d+)", out).group(1))
    return tps, queries, p95, errors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--time", type=int, default=10, help="seconds per sysbench run")
    ap.add_argument("--threads", default="1,16,64")
    ap.add_argument("--max-connections", type=int, default=0,
                    help="raise MariaDB's max_connections (for runs with more threads than 151)")
    ap.add_argument("--tests", default="oltp_point_select,oltp_read_only")
    ap.add_argument("--ps-modes", default="disable,auto", help="disable = text protocol, auto = prepared")
    ap.add_argument("--base-port", type=int, default=24306)
    ap.add_argument("--dir", default=None, help="testbed dir (default /tmp/tandem-bench-rN)")
    ap.add_argument("--tandem-port", type=int, default=24400)
    ap.add_argument("--worker-threads", type=int, default=0, help="tandem runtime threads (0 = default)")
    ap.add_argument("--pool", type=int, default=0,
                    help="mysql.pool.max_backend_connections (0 = tandem's default)")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/tandem"),
                    help="the tandem to measure (default: a fresh release build)")
    ap.add_argument("--replicas", type=int, default=0,
                    help="start this many replicas and let tandem split reads over them "
                         "(direct runs still go to the primary)")
    args = ap.parse_args()
    args.dir = args.dir or f"/tmp/tandem-bench-r{args.replicas}"

    sh(os.path.join(ROOT, "scripts/testbed"), "install")
    if args.binary == os.path.join(ROOT, "target/release/tandem"):
        sh("cargo", "build", "--release", "--quiet", cwd=ROOT)
    sh(os.path.join(ROOT, "scripts/testbed"), "start", args.dir, str(args.base_port), str(args.replicas))
    with open(os.path.join(args.dir, "node0", "mysqld.pid")) as f:
        mariadb_pid = int(f.read().strip())

    cfg = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    runtime = f"[runtime]\nworker_threads = {args.worker_threads}\n" if args.worker_threads else ""
    pool = f"[mysql.pool]\nmax_backend_connections = {args.pool}\n" if args.pool else ""
    cfg.write(f"""{runtime}
[admin]
listen = "127.0.0.1:{args.tandem_port + 1}"
[mysql]
listen = "127.0.0.1:{args.tandem_port}"
{pool}[[mysql.users]]
user = "app"
password = "apppass"
[[mysql.backends]]
name = "db1"
address = "127.0.0.1:{args.base_port}"
role = "primary"
""")
    for i in range(args.replicas):
        cfg.write(f"""
[[mysql.backends]]
name = "replica{i + 1}"
address = "127.0.0.1:{args.base_port + 1 + i}"
role = "replica"
""")
    cfg.close()
    env = dict(os.environ, RUST_LOG="warn")
    tandem = subprocess.Popen([args.binary, "run", "--config", cfg.name], env=env)
    try:
        wait_http(f"http://127.0.0.1:{args.tandem_port + 1}/health")
        sh("mariadb", "-h127.0.0.1", f"-P{args.base_port}", "-uapp", "-papppass",
           "-e", "DROP DATABASE IF EXISTS sbtest; CREATE DATABASE sbtest")
        if args.max_connections:
            sh("mariadb", f"--socket={args.dir}/node0/mysqld.sock", "-uroot",
               "-e", f"SET GLOBAL max_connections = {args.max_connections}")
        sysbench("oltp_read_only", args.base_port, 4, 60, "disable", action="prepare")
        if args.replicas:
            wait_replicas_caught_up(args.base_port, args.replicas)

        targets = {"direct": args.base_port, "tandem": args.tandem_port}
        print(f"{'workload':<18} {'ps':<8} {'thr':>3} {'direct tps':>11} {'tandem tps':>11} {'ratio':>6} "
              f"{'p95 d/t ms':>13} {'tandem cpu':>11} {'mariadb cpu':>12} {'t/m cpu':>8}")
        print(f"{'':<18} {'':<8} {'':>3} {'':>11} {'':>11} {'':>6} {'':>13} {'s/1k q':>11} {'s/1k q':>12} {'':>8}")
        for test in args.tests.split(","):
            for ps in args.ps_modes.split(","):
                for threads in [int(t) for t in args.threads.split(",")]:
                    res = {"direct": [], "tandem": []}
                    cpu_t, cpu_m, queries_t = 0.0, 0.0, 0
                    for _ in range(args.rounds):
                        for name in ("direct", "tandem"):
                            t0, m0 = cpu_seconds(tandem.pid), cpu_seconds(mariadb_pid)
                            tps, q, p95, errors = parse(sysbench(test, targets[name], threads, args.time, ps))
                            t1, m1 = cpu_seconds(tandem.pid), cpu_seconds(mariadb_pid)
                            if errors:
                                sys.exit(f"{name} {test} {ps} {threads}: {errors} errors")
                            res[name].append((tps, p95))
                            if name == "tandem":
                                cpu_t += t1 - t0
                                cpu_m += m1 - m0
                                queries_t += q
                    d = statistics.median(r[0] for r in res["direct"])
                    t = statistics.median(r[0] for r in res["tandem"])
                    dp = statistics.median(r[1] for r in res["direct"])
                    tp = statistics.median(r[1] for r in res["tandem"])
                    ct = cpu_t / queries_t * 1000
                    cm = cpu_m / queries_t * 1000
                    print(f"{test:<18} {ps:<8} {threads:>3} {d:>11.0f} {t:>11.0f} {t / d:>6.2f} "
                          f"{dp:>6.2f}/{tp:<6.2f} {ct:>11.4f} {cm:>12.4f} {ct / cm:>8.2f}", flush=True)
    finally:
        stop(tandem)
        sh(os.path.join(ROOT, "scripts/testbed"), "stop", args.dir)
        os.unlink(cfg.name)


if __name__ == "__main__":
    main()
