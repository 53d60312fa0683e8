//! Metric names, their descriptions, and the Prometheus recorder.
//!
//! ```text
//!   hot path ── MysqlMetrics (handles registered once) ──┐
//!                                                        ├─> global recorder ─> PrometheusHandle
//!   cold path ── ::metrics::counter!(NAME, labels) ──────┘     (install)        ├─ admin: GET /metrics
//!                                                                               └─ upkeep() every 5 s
//! ```
//!
//! Call [`install`] before creating [`MysqlMetrics`]: handles made before a
//! recorder exists are no-ops for good.

use std::sync::OnceLock;
use std::time::Duration;

pub mod http;

use ::metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter,
    Gauge, Histogram, Unit,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// Gauge: client connections open now.
pub const MYSQL_CLIENT_CONNECTIONS: &str = "tandem_mysql_client_connections";
/// Counter: client connections accepted.
pub const MYSQL_CLIENT_CONNECTIONS_TOTAL: &str = "tandem_mysql_client_connections_total";
/// Counter {reason}: client connections refused; reasons are [`RejectReason`].
pub const MYSQL_CLIENT_CONNECTIONS_REJECTED_TOTAL: &str =
    "tandem_mysql_client_connections_rejected_total";
/// Counter {command}: commands received; labels are [`COMMAND_LABELS`].
pub const MYSQL_COMMANDS_TOTAL: &str = "tandem_mysql_commands_total";
/// Counter: bytes read from clients.
pub const MYSQL_CLIENT_BYTES_RECEIVED_TOTAL: &str = "tandem_mysql_client_bytes_received_total";
/// Counter: bytes written to clients.
pub const MYSQL_CLIENT_BYTES_SENT_TOTAL: &str = "tandem_mysql_client_bytes_sent_total";
/// Counter {backend}: connections opened to a backend.
pub const MYSQL_BACKEND_CONNECTIONS_TOTAL: &str = "tandem_mysql_backend_connections_total";
/// Counter {backend}: failed attempts to connect or authenticate to a backend.
pub const MYSQL_BACKEND_CONNECT_ERRORS_TOTAL: &str = "tandem_mysql_backend_connect_errors_total";
pub const MYSQL_POOL_TIMEOUTS_TOTAL: &str = "tandem_mysql_pool_acquire_timeouts_total";
pub const MYSQL_POOL_RESETS_TOTAL: &str = "tandem_mysql_pool_resets_total";
pub const MYSQL_POOL_CONNECTIONS: &str = "tandem_mysql_pool_connections";
pub const MYSQL_CONSISTENCY_READS_TOTAL: &str = "tandem_mysql_consistency_reads_total";
/// Histogram: from a command received to the last byte of its response sent.
pub const MYSQL_QUERY_DURATION_SECONDS: &str = "tandem_mysql_query_duration_seconds";
/// Gauge {version}: always 1; the label carries the running version.
pub const BUILD_INFO: &str = "tandem_build_info";
/// Counter: statements routed, by backend and reason (`read`, `write`,
/// `in_transaction`, `session_pinned`, `hint`, `no_replica_fallback`...).
pub const MYSQL_ROUTED_TOTAL: &str = "tandem_mysql_routed_total";
/// Gauge {backend, state}: 1 for the backend's current state (`up`,
/// `lagging`, `down`, `maintenance`, `draining`), 0 for the others.
pub const MYSQL_BACKEND_STATE: &str = "tandem_mysql_backend_state";
/// Gauge {backend}: 1 when the backend takes new reads.
pub const MYSQL_BACKEND_SERVING: &str = "tandem_mysql_backend_serving";
/// Gauge {backend}: 1 for the primary (configured or discovered).
pub const MYSQL_BACKEND_PRIMARY: &str = "tandem_mysql_backend_primary";
/// Gauge {backend}: `Seconds_Behind_Master`; NaN when NULL or not a replica.
pub const MYSQL_REPLICATION_LAG_SECONDS: &str = "tandem_mysql_replication_lag_seconds";
/// Gauge {backend}: the lag routing uses, in ms (heartbeat when on); NaN when unknown.
pub const MYSQL_REPLICATION_LAG_MILLISECONDS: &str = "tandem_mysql_replication_lag_milliseconds";
/// Counter {backend}: failed monitor checks.
pub const MYSQL_MONITOR_CHECK_ERRORS_TOTAL: &str = "tandem_mysql_monitor_check_errors_total";
/// Gauge {backend}: 1 when the backend is up with `read_only = OFF`.
pub const MYSQL_BACKEND_WRITABLE: &str = "tandem_mysql_backend_writable";
/// Gauge: backends up with `read_only = OFF`; above 1 is an alarm.
pub const MYSQL_WRITABLE_BACKENDS: &str = "tandem_mysql_writable_backends";
/// Counter: failed heartbeat writes on the primary.
pub const MYSQL_HEARTBEAT_ERRORS_TOTAL: &str = "tandem_mysql_heartbeat_write_errors_total";

