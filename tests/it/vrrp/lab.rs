//! A LAN in network namespaces: `tv<id>lan` holds the bridge, `tv<id>r1..rN`
//! are the routers (interface `e0`, 10.88.0.N/24), `tv<id>c` is the client
//! (10.88.0.50/24). Everything is created by [`Lab::new`] (after deleting
//! leftovers of a crashed run with the same id) and deleted on drop, with
//! every process it started.
//!
//! Needs root and `ip netns`; a test FAILS (not skips) without them.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const VIP: &str = "10.88.0.100";
/// The TCP port every router serves its own name on.
pub const SERVICE_PORT: u16 = 8080;

pub struct Lab {
    pub id: String,
    routers: usize,
    pub dir: tempfile::TempDir,
    procs: Vec<(String, Child)>,
}

/// A process in a namespace; killed (SIGKILL) when the lab drops.
pub struct Proc(pub String);

// === impl Lab ===

impl Lab {
    pub fn new(id: &str, routers: usize) -> Lab {
        assert!(id.len() <= 4, "ids stay short: interface names are limited");
        let lab = Lab {
            id: id.to_owned(),
            routers,
            dir: tempfile::tempdir().unwrap(),
            procs: Vec::new(),
        };
        lab.cleanup();
        let lan = lab.lan();
        run(&["ip", "netns", "add", &lan]);
        run(&["ip", "-n", &lan, "link", "set", "lo", "up"]);
        run(&["ip", "-n", &lan, "link", "add", "br0", "type", "bridge"]);
        // No STP delay: ports forward at once.
        run(&[
            "ip",
            "-n",
            &lan,
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "forward_delay",
            "0",
        ]);
        run(&["ip", "-n", &lan, "link", "set", "br0", "up"]);
        let mut nodes: Vec<(String, String, String)> = (1..=routers)
            .map(|i| (lab.router(i), format!("p{i}"), format!("10.88.0.{i}/24")))
            .collect();
        nodes.push((lab.client(), "pc".into(), "10.88.0.50/24".into()));
        for (ns, port, addr) in nodes {
            run(&["ip", "netns", "add", &ns]);
            run(&[
                "ip", "link", "add", "e0", "netns", &ns, "type", "veth", "peer", "name", &port,
                "netns", &lan,
            ]);
            run(&["ip", "-n", &lan, "link", "set", &port, "master", "br0"]);
            run(&["ip", "-n", &lan, "link", "set", &port, "up"]);
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
            run(&["ip", "-n", &ns, "addr", "add", &addr, "dev", "e0"]);
            run(&["ip", "-n", &ns, "link", "set", "e0", "up"]);
        }
        lab
    }

    pub fn lan(&self) -> String {
        format!("tv{}lan", self.id)
    }

    pub fn router(&self, i: usize) -> String {
        format!("tv{}r{i}", self.id)
    }

    pub fn client(&self) -> String {
        format!("tv{}c", self.id)
    }

    pub fn router_ip(i: usize) -> String {
        format!("10.88.0.{i}")
    }

