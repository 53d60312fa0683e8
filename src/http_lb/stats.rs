//! Pre-registered metric handles of a frontend and its servers: a request
//! costs atomic adds, no label formatting.

use ::metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};

use crate::metrics::http::*;

const STATES: [&str; 4] = ["up", "down", "drain", "maintenance"];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Handles of one frontend.
pub struct FrontendMetrics {
    pub duration: Histogram,
    pub connections: Gauge,
    pub connections_total: Counter,
    pub retries: Counter,
    /// Responses tandem made itself, by class.
    pub local: [Counter; 5],
}

/// Handles of one server.
pub struct ServerMetrics {
    /// By class `1xx` .. `5xx`.
    pub responses: [Counter; 5],
    pub active: Gauge,
    pub check_pass: Counter,
    pub check_fail: Counter,
    pub ejections: Counter,
    state: [Gauge; 4],
}

/// Index into the class arrays of a status code.
pub fn class_index(status: u16) -> usize {
    (usize::from(status / 100)).clamp(1, 5) - 1
}

// === impl FrontendMetrics ===

impl FrontendMetrics {
    pub fn new(frontend: &str) -> Self {
        let f = frontend.to_owned();
        FrontendMetrics {
            duration: histogram!(HTTP_REQUEST_DURATION_SECONDS, "frontend" => f.clone()),
            connections: gauge!(HTTP_CLIENT_CONNECTIONS, "frontend" => f.clone()),
            connections_total: counter!(HTTP_CLIENT_CONNECTIONS_TOTAL, "frontend" => f.clone()),
            retries: counter!(HTTP_RETRIES_TOTAL, "frontend" => f.clone()),
            local: CLASSES.map(|c| {
                counter!(HTTP_RESPONSES_TOTAL, "frontend" => f.clone(), "server" => "-", "class" => c)
            }),
        }
    }
}

// === impl ServerMetrics ===

impl ServerMetrics {
    pub fn new(frontend: &str, server: &str) -> Self {
        let (f, s) = (frontend.to_owned(), server.to_owned());
        let m = ServerMetrics {
            responses: CLASSES.map(|c| {
                counter!(HTTP_RESPONSES_TOTAL, "frontend" => f.clone(), "server" => s.clone(), "class" => c)
            }),
            active: gauge!(HTTP_SERVER_ACTIVE_REQUESTS, "frontend" => f.clone(), "server" => s.clone()),
            check_pass: counter!(HTTP_CHECKS_TOTAL, "frontend" => f.clone(), "server" => s.clone(), "result" => "pass"),
            check_fail: counter!(HTTP_CHECKS_TOTAL, "frontend" => f.clone(), "server" => s.clone(), "result" => "fail"),
            ejections: counter!(HTTP_EJECTIONS_TOTAL, "frontend" => f.clone(), "server" => s.clone()),
            state: STATES.map(|st| {
                gauge!(HTTP_SERVER_STATE, "frontend" => f.clone(), "server" => s.clone(), "state" => st)
            }),
        };
        m.set_state("up");
        m
    }

    pub fn set_state(&self, word: &str) {
        for (g, st) in self.state.iter().zip(STATES) {
            g.set(if st == word { 1.0 } else { 0.0 });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_map_to_classes() {
        for (code, class) in [
            (101, "1xx"),
            (200, "2xx"),
            (304, "3xx"),
            (404, "4xx"),
            (503, "5xx"),
            (999, "5xx"),
        ] {
            assert_eq!(CLASSES[class_index(code)], class);
        }
    }
}
