//! Shared fixtures: the testbed's addresses and an in-process tandem.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use tandem::app::App;
use tandem::config::Config;
use tandem::mysql::protocol::auth;
use tandem::mysql::protocol::err::ServerError;
use tandem::mysql::protocol::handshake::{BackendGreeting, ClientHello};
use tandem::mysql::protocol::CapabilityFlags as Cap;

/// The running testbed (started by `scripts/test`, or here on first use).
pub struct Testbed {
    /// The testbed's directory (certificates in `tls/`, sockets in `nodeK/`).
    pub dir: PathBuf,
    pub primary: String,
    /// Used by the read/write split tests.
    #[allow(dead_code)]
    pub replicas: Vec<String>,
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The testbed: `TANDEM_TEST_PRIMARY` / `TANDEM_TEST_REPLICAS` when set
/// (scripts/test sets them); otherwise `scripts/testbed start` is run once
/// (idempotent) and left running for later test runs.
pub fn testbed() -> &'static Testbed {
    static TB: OnceLock<Testbed> = OnceLock::new();
    TB.get_or_init(|| {
        let dir =
            std::env::var("TANDEM_TESTBED_DIR").unwrap_or_else(|_| "/tmp/tandem-testbed".into());
        if let Ok(primary) = std::env::var("TANDEM_TEST_PRIMARY") {
            let replicas = std::env::var("TANDEM_TEST_REPLICAS")
                .unwrap_or_default()
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            return Testbed {
                dir: dir.into(),
                primary,
                replicas,
            };
        }
        let status = Command::new(repo_root().join("scripts/testbed"))
            .args(["start", &dir, "23306", "2"])
            .status()
            .expect("run scripts/testbed");
        assert!(status.success(), "scripts/testbed start failed");
        Testbed {
            dir: dir.into(),
            primary: "127.0.0.1:23306".into(),
            replicas: vec!["127.0.0.1:23307".into(), "127.0.0.1:23308".into()],
        }
    })
}

/// `[mysql]` config text for a tandem in front of the testbed primary, with
/// `extra` appended inside the `[mysql]` table.
pub fn config_text(extra_mysql: &str) -> String {
    let tb = testbed();
    format!(
        r#"
[admin]
listen = "127.0.0.1:0"

[runtime]
shutdown_grace_ms = 2000

[mysql]
listen = "127.0.0.1:0"
{extra_mysql}

[[mysql.users]]
user = "app"
password = "apppass"

[[mysql.users]]
user = "app2"
password_hash = "{app2_hash}"

[mysql.monitor]
user = "monitor"
password = "monitorpass"

[[mysql.backends]]
name = "db1"
address = "{primary}"
role = "primary"
"#,
        primary = tb.primary,
        app2_hash = native_hash_hex("app2pass"),
    )
}

pub fn native_hash_hex(pw: &str) -> String {
    let h = tandem::mysql::protocol::auth::native_hash(pw);
    let hex: String = h.iter().map(|b| format!("{b:02X}")).collect();
    format!("*{hex}")
}

/// A running in-process tandem.
pub struct Proxy {
    pub app: App,
}

impl Proxy {
    pub async fn start() -> Proxy {
        Self::start_with(&config_text("")).await
    }

    pub async fn start_with(text: &str) -> Proxy {
        let cfg = Config::from_toml_str(text, "<test>").expect("valid test config");
        let app = App::start(cfg).await.expect("tandem starts");
        Proxy { app }
    }

    pub fn addr(&self) -> SocketAddr {
        self.app.mysql_addr.expect("mysql listener")
    }

    pub fn admin(&self) -> SocketAddr {
        self.app.admin_addr.expect("admin listener")
    }

    pub fn url(&self, user: &str, pass: &str, db: &str) -> String {
        // prefer_socket=false: otherwise mysql_async asks the server for its
        // unix socket and bypasses tandem.
        format!(
            "mysql://{user}:{pass}@{}/{db}?prefer_socket=false",
            self.addr()
        )
    }
}

pub fn direct_url(user: &str, pass: &str, db: &str) -> String {
    format!(
        "mysql://{user}:{pass}@{}/{db}?prefer_socket=false",
        testbed().primary
    )
}

/// Both targets a client assertion runs against: ("direct", url), ("tandem", url).
pub fn targets(proxy: &Proxy, user: &str, pass: &str, db: &str) -> Vec<(&'static str, String)> {
    vec![
        ("direct", direct_url(user, pass, db)),
        ("tandem", proxy.url(user, pass, db)),
    ]
}

/// A unique name for per-test tables, so tests can run in parallel.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A deliberately primitive client for sending malformed bytes.
pub struct Raw {
    pub s: TcpStream,
}

impl Raw {
    /// PROTOCOL_41 with classic EOF packets.
    pub const BASIC_CAPS: u32 = Cap::CLIENT_PROTOCOL_41.bits()
        | Cap::CLIENT_SECURE_CONNECTION.bits()
        | Cap::CLIENT_PLUGIN_AUTH.bits()
        | Cap::CLIENT_LONG_PASSWORD.bits()
        | Cap::CLIENT_TRANSACTIONS.bits();

    pub async fn connect(addr: impl tokio::net::ToSocketAddrs) -> Raw {
        Raw {
            s: TcpStream::connect(addr).await.unwrap(),
        }
    }

