//! Raw structs -> [`Config`]: fills in defaults and checks every value that
//! serde's types cannot (ranges, uniqueness, formats, readable files).
//!
//! Errors carry the dotted field path as the user wrote it; `load.rs` adds
//! the file name.

use std::collections::HashSet;
use std::net::{Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use super::raw::{
    RawAdmin, RawBackend, RawBackendTls, RawConfig, RawLog, RawMonitor, RawMysql, RawPool,
    RawRouting, RawRuntime, RawTlsFiles, RawUser,
};
use super::{
    AdminConfig, AuthMode, AuthPlugin, BackendConfig, BackendTls, Config, ConfiguredRole,
    Credentials, LogConfig, LogFormat, MonitorConfig, MysqlConfig, RoutingConfig, RuntimeConfig,
    TlsFiles, UserConfig,
};
use super::{Balance, Consistency, FailoverConfig, PoolConfig, PrimaryReads, ReadOnlyTransactions};

// Defaults; `example.toml` shows the same values (a unit test holds them together).
const SHUTDOWN_GRACE_MS: u64 = 10_000;
const BACKEND_RETRY_MS: u64 = 5_000;
const MAX_PREPARED_PER_BACKEND: u64 = 256;
const MAX_STALENESS_MS: u64 = 30_000;
const WRITE_PAUSE_MS: u64 = 10_000;
const ADMIN_MAX_CONNECTIONS: u64 = 64;
const LOG_LEVEL: &str = "info";
const MAX_CLIENT_CONNECTIONS: u32 = 2048;
const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
const NET_READ_TIMEOUT_MS: u64 = 30_000;
// MariaDB's default wait_timeout, 8 hours: clients expect the server's idle limit.
const CLIENT_IDLE_TIMEOUT_MS: u64 = 28_800_000;
const MAX_ALLOWED_PACKET: u32 = 67_108_864;
// The limits MariaDB accepts for max_allowed_packet.
const MAX_ALLOWED_PACKET_RANGE: std::ops::RangeInclusive<u64> = 1024..=1_073_741_824;
const BACKEND_CONNECT_TIMEOUT_MS: u64 = 3_000;
const BACKEND_WEIGHT: u32 = 1;
const POOL_MAX_BACKEND_CONNECTIONS: u64 = 200;
// Monitor defaults: checks every second like ProxySQL's ping/read_only
// checks; rise/fall like HAProxy (2 good checks to come back, 3 bad ones to
// go down), so one lost packet never moves traffic.
const MONITOR_INTERVAL_MS: u64 = 1_000;
const MONITOR_MIN_INTERVAL_MS: u64 = 100;
const MONITOR_CONNECT_TIMEOUT_MS: u64 = 1_000;
const MONITOR_QUERY_TIMEOUT_MS: u64 = 1_000;
const MONITOR_RISE: u32 = 2;
const MONITOR_FALL: u32 = 3;
const MAX_REPLICATION_LAG_MS: u64 = 10_000;

/// A value that failed validation: the field path and why.
#[derive(Debug)]
pub(super) struct Invalid {
    pub field: String,
    pub reason: String,
}

/// Checks `raw` and fills in defaults. Relative file paths are joined to
/// `base_dir` when given (the config file's directory).
pub(super) fn config(
    raw: RawConfig,
    origin: &str,
    base_dir: Option<&Path>,
) -> Result<Config, Invalid> {
    Ok(Config {
        origin: origin.to_owned(),
        admin: raw.admin.map(|a| admin(a, base_dir)).transpose()?,
        mysql: raw.mysql.map(|m| mysql(m, base_dir)).transpose()?,
        http: raw
            .http
            .map(|h| super::http::validate(h, base_dir))
            .transpose()?,
        vrrp: raw
            .vrrp
            .map(|v| super::vrrp::vrrp(v, base_dir))
            .transpose()?,
        runtime: runtime(raw.runtime)?,
        log: log(raw.log)?,
    })
}

fn admin(raw: RawAdmin, base_dir: Option<&Path>) -> Result<AdminConfig, Invalid> {
    let token = match (raw.token, raw.token_file) {
        (Some(_), Some(_)) => {
            return Err(invalid("admin.token", "set token or token_file, not both"))
        }
        (Some(t), None) => Some(t),
        (None, Some(path)) => {
            let path = readable_file("admin.token_file", path, base_dir)?;
            let text = std::fs::read_to_string(&path)
                .map_err(|e| invalid("admin.token_file", format!("{}: {e}", path.display())))?;
            Some(text.lines().next().unwrap_or("").trim().to_string())
        }
        (None, None) => None,
    };
    if token
        .as_deref()
        .is_some_and(|t| t.len() < 16 || t.contains(char::is_whitespace))
    {
        return Err(invalid(
            "admin.token",
            "must be at least 16 characters without spaces",
        ));
    }
    Ok(AdminConfig {
        listen: socket_addr("admin.listen", &raw.listen)?,
        token,
        metrics_public: raw.metrics_public.unwrap_or(false),
        allowed_hosts: raw.allowed_hosts,
        max_connections: at_least_one(
            "admin.max_connections",
            raw.max_connections.unwrap_or(ADMIN_MAX_CONNECTIONS),
        )? as usize,
    })
}

fn runtime(raw: RawRuntime) -> Result<RuntimeConfig, Invalid> {
    let worker_threads = match raw.worker_threads {
        Some(0) => return Err(invalid("runtime.worker_threads", "must be at least 1")),
        Some(n) => Some(n as usize),
        None => None,
    };
    Ok(RuntimeConfig {
        worker_threads,
        shutdown_grace_ms: raw.shutdown_grace_ms.unwrap_or(SHUTDOWN_GRACE_MS),
    })
}

fn log(raw: RawLog) -> Result<LogConfig, Invalid> {
    let level = raw.level.unwrap_or_else(|| LOG_LEVEL.to_owned());
    check_log_level(&level).map_err(|reason| invalid("log.level", reason))?;
    Ok(LogConfig {
        level,
        format: raw.format.unwrap_or(LogFormat::Text),
    })
}

fn mysql(raw: RawMysql, base_dir: Option<&Path>) -> Result<MysqlConfig, Invalid> {
    let require_tls = raw.require_tls.unwrap_or(false);
    if require_tls && raw.tls.is_none() {
        return Err(invalid(
            "mysql.require_tls",
            "require_tls = true needs a [mysql.tls] section with cert_file and key_file",
        ));
    }
    let max_allowed_packet = max_allowed_packet(raw.max_allowed_packet)?;
    if let Some(version) = &raw.server_version {
        if version.is_empty() || version.contains('\0') {
            return Err(invalid(
                "mysql.server_version",
                "must be non-empty text without NUL characters",
            ));
        }
    }
    let tls = raw.tls.map(|t| tls_files(t, base_dir)).transpose()?;
    let auth = raw.auth.unwrap_or_default();
    let passthrough = match (auth, raw.passthrough, &raw.monitor) {
        (AuthMode::Config, None, _) => None,
        (AuthMode::Config, Some(_), _) => {
            return Err(invalid(
                "mysql.passthrough",
                "is used only with auth = \"passthrough\"",
            ))
        }
        (AuthMode::Passthrough, Some(p), _) => Some(Credentials {
            user: p.user,
            password: p.password,
        }),
        (AuthMode::Passthrough, None, Some(m)) => Some(Credentials {
            user: m.user.clone(),
            password: m.password.clone(),
        }),
        (AuthMode::Passthrough, None, None) => {
            return Err(invalid(
                "mysql.auth",
                "auth = \"passthrough\" reads the primary's accounts: add [mysql.passthrough] \
                 (or [mysql.monitor]) with a user allowed to SELECT on mysql.user",
            ))
        }
    };
    Ok(MysqlConfig {
        listen: socket_addr("mysql.listen", &raw.listen)?,
        users: users(raw.users, auth)?,
        auth,
        passthrough,
        backends: backends(raw.backends, raw.monitor.is_some())?,
        monitor: raw.monitor.map(monitor).transpose()?,
        max_client_connections: at_least_one(
            "mysql.max_client_connections",
            raw.max_client_connections.unwrap_or(MAX_CLIENT_CONNECTIONS),
        )?,
        handshake_timeout_ms: at_least_one(
            "mysql.handshake_timeout_ms",
            raw.handshake_timeout_ms.unwrap_or(HANDSHAKE_TIMEOUT_MS),
        )?,
        net_read_timeout_ms: at_least_one(
            "mysql.net_read_timeout_ms",
            raw.net_read_timeout_ms.unwrap_or(NET_READ_TIMEOUT_MS),
        )?,
        client_idle_timeout_ms: at_least_one(
            "mysql.client_idle_timeout_ms",
            raw.client_idle_timeout_ms.unwrap_or(CLIENT_IDLE_TIMEOUT_MS),
        )?,
        max_allowed_packet,
        backend_connect_timeout_ms: at_least_one(
            "mysql.backend_connect_timeout_ms",
            raw.backend_connect_timeout_ms
                .unwrap_or(BACKEND_CONNECT_TIMEOUT_MS),
        )?,
        default_auth_plugin: raw
            .default_auth_plugin
            .unwrap_or(AuthPlugin::NativePassword),
        server_version: raw.server_version,
        require_tls,
        tls,
        backend_tls: raw
            .backend_tls
            .map(|b| backend_tls(b, base_dir))
            .transpose()?,
        rsa_private_key_file: raw
            .rsa_private_key_file
            .map(|p| readable_file("mysql.rsa_private_key_file", p, base_dir))
            .transpose()?,
        routing: routing(raw.routing.unwrap_or_default())?,
        pool: pool(raw.pool.unwrap_or_default())?,
        failover: FailoverConfig {
            write_pause_ms: raw
                .failover
                .unwrap_or_default()
                .write_pause_ms
                .unwrap_or(WRITE_PAUSE_MS),
        },
    })
}

fn pool(raw: RawPool) -> Result<PoolConfig, Invalid> {
    let ms = |key: &str, v: Option<u64>, default: u64| {
        at_least_one(&format!("mysql.pool.{key}"), v.unwrap_or(default))
    };
    let max = ms(
        "max_backend_connections",
        raw.max_backend_connections,
        POOL_MAX_BACKEND_CONNECTIONS,
    )?;
    let min_idle = raw.min_idle.unwrap_or(0);
    if min_idle > max {
        return Err(invalid(
            "mysql.pool.min_idle",
            format!("must not exceed max_backend_connections ({max})"),
        ));
    }
    Ok(PoolConfig {
        multiplex: raw.multiplex.unwrap_or(true),
        max_backend_connections: max as usize,
        min_idle: min_idle as usize,
        idle_timeout_ms: ms("idle_timeout_ms", raw.idle_timeout_ms, 60_000)?,
        max_lifetime_ms: ms("max_lifetime_ms", raw.max_lifetime_ms, 3_600_000)?,
        acquire_timeout_ms: ms("acquire_timeout_ms", raw.acquire_timeout_ms, 10_000)?,
        ping_after_idle_ms: raw.ping_after_idle_ms.unwrap_or(10_000),
        hold_for_diagnostics_ms: raw.hold_for_diagnostics_ms.unwrap_or(2_000),
    })
}

fn consistency(field: &str, raw: Option<String>) -> Result<Option<Consistency>, Invalid> {
    raw.map(|t| {
        Consistency::parse(&t).ok_or_else(|| {
            invalid(
                field,
                format!("{t:?}: expected \"eventual\", \"session\", \"global\" or \"window:<ms>\""),
            )
        })
    })
    .transpose()
}

fn routing(raw: RawRouting) -> Result<RoutingConfig, Invalid> {
    let mut functions = Vec::with_capacity(raw.read_only_functions.len());
    for (i, f) in raw.read_only_functions.into_iter().enumerate() {
        let name = f.trim().trim_matches('`').to_ascii_lowercase();
        if name.is_empty() {
            return Err(invalid(
                format!("mysql.routing.read_only_functions[{i}]"),
                "must be a function name",
            ));
        }
        functions.push(name);
    }
    Ok(RoutingConfig {
        read_write_split: raw.read_write_split.unwrap_or(true),
        balance: raw.balance.unwrap_or(Balance::Random),
        primary_reads: raw.primary_reads.unwrap_or(PrimaryReads::Fallback),
        read_only_transactions: raw
            .read_only_transactions
            .unwrap_or(ReadOnlyTransactions::Replica),
        read_only_functions: functions,
        backend_retry_ms: at_least_one(
            "mysql.routing.backend_retry_ms",
            raw.backend_retry_ms.unwrap_or(BACKEND_RETRY_MS),
        )?,
        consistency: consistency("mysql.routing.consistency", raw.consistency)?
            .unwrap_or(Consistency::Eventual),
        consistency_timeout_ms: at_least_one(
            "mysql.routing.consistency_timeout_ms",
            raw.consistency_timeout_ms.unwrap_or(1_000),
        )?,
        max_prepared_statements_per_backend: at_least_one(
            "mysql.routing.max_prepared_statements_per_backend",
            raw.max_prepared_statements_per_backend
                .unwrap_or(MAX_PREPARED_PER_BACKEND),
        )? as usize,
    })
}

fn monitor(raw: RawMonitor) -> Result<MonitorConfig, Invalid> {
    let interval_ms = raw.interval_ms.unwrap_or(MONITOR_INTERVAL_MS);
    if interval_ms < MONITOR_MIN_INTERVAL_MS {
        return Err(invalid(
            "mysql.monitor.interval_ms",
            format!("must be at least {MONITOR_MIN_INTERVAL_MS}, found {interval_ms}"),
        ));
    }
    let heartbeat_interval_ms = raw.heartbeat_interval_ms.unwrap_or(0);
    if heartbeat_interval_ms != 0 && heartbeat_interval_ms < MONITOR_MIN_INTERVAL_MS {
        return Err(invalid(
            "mysql.monitor.heartbeat_interval_ms",
            format!(
                "must be 0 (off) or at least {MONITOR_MIN_INTERVAL_MS}, found {heartbeat_interval_ms}"
            ),
        ));
    }
    Ok(MonitorConfig {
        user: raw.user,
        password: raw.password,
        interval_ms,
        connect_timeout_ms: at_least_one(
            "mysql.monitor.connect_timeout_ms",
            raw.connect_timeout_ms.unwrap_or(MONITOR_CONNECT_TIMEOUT_MS),
        )?,
        query_timeout_ms: at_least_one(
            "mysql.monitor.query_timeout_ms",
            raw.query_timeout_ms.unwrap_or(MONITOR_QUERY_TIMEOUT_MS),
        )?,
        rise: at_least_one("mysql.monitor.rise", raw.rise.unwrap_or(MONITOR_RISE))?,
        fall: at_least_one("mysql.monitor.fall", raw.fall.unwrap_or(MONITOR_FALL))?,
        heartbeat_interval_ms,
        max_replication_lag_ms: raw.max_replication_lag_ms.unwrap_or(MAX_REPLICATION_LAG_MS),
        min_serving_replicas: raw.min_serving_replicas.unwrap_or(0),
        lag_weighting: raw.lag_weighting.unwrap_or(false),
        max_staleness_ms: raw.max_staleness_ms.unwrap_or(MAX_STALENESS_MS),
    })
}

fn max_allowed_packet(raw: Option<u64>) -> Result<u32, Invalid> {
    let value = raw.unwrap_or(MAX_ALLOWED_PACKET.into());
    if !MAX_ALLOWED_PACKET_RANGE.contains(&value) {
        return Err(invalid(
            "mysql.max_allowed_packet",
            format!(
                "must be between {} and {}, found {value}",
                MAX_ALLOWED_PACKET_RANGE.start(),
                MAX_ALLOWED_PACKET_RANGE.end()
            ),
        ));
    }
    // The range ends at 1 GiB, so it fits.
    Ok(value as u32)
}

fn tls_files(raw: RawTlsFiles, base_dir: Option<&Path>) -> Result<TlsFiles, Invalid> {
    Ok(TlsFiles {
        cert_file: readable_file("mysql.tls.cert_file", raw.cert_file, base_dir)?,
        key_file: readable_file("mysql.tls.key_file", raw.key_file, base_dir)?,
    })
}

fn backend_tls(raw: RawBackendTls, base_dir: Option<&Path>) -> Result<BackendTls, Invalid> {
    Ok(BackendTls {
        ca_file: raw
            .ca_file
            .map(|p| readable_file("mysql.backend_tls.ca_file", p, base_dir))
            .transpose()?,
        verify: raw.verify.unwrap_or(true),
        required: raw.required.unwrap_or(false),
    })
}

fn users(raw: Vec<RawUser>, auth: AuthMode) -> Result<Vec<UserConfig>, Invalid> {
    if raw.is_empty() && auth == AuthMode::Config {
        return Err(invalid(
            "mysql.users",
            "at least one [[mysql.users]] entry is required (or auth = \"passthrough\")",
        ));
    }
    let mut seen = HashSet::new();
    let mut users = Vec::with_capacity(raw.len());
    for (i, u) in raw.into_iter().enumerate() {
        let at = |key: &str| format!("mysql.users[{i}].{key}");
        if u.user.is_empty() {
            return Err(invalid(at("user"), "must not be empty"));
        }
        if !seen.insert(u.user.clone()) {
            return Err(invalid(at("user"), format!("duplicate user {:?}", u.user)));
        }
        let password_hash = match (&u.password, &u.password_hash) {
            (Some(_), None) => None,
            (None, Some(text)) => Some(
                crate::mysql::protocol::auth::parse_native_hash(text).ok_or_else(|| {
                    invalid(
                        at("password_hash"),
                        "expected \"*\" followed by 40 hex digits",
                    )
                })?,
            ),
            _ => {
                return Err(invalid(
                    format!("mysql.users[{i}]"),
                    "set exactly one of password or password_hash",
                ))
            }
        };
        if u.max_connections == Some(0) {
            return Err(invalid(at("max_connections"), "must be at least 1"));
        }
        users.push(UserConfig {
            consistency: consistency(&at("consistency"), u.consistency)?,
            user: u.user,
            password: u.password,
            password_hash,
            max_connections: u.max_connections,
        });
    }
    Ok(users)
}

/// Roles: either exactly one `primary` and no `auto`, or no `primary` and at
/// least one `auto` (fixed `replica`s may be mixed in; they never become the
/// primary). `auto` needs the monitor, which discovers the primary.
fn backends(raw: Vec<RawBackend>, monitored: bool) -> Result<Vec<BackendConfig>, Invalid> {
    if raw.is_empty() {
        return Err(invalid(
            "mysql.backends",
            "at least one [[mysql.backends]] entry is required",
        ));
    }
    let mut seen = HashSet::new();
    let mut backends = Vec::with_capacity(raw.len());
    for (i, b) in raw.into_iter().enumerate() {
        let at = |key: &str| format!("mysql.backends[{i}].{key}");
        check_name(&b.name).map_err(|reason| invalid(at("name"), reason))?;
        if !seen.insert(b.name.clone()) {
            return Err(invalid(
                at("name"),
                format!("duplicate backend name {:?}", b.name),
            ));
        }
        check_host_port(&b.address).map_err(|reason| invalid(at("address"), reason))?;
        let weight = b.weight.unwrap_or(BACKEND_WEIGHT);
        if weight == 0 {
            return Err(invalid(at("weight"), "must be at least 1"));
        }
        backends.push(BackendConfig {
            name: b.name,
            address: b.address,
            role: b.role,
            weight,
            local: b.local.unwrap_or(false),
        });
    }
    check_roles(&backends, monitored)?;
    Ok(backends)
}

fn check_roles(backends: &[BackendConfig], monitored: bool) -> Result<(), Invalid> {
    let count = |r| backends.iter().filter(|b| b.role == r).count();
    let (primaries, autos) = (count(ConfiguredRole::Primary), count(ConfiguredRole::Auto));
    if autos > 0 {
        if primaries > 0 {
            return Err(invalid(
                "mysql.backends",
                "role = \"auto\" cannot be mixed with role = \"primary\": \
                 either name the primary, or let the monitor discover it among the auto backends",
            ));
        }
        if !monitored {
            let i = backends.iter().position(|b| b.role == ConfiguredRole::Auto);
            return Err(invalid(
                format!("mysql.backends[{}].role", i.unwrap_or(0)),
                "role = \"auto\" needs a [mysql.monitor] section: the monitor discovers the primary",
            ));
        }
        return Ok(());
    }
    if primaries != 1 {
        return Err(invalid(
            "mysql.backends",
            format!(
                "exactly one backend must have role = \"primary\" (or use role = \"auto\"), found {primaries}"
            ),
        ));
    }
    Ok(())
}

// === field checks ===

pub(super) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

pub(super) fn at_least_one<T: PartialEq + From<u8>>(field: &str, value: T) -> Result<T, Invalid> {
    if value == T::from(0) {
        return Err(invalid(field, "must be at least 1"));
    }
    Ok(value)
}

pub(super) fn socket_addr(field: &str, text: &str) -> Result<SocketAddr, Invalid> {
    text.parse().map_err(|_| {
        invalid(
            field,
            format!(
                "expected an IP address and port like \"127.0.0.1:6033\" or \"[::1]:6033\", found {text:?}"
            ),
        )
    })
}

/// A backend, frontend, server, VRRP instance or check name: safe in metric labels, logs and
/// admin paths.
pub(super) fn check_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > 64 || !name.chars().all(ok_char) {
        return Err(format!(
            "expected 1 to 64 letters, digits, '.', '_' or '-', found {name:?}"
        ));
    }
    Ok(())
}

