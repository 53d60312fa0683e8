//! The backends and their roles, as one immutable snapshot.
//!
//! Roles change at run time (failover, switchover, config reload), so nothing
//! keeps a `&Backend` across decisions: every decision loads the current
//! snapshot once (`ArcSwap::load`, a few atomic ops, no lock, no deep clone)
//! and uses it for that decision only. The monitor ([`monitor`]) publishes
//! new snapshots; readers never wait for it.
//!
//! ```text
//!  probe (I/O, per backend) ─Sample─> decide::Cluster (pure) ─Decision─> Snapshot ─ArcSwap─> router
//!                                          ▲                     └─ CheckDetail ─> /status
//!                    admin API (drain...) ─┘
//! ```

pub mod decide;
pub mod gtid;
pub mod health;
pub mod heartbeat;
pub mod monitor;
pub mod probe;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use serde::Serialize;

use crate::config::{BackendConfig, ConfiguredRole, Role};
use gtid::Gtid;
use health::CheckDetail;

/// One backend server as the proxy sees it. The monitor's judgement fields
/// (`role`, `state`, `serving`, `lag_ms`, `gtid_current`, `reason`) are
/// values of this snapshot: a new judgement is a new snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct Backend {
    pub name: String,
    pub address: String,
    /// The effective role (`auto` resolved by the monitor).
    #[serde(serialize_with = "ser_role")]
    pub role: Role,
    #[serde(serialize_with = "ser_configured_role")]
    pub configured_role: ConfiguredRole,
    pub weight: u32,
    /// On the same host as this tandem (`balance = "prefer_local"`).
    pub local: bool,
    pub state: BackendState,
    /// May take new read decisions (up, or lagging but kept by
    /// `min_serving_replicas`; never down, draining, in maintenance or broken).
    pub serving: bool,
    /// How far behind the primary; `None` = unknown (broken replication or
    /// not checked yet); the primary's is 0.
    pub lag_ms: Option<u64>,
    /// MariaDB `gtid_current_pos` / MySQL `gtid_executed` as last seen.
    #[serde(serialize_with = "ser_gtid")]
    pub gtid_current: Option<Arc<Gtid>>,
    /// Why the backend is in its state (none when up and serving).
    pub reason: Option<Arc<str>>,
    /// Share of reads in permille of `weight` (1000 unless lag weighting).
    pub read_share: u32,
    /// Live health, shared by every snapshot that holds this backend.
    #[serde(skip)]
    pub health: Arc<BackendHealth>,
}

/// A backend's state, as the monitor (and the operator) decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendState {
    Up,
    /// A replica too far behind, or whose replication is broken.
    Lagging,
    Down,
    /// Set through the admin API: no new routing decisions.
    Maintenance,
    /// Set through the admin API: no new routing decisions, in-flight work finishes.
    Draining,
}

/// What the data path learns about a backend as it uses it, and the
/// monitor's last check. Atomics: updated by every session on every worker,
/// read by every routing decision, never worth a lock.
#[derive(Debug, Default)]
pub struct BackendHealth {
    /// Milliseconds since [`epoch`] until which the backend is skipped
    /// (0 = usable), set when a connect fails.
    down_until_ms: AtomicU64,
    /// Statements in flight on this backend from this node.
    outstanding: AtomicU32,
    /// Milliseconds since [`epoch`] until which reads that must see a
    /// session's writes skip this replica: it just failed to catch up
    /// within `consistency_timeout_ms` (0 = not avoided).
    behind_until_ms: AtomicU64,
    /// The monitor's last check, for `/status`. ArcSwap: written once per
    /// check by the monitor, read by `/status` without blocking it.
    detail: ArcSwapOption<CheckDetail>,
}

/// An immutable view of all backends.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub backends: Vec<Arc<Backend>>,
    /// Bumped on every publish, so readers can tell views apart.
    pub generation: u64,
}

