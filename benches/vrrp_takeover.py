#!/usr/bin/env python3
"""VRRP takeover time: tandem vs keepalived, identical settings, same run.

    python3 benches/vrrp_takeover.py [--rounds N] [--out FILE]

Needs root (network namespaces), target/debug/tandem (or TANDEM_BIN), keepalived and socat.

Builds a LAN in namespaces (bridge in `tvbnlan`, routers `tvbnr1`/`tvbnr2`, client `tvbnc`).
Each router runs a TCP service on port 8080 that answers with its name. Per round: r1
(priority 100) and r2 (priority 200) start, r2 becomes master and the client talks to it; then
r2's VRRP process is stopped, either with SIGKILL (no goodbye: the backup waits for
Master_Down_Interval) or gracefully (SIGTERM: a priority-0 advert, the backup takes over after
Skew_Time). A probe in the client namespace connects to the VIP every 5 ms (20 ms connect
timeout; the LAN's round trip is well under 1 ms) and notes when it is first answered by r1. The takeover time is that moment minus the
moment of the signal: it includes the backup's timer, its VIP and its gratuitous ARP reaching
the client. After a SIGKILL r2 keeps its VIP and its service, as a crashed keepalived does, so
the client moves only when r1's gratuitous ARP arrives.

Both implementations get the same VRRP settings (version 3, priorities, advert interval) and
their own gratuitous-ARP defaults. keepalived runs with --dont-respawn, and its VRRP child is
the process that is killed.
"""

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TANDEM = os.environ.get("TANDEM_BIN", os.path.join(ROOT, "target/debug/tandem"))
P = "tvbn"
LAN, R1, R2, CLIENT = P + "lan", P + "r1", P + "r2", P + "c"
VIP = "10.88.0.100"
PORT = 8080

PROBE = r"""
import socket, sys, time
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    try:
        with socket.create_connection((sys.argv[1], %d), timeout=0.02) as s:
            s.settimeout(0.2)
            if s.recv(16).strip() == b"r1":
                print(time.monotonic(), flush=True)
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.005)
print("timeout", flush=True)
""" % PORT


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def ns(name, *args, check=True):
    return sh("ip", "netns", "exec", name, *args, check=check)


def cleanup():
    for name in sh("ip", "netns", "list").stdout.split("\n"):
        name = name.split(" ")[0]
        if name in (LAN, R1, R2, CLIENT):
            for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
                sh("kill", "-9", pid, check=False)
            sh("ip", "netns", "del", name, check=False)


