//! Configuration: TOML file + environment overrides -> validated [`Config`].
//!
//! ```text
//!   tandem.toml ──┐
//!                 ├─ config crate merge ─> serde_json::Value ─> raw.rs ─> validate.rs ─> Config
//!   TANDEM__* ────┘        (load.rs)        (keeps field paths)  (serde)   (defaults, checks)
//! ```
//!
//! Every top-level section is optional: a node runs only what its config names,
//! and an empty file is valid. Unknown keys are rejected. Every error names the
//! file and the dotted field path (see [`ConfigError`]).
//!
//! Environment variables override file keys: `TANDEM__` + the path with `__`
//! between levels, e.g. `TANDEM__MYSQL__LISTEN=0.0.0.0:6033` or
//! `TANDEM__MYSQL__MAX_CLIENT_CONNECTIONS=4096`. Arrays (`[[mysql.users]]`,
//! `[[mysql.backends]]`) cannot be overridden this way.

mod error;
mod http;
mod load;
mod raw;
mod validate;
mod vrrp;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use error::ConfigError;
pub use http::{
    AccessLogConfig, AccessLogFormat, CertKey, CheckKind as HealthCheckKind, FrontendConfig,
    FrontendTls, HealthCheckConfig, HttpBalance, HttpConfig, HttpServerConfig,
};
pub use vrrp::{
    DbAction, SyncGroup, TrackRef, VirtualIp, VrrpCheck, VrrpCheckKind, VrrpConfig, VrrpInstance,
};

/// A validated configuration; every default is filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where the configuration came from: the file path, or the label given to
    /// [`Config::from_toml_str`] (e.g. `"<inline>"`).
    pub origin: String,
    pub admin: Option<AdminConfig>,
    pub mysql: Option<MysqlConfig>,
    /// `[http]`: the HTTP load balancer.
    pub http: Option<HttpConfig>,
    /// `[vrrp]`: floating IPs (see `vrrp.rs`).
    pub vrrp: Option<VrrpConfig>,
    pub runtime: RuntimeConfig,
    pub log: LogConfig,
}

/// `[admin]`: the HTTP listener for `/metrics`, `/health` and `/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// `token` or the first line of `token_file`: required as
    /// `Authorization: Bearer TOKEN` (see `admin/access.rs`).
    pub token: Option<String>,
    /// `GET /metrics` without the token; default false.
    pub metrics_public: bool,
    /// Host names accepted besides IP addresses and `localhost`.
    pub allowed_hosts: Vec<String>,
    /// Admin connections at once; default 64, more are closed at once.
    pub max_connections: usize,
}

/// `[runtime]`: the Tokio runtime and shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Session worker threads; `None` = half the CPUs, at least one.
    pub worker_threads: Option<usize>,
    /// How long a shutdown waits for sessions to finish; default 10 000.
    pub shutdown_grace_ms: u64,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// An `EnvFilter` directive, default `"info"`; `RUST_LOG` overrides it.
    pub level: String,
    pub format: LogFormat,
}

/// How log lines are written. Only text for now: JSON needs tracing-subscriber's
/// `json` feature, which the build does not enable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
}