/// Gauge {instance, state}: 1 for the VRRP instance's current state
/// (`INIT`, `BACKUP`, `MASTER`, `FAULT`), 0 for the others.
pub const VRRP_STATE: &str = "tandem_vrrp_state";
/// Gauge {instance}: the effective priority (configured ± tracking weights).
pub const VRRP_PRIORITY: &str = "tandem_vrrp_priority";
/// Counter {instance, to}: state changes.
pub const VRRP_TRANSITIONS_TOTAL: &str = "tandem_vrrp_transitions_total";
/// Counter {instance}: adverts sent.
pub const VRRP_ADVERTS_SENT_TOTAL: &str = "tandem_vrrp_adverts_sent_total";
/// Counter {instance}: valid adverts received for the instance's VRID.
pub const VRRP_ADVERTS_RECEIVED_TOTAL: &str = "tandem_vrrp_adverts_received_total";
/// Counter {instance, reason}: datagrams dropped (ttl, checksum, version, source, auth...).
pub const VRRP_INVALID_PACKETS_TOTAL: &str = "tandem_vrrp_invalid_packets_total";
/// Counter {instance}: database promote/fence actions that failed after retries.
pub const VRRP_DB_ACTION_ERRORS_TOTAL: &str = "tandem_vrrp_db_action_errors_total";

/// Label values of [`MYSQL_COMMANDS_TOTAL`], in the order of [`command_index`].
pub const COMMAND_LABELS: [&str; 17] = [
    "query",
    "init_db",
    "ping",
    "quit",
    "field_list",
    "statistics",
    "set_option",
    "reset_connection",
    "change_user",
    "stmt_prepare",
    "stmt_execute",
    "stmt_send_long_data",
    "stmt_close",
    "stmt_reset",
    "stmt_fetch",
    "process_kill",
    "other",
];

/// Upper bounds, in seconds, for latency histograms (every `*_seconds` metric):
/// 100 µs (a cached point select on a LAN) to 10 s (a report query).
const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The Prometheus exporter keeps histogram samples until upkeep folds them in;
/// every 5 s keeps that memory small without costing anything measurable.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Why a client connection was refused, the `reason` label of
/// [`MYSQL_CLIENT_CONNECTIONS_REJECTED_TOTAL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    MaxConnections,
    UserMaxConnections,
    AuthFailed,
    HandshakeTimeout,
    ProtocolError,
    TlsRequired,
    BackendUnavailable,
}

/// Pre-registered handles for the MySQL proxy's per-connection and per-query
/// metrics: incrementing one is an atomic add, with no label formatting or
/// registry lookup. Create once after [`install`]; clones share the handles.
#[derive(Clone, Debug)]
pub struct MysqlMetrics {
    pub client_connections: Gauge,
    pub client_connections_total: Counter,
    pub client_bytes_received: Counter,
    pub client_bytes_sent: Counter,
    pub query_duration: Histogram,
    pub pool_resets: Counter,
    /// Indexed by [`command_index`].
    commands: [Counter; COMMAND_LABELS.len()],
    /// Indexed by `RejectReason as usize`.
    rejected: [Counter; RejectReason::ALL.len()],
    /// Per backend, indexed by `Reason as usize`. Registered on first use of
    /// a backend, then a map lookup and an atomic add per statement.
    routed: std::sync::Arc<dashmap::DashMap<String, Vec<Counter>>>,
}

/// The process-wide handle. The `metrics` facade has one global recorder per
/// process, so this is global too; a `OnceLock` lets every daemon started in one
/// process (the tests start several) share it instead of failing to install.
static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder as the global `metrics` recorder (once per
/// process), describes every metric, and returns a handle to render them.
///
/// If some other recorder was installed first, the returned handle renders
/// nothing; that only happens in a program embedding tandem next to its own.
pub fn install() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
                .expect("latency buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            if let Err(e) = ::metrics::set_global_recorder(recorder) {
                tracing::warn!("metrics will not be exported: {e}");
            }
            describe();
            gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        })
        .clone()
}