def build():
    cleanup()
    sh("ip", "netns", "add", LAN)
    sh("ip", "-n", LAN, "link", "add", "br0", "type", "bridge", "forward_delay", "0")
    sh("ip", "-n", LAN, "link", "set", "br0", "up")
    for i, (name, addr) in enumerate([(R1, "10.88.0.1"), (R2, "10.88.0.2"), (CLIENT, "10.88.0.50")]):
        port = f"p{i}"
        sh("ip", "netns", "add", name)
        sh("ip", "link", "add", "e0", "netns", name, "type", "veth", "peer", "name", port, "netns", LAN)
        sh("ip", "-n", LAN, "link", "set", port, "master", "br0")
        sh("ip", "-n", LAN, "link", "set", port, "up")
        sh("ip", "-n", name, "link", "set", "lo", "up")
        sh("ip", "-n", name, "addr", "add", addr + "/24", "dev", "e0")
        sh("ip", "-n", name, "link", "set", "e0", "up")
    services = []
    for i, name in ((1, R1), (2, R2)):
        services.append(subprocess.Popen(["ip", "netns", "exec", name, "socat",
                                          f"TCP-LISTEN:{PORT},fork,reuseaddr", f"SYSTEM:echo r{i}"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return services


def tandem_conf(prio, interval_ms):
    return f"""
[runtime]
shutdown_grace_ms = 2000
[[vrrp.instances]]
name = "public"
interface = "e0"
vrid = 51
priority = {prio}
advert_interval_ms = {interval_ms}
virtual_ips = ["{VIP}/24"]
version = 3
"""


def keepalived_conf(prio, interval_ms):
    return f"""
global_defs {{
  router_id bench
}}
vrrp_instance VI_1 {{
  state BACKUP
  interface e0
  virtual_router_id 51
  priority {prio}
  advert_int {interval_ms / 1000}
  version 3
  virtual_ipaddress {{
    {VIP}/24
  }}
}}
"""


class Router:
    """One VRRP daemon in a router namespace."""

    def __init__(self, kind, nsname, prio, interval_ms, tmp):
        self.kind, self.ns, self.tmp = kind, nsname, tmp
        log = open(os.path.join(tmp, f"{kind}-{nsname}.log"), "a")
        if kind == "tandem":
            path = os.path.join(tmp, f"{nsname}.toml")
            with open(path, "w") as f:
                f.write(tandem_conf(prio, interval_ms))
            cmd = [TANDEM, "run", "--config", path]
        else:
            path = os.path.join(tmp, f"{nsname}.conf")
            with open(path, "w") as f:
                f.write(keepalived_conf(prio, interval_ms))
            self.vpid = os.path.join(tmp, f"{nsname}.vrrp.pid")
            cmd = ["keepalived", "-n", "-l", "-D", "--vrrp", "--dont-respawn", "-f", path,
                   "-p", os.path.join(tmp, f"{nsname}.pid"), "-r", self.vpid]
        self.proc = subprocess.Popen(["ip", "netns", "exec", nsname] + cmd, stdout=log, stderr=log)

    def vrrp_pid(self):
        if self.kind == "tandem":
            return self.proc.pid
        for _ in range(100):
            try:
                with open(self.vpid) as f:
                    return int(f.read().strip())
            except (OSError, ValueError):
                time.sleep(0.05)
        raise SystemExit("keepalived wrote no VRRP pid file")

    def stop(self, sig):
        """Signals the VRRP process; returns the time of the signal."""
        pid = self.vrrp_pid()
        t = time.monotonic()
        os.kill(pid, sig)
        if sig == signal.SIGKILL and self.kind == "keepalived":
            os.kill(self.proc.pid, signal.SIGKILL)
        return t

    def end(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.kind == "keepalived":
            try:
                os.kill(self.vrrp_pid(), signal.SIGKILL)
            except (OSError, SystemExit):
                pass


def has_vip(nsname):
    out = ns(nsname, "ip", "-4", "-o", "addr", "show", "dev", "e0").stdout
    return f"{VIP}/24" in out


def client_gets():
    r = ns(CLIENT, "timeout", "1", "bash", "-c", f"exec 3<>/dev/tcp/{VIP}/{PORT} && head -n1 <&3",
           check=False)
    return r.stdout.strip()


def wait(cond, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise SystemExit(f"timeout waiting for {what}")


def one_round(kind, interval_ms, mode, tmp):
    for n in (R1, R2):
        ns(n, "ip", "addr", "del", f"{VIP}/24", "dev", "e0", check=False)
    r1 = Router(kind, R1, 100, interval_ms, tmp)
    r2 = Router(kind, R2, 200, interval_ms, tmp)
    try:
        wait(lambda: has_vip(R2) and not has_vip(R1), 20, f"{kind}: r2 master")
        wait(lambda: client_gets() == "r2", 10, "client reaching r2")
        # Steady state: r1 has been backup for a while.
        time.sleep(3 * interval_ms / 1000 + 1.0)
        budget = 3 * interval_ms / 1000 + 10
        probe = subprocess.Popen(["ip", "netns", "exec", CLIENT, sys.executable, "-c", PROBE, VIP,
                                  str(budget)], stdout=subprocess.PIPE, text=True)
        # The probe is connecting to r2; a random phase against the master's
        # advert timer, so every implementation is stopped at a uniformly random
        # moment between two of its adverts.
        time.sleep(0.2 + random.uniform(0, interval_ms / 1000))
        t0 = r2.stop(signal.SIGKILL if mode == "sigkill" else signal.SIGTERM)
        out, _ = probe.communicate(timeout=budget + 5)
        if out.strip() == "timeout":
            return None
        return (float(out.strip()) - t0) * 1000
    finally:
        r2.end()
        r1.end()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--intervals", default="1000,100")
    ap.add_argument("--out", default=os.path.join(ROOT, "benches/results/2026-12-05-vrrp-takeover.txt"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    services = build()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for interval_ms in [int(x) for x in args.intervals.split(",")]:
                for mode in ("sigkill", "graceful"):
                    for kind in ("keepalived", "tandem"):
                        samples = []
                        for _ in range(args.rounds):
                            ms = one_round(kind, interval_ms, mode, tmp)
                            if ms is not None:
                                samples.append(ms)
                            print(f"{kind:10} {interval_ms:5} ms {mode:8} -> {ms}", file=sys.stderr)
                        rows.append((interval_ms, mode, kind, samples))
        finally:
            for p in services:
                p.kill()
            cleanup()
    lines = [
        "VRRP takeover: signal to the master's VRRP process -> client first answered by the backup",
        f"command: python3 benches/vrrp_takeover.py --rounds {args.rounds} --intervals {args.intervals}",
        f"tandem: {TANDEM}; keepalived: {sh('keepalived', '--version', check=False).stderr.splitlines()[0]}",
        "",
        f"{'advert':>7} {'stop':9} {'impl':11} {'n':>2} {'median ms':>10} {'min':>7} {'max':>7}",
    ]
    for interval_ms, mode, kind, s in rows:
        if s:
            lines.append(f"{interval_ms:>5}ms {mode:9} {kind:11} {len(s):>2} {statistics.median(s):>10.0f} "
                         f"{min(s):>7.0f} {max(s):>7.0f}")
        else:
            lines.append(f"{interval_ms:>5}ms {mode:9} {kind:11}  0  (no takeover seen)")
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