/// The published topology.
pub struct Topology {
    // ArcSwap: read on every routing decision by every session, written
    // rarely by one task; readers must never block on the writer.
    current: ArcSwap<Snapshot>,
    /// The monitor's cluster-wide findings for `/status` (writable backends,
    /// the alarm). ArcSwap: written per check, read by `/status`.
    summary: ArcSwapOption<serde_json::Value>,
    /// Wakes whoever waits for a new snapshot (writes held while no primary
    /// can be reached). Notify: waiters on any runtime, no value to keep.
    changed: tokio::sync::Notify,
}

/// The process-wide reference instant for health deadlines.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn millis_since_epoch(t: Instant) -> u64 {
    t.saturating_duration_since(epoch()).as_millis() as u64
}

// === impl BackendHealth ===

impl BackendHealth {
    /// A read-your-writes wait timed out here: skip this replica for such
    /// reads for `pause` (other reads still use it).
    pub fn mark_behind(&self, now: Instant, pause: Duration) {
        let until = millis_since_epoch(now + pause).max(1);
        self.behind_until_ms.store(until, Ordering::Relaxed);
    }

    /// True while a recent read-your-writes wait timed out here.
    pub fn is_behind(&self, now: Instant) -> bool {
        let until = self.behind_until_ms.load(Ordering::Relaxed);
        until != 0 && millis_since_epoch(now) < until
    }

    /// True unless a recent connect failure put the backend aside.
    pub fn is_usable(&self, now: Instant) -> bool {
        let until = self.down_until_ms.load(Ordering::Relaxed);
        until == 0 || millis_since_epoch(now) >= until
    }

    /// A connect failed: skip this backend for `retry`.
    pub fn mark_down(&self, now: Instant, retry: Duration) {
        let until = millis_since_epoch(now + retry).max(1);
        self.down_until_ms.store(until, Ordering::Relaxed);
    }

    /// When a connect failure's backoff ends (`None`: usable now).
    pub fn usable_at(&self, now: Instant) -> Option<Instant> {
        let until = self.down_until_ms.load(Ordering::Relaxed);
        let now_ms = millis_since_epoch(now);
        (until != 0 && now_ms < until).then(|| now + Duration::from_millis(until - now_ms))
    }

    /// A connect succeeded.
    pub fn mark_up(&self) {
        if self.down_until_ms.load(Ordering::Relaxed) != 0 {
            self.down_until_ms.store(0, Ordering::Relaxed);
        }
    }

    pub fn outstanding(&self) -> u32 {
        self.outstanding.load(Ordering::Relaxed)
    }

    /// The monitor's last check of this backend.
    pub fn detail(&self) -> Option<Arc<CheckDetail>> {
        self.detail.load_full()
    }

    pub fn set_detail(&self, d: CheckDetail) {
        self.detail.store(Some(Arc::new(d)));
    }

    /// Counts a statement in flight until the guard drops.
    pub fn start_statement(self: &Arc<Self>) -> InFlight {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }
}

/// A statement in flight on a backend (for `least_outstanding`).
pub struct InFlight(Arc<BackendHealth>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

fn ser_role<S: serde::Serializer>(r: &Role, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.as_str())
}

fn ser_configured_role<S: serde::Serializer>(r: &ConfiguredRole, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.as_str())
}

fn ser_gtid<S: serde::Serializer>(g: &Option<Arc<Gtid>>, s: S) -> Result<S::Ok, S::Error> {
    match g {
        Some(g) => s.serialize_str(&g.to_string()),
        None => s.serialize_none(),
    }
}

// === impl Backend ===

impl Backend {
    /// May take a new read now: serving, and not set aside by a failed connect.
    pub fn takes_reads(&self, now: Instant) -> bool {
        self.serving && self.health.is_usable(now)
    }

    /// The primary, and not down, draining or in maintenance.
    pub fn takes_writes(&self) -> bool {
        self.role == Role::Primary
            && !matches!(
                self.state,
                BackendState::Down | BackendState::Maintenance | BackendState::Draining
            )
    }
}

// === impl Snapshot ===

