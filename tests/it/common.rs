//! Shared fixtures: the testbed's addresses and an in-process tandem.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use tandem::app::App;
use tandem::config::Config;

/// The running testbed (started by `scripts/test`, or here on first use).
pub struct Testbed {
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
        if let Ok(primary) = std::env::var("TANDEM_TEST_PRIMARY") {
            let replicas = std::env::var("TANDEM_TEST_REPLICAS")
                .unwrap_or_default()
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            return Testbed { primary, replicas };
        }
        let dir =
            std::env::var("TANDEM_TESTBED_DIR").unwrap_or_else(|_| "/tmp/tandem-testbed".into());
        let status = Command::new(repo_root().join("scripts/testbed"))
            .args(["start", &dir, "23306", "2"])
            .status()
            .expect("run scripts/testbed");
        assert!(status.success(), "scripts/testbed start failed");
        Testbed {
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
