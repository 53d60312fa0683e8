//! Real backends for the HTTP load balancer tests, started in a temp dir
//! and killed on drop: nginx (static files, WebDAV PUT for uploads) and
//! `php -S` (scripts that echo headers, count requests, sleep).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tandem::app::App;
use tandem::config::Config;

/// A free loopback port (bound then released; the backend binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (at most 10 s) until something accepts on `port`.
pub fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One nginx serving `n` servers, each on its own port with its own root
/// `dir/wK` holding `whoami.txt` ("wK") and `servercheck.txt`.
pub struct Nginx {
    pub dir: tempfile::TempDir,
    pub ports: Vec<u16>,
    _proc: Proc,
}

impl Nginx {
    pub fn start(n: usize) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut servers = String::new();
        let mut ports = Vec::new();
        for k in 1..=n {
            let root = d.join(format!("w{k}"));
            std::fs::create_dir_all(&root).unwrap();
            std::fs::write(root.join("whoami.txt"), format!("w{k}")).unwrap();
            std::fs::write(root.join("servercheck.txt"), "OK\n").unwrap();
            let port = free_port();
            ports.push(port);
            servers.push_str(&format!(
                "server {{ listen 127.0.0.1:{port}; root {root}; dav_methods PUT; \
                 create_full_put_path on; client_max_body_size 0; keepalive_requests 100000; }}\n",
                root = root.display()
            ));
        }
        let tmp = d.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let conf = format!(
            // master_process off: one process, so killing it leaves no
            // orphaned worker holding the ports.
            "daemon off; master_process off; user root; pid {d}/nginx.pid; error_log {d}/error.log;\n\
             events {{ worker_connections 4096; }}\n\
             http {{ access_log off; default_type text/plain; sendfile on;\n\
             client_body_temp_path {t}; proxy_temp_path {t}; fastcgi_temp_path {t};\n\
             uwsgi_temp_path {t}; scgi_temp_path {t};\n{servers}}}\n",
            d = d.display(),
            t = tmp.display()
        );
        let conf_path = d.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        // Debian puts it in /usr/sbin, which a non-root PATH lacks.
        let bin = ["/usr/sbin/nginx", "nginx"]
            .into_iter()
            .find(|b| Path::new(b).exists())
            .unwrap_or("nginx");
        let child = Command::new(bin)
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx is installed (scripts/install-deps)");
        let proc = Proc(child);
        for &p in &ports {
            wait_listening(p);
        }
        Nginx {
            dir,
            ports,
            _proc: proc,
        }
    }

    pub fn root(&self, k: usize) -> PathBuf {
        self.dir.path().join(format!("w{k}"))
    }

    pub fn addr(&self, k: usize) -> String {
        format!("127.0.0.1:{}", self.ports[k - 1])
    }
}

/// `php -S` with the test scripts, named `name` (it answers with it).
pub struct Php {
    pub dir: tempfile::TempDir,
    pub port: u16,
    _proc: Proc,
}

const HEADERS_PHP: &str = r#"<?php
header('Content-Type: application/json');
echo json_encode(['server' => getenv('TANDEM_TEST_NAME'), 'method' => $_SERVER['REQUEST_METHOD'],
    'headers' => array_change_key_case(getallheaders(), CASE_LOWER)]);
"#;
const COUNT_PHP: &str = r#"<?php
file_put_contents(__DIR__ . '/hits.log', $_SERVER['REQUEST_METHOD'] . "\n", FILE_APPEND | LOCK_EX);
echo getenv('TANDEM_TEST_NAME'), ' ', strlen(file_get_contents('php://input'));
"#;
const SLOW_PHP: &str = r#"<?php
usleep(intval($_GET['ms'] ?? 1000) * 1000);
echo getenv('TANDEM_TEST_NAME');
"#;
const ERROR_PHP: &str = r#"<?php
http_response_code(500);
echo 'boom';
"#;