impl Snapshot {
    pub fn primary(&self) -> Option<&Arc<Backend>> {
        self.backends.iter().find(|b| b.role == Role::Primary)
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<Backend>> {
        self.backends.iter().find(|b| b.name == name)
    }

    pub fn replicas(&self) -> impl Iterator<Item = &Arc<Backend>> {
        self.backends.iter().filter(|b| b.role == Role::Replica)
    }
}

// === impl Topology ===

impl Topology {
    pub fn from_config(backends: &[BackendConfig]) -> Topology {
        let backends = backends
            .iter()
            .map(|b| {
                Arc::new(Backend {
                    name: b.name.clone(),
                    address: b.address.clone(),
                    role: b.role.initial(),
                    configured_role: b.role,
                    weight: b.weight,
                    local: b.local,
                    state: BackendState::Up,
                    serving: true,
                    lag_ms: None,
                    gtid_current: None,
                    reason: None,
                    read_share: 1000,
                    health: Arc::default(),
                })
            })
            .collect();
        Topology {
            current: ArcSwap::from_pointee(Snapshot {
                backends,
                generation: 1,
            }),
            summary: ArcSwapOption::empty(),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// The current snapshot; hold it for one decision only.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Replaces the snapshot (monitor, failover, reload).
    pub fn publish(&self, mut next: Snapshot) {
        next.generation = self.current.load().generation + 1;
        self.current.store(Arc::new(next));
        self.changed.notify_waiters();
    }

    /// Resolves at the next publish (create it before checking the current
    /// snapshot, so a publish in between is not missed).
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// Records the monitor's cluster-wide findings (shown by `/status`).
    pub fn set_summary(&self, summary: serde_json::Value) {
        self.summary.store(Some(Arc::new(summary)));
    }

    /// Every backend with its role, state, last check and live health, for
    /// `/status`. `pool` is filled by the connection pool when it reports.
    pub fn to_json(&self) -> serde_json::Value {
        let snap = self.current.load_full();
        let now = Instant::now();
        let backends: Vec<serde_json::Value> = snap
            .backends
            .iter()
            .map(|b| {
                let mut v = serde_json::to_value(&**b).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("usable".into(), b.health.is_usable(now).into());
                    o.insert("takes_reads".into(), b.takes_reads(now).into());
                    o.insert("takes_writes".into(), b.takes_writes().into());
                    o.insert("in_flight".into(), b.health.outstanding().into());
                    let detail = b.health.detail();
                    let last = detail.as_ref().and_then(|d| d.last_good.as_ref());
                    let seconds = detail.as_ref().and_then(|d| d.lag_seconds);
                    let seconds = seconds.filter(|_| b.role == Role::Replica);
                    o.insert("lag_seconds".into(), seconds.into());
                    o.insert("read_only".into(), last.map(|l| l.read_only).into());
                    let check = detail.map(|d| d.to_json());
                    o.insert("check".into(), check.unwrap_or_default());
                    o.insert("pool".into(), serde_json::Value::Null);
                }
                v
            })
            .collect();
        let monitor = self.summary.load_full().map(|s| (*s).clone());
        serde_json::json!({
            "generation": snap.generation,
            "primary": snap.primary().map(|p| p.name.clone()),
            "monitor": monitor,
            "backends": backends,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(name: &str, role: Role) -> BackendConfig {
        BackendConfig {
            name: name.into(),
            address: "127.0.0.1:1".into(),
            role: role.into(),
            weight: 1,
            local: false,
        }
    }

    #[test]
    fn primary_is_found_and_publish_bumps_generation() {
        let t = Topology::from_config(&[cfg("a", Role::Replica), cfg("b", Role::Primary)]);
        let s = t.load();
        assert_eq!(s.primary().unwrap().name, "b");
        let mut next = (*s).clone();
        next.backends.reverse();
        t.publish(next);
        assert_eq!(t.load().generation, 2);
        assert_eq!(s.generation, 1, "an old snapshot is unchanged");
    }
}