/// Describes every metric to the installed recorder (`# HELP` lines and units).
pub fn describe() {
    http::describe();
    describe_gauge!(VRRP_STATE, "1 for the VRRP instance's current state");
    describe_gauge!(VRRP_PRIORITY, "Effective VRRP priority of the instance");
    describe_counter!(VRRP_TRANSITIONS_TOTAL, "VRRP state changes, by new state");
    describe_counter!(VRRP_ADVERTS_SENT_TOTAL, "VRRP adverts sent");
    describe_counter!(VRRP_ADVERTS_RECEIVED_TOTAL, "Valid VRRP adverts received");
    describe_counter!(
        VRRP_INVALID_PACKETS_TOTAL,
        "VRRP datagrams dropped, by reason"
    );
    describe_counter!(
        VRRP_DB_ACTION_ERRORS_TOTAL,
        "VRRP database promote/fence actions that failed"
    );
    describe_gauge!(
        MYSQL_CLIENT_CONNECTIONS,
        Unit::Count,
        "MySQL client connections open now."
    );
    describe_counter!(
        MYSQL_CLIENT_CONNECTIONS_TOTAL,
        Unit::Count,
        "MySQL client connections accepted."
    );
    describe_counter!(
        MYSQL_CLIENT_CONNECTIONS_REJECTED_TOTAL,
        Unit::Count,
        "MySQL client connections refused, by reason."
    );
    describe_counter!(
        MYSQL_COMMANDS_TOTAL,
        Unit::Count,
        "MySQL commands received from clients, by command."
    );
    describe_counter!(
        MYSQL_CLIENT_BYTES_RECEIVED_TOTAL,
        Unit::Bytes,
        "Bytes read from MySQL clients."
    );
    describe_counter!(
        MYSQL_CLIENT_BYTES_SENT_TOTAL,
        Unit::Bytes,
        "Bytes written to MySQL clients."
    );
    describe_counter!(
        MYSQL_BACKEND_CONNECTIONS_TOTAL,
        Unit::Count,
        "Connections opened to a MySQL backend."
    );
    describe_counter!(
        MYSQL_BACKEND_CONNECT_ERRORS_TOTAL,
        Unit::Count,
        "Failed attempts to connect or authenticate to a MySQL backend."
    );
    describe_counter!(
        MYSQL_POOL_TIMEOUTS_TOTAL,
        Unit::Count,
        "Statements that waited acquire_timeout_ms for a pooled backend connection and failed."
    );
    describe_counter!(
        MYSQL_POOL_RESETS_TOTAL,
        Unit::Count,
        "Pooled connections reset (COM_RESET_CONNECTION) before another session used them."
    );
    describe_gauge!(
        MYSQL_POOL_CONNECTIONS,
        "Pooled backend connections by backend and state (open, idle, waiting sessions)."
    );
    describe_counter!(
        MYSQL_CONSISTENCY_READS_TOTAL,
        Unit::Count,
        "Reads after a write under session/global consistency, by where they ran (replica, replica_waited, primary)."
    );
    describe_counter!(
        MYSQL_ROUTED_TOTAL,
        Unit::Count,
        "MySQL statements routed, by backend and by the reason for the choice."
    );
    describe_gauge!(
        MYSQL_BACKEND_STATE,
        "1 for the backend's current state (up, lagging, down, maintenance, draining), 0 otherwise."
    );
    describe_gauge!(
        MYSQL_BACKEND_SERVING,
        "1 when the backend takes new reads, 0 otherwise."
    );
    describe_gauge!(
        MYSQL_BACKEND_PRIMARY,
        "1 for the primary (configured or discovered), 0 otherwise."
    );
    describe_gauge!(
        MYSQL_REPLICATION_LAG_SECONDS,
        Unit::Seconds,
        "Seconds_Behind_Master of a replica; NaN when NULL or not replicating."
    );
    describe_gauge!(
        MYSQL_REPLICATION_LAG_MILLISECONDS,
        Unit::Milliseconds,
        "Replication lag routing uses (heartbeat when enabled); NaN when unknown."
    );
    describe_gauge!(
        MYSQL_BACKEND_WRITABLE,
        "1 when the backend is up with read_only = OFF; sum above 1 is an alarm."
    );
    describe_counter!(
        MYSQL_MONITOR_CHECK_ERRORS_TOTAL,
        Unit::Count,
        "Failed monitor checks of a MySQL backend."
    );
    describe_gauge!(
        MYSQL_WRITABLE_BACKENDS,
        Unit::Count,
        "Backends up with read_only = OFF; more than 1 is an alarm (writes stay on the known primary)."
    );
    describe_counter!(
        MYSQL_HEARTBEAT_ERRORS_TOTAL,
        Unit::Count,
        "Failed heartbeat writes on the primary."
    );
    describe_histogram!(
        MYSQL_QUERY_DURATION_SECONDS,
        Unit::Seconds,
        "Time from a MySQL command received to the last byte of its response sent."
    );
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the version label is the running tandem version."
    );
}

