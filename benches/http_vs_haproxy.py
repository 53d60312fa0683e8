#!/usr/bin/env python3
"""HTTP load balancing: direct to one nginx vs through tandem vs through HAProxy.

One nginx (1 worker, as a 1-core web server) serves a small static file on
two ports (two "servers"). wrk loads, at --connections keep-alive
connections:
  direct    one of the two nginx ports
  tandem    a release tandem frontend, roundrobin over both, health checks on
            /servercheck.txt (--workers session worker threads; several
            values give several rows)
  haproxy   Debian's HAProxy with its defaults, roundrobin over both,
            option httpchk GET /servercheck.txt, check inter 2000 rise 2 fall 3
in interleaved rounds in one run; prints the median req/s and p99 latency of
each, the ratios to direct and to HAProxy, and tandem's peak memory.
Absolute numbers on a shared 2-core machine are noise; the ratios from the
same run are the result.

    benches/http_vs_haproxy.py [--rounds 3] [--time 10] [--connections 64] [--workers 1,2]
                               [--bin before=/tmp/tandem-before]

Not a pass/fail test: it prints numbers and exits 0 unless something broke.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

from benchlib import ROOT, cpu_seconds, sh, stop, wait_http

NGINX_CONF = """daemon off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/nginx-error.log;
user root;
events {{ worker_connections 4096; }}
http {{
  access_log off; default_type text/plain; sendfile on; keepalive_requests 1000000;
  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
  server {{ listen 127.0.0.1:{p1}; root {d}/www; }}
  server {{ listen 127.0.0.1:{p2}; root {d}/www; }}
}}
"""

HAPROXY_CONF = """global
  maxconn 4096
defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-request 10s
frontend web
  bind 127.0.0.1:{port}
  default_backend servers
backend servers
  balance roundrobin
  option httpchk GET /servercheck.txt
  server w1 127.0.0.1:{p1} check inter 2000 rise 2 fall 3
  server w2 127.0.0.1:{p2} check inter 2000 rise 2 fall 3
"""

TANDEM_CONF = """[log]
level = "warn"
[runtime]
worker_threads = {workers}
[admin]
listen = "127.0.0.1:{admin}"
[[http.frontends]]
name = "web"
listen = "127.0.0.1:{port}"
balance = "roundrobin"
[http.frontends.health_check]
path = "/servercheck.txt"
interval_ms = 2000
rise = 2
fall = 3
[[http.frontends.servers]]
name = "w1"
address = "127.0.0.1:{p1}"
[[http.frontends.servers]]
name = "w2"
address = "127.0.0.1:{p2}"
"""

# A typical small static page (about the size of nginx's welcome page).
PAGE = "<!DOCTYPE html>\n<html><head><title>tandem bench</title></head><body>\n" + "x" * 500 + "\n</body></html>\n"


def to_ms(text):
    """wrk latency text (`850.00us`, `1.20ms`, `2.10s`) -> milliseconds."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(text)
    v = float(m.group(1))
    return {"us": v / 1000, "ms": v, "s": v * 1000}[m.group(2)]