/// `[mysql]`: the MySQL-protocol proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlConfig {
    pub listen: SocketAddr,
    /// Names unique; at least one unless `auth = "passthrough"`.
    pub users: Vec<UserConfig>,
    /// `auth`: who may log in (default: the configured users only).
    pub auth: AuthMode,
    /// With `auth = "passthrough"`: the account that reads `mysql.user` on
    /// the primary (`[mysql.passthrough]`, else `[mysql.monitor]`'s).
    pub passthrough: Option<Credentials>,
    /// The account the topology monitor logs in with.
    pub monitor: Option<MonitorConfig>,
    /// At least one; names unique; exactly one with role primary, or none
    /// and at least one with role auto (see `validate::backends`).
    pub backends: Vec<BackendConfig>,
    /// Default 2048; beyond it clients get ERR 1040.
    pub max_client_connections: u32,
    /// Default 10 000.
    pub handshake_timeout_ms: u64,
    /// Default 28 800 000 (8 h, MariaDB's `wait_timeout`).
    pub client_idle_timeout_ms: u64,
    /// Default 30 000 (MariaDB's `net_read_timeout`): how long a packet may
    /// take to arrive once its first byte did.
    pub net_read_timeout_ms: u64,
    /// Default 67 108 864 (64 MiB); 1024 ..= 1 073 741 824.
    pub max_allowed_packet: u32,
    /// Default 3 000.
    pub backend_connect_timeout_ms: u64,
    /// Default `mysql_native_password`.
    pub default_auth_plugin: AuthPlugin,
    /// Overrides the server version announced to clients.
    pub server_version: Option<String>,
    /// Default false; true requires `tls`.
    pub require_tls: bool,
    /// `[mysql.tls]`: certificate and key offered to clients.
    pub tls: Option<TlsFiles>,
    /// `[mysql.backend_tls]`: TLS towards the backends.
    pub backend_tls: Option<BackendTls>,
    /// PEM private key for the `caching_sha2_password` RSA exchange;
    /// `None` = generate one at start.
    pub rsa_private_key_file: Option<PathBuf>,
    /// `[mysql.routing]`: read/write splitting.
    pub routing: RoutingConfig,
    /// `[mysql.pool]`: backend connection pools and multiplexing.
    pub pool: PoolConfig,
    /// `[mysql.failover]`.
    pub failover: FailoverConfig,
}

/// `[mysql.failover]`: what tandem does while the primary cannot be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverConfig {
    /// How long a statement for the primary waits for one that can be
    /// reached (a restart, a VIP moving) before ERR 1290; default 10 000.
    pub write_pause_ms: u64,
}

/// `[mysql.pool]`: backend connections kept and shared between sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Default true: between statements a session gives its backend
    /// connections back unless it holds connection-bound state. False: a
    /// session keeps the connections it opened until it ends (they are
    /// still pooled and reused after it).
    pub multiplex: bool,
    /// Connections to one backend from this node, idle or lent; default 200.
    pub max_backend_connections: usize,
    /// Idle connections per backend and key kept past `idle_timeout_ms`; default 0.
    pub min_idle: usize,
    /// An idle connection is closed after this; default 60 000.
    pub idle_timeout_ms: u64,
    /// A connection is closed (when idle) after this age; default 3 600 000.
    pub max_lifetime_ms: u64,
    /// How long a statement waits for a connection when the pool is full
    /// before failing with ERR 1040; default 10 000.
    pub acquire_timeout_ms: u64,
    /// A connection idle longer than this is pinged before it is lent; default 10 000.
    pub ping_after_idle_ms: u64,
    /// After a statement that leaves diagnostics a client may ask for next
    /// (an AUTO_INCREMENT id, warnings, SQL_CALC_FOUND_ROWS), the session
    /// keeps its connection until its next statement, or this long; default 2 000.
    pub hold_for_diagnostics_ms: u64,
}

/// Read-your-writes guarantee for reads sent to replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// Replicas as they are (lag bounded by the monitor).
    Eventual,
    /// After a session writes, its reads see that write (GTID wait).
    Session,
    /// A read sees every write committed anywhere before it started.
    Global,
    /// Reads go to the primary for this many ms after the session writes.
    Window(u64),
}

/// `[mysql.routing]`: where statements go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingConfig {
    /// Default true; false sends everything to the primary.
    pub read_write_split: bool,
    /// How a replica is chosen for a read; default `random`.
    pub balance: Balance,
    /// Whether the primary serves reads too; default `fallback`.
    pub primary_reads: PrimaryReads,
    /// Where `START TRANSACTION READ ONLY` runs; default `replica`.
    pub read_only_transactions: ReadOnlyTransactions,
    /// Stored functions (lowercase) that only read, so a SELECT calling them
    /// may run on a replica. Any other stored function sends it to the primary.
    pub read_only_functions: Vec<String>,
    /// A backend that could not be reached is skipped this long; default 5 000.
    pub backend_retry_ms: u64,
    /// Prepared statements a session keeps open on one backend connection;
    /// beyond, the least recently used is closed (and prepared again when
    /// needed). Default 256.
    pub max_prepared_statements_per_backend: usize,
    /// Default `eventual`; users may override, sessions too
    /// (`SET tandem_consistency = ...`).
    pub consistency: Consistency,
    /// Longest wait for a replica to catch up with a session's writes
    /// before the read goes to the primary; default 1 000.
    pub consistency_timeout_ms: u64,
}

