//! Metric names and descriptions of the HTTP load balancer (`src/http_lb`).

use ::metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

/// Counter {frontend, server, class}: responses sent to clients, by status
/// class (`1xx` .. `5xx`); `server="-"` for answers tandem made itself (503 ...).
pub const HTTP_RESPONSES_TOTAL: &str = "tandem_http_responses_total";
/// Histogram {frontend}: request received to last response byte sent.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "tandem_http_request_duration_seconds";
/// Gauge {frontend}: client connections open now.
pub const HTTP_CLIENT_CONNECTIONS: &str = "tandem_http_client_connections";
/// Counter {frontend}: client connections accepted.
pub const HTTP_CLIENT_CONNECTIONS_TOTAL: &str = "tandem_http_client_connections_total";
/// Gauge {frontend, server}: requests in flight on a server (refreshed every second).
pub const HTTP_SERVER_ACTIVE_REQUESTS: &str = "tandem_http_server_active_requests";
/// Gauge {frontend, server, state}: 1 for the current state (`up`, `down`,
/// `drain`, `maintenance`), 0 for the others.
pub const HTTP_SERVER_STATE: &str = "tandem_http_server_state";
/// Counter {frontend, server, result}: active health checks, `pass` or `fail`.
pub const HTTP_CHECKS_TOTAL: &str = "tandem_http_checks_total";
/// Counter {frontend}: requests sent again to another server.
pub const HTTP_RETRIES_TOTAL: &str = "tandem_http_retries_total";
/// Counter {frontend, server}: passive ejections.
pub const HTTP_EJECTIONS_TOTAL: &str = "tandem_http_ejections_total";

/// Describes the HTTP metrics to the installed recorder.
pub fn describe() {
    describe_counter!(
        HTTP_RESPONSES_TOTAL,
        Unit::Count,
        "HTTP responses sent to clients, by frontend, server (- for tandem's own) and status class."
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Time from an HTTP request received to the last byte of its response sent."
    );
    describe_gauge!(
        HTTP_CLIENT_CONNECTIONS,
        Unit::Count,
        "HTTP client connections open now, by frontend."
    );
    describe_counter!(
        HTTP_CLIENT_CONNECTIONS_TOTAL,
        Unit::Count,
        "HTTP client connections accepted, by frontend."
    );
    describe_gauge!(
        HTTP_SERVER_ACTIVE_REQUESTS,
        Unit::Count,
        "HTTP requests in flight on a server."
    );
    describe_gauge!(
        HTTP_SERVER_STATE,
        "1 for the HTTP server's current state (up, down, drain, maintenance), 0 otherwise."
    );
    describe_counter!(
        HTTP_CHECKS_TOTAL,
        Unit::Count,
        "Active health checks of an HTTP server, by result (pass, fail)."
    );
    describe_counter!(
        HTTP_RETRIES_TOTAL,
        Unit::Count,
        "HTTP requests sent again to another server after a safe failure."
    );
    describe_counter!(
        HTTP_EJECTIONS_TOTAL,
        Unit::Count,
        "HTTP servers taken out of rotation after consecutive errors."
    );
}