    /// Deletes every namespace of this id (a crashed earlier run's too).
    fn cleanup(&self) {
        let prefix = format!("tv{}", self.id);
        let out = Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("`ip netns list` runs: the VRRP system tests need iproute2 and root");
        assert!(
            out.status.success(),
            "`ip netns list` failed: the VRRP system tests need root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            let ours = name == format!("{prefix}lan")
                || name == format!("{prefix}c")
                || name
                    .strip_prefix(&format!("{prefix}r"))
                    .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()));
            if ours {
                // Processes left in it would keep it alive; kill them first.
                let pids = Command::new("ip").args(["netns", "pids", name]).output();
                if let Ok(p) = pids {
                    for pid in String::from_utf8_lossy(&p.stdout).split_whitespace() {
                        let _ = Command::new("kill").args(["-9", pid]).status();
                    }
                }
                let _ = Command::new("ip").args(["netns", "del", name]).status();
            }
        }
    }

    /// Spawns `args` inside namespace `ns`, output to `<dir>/<log>.log`.
    pub fn spawn(&mut self, ns: &str, log: &str, args: &[&str]) -> Proc {
        let file = std::fs::File::create(self.dir.path().join(format!("{log}.log"))).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        self.procs.push((log.to_owned(), child));
        Proc(log.to_owned())
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Runs tandem with `toml` in router `i`; the log is `<name>.log`.
    pub fn tandem(&mut self, i: usize, name: &str, toml: &str) -> Proc {
        let path = self.write(&format!("{name}.toml"), toml);
        let ns = self.router(i);
        let bin = env!("CARGO_BIN_EXE_tandem");
        self.spawn(&ns, name, &[bin, "run", "--config", path.to_str().unwrap()])
    }

    /// Runs Debian's keepalived (VRRP only, foreground) in router `i`.
    pub fn keepalived(&mut self, i: usize, name: &str, conf: &str) -> Proc {
        let path = self.write(&format!("{name}.conf"), conf);
        let dir = self.dir.path().to_owned();
        let pid = dir.join(format!("{name}.pid"));
        let vpid = dir.join(format!("{name}.vrrp.pid"));
        let ns = self.router(i);
        self.spawn(
            &ns,
            name,
            &[
                "keepalived",
                "-n",
                "-l",
                "-D",
                "--vrrp",
                "-f",
                path.to_str().unwrap(),
                "-p",
                pid.to_str().unwrap(),
                "-r",
                vpid.to_str().unwrap(),
            ],
        )
    }

    /// A TCP server in router `i` that answers every connection with `r<i>`.
    pub fn service(&mut self, i: usize) -> Proc {
        let ns = self.router(i);
        let listen = format!("TCP-LISTEN:{SERVICE_PORT},fork,reuseaddr");
        let reply = format!("SYSTEM:echo r{i}");
        self.spawn(&ns, &format!("service{i}"), &["socat", &listen, &reply])
    }

    /// Sends `sig` (one that ends a process) to a process started by this
    /// lab and waits for its exit; `None` if it had not exited 15 s later
    /// (it is then killed).
    pub fn signal(&mut self, p: &Proc, sig: &str) -> Option<std::process::ExitStatus> {
        let (_, child) = self.procs.iter_mut().find(|(n, _)| *n == p.0).unwrap();
        // `ip netns exec` execs the program, so the child's pid is the program's.
        let pid = child.id().to_string();
        run(&["kill", sig, &pid]);
        // std's only wait for a child blocks: it runs on a scoped thread
        // while this one bounds it.
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::channel();
            scope.spawn(move || {
                let _ = tx.send(child.wait());
            });
            match rx.recv_timeout(Duration::from_secs(15)) {
                Ok(status) => status.ok(),
                Err(_) => {
                    run(&["kill", "-KILL", &pid]);
                    None
                }
            }
        })
    }

    pub fn has_vip(&self, i: usize) -> bool {
        self.has_addr(i, VIP)
    }

    /// Whether router `i`'s e0 has `addr`/24.
    pub fn has_addr(&self, i: usize, addr: &str) -> bool {
        let out = ns_output(
            &self.router(i),
            &["ip", "-4", "-o", "addr", "show", "dev", "e0"],
        );
        out.split_whitespace().any(|w| w == format!("{addr}/24"))
    }

    /// Routers holding the VIP now.
    pub fn holders(&self) -> Vec<usize> {
        (1..=self.routers).filter(|&i| self.has_vip(i)).collect()
    }

    /// What the client gets from the service on the VIP ("r1", "r2"...), if anything.
    pub fn client_reaches(&self) -> Option<String> {
        let script = format!("exec 3<>/dev/tcp/{VIP}/{SERVICE_PORT} && head -n1 <&3");
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.client(),
                "timeout",
                "1",
                "bash",
                "-c",
                &script,
            ])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (!text.is_empty()).then_some(text)
    }

    /// The MAC of router `i`'s e0.
    pub fn mac(&self, i: usize) -> String {
        let out = ns_output(&self.router(i), &["cat", "/sys/class/net/e0/address"]);
        out.trim().to_owned()
    }

    /// The client's neighbour entry for the VIP (the MAC), if any.
    pub fn client_neighbour(&self) -> Option<String> {
        let out = ns_output(&self.client(), &["ip", "neigh", "show", VIP, "dev", "e0"]);
        let mut words = out.split_whitespace();
        words.find(|w| *w == "lladdr")?;
        words.next().map(str::to_owned)
    }

    /// `GET /status` of the tandem in router `i` (admin on 127.0.0.1:9090),
    /// the first VRRP instance's object.
    pub fn status(&self, i: usize) -> Option<serde_json::Value> {
        self.instance_status(i, 0)
    }

    /// The `n`th VRRP instance's `/status` object in router `i`.
    pub fn instance_status(&self, i: usize, n: usize) -> Option<serde_json::Value> {
        let body = self.admin_get(i, "/status")?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        Some(v["vrrp"]["instances"][n].clone())
    }

    /// The body of `GET path` on router `i`'s admin listener (127.0.0.1:9090).
    pub fn admin_get(&self, i: usize, path: &str) -> Option<String> {
        let script = format!(
            "exec 3<>/dev/tcp/127.0.0.1/9090 && printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3"
        );
        let ns = self.router(i);
        let out = Command::new("ip")
            .args(["netns", "exec", &ns, "timeout", "2", "bash", "-c", &script])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
    }

    pub fn state(&self, i: usize) -> Option<String> {
        self.status(i)?["state"].as_str().map(str::to_owned)
    }

    /// Sets router `i`'s port on the bridge down or up (its e0 loses carrier).
    pub fn link(&self, i: usize, up: bool) {
        let port = format!("p{i}");
        run(&[
            "ip",
            "-n",
            &self.lan(),
            "link",
            "set",
            &port,
            if up { "up" } else { "down" },
        ]);
    }

    /// Takes router `i` off the bridge (its carrier stays up) or puts it back.
    pub fn partition(&self, i: usize, cut: bool) {
        let (lan, port) = (self.lan(), format!("p{i}"));
        if cut {
            run(&["ip", "-n", &lan, "link", "set", &port, "nomaster"]);
        } else {
            run(&["ip", "-n", &lan, "link", "set", &port, "master", "br0"]);
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, c) in &mut self.procs {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.cleanup();
        if std::thread::panicking() {
            // Keep what a failing test needs to be understood.
            for (name, _) in &self.procs {
                eprintln!("---- {name}.log ----\n{}", self.log(name));
            }
        }
    }
}

/// Polls `f` every 20 ms until it is true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a command that must succeed.
pub fn run(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ns_output(ns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