/// Runs the recorder's upkeep every 5 s until `shutdown` is cancelled.
pub async fn upkeep(handle: PrometheusHandle, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => handle.run_upkeep(),
        }
    }
}

/// The position in [`COMMAND_LABELS`] of a MySQL command byte (`COM_*`, the
/// first payload byte of a command packet; MySQL docs "Text Protocol",
/// "Prepared Statements", "Utility Commands").
pub fn command_index(cmd_byte: u8) -> usize {
    match cmd_byte {
        0x03 => 0,  // COM_QUERY
        0x02 => 1,  // COM_INIT_DB
        0x0e => 2,  // COM_PING
        0x01 => 3,  // COM_QUIT
        0x04 => 4,  // COM_FIELD_LIST
        0x09 => 5,  // COM_STATISTICS
        0x1b => 6,  // COM_SET_OPTION
        0x1f => 7,  // COM_RESET_CONNECTION
        0x11 => 8,  // COM_CHANGE_USER
        0x16 => 9,  // COM_STMT_PREPARE
        0x17 => 10, // COM_STMT_EXECUTE
        0x18 => 11, // COM_STMT_SEND_LONG_DATA
        0x19 => 12, // COM_STMT_CLOSE
        0x1a => 13, // COM_STMT_RESET
        0x1c => 14, // COM_STMT_FETCH
        0x0c => 15, // COM_PROCESS_KILL
        _ => 16,
    }
}

// === impl RejectReason ===

impl RejectReason {
    /// Every reason, in declaration order (`ALL[r as usize] == r`).
    pub const ALL: [RejectReason; 7] = [
        RejectReason::MaxConnections,
        RejectReason::UserMaxConnections,
        RejectReason::AuthFailed,
        RejectReason::HandshakeTimeout,
        RejectReason::ProtocolError,
        RejectReason::TlsRequired,
        RejectReason::BackendUnavailable,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::MaxConnections => "max_connections",
            RejectReason::UserMaxConnections => "user_max_connections",
            RejectReason::AuthFailed => "auth_failed",
            RejectReason::HandshakeTimeout => "handshake_timeout",
            RejectReason::ProtocolError => "protocol_error",
            RejectReason::TlsRequired => "tls_required",
            RejectReason::BackendUnavailable => "backend_unavailable",
        }
    }
}

// === impl MysqlMetrics ===

impl MysqlMetrics {
    /// Registers every handle with the global recorder; every label value
    /// then shows in `/metrics` from the start, at 0.
    pub fn new() -> Self {
        MysqlMetrics {
            client_connections: gauge!(MYSQL_CLIENT_CONNECTIONS),
            client_connections_total: counter!(MYSQL_CLIENT_CONNECTIONS_TOTAL),
            client_bytes_received: counter!(MYSQL_CLIENT_BYTES_RECEIVED_TOTAL),
            client_bytes_sent: counter!(MYSQL_CLIENT_BYTES_SENT_TOTAL),
            query_duration: histogram!(MYSQL_QUERY_DURATION_SECONDS),
            pool_resets: counter!(MYSQL_POOL_RESETS_TOTAL),
            commands: COMMAND_LABELS
                .map(|label| counter!(MYSQL_COMMANDS_TOTAL, "command" => label)),
            rejected: RejectReason::ALL
                .map(|r| counter!(MYSQL_CLIENT_CONNECTIONS_REJECTED_TOTAL, "reason" => r.as_str())),
            routed: Default::default(),
        }
    }

    /// Counts a statement routed to `backend` for `reason`.
    pub fn routed(&self, backend: &str, reason: crate::mysql::router::Reason) {
        if let Some(counters) = self.routed.get(backend) {
            counters[reason as usize].increment(1);
            return;
        }
        let counters: Vec<Counter> = crate::mysql::router::Reason::ALL
            .iter()
            .map(|r| {
                counter!(MYSQL_ROUTED_TOTAL, "backend" => backend.to_owned(), "reason" => r.as_str())
            })
            .collect();
        counters[reason as usize].increment(1);
        self.routed.insert(backend.to_owned(), counters);
    }