/// Replica choice for reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Uniformly among usable replicas.
    Random,
    /// In proportion to `weight`.
    Weighted,
    /// The replica with the fewest statements in flight from this node.
    LeastOutstanding,
    /// Backends with `local = true` first, then the other replicas, the primary last.
    PreferLocal,
}

/// Whether reads may use the primary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrimaryReads {
    /// Only when no replica is usable.
    Fallback,
    /// The primary is one more read backend.
    Always,
    /// Never: with no usable replica a read fails with an error.
    Never,
}

/// Where read-only transactions run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadOnlyTransactions {
    /// On one replica, for the whole transaction.
    Replica,
    /// On the primary, like every other transaction.
    Primary,
}

/// `[[mysql.users]]`: an account clients log in with (tandem re-authenticates
/// to the backends itself). Exactly one of `password` / `password_hash` is set.
#[derive(Clone, PartialEq, Eq)]
pub struct UserConfig {
    pub user: String,
    pub password: Option<String>,
    /// `SHA1(SHA1(password))`, the `mysql_native_password` hash, written in the
    /// config as `"*"` + 40 hex digits like `SELECT PASSWORD('...')` prints it.
    pub password_hash: Option<[u8; 20]>,
    /// Per-user connection limit; `None` = only the global limit.
    pub max_connections: Option<u32>,
    /// Overrides `[mysql.routing] consistency` for this user.
    pub consistency: Option<Consistency>,
}

/// `[mysql.monitor]`: the account and the rhythm of health and lag checks.
#[derive(Clone, PartialEq, Eq)]
pub struct MonitorConfig {
    pub user: String,
    pub password: String,
    /// Between two checks of one backend; default 1 000, at least 100.
    pub interval_ms: u64,
    /// Connecting (and logging in) to a backend; default 1 000.
    pub connect_timeout_ms: u64,
    /// All the statements of one check together; default 1 000.
    pub query_timeout_ms: u64,
    /// Consecutive good checks before a down backend is up again; default 2.
    pub rise: u32,
    /// Consecutive failed checks before an up backend is down; default 3.
    pub fall: u32,
    /// How often tandem writes its heartbeat row on the primary; 0 = off (default).
    pub heartbeat_interval_ms: u64,
    /// Replicas further behind get no reads; 0 = no limit. Default 10 000.
    pub max_replication_lag_ms: u64,
    /// When every healthy replica lags, this many (least behind first) keep
    /// serving; default 0. A replica whose replication is broken never counts.
    pub min_serving_replicas: u32,
    /// Scale read shares down with lag (towards 0 at the limit); default false.
    pub lag_weighting: bool,
    /// How long after the primary was last seen replicas cut off from it
    /// (their IO thread reconnecting) keep serving reads; 0 = forever.
    /// Default 30 000.
    pub max_staleness_ms: u64,
}

/// `[[mysql.backends]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConfig {
    /// Letters, digits, `.`, `_`, `-`; used in logs and metric labels.
    pub name: String,
    /// `"host:port"` as written (a host name is resolved at connect time).
    pub address: String,
    pub role: ConfiguredRole,
    /// Share of reads among replicas, at least 1; default 1.
    pub weight: u32,
    /// This backend runs on the same host as this tandem (for `balance = "prefer_local"`).
    pub local: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Replica,
}

/// A backend's `role` as configured: fixed, or discovered by the monitor
/// (`auto`: the writable backend the others replicate from is the primary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfiguredRole {
    Primary,
    Replica,
    Auto,
}

/// Who may log in through the MySQL listener.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Only `[[mysql.users]]`.
    #[default]
    Config,
    /// `[[mysql.users]]` first, then the primary's own accounts: their
    /// `mysql_native_password` hashes are read from `mysql.user` at start and
    /// again when an unknown user (or a changed password) tries to log in.
    Passthrough,
}

/// A login name and password tandem itself uses on backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

