//! The backend monitor: one task per backend checks it every `interval_ms`
//! ([`probe`](super::probe)), feeds the pure judgement
//! ([`Cluster`]), and publishes a new topology snapshot when
//! something routing cares about changed. An optional task writes the
//! heartbeat ([`heartbeat`]).
//!
//! Operators drain a backend or put it in maintenance through
//! [`Monitor::set_mode`] (the admin API); that re-judges and publishes at
//! once, without waiting for a check.
//!
//! A snapshot is published when a backend's role, state, serving flag,
//! reason, read share, GTID position or lag (in 100 ms steps) changed; the
//! check details go to each backend's `BackendHealth` for `/status`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::decide::{AdminMode, Cluster, Evaluation, Policy};
use super::health::{CheckDetail, Sample};
use super::probe::Prober;
use super::{heartbeat, Backend, BackendState, Snapshot, Topology};
use crate::config::{MonitorConfig, MysqlConfig, Role};
use crate::metrics as m;
use crate::mysql::backend::BackendTls;

/// Why an operator's request was refused.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("no backend named {0:?}")]
    UnknownBackend(String),
    #[error("{0}")]
    Refused(String),
}

/// The monitor of one MySQL listener's backends.
pub struct Monitor {
    topology: Arc<Topology>,
    config: Option<MonitorConfig>,
    tls: Option<Arc<BackendTls>>,
    // Std mutex: held for one pure judgement (microseconds) by a check or an
    // admin request, never across an await; both must see one order.
    state: Mutex<State>,
    /// How many backends have been checked at least once (start-up waits).
    checked: watch::Sender<usize>,
}

struct State {
    cluster: Cluster,
    errors: Vec<u64>,
    seen: Vec<bool>,
    alarm: bool,
}

const STATES: [(BackendState, &str); 5] = [
    (BackendState::Up, "up"),
    (BackendState::Lagging, "lagging"),
    (BackendState::Down, "down"),
    (BackendState::Maintenance, "maintenance"),
    (BackendState::Draining, "draining"),
];

// === impl Monitor ===

impl Monitor {
    /// A monitor for `mysql`'s backends; checks only run after [`Monitor::start`],
    /// and only with a `[mysql.monitor]` section (the admin modes work without).
    pub fn new(
        topology: Arc<Topology>,
        mysql: &MysqlConfig,
        tls: Option<Arc<BackendTls>>,
    ) -> Arc<Monitor> {
        let policy = mysql
            .monitor
            .as_ref()
            .map(Policy::from_config)
            .unwrap_or(Policy {
                rise: 2,
                fall: 3,
                max_lag_ms: 0,
                min_serving: 0,
                lag_weighting: false,
                monitored: false,
                heartbeat_fresh_ms: 0,
                max_staleness_ms: 0,
            });
        let n = mysql.backends.len();
        Arc::new(Monitor {
            topology,
            config: mysql.monitor.clone(),
            tls,
            state: Mutex::new(State {
                cluster: Cluster::new(&mysql.backends, policy),
                errors: vec![0; n],
                seen: vec![false; n],
                alarm: false,
            }),
            checked: watch::Sender::new(0),
        })
    }

    /// Spawns one checking task per backend, and the heartbeat writer when
    /// configured. Nothing without `[mysql.monitor]`.
    pub fn start(self: &Arc<Self>, tracker: &TaskTracker, shutdown: &CancellationToken) {
        let Some(cfg) = &self.config else {
            return;
        };
        let members: Vec<(String, String)> = {
            let st = self.lock();
            st.cluster
                .members
                .iter()
                .map(|m| (m.name.clone(), m.address.clone()))
                .collect()
        };
        let interval = Duration::from_millis(cfg.interval_ms);
        for (i, (name, address)) in members.into_iter().enumerate() {
            let prober = Prober::new(&name, &address, cfg, self.tls.clone());
            tracker.spawn(self.clone().watch(i, prober, interval, shutdown.clone()));
        }
        if cfg.heartbeat_interval_ms > 0 {
            let prober = Prober::new("", "", cfg, self.tls.clone());
            tracker.spawn(heartbeat::run(
                self.topology.clone(),
                prober,
                Duration::from_millis(cfg.heartbeat_interval_ms),
                shutdown.clone(),
            ));
        }
    }

