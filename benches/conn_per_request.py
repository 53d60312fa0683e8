#!/usr/bin/env python3
"""Connection-per-request (what a PHP page does) through tandem vs direct.

Each client is a PHP process that, until its time is up, connects with
mysqli, runs one indexed SELECT, reads the row, and disconnects. --clients
of them run at once, against MariaDB directly and then through a release
tandem with its connection pool, in interleaved rounds. Prints requests per
second for both, the ratio, and the CPU seconds per 1,000 requests of tandem
and mariadbd. Absolute numbers on a shared 2-core machine are noise; the
ratio from the same run is the result.

    benches/conn_per_request.py [--rounds 3] [--time 10] [--clients 8]

Not a pass/fail test: it prints numbers and exits 0 unless something broke.
"""

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile

from benchlib import ROOT, cpu_seconds, sh, stop, wait_http

PHP = r"""<?php
mysqli_report(MYSQLI_REPORT_OFF);
[$_, $port, $seconds] = $argv;
$deadline = microtime(true) + (float)$seconds;
$n = 0;
while (microtime(true) < $deadline) {
    $m = mysqli_connect('127.0.0.1', 'app', 'apppass', 'cpr', (int)$port);
    if (!$m) { fwrite(STDERR, "connect: " . mysqli_connect_error() . "\n"); exit(1); }
    $r = mysqli_query($m, 'SELECT v FROM kv WHERE id = ' . mt_rand(1, 10000));
    if (!$r || !mysqli_fetch_row($r)) { fwrite(STDERR, "query: " . mysqli_error($m) . "\n"); exit(1); }
    mysqli_close($m);
    $n++;
}
echo $n, "\n";
"""




def children_cpu():
    """CPU seconds of the reaped child processes (the PHP clients)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_clients(script, port, clients, seconds):
    procs = [subprocess.Popen(["php", script, str(port), str(seconds)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(clients)]
    total = 0
    for p in procs:
        out, err = p.communicate(timeout=seconds + 60)
        if p.returncode != 0:
            sys.exit(f"php client failed on port {port}: {err}")
        total += int(out.strip())
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--time", type=int, default=10, help="seconds per run")
    ap.add_argument("--clients", type=int, default=8, help="PHP processes at once")
    ap.add_argument("--base-port", type=int, default=24506)
    ap.add_argument("--dir", default="/tmp/tandem-bench-cpr")
    ap.add_argument("--tandem-port", type=int, default=24600)
    ap.add_argument("--pool", type=int, default=32, help="mysql.pool.max_backend_connections")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/tandem"),
                    help="the tandem to measure (default: a fresh release build)")
    ap.add_argument("--perf", default=None, help="record tandem with perf into this file during its runs")
    args = ap.parse_args()

    sh(os.path.join(ROOT, "scripts/testbed"), "install")
    if args.binary == os.path.join(ROOT, "target/release/tandem"):
        sh("cargo", "build", "--release", "--quiet", cwd=ROOT)
    sh(os.path.join(ROOT, "scripts/testbed"), "start", args.dir, str(args.base_port), "0")
    with open(os.path.join(args.dir, "node0", "mysqld.pid")) as f:
        mariadb_pid = int(f.read().strip())
    sh("mariadb", "-h127.0.0.1", f"-P{args.base_port}", "-uapp", "-papppass", "-e",
       "DROP DATABASE IF EXISTS cpr; CREATE DATABASE cpr; "
       "USE cpr; CREATE TABLE kv (id INT PRIMARY KEY, v VARCHAR(64)); "
       "INSERT INTO kv SELECT seq, MD5(seq) FROM seq_1_to_10000")

    cfg = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    cfg.write(f"""
[admin]
listen = "127.0.0.1:{args.tandem_port + 1}"
[mysql]
listen = "127.0.0.1:{args.tandem_port}"
[mysql.pool]
max_backend_connections = {args.pool}
[[mysql.users]]
user = "app"
password = "apppass"
[[mysql.backends]]
name = "db1"
address = "127.0.0.1:{args.base_port}"
role = "primary"
""")
    cfg.close()
    script = tempfile.NamedTemporaryFile("w", suffix=".php", delete=False)
    script.write(PHP)
    script.close()
    tandem = subprocess.Popen([args.binary, "run", "--config", cfg.name],
                              env=dict(os.environ, RUST_LOG="warn"))
    try:
        wait_http(f"http://127.0.0.1:{args.tandem_port + 1}/health")
        targets = {"direct": args.base_port, "tandem": args.tandem_port}
        res = {"direct": [], "tandem": []}
        cpu = {"direct": [0.0, 0.0, 0, 0.0], "tandem": [0.0, 0.0, 0, 0.0]}
        for r in range(args.rounds):
            for name in ("direct", "tandem"):
                rec = None
                if args.perf and name == "tandem":
                    rec = subprocess.Popen(["perf", "record", "-g", "-o", args.perf, "-p", str(tandem.pid)],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                t0, m0, c0 = cpu_seconds(tandem.pid), cpu_seconds(mariadb_pid), children_cpu()
                n = run_clients(script.name, targets[name], args.clients, args.time)
                t1, m1, c1 = cpu_seconds(tandem.pid), cpu_seconds(mariadb_pid), children_cpu()
                if rec:
                    rec.send_signal(signal.SIGINT)
                    rec.wait()
                res[name].append(n / args.time)
                cpu[name][0] += t1 - t0
                cpu[name][1] += m1 - m0
                cpu[name][2] += n
                cpu[name][3] += c1 - c0
                print(f"round {r + 1} {name:<6} {n / args.time:>9.0f} requests/s", flush=True)
        d = statistics.median(res["direct"])
        t = statistics.median(res["tandem"])
        print(f"\nconnect + 1 indexed SELECT + disconnect, {args.clients} PHP clients, "
              f"{args.rounds} x {args.time}s, pool {args.pool}")
        print(f"direct {d:.0f} req/s, tandem {t:.0f} req/s, ratio {t / d:.2f}")
        for name in ("direct", "tandem"):
            ct, cm, n, cc = cpu[name]
            print(f"  {name}: CPU per 1k requests: tandem {ct / n * 1000:.3f} s, "
                  f"mariadbd {cm / n * 1000:.3f} s, PHP clients {cc / n * 1000:.3f} s")
        # The clients share the machine's cores with the servers: the most any
        # proxy could reach here is all CPU spent by the clients alone.
        ct, cm, n, cc = cpu["direct"]
        print(f"  ceiling on this machine if proxy and DB cost nothing: "
              f"{(ct + cm + cc) / cc:.2f} x direct")
    finally:
        stop(tandem)
        sh(os.path.join(ROOT, "scripts/testbed"), "stop", args.dir)
        os.unlink(cfg.name)
        os.unlink(script.name)


if __name__ == "__main__":
    main()