impl Php {
    pub fn start(name: &str) -> Php {
        let dir = tempfile::tempdir().unwrap();
        for (file, text) in [
            ("headers.php", HEADERS_PHP),
            ("count.php", COUNT_PHP),
            ("slow.php", SLOW_PHP),
            ("error.php", ERROR_PHP),
            ("servercheck.txt", "OK\n"),
        ] {
            std::fs::write(dir.path().join(file), text).unwrap();
        }
        let port = free_port();
        let child = Command::new("php")
            .args(["-S", &format!("127.0.0.1:{port}"), "-t"])
            .arg(dir.path())
            .env("TANDEM_TEST_NAME", name)
            // One process (no PHP_CLI_SERVER_WORKERS): killing it leaves no orphan.
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("php-cli is installed (scripts/install-deps)");
        let proc = Proc(child);
        wait_listening(port);
        Php {
            dir,
            port,
            _proc: proc,
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Requests `count.php` received, by method.
    pub fn hits(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("hits.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// An in-process tandem with an admin listener and the given `[http]` text.
pub struct Lb {
    pub app: App,
}

impl Lb {
    pub async fn start(http: &str) -> Lb {
        let text = format!(
            "[admin]\nlisten = \"127.0.0.1:0\"\n[runtime]\nshutdown_grace_ms = 2000\n{http}"
        );
        let cfg = Config::from_toml_str(&text, "<test>").expect("valid test config");
        Lb {
            app: App::start(cfg).await.expect("tandem starts"),
        }
    }

    pub fn addr(&self, frontend: usize) -> SocketAddr {
        self.app.http.as_ref().expect("http").addrs[frontend]
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr(0))
    }

    pub fn admin(&self) -> SocketAddr {
        self.app.admin_addr.unwrap()
    }

    /// The `"http"` part of `/status`, read in-process.
    pub fn status(&self) -> serde_json::Value {
        self.app.http.as_ref().unwrap().status_json()
    }

    /// The state word of `server` in frontend 0.
    pub fn state(&self, server: &str) -> String {
        let s = self.status();
        s["frontends"][0]["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == server)
            .map(|x| x["state"].as_str().unwrap().to_owned())
            .unwrap()
    }

    /// Waits (bounded) until `server` in frontend 0 is in `state`: awaits
    /// the server's state changes.
    pub async fn wait_state(&self, server: &str, state: &str, within: Duration) {
        let http = self.app.http.as_ref().expect("http");
        let fe = self.status()["frontends"][0]["name"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut rx = http
            .server(&fe, server)
            .expect("known server")
            .watch_state();
        let reached = tokio::time::timeout(within, rx.wait_for(|s| *s == state)).await;
        assert!(
            matches!(reached, Ok(Ok(_))),
            "{server} never became {state}: {}",
            self.status()
        );
    }
}

/// Runs curl with `args`; returns (exit code, stdout).
pub async fn curl(args: &[&str]) -> (i32, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "60"])
            .args(&args)
            .output()
            .expect("curl is installed");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// A `[[http.frontends]]` block on 127.0.0.1:0 with `extra` keys and the
/// given `(name, address, weight)` servers.
pub fn frontend(name: &str, extra: &str, servers: &[(&str, &str, u32)]) -> String {
    let mut t =
        format!("[[http.frontends]]\nname = \"{name}\"\nlisten = \"127.0.0.1:0\"\n{extra}\n");
    for (n, a, w) in servers {
        t.push_str(&format!(
            "[[http.frontends.servers]]\nname = \"{n}\"\naddress = \"{a}\"\nweight = {w}\n"
        ));
    }
    t
}

/// The minimal keep-alive client used by the tests (hyper's, HTTP/1.1).
pub mod reqwest_like {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;

    pub struct Client(hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>);

    impl Client {
        pub fn new() -> Client {
            Client(hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http())
        }

        pub async fn request(
            &self,
            method: &str,
            url: &str,
            headers: &[(&str, &str)],
            body: &'static [u8],
        ) -> (u16, hyper::HeaderMap, String) {
            let mut req = hyper::Request::builder().method(method).uri(url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let req = req.body(Full::new(Bytes::from_static(body))).unwrap();
            let resp =
                tokio::time::timeout(std::time::Duration::from_secs(20), self.0.request(req))
                    .await
                    .expect("answer within 20 s")
                    .expect("an HTTP answer");
            let status = resp.status().as_u16();
            let (parts, body) = resp.into_parts();
            let bytes = body.collect().await.unwrap().to_bytes();
            (
                status,
                parts.headers,
                String::from_utf8_lossy(&bytes).into_owned(),
            )
        }

        pub async fn get(&self, url: &str) -> (u16, String) {
            let (s, _, b) = self.request("GET", url, &[], b"").await;
            (s, b)
        }
    }
}

/// `dir/name` as a string.
pub fn path_str(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}