    pub async fn read_packet(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut h = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(10), self.s.read_exact(&mut h))
            .await
            .expect("no answer within 10 s")
            .ok()?;
        let len = h[0] as usize | (h[1] as usize) << 8 | (h[2] as usize) << 16;
        let mut p = vec![0u8; len];
        self.s.read_exact(&mut p).await.ok()?;
        Some((h[3], p))
    }

    pub async fn send(&mut self, seq: u8, payload: &[u8]) {
        let n = payload.len();
        let mut b = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
        b.extend_from_slice(payload);
        self.s.write_all(&b).await.unwrap();
    }

    /// Logs in as app/apppass with mysql_native_password.
    pub async fn login(addr: impl tokio::net::ToSocketAddrs, capabilities: u32) -> Raw {
        let mut r = Raw::connect(addr).await;
        let (_, g) = r.read_packet().await.unwrap();
        let g = BackendGreeting::parse(&g).unwrap();
        let hello = ClientHello {
            capabilities,
            max_packet: 1 << 24,
            collation: 45,
            user: "app".into(),
            auth_response: auth::native_token("apppass", &g.scramble[..20]),
            auth_plugin: Some("mysql_native_password".into()),
            ..Default::default()
        };
        r.send(1, &hello.encode()).await;
        let (_, ok) = r.read_packet().await.unwrap();
        assert_eq!(ok[0], 0x00, "login OK");
        r
    }

    /// Expects an ERR packet and returns it.
    pub async fn expect_err(&mut self) -> ServerError {
        let (_, p) = self
            .read_packet()
            .await
            .expect("an ERR packet, not a closed socket");
        ServerError::parse(&p).unwrap_or_else(|| panic!("expected ERR, got {p:?}"))
    }

    /// Reads packets up to a classic EOF (0xFE, < 9 bytes) or an ERR.
    pub async fn until_eof(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let (_, p) = self.read_packet().await.expect("packet");
            let end = matches!(p.as_slice(), [0xFF, ..])
                || (matches!(p.as_slice(), [0xFE, ..]) && p.len() < 9);
            out.push(p);
            if end {
                return out;
            }
        }
    }

    /// COM_STMT_PREPARE with classic EOFs; returns the statement id after
    /// reading the parameter and column definitions.
    pub async fn prepare(&mut self, sql: &str) -> [u8; 4] {
        let mut p = vec![0x16];
        p.extend_from_slice(sql.as_bytes());
        self.send(0, &p).await;
        let (_, ok) = self.read_packet().await.unwrap();
        assert_eq!(ok[0], 0x00, "PREPARE_OK for {sql}: {ok:?}");
        let params = u16::from_le_bytes([ok[7], ok[8]]);
        let cols = u16::from_le_bytes([ok[5], ok[6]]);
        if params > 0 {
            self.until_eof().await;
        }
        if cols > 0 {
            self.until_eof().await;
        }
        [ok[1], ok[2], ok[3], ok[4]]
    }

    /// COM_STMT_EXECUTE with no parameter, or one BIGINT parameter whose type
    /// is sent only when `send_types`; returns the single BIGINT of the
    /// single row.
    pub async fn execute_u64(&mut self, id: [u8; 4], param: Option<(u64, bool)>) -> u64 {
        let mut exec = vec![0x17];
        exec.extend_from_slice(&id);
        exec.extend_from_slice(&[0, 1, 0, 0, 0]);
        if let Some((value, send_types)) = param {
            exec.push(0); // null bitmap
            if send_types {
                exec.extend_from_slice(&[1, 0x08, 0x00]);
            } else {
                exec.push(0);
            }
            exec.extend_from_slice(&value.to_le_bytes());
        }
        self.send(0, &exec).await;
        let (_, count) = self.read_packet().await.unwrap();
        assert_eq!(count, vec![1], "one column: {count:?}");
        self.until_eof().await;
        let rows = self.until_eof().await;
        assert_eq!(rows.len(), 2, "one row and an EOF: {rows:?}");
        u64::from_le_bytes(rows[0][2..10].try_into().unwrap())
    }

    /// True when the server closed the connection.
    pub async fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(10), self.s.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// Waits (bounded) until `sql` is running on the testbed primary, watching
/// the process list through a direct connection.
pub async fn wait_until_running(sql: &str) {
    use mysql_async::prelude::*;
    let mut watcher = mysql_async::Conn::from_url(direct_url("app", "apppass", "appdb"))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n: Option<i64> = watcher
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO = ?",
                (sql,),
            )
            .await
            .unwrap();
        if n == Some(1) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{sql} never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A self-signed certificate and key for localhost, written as PEM files in
/// `dir`; returns their paths.
pub fn write_cert(dir: &std::path::Path) -> (String, String) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    (cert.display().to_string(), key.display().to_string())
}

/// Runs SQL as root on node `node` (0 = primary) over its unix socket.
pub fn root_sql(node: usize, sql: &str) -> String {
    let tb = testbed();
    let sock = tb.dir.join(format!("node{node}/mysqld.sock"));
    let out = Command::new("mariadb")
        .arg(format!("--socket={}", sock.display()))
        .args(["-uroot", "-N", "-B", "-e", sql])
        .output()
        .expect("run the mariadb client");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Waits (at most 10 s) until every testbed replica has applied what the
/// primary has written so far, e.g. a CREATE USER a test reads with next.
pub async fn wait_replicas_caught_up() {
    let pos = root_sql(0, "SELECT @@gtid_binlog_pos");
    let n = testbed().replicas.len();
    tokio::task::spawn_blocking(move || {
        for k in 1..=n {
            let r = root_sql(k, &format!("SELECT MASTER_GTID_WAIT('{pos}', 10)"));
            assert_eq!(r, "0", "replica {k} caught up with {pos}");
        }
    })
    .await
    .unwrap();
}

/// Runs a client program off the runtime's threads; returns whether it
/// exited 0 and its stdout followed by its stderr.
pub async fn program_output(program: &'static str, args: Vec<String>) -> (bool, String) {
    let out = tokio::task::spawn_blocking(move || Command::new(program).args(&args).output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (run scripts/install-deps)"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