    /// Waits until every backend was checked once, or a check's time bound
    /// passed, so the first clients are routed by checked states.
    pub async fn first_checks(&self) {
        let Some(cfg) = &self.config else {
            return;
        };
        let n = self.lock().seen.len();
        let bound = Duration::from_millis(cfg.connect_timeout_ms + cfg.query_timeout_ms + 100);
        let mut rx = self.checked.subscribe();
        let _ = tokio::time::timeout(bound, rx.wait_for(|c| *c >= n)).await;
    }

    /// Sets an operator's mode on backend `name` and publishes at once;
    /// returns the backend as the new snapshot has it. The primary cannot be
    /// drained or put in maintenance: writes would have nowhere to go.
    pub fn set_mode(&self, name: &str, mode: AdminMode) -> Result<serde_json::Value, MonitorError> {
        let mut st = self.lock();
        let i = st
            .cluster
            .index(name)
            .ok_or_else(|| MonitorError::UnknownBackend(name.to_string()))?;
        if mode != AdminMode::Ready && st.cluster.known_primary == Some(i) {
            return Err(MonitorError::Refused(format!(
                "{name} is the primary: writes would have nowhere to go; \
                 make another backend the primary first"
            )));
        }
        if st.cluster.members[i].mode != mode {
            tracing::warn!(backend = %name, ?mode, "backend mode set through the admin API");
        }
        st.cluster.members[i].mode = mode;
        let eval = st.cluster.evaluate();
        self.publish(&mut st, &eval);
        let snap = self.topology.load();
        let b = snap.by_name(name).map(|b| serde_json::to_value(&**b));
        Ok(b.and_then(Result::ok).unwrap_or_default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks backend `i` every `interval` until shutdown.
    async fn watch(
        self: Arc<Self>,
        i: usize,
        mut prober: Prober,
        interval: Duration,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let started = Instant::now();
            let at_unix_ms = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            // Bounded inside (connect and query timeouts).
            let sample = tokio::select! {
                _ = shutdown.cancelled() => return,
                s = prober.check() => s,
            };
            self.record(i, &sample, started, at_unix_ms);
        }
    }

    /// Feeds one check into the judgement and publishes what changed.
    fn record(&self, i: usize, sample: &Sample, started: Instant, at_unix_ms: u64) {
        let now = Instant::now();
        let mut st = self.lock();
        let name = st.cluster.members[i].name.clone();
        if let Sample::Failed(e) = sample {
            st.errors[i] += 1;
            ::metrics::counter!(m::MYSQL_MONITOR_CHECK_ERRORS_TOTAL, "backend" => name.clone())
                .increment(1);
            tracing::debug!(backend = %name, error = %e, "monitor check failed");
        }
        let changed = st.cluster.observe(i, sample, now);
        let eval = st.cluster.evaluate();
        let t = &st.cluster.members[i].tracker;
        let detail = CheckDetail {
            at_unix_ms,
            duration_ms: now.saturating_duration_since(started).as_millis() as u64,
            ok: matches!(sample, Sample::Ok(_)),
            error: t.last_error.clone(),
            errors_total: st.errors[i],
            lag_seconds: t.last.as_ref().and_then(|o| o.seconds_behind()),
            lag_ms: eval.decisions[i].lag_ms,
            last_good: t.last.clone(),
        };
        if let Some(b) = self.topology.load().by_name(&name) {
            if changed == Some(true) {
                // The monitor reached it: forget a session's connect backoff.
                b.health.mark_up();
            }
            b.health.set_detail(detail);
        }
        self.publish(&mut st, &eval);
        if !st.seen[i] {
            st.seen[i] = true;
            self.checked.send_modify(|n| *n += 1);
        }
    }

    /// Publishes a snapshot when a decision differs from the current one,
    /// and updates the gauges and the writable alarm.
    fn publish(&self, st: &mut State, eval: &Evaluation) {
        let snap = self.topology.load();
        let mut changed = false;
        let backends: Vec<Arc<Backend>> = snap
            .backends
            .iter()
            .map(|b| {
                let Some(i) = st.cluster.index(&b.name) else {
                    return b.clone();
                };
                let next = judged(b, st, i, eval);
                if same(b, &next) {
                    return b.clone();
                }
                log_change(b, &next);
                changed = true;
                Arc::new(next)
            })
            .collect();
        for b in &backends {
            gauges(b);
        }
        if changed {
            self.topology.publish(Snapshot {
                backends,
                generation: 0,
            });
        }
        self.writable_alarm(st, eval);
    }

    /// Two writable backends: error log once, gauges, and `/status`.
    fn writable_alarm(&self, st: &mut State, eval: &Evaluation) {
        ::metrics::gauge!(m::MYSQL_WRITABLE_BACKENDS).set(eval.writable.len() as f64);
        for (i, member) in st.cluster.members.iter().enumerate() {
            let w = if eval.writable.contains(&i) { 1.0 } else { 0.0 };
            ::metrics::gauge!(m::MYSQL_BACKEND_WRITABLE, "backend" => member.name.clone()).set(w);
        }
        let names: Vec<&str> = eval
            .writable
            .iter()
            .map(|&i| st.cluster.members[i].name.as_str())
            .collect();
        let primary = eval.primary.map(|p| st.cluster.members[p].name.as_str());
        let alarm = names.len() > 1;
        if alarm && !st.alarm {
            tracing::error!(writable = ?names, primary = ?primary,
                "more than one backend is writable (read_only = OFF): writes stay on the known primary");
        }
        self.topology.set_summary(serde_json::json!({
            "monitored": self.config.is_some(),
            "writable_backends": names,
            "writable_alarm": alarm,
        }));
        st.alarm = alarm;
    }
}

/// Backend `b` as decision `i` of `eval` judges it.
fn judged(b: &Backend, st: &State, i: usize, eval: &Evaluation) -> Backend {
    let d = &eval.decisions[i];
    let gtid = st.cluster.members[i]
        .tracker
        .last
        .as_ref()
        .and_then(|o| o.gtid_current.clone());
    Backend {
        role: d.role,
        state: d.state,
        serving: d.serving,
        lag_ms: d.lag_ms,
        gtid_current: gtid,
        reason: d.reason.clone(),
        read_share: d.read_share,
        ..b.clone()
    }
}

/// Equal as far as routing cares (lag in 100 ms steps).
fn same(a: &Backend, b: &Backend) -> bool {
    a.role == b.role
        && a.state == b.state
        && a.serving == b.serving
        && a.reason == b.reason
        && a.read_share == b.read_share
        && a.lag_ms.map(|l| l / 100) == b.lag_ms.map(|l| l / 100)
        && a.gtid_current.as_deref() == b.gtid_current.as_deref()
}

fn log_change(old: &Backend, new: &Backend) {
    if old.role != new.role && new.role == Role::Primary {
        tracing::warn!(backend = %new.name, "backend is now the primary");
    }
    if old.state != new.state || old.serving != new.serving {
        let reason = new.reason.as_deref().unwrap_or("");
        let (name, from, to, serving) = (&new.name, old.state, new.state, new.serving);
        if serving && to == BackendState::Up {
            tracing::info!(backend = %name, ?from, ?to, serving, "backend state changed");
        } else {
            tracing::warn!(backend = %name, ?from, ?to, serving, reason, "backend state changed");
        }
    }
}

fn gauges(b: &Backend) {
    let name = b.name.clone();
    for (state, label) in STATES {
        let v = if b.state == state { 1.0 } else { 0.0 };
        ::metrics::gauge!(m::MYSQL_BACKEND_STATE, "backend" => name.clone(), "state" => label)
            .set(v);
    }
    let flag = |x: bool| if x { 1.0 } else { 0.0 };
    ::metrics::gauge!(m::MYSQL_BACKEND_SERVING, "backend" => name.clone()).set(flag(b.serving));
    ::metrics::gauge!(m::MYSQL_BACKEND_PRIMARY, "backend" => name.clone())
        .set(flag(b.role == Role::Primary));
    let seconds = b
        .health
        .detail()
        .and_then(|d| d.lag_seconds)
        .filter(|_| b.role == Role::Replica);
    ::metrics::gauge!(m::MYSQL_REPLICATION_LAG_SECONDS, "backend" => name.clone())
        .set(seconds.map_or(f64::NAN, |s| s as f64));
    ::metrics::gauge!(m::MYSQL_REPLICATION_LAG_MILLISECONDS, "backend" => name)
        .set(b.lag_ms.map_or(f64::NAN, |l| l as f64));
}