    /// The counter for a command byte (`COM_*`); unknown bytes count as "other".
    pub fn command(&self, cmd_byte: u8) -> &Counter {
        &self.commands[command_index(cmd_byte)]
    }

    /// The counter for a refused connection.
    pub fn rejected(&self, reason: RejectReason) -> &Counter {
        &self.rejected[reason as usize]
    }

    /// Counter of connections opened to `backend`. Looked up by name on each
    /// call: backend connections are pooled, so this is not per query.
    pub fn backend_connection(&self, backend: &str) -> Counter {
        counter!(MYSQL_BACKEND_CONNECTIONS_TOTAL, "backend" => backend.to_owned())
    }

    /// Counter of failed connection attempts to `backend`.
    pub fn backend_connect_error(&self, backend: &str) -> Counter {
        counter!(MYSQL_BACKEND_CONNECT_ERRORS_TOTAL, "backend" => backend.to_owned())
    }

    pub fn pool_timeout(&self, backend: &str) -> Counter {
        counter!(MYSQL_POOL_TIMEOUTS_TOTAL, "backend" => backend.to_owned())
    }

    /// Pool sizes of `backend`, set by the status/metrics refresh.
    pub fn pool_gauge(&self, backend: &str, state: &'static str) -> Gauge {
        gauge!(MYSQL_POOL_CONNECTIONS, "backend" => backend.to_owned(), "state" => state)
    }

    /// A read after a write under session/global consistency ran `where`.
    pub fn consistency_read(&self, place: &'static str) -> Counter {
        counter!(MYSQL_CONSISTENCY_READS_TOTAL, "served_by" => place)
    }
}

impl Default for MysqlMetrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_bytes_map_to_their_labels() {
        let cases = [
            (0x03, "query"),
            (0x02, "init_db"),
            (0x0e, "ping"),
            (0x01, "quit"),
            (0x04, "field_list"),
            (0x09, "statistics"),
            (0x1b, "set_option"),
            (0x1f, "reset_connection"),
            (0x11, "change_user"),
            (0x16, "stmt_prepare"),
            (0x17, "stmt_execute"),
            (0x18, "stmt_send_long_data"),
            (0x19, "stmt_close"),
            (0x1a, "stmt_reset"),
            (0x1c, "stmt_fetch"),
            (0x0c, "process_kill"),
            (0x00, "other"),
            (0x1d, "other"),
            (0xff, "other"),
        ];
        for (byte, label) in cases {
            assert_eq!(COMMAND_LABELS[command_index(byte)], label, "{byte:#04x}");
        }
    }

    #[test]
    fn reject_reasons_index_their_own_position() {
        for (i, r) in RejectReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        let mut labels: Vec<_> = RejectReason::ALL.iter().map(|r| r.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), RejectReason::ALL.len());
    }

    // The only test touching the global recorder: others in the crate may
    // count too, so it checks presence, not exact values.
    #[test]
    fn install_is_idempotent_and_renders_registered_metrics() {
        let first = install();
        let second = install();
        let m = MysqlMetrics::new();
        m.command(0x03).increment(1);
        m.rejected(RejectReason::TlsRequired).increment(1);
        m.backend_connection("db1").increment(1);
        m.query_duration.record(0.003);
        m.client_connections.increment(1.0);
        let text = second.render();
        assert_eq!(first.render().lines().count(), text.lines().count());
        for needle in [
            "# HELP tandem_mysql_commands_total MySQL commands received",
            "tandem_mysql_commands_total{command=\"query\"}",
            "tandem_mysql_commands_total{command=\"stmt_fetch\"} ",
            "tandem_mysql_client_connections_rejected_total{reason=\"tls_required\"}",
            "tandem_mysql_backend_connections_total{backend=\"db1\"}",
            "tandem_mysql_query_duration_seconds_bucket{le=\"0.0001\"}",
            "tandem_mysql_query_duration_seconds_bucket{le=\"10\"}",
            "tandem_mysql_client_connections ",
            &format!(
                "tandem_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            ),
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }

    #[tokio::test]
    async fn upkeep_stops_when_cancelled() {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(upkeep(install(), shutdown.clone()));
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("upkeep returns after cancel")
            .unwrap();
    }
}