def wrk(url, seconds, connections, threads):
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors or "Socket errors" in out:
        sys.exit(f"errors against {url}:\n{out}")
    return rps, p99


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def stop(proc):
    stop(proc)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--time", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--workers", default="1,2", help="tandem runtime.worker_threads values, comma-separated")
    ap.add_argument("--base-port", type=int, default=25100)
    ap.add_argument("--bin", action="append", default=[], metavar="LABEL=PATH",
                    help="also run another tandem binary (e.g. a build of the previous commit) as "
                         "LABEL-wN rows, for a before/after in the same rounds; repeatable")
    ap.add_argument("--no-build", action="store_true", help="use the existing target/release/tandem")
    args = ap.parse_args()

    for tool in ("wrk", "haproxy", "nginx"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            sys.exit(f"{tool} not found: run scripts/install-deps")
    if not args.no_build:
        sh("cargo", "build", "--release", "--quiet", cwd=ROOT)
    d = tempfile.mkdtemp(prefix="tandem-bench-http-")
    os.makedirs(f"{d}/www")
    os.makedirs(f"{d}/tmp")
    with open(f"{d}/www/index.html", "w") as f:
        f.write(PAGE)
    with open(f"{d}/www/servercheck.txt", "w") as f:
        f.write("OK\n")
    p1, p2, hp = args.base_port, args.base_port + 1, args.base_port + 2
    with open(f"{d}/nginx.conf", "w") as f:
        f.write(NGINX_CONF.format(d=d, p1=p1, p2=p2))
    with open(f"{d}/haproxy.cfg", "w") as f:
        f.write(HAPROXY_CONF.format(port=hp, p1=p1, p2=p2))
    workers = [int(w) for w in args.workers.split(",")]
    procs = []
    try:
        nginx = subprocess.Popen(["nginx", "-p", d, "-c", f"{d}/nginx.conf"])
        procs.append(nginx)
        haproxy = subprocess.Popen(["haproxy", "-db", "-f", f"{d}/haproxy.cfg"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(haproxy)
        targets = {"direct": f"http://127.0.0.1:{p1}/index.html",
                   "haproxy": f"http://127.0.0.1:{hp}/index.html"}
        tandems = {}
        runs = [(f"tandem-w{w}", w, os.path.join(ROOT, "target/release/tandem")) for w in workers]
        for b in args.bin:
            label, path = b.split("=", 1)
            runs += [(f"{label}-w{w}", w, path) for w in workers]
        for i, (name, w, binpath) in enumerate(runs):
            port, admin = args.base_port + 10 + 2 * i, args.base_port + 11 + 2 * i
            with open(f"{d}/{name}.toml", "w") as f:
                f.write(TANDEM_CONF.format(workers=w, admin=admin, port=port, p1=p1, p2=p2))
            t = subprocess.Popen([binpath, "run", "--config", f"{d}/{name}.toml"])
            procs.append(t)
            tandems[name] = t
            targets[name] = f"http://127.0.0.1:{port}/index.html"
            wait_http(f"http://127.0.0.1:{admin}/health")
        for url in targets.values():
            wait_http(url)
        names = ["direct", *tandems, "haproxy"]
        res = {n: [] for n in names}
        # The proxies' own CPU (HAProxy runs as one process with a thread per core).
        pids = {**{n: t.pid for n, t in tandems.items()}, "haproxy": haproxy.pid}
        cpu = {n: 0.0 for n in pids}
        for r in range(args.rounds):
            for n in names:
                c0 = cpu_seconds(pids[n]) if n in pids else 0
                rps, p99 = wrk(targets[n], args.time, args.connections, args.threads)
                if n in pids:
                    cpu[n] += cpu_seconds(pids[n]) - c0
                res[n].append((rps, p99))
                print(f"round {r + 1} {n:<10} {rps:>9.0f} req/s  p99 {p99:7.2f} ms", flush=True)
        med = {n: (statistics.median(x[0] for x in res[n]), statistics.median(x[1] for x in res[n]))
               for n in names}
        print(f"\nwrk -t{args.threads} -c{args.connections} -d{args.time}s, {args.rounds} interleaved rounds, "
              f"{len(PAGE)}-byte static page, nginx 1 worker, 2 servers roundrobin with checks; medians:")
        d_rps, h_rps, h_p99 = med["direct"][0], med["haproxy"][0], med["haproxy"][1]
        for n in names:
            rps, p99 = med[n]
            line = f"  {n:<10} {rps:>9.0f} req/s ({rps / d_rps:.2f} of direct, {rps / h_rps:.2f} of haproxy)" \
                   f"  p99 {p99:.2f} ms ({p99 / h_p99:.2f} of haproxy)"
            if n in pids:
                n_req = sum(x[0] for x in res[n]) * args.time
                line += f"  CPU {cpu[n] / n_req * 1e6:.1f} us/req  peak RSS {peak_rss_mib(pids[n]):.1f} MiB"
            print(line)
    finally:
        for p in reversed(procs):
            stop(p)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