/// `host:port` with a non-zero port; IPv6 literals need brackets.
/// The host is not resolved here: DNS may not be up when the config is checked.
pub(super) fn check_host_port(text: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "expected \"host:port\" like \"10.0.0.5:3306\", \"db1.lan:3306\" or \"[fd00::5]:3306\", found {text:?}"
        )
    };
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (v6, port) = rest.split_once("]:").ok_or_else(bad)?;
        v6.parse::<Ipv6Addr>().map_err(|_| bad())?;
        (v6, port)
    } else {
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let host_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if host.is_empty() || !host.chars().all(host_char) {
            return Err(bad());
        }
        (host, port)
    };
    debug_assert!(!host.is_empty());
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok(()),
        _ => Err(bad()),
    }
}

/// Rejects what `EnvFilter` would accept but surely is a typo: a bare word
/// that is not a level (`"verbose"` would silently mean "target verbose").
fn check_log_level(level: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    for directive in level.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let bare = !directive.contains('=') && !directive.contains('[');
        if bare && !LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "unknown level {directive:?}, expected trace, debug, info, warn, error, off or target=level"
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(level)
        .map(drop)
        .map_err(|e| format!("invalid filter directive: {e}"))
}

/// Resolves `path` against `base_dir` and checks that it can be opened now,
/// so a typo fails `check-config` instead of the first TLS handshake.
pub(super) fn readable_file(
    field: &str,
    path: PathBuf,
    base_dir: Option<&Path>,
) -> Result<PathBuf, Invalid> {
    let path = match base_dir {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path,
    };
    match std::fs::File::open(&path) {
        Ok(_) if path.is_dir() => Err(invalid(field, format!("{} is a directory", path.display()))),
        Ok(_) => Ok(path),
        Err(e) => Err(invalid(
            field,
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}