/// The authentication plugin offered first in the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum AuthPlugin {
    #[serde(rename = "mysql_native_password")]
    NativePassword,
    #[serde(rename = "caching_sha2_password")]
    CachingSha2Password,
}

/// `[mysql.tls]`: PEM files, checked readable at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// `[mysql.backend_tls]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendTls {
    /// PEM CA bundle the backend certificates must chain to.
    pub ca_file: Option<PathBuf>,
    /// Verify the backend certificate and name; default true.
    pub verify: bool,
    /// Refuse backends that do not offer TLS; default false.
    pub required: bool,
}

// === impl Config ===

impl Config {
    /// Loads a TOML file, applies `TANDEM__*` environment overrides, validates.
    ///
    /// Relative paths in the file are resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        load::from_file(path, None)
    }

    /// Parses and validates TOML text; no environment overrides. `origin`
    /// labels errors and becomes [`Config::origin`]. Relative paths stay
    /// relative to the working directory.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        load::from_text(text, origin, None, None)
    }

    /// A commented reference configuration listing every key with its default.
    pub fn example() -> &'static str {
        include_str!("example.toml")
    }

    /// True when the configuration names nothing to run (no `[admin]`, `[mysql]`, `[http]` or
    /// `[vrrp]`).
    pub fn runs_nothing(&self) -> bool {
        self.admin.is_none() && self.mysql.is_none() && self.http.is_none() && self.vrrp.is_none()
    }
}

// === impl AuthPlugin ===

impl AuthPlugin {
    /// The plugin name as it appears on the wire and in the config.
    pub fn name(self) -> &'static str {
        match self {
            AuthPlugin::NativePassword => "mysql_native_password",
            AuthPlugin::CachingSha2Password => "caching_sha2_password",
        }
    }
}

// === impl Role ===

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
        }
    }
}

// === impl ConfiguredRole ===

impl ConfiguredRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfiguredRole::Primary => "primary",
            ConfiguredRole::Replica => "replica",
            ConfiguredRole::Auto => "auto",
        }
    }

    /// The role a backend starts with, before the monitor has looked.
    pub fn initial(self) -> Role {
        match self {
            ConfiguredRole::Primary => Role::Primary,
            ConfiguredRole::Replica | ConfiguredRole::Auto => Role::Replica,
        }
    }
}

impl From<Role> for ConfiguredRole {
    fn from(r: Role) -> Self {
        match r {
            Role::Primary => ConfiguredRole::Primary,
            Role::Replica => ConfiguredRole::Replica,
        }
    }
}

// === impl UserConfig ===

// Hand-written so that a `{:?}` of the config in a log line never prints a secret.
impl fmt::Debug for UserConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserConfig")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<redacted>"),
            )
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

// === impl Consistency ===

impl Consistency {
    /// `eventual`, `session`, `global` or `window:<ms>` (case-insensitive).
    pub fn parse(text: &str) -> Option<Consistency> {
        let t = text.trim().to_ascii_lowercase();
        match t.as_str() {
            "eventual" => Some(Consistency::Eventual),
            "session" => Some(Consistency::Session),
            "global" => Some(Consistency::Global),
            _ => {
                let ms = t.strip_prefix("window:")?.trim().parse().ok()?;
                Some(Consistency::Window(ms))
            }
        }
    }
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Consistency::Eventual => f.write_str("eventual"),
            Consistency::Session => f.write_str("session"),
            Consistency::Global => f.write_str("global"),
            Consistency::Window(ms) => write!(f, "window:{ms}"),
        }
    }
}

// === impl MonitorConfig ===

impl fmt::Debug for MonitorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonitorConfig")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("interval_ms", &self.interval_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("query_timeout_ms", &self.query_timeout_ms)
            .field("rise", &self.rise)
            .field("fall", &self.fall)
            .field("heartbeat_interval_ms", &self.heartbeat_interval_ms)
            .field("max_replication_lag_ms", &self.max_replication_lag_ms)
            .field("min_serving_replicas", &self.min_serving_replicas)
            .field("lag_weighting", &self.lag_weighting)
            .field("max_staleness_ms", &self.max_staleness_ms)
            .finish()
    }
}

#[cfg(test)]
mod tests;
