//! The whole cluster's judgement: which backend is the primary, which state
//! each backend is in, and which replicas take new reads.
//!
//! Pure: checks come in through [`Cluster::observe`] (time as an argument),
//! [`Cluster::evaluate`] returns one [`Decision`] per backend. The monitor
//! turns decisions into a topology snapshot.
//!
//! Order of precedence for a backend's state: an operator's `maintenance`
//! or `drain` (admin API), then `down` (health hysteresis), then for a
//! replica `lagging` (replication broken, or too far behind), else `up`.
//!
//! Primary discovery (`role = "auto"`): the candidates are the auto
//! backends that are up, writable (`read_only = OFF`), replicate from
//! nobody, and are not drained or in maintenance. The known primary stays while it is a candidate; otherwise a
//! single candidate becomes the primary; several candidates are resolved
//! by how many backends replicate from each, and if that ties, the known
//! primary stays (writes never move to a guess). More than one writable
//! backend of any role (maintenance aside) is an alarm (`writable` in the
//! [`Evaluation`]).

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::health::{is_replicating, Lag, LagReference, Sample, Tracker};
use super::BackendState;
use crate::config::{BackendConfig, ConfiguredRole, MonitorConfig, Role};

/// The limits the judgement applies (from `[mysql.monitor]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub rise: u32,
    pub fall: u32,
    /// 0 = no limit.
    pub max_lag_ms: u64,
    pub min_serving: u32,
    pub lag_weighting: bool,
    /// False without `[mysql.monitor]`: backends are never checked, and
    /// that is no reason to report.
    pub monitored: bool,
    /// The heartbeat is trusted while it moved within this (0 = no heartbeat).
    pub heartbeat_fresh_ms: u64,
    /// Replicas cut off from a primary that is down keep serving this long
    /// after the primary was last seen; 0 = forever.
    pub max_staleness_ms: u64,
}

/// What an operator asked for a backend through the admin API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminMode {
    /// Let the monitor decide.
    #[default]
    Ready,
    /// No new routing decisions; statements in flight finish.
    Draining,
    /// Like draining, and meant for work on the server: its health no
    /// longer matters.
    Maintenance,
}

/// One backend as the cluster judgement sees it.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub address: String,
    pub configured: ConfiguredRole,
    pub tracker: Tracker,
    pub mode: AdminMode,
}

/// All backends, their hysteresis, and the known primary.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub members: Vec<Member>,
    pub policy: Policy,
    /// The primary as last decided (or configured).
    pub known_primary: Option<usize>,
    /// The newest heartbeat seen, and when it last moved: a heartbeat that
    /// stopped moving (writes failing, primary gone) says nothing about lag.
    heartbeat: Option<(u64, Instant)>,
    /// When the known primary last passed a check, or (before it ever did)
    /// the first check of anything: the start of a cut-off replica's
    /// staleness.
    primary_seen: Option<Instant>,
    /// The time of the newest check: the judgement's clock.
    clock: Option<Instant>,
}

/// The judgement of one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub role: Role,
    pub state: BackendState,
    /// May take new read decisions.
    pub serving: bool,
    /// Replicas: behind the primary (`None` = unknown/broken); primary: 0.
    pub lag_ms: Option<u64>,
    pub reason: Option<Arc<str>>,
    /// Share of reads in permille of the configured weight (lag weighting).
    pub read_share: u32,
}

/// The judgement of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub decisions: Vec<Decision>,
    pub primary: Option<usize>,
    /// Up backends with `read_only = OFF`; more than one is an alarm.
    pub writable: Vec<usize>,
}

/// Lag weighting scale when there is no lag limit.
const WEIGHTING_SCALE_MS: u64 = 10_000;
/// The smallest read share lag weighting leaves a serving replica (5 %).
const MIN_SHARE: u32 = 50;

// === impl Policy ===

impl Policy {
    pub fn from_config(m: &MonitorConfig) -> Policy {
        Policy {
            rise: m.rise,
            fall: m.fall,
            max_lag_ms: m.max_replication_lag_ms,
            min_serving: m.min_serving_replicas,
            lag_weighting: m.lag_weighting,
            max_staleness_ms: m.max_staleness_ms,
            monitored: true,
            // The primary's check sees each write at most one interval
            // late; three missed writes on top of that means it stopped.
            heartbeat_fresh_ms: match m.heartbeat_interval_ms {
                0 => 0,
                hb => 2 * m.interval_ms + 3 * hb,
            },
        }
    }
}

// === impl Cluster ===

impl Cluster {
    pub fn new(backends: &[BackendConfig], policy: Policy) -> Cluster {
        let members = backends
            .iter()
            .map(|b| Member {
                name: b.name.clone(),
                address: b.address.clone(),
                configured: b.role,
                tracker: Tracker::default(),
                mode: AdminMode::Ready,
            })
            .collect();
        Cluster {
            members,
            policy,
            known_primary: backends
                .iter()
                .position(|b| b.role == ConfiguredRole::Primary),
            heartbeat: None,
            primary_seen: None,
            clock: None,
        }
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.members.iter().position(|m| m.name == name)
    }

    /// Counts one check of backend `i`; returns its new health when it
    /// changed. A replica's lag is judged against the rest of the cluster
    /// as last seen.
    pub fn observe(&mut self, i: usize, sample: &Sample, now: Instant) -> Option<bool> {
        let Policy {
            rise,
            fall,
            max_lag_ms,
            ..
        } = self.policy;
        let changed = self.members[i].tracker.observe(sample, rise, fall);
        self.clock = Some(now);
        let primary_ok = self.known_primary == Some(i) && matches!(sample, Sample::Ok(_));
        if primary_ok || self.primary_seen.is_none() {
            self.primary_seen = Some(now);
        }
        let heartbeat_us = self.fresh_heartbeat(now);
        if self.known_primary == Some(i) {
            self.members[i].tracker.clear_lag();
        } else if matches!(sample, Sample::Ok(_)) {
            let primary_gtid = self
                .known_primary
                .and_then(|p| self.members[p].tracker.last.as_ref()?.gtid_current.clone());
            let refs = LagReference {
                heartbeat_us,
                primary_gtid: primary_gtid.as_deref(),
            };
            self.members[i]
                .tracker
                .judge_lag(refs, max_lag_ms, rise, now);
        }
        changed
    }

    /// The newest heartbeat seen on any backend (the primary's last write),
    /// if it moved recently enough to measure lag against.
    fn fresh_heartbeat(&mut self, now: Instant) -> Option<u64> {
        let newest = self
            .members
            .iter()
            .filter_map(|m| m.tracker.last.as_ref()?.heartbeat_us)
            .max()?;
        match self.heartbeat {
            Some((seen, _)) if seen >= newest => {}
            _ => self.heartbeat = Some((newest, now)),
        }
        let (seen, moved) = self.heartbeat?;
        let fresh = self.policy.heartbeat_fresh_ms;
        let age = now.saturating_duration_since(moved).as_millis() as u64;
        (fresh > 0 && age <= fresh).then_some(seen)
    }

    /// Decides roles, states and serving replicas; remembers the primary.
    pub fn evaluate(&mut self) -> Evaluation {
        let primary = self.discover_primary();
        if primary != self.known_primary {
            if let Some(p) = primary {
                self.members[p].tracker.clear_lag();
            }
            self.known_primary = primary;
        }
        // A server in maintenance may be writable on purpose (the operator
        // is working on it): no alarm for it.
        let writable = (0..self.members.len())
            .filter(|&i| {
                let m = &self.members[i];
                let t = &m.tracker;
                m.mode != AdminMode::Maintenance
                    && t.healthy == Some(true)
                    && t.last.as_ref().is_some_and(|o| !o.read_only)
            })
            .collect();
        let mut decisions: Vec<Decision> = (0..self.members.len())
            .map(|i| self.decide(i, primary == Some(i)))
            .collect();
        keep_min_serving(&mut decisions, self.policy.min_serving);
        Evaluation {
            decisions,
            primary,
            writable,
        }
    }

    fn discover_primary(&self) -> Option<usize> {
        if let Some(fixed) = self
            .members
            .iter()
            .position(|m| m.configured == ConfiguredRole::Primary)
        {
            return Some(fixed);
        }
        let candidates: Vec<usize> = (0..self.members.len())
            .filter(|&i| {
                let m = &self.members[i];
                m.configured == ConfiguredRole::Auto
                    && m.mode == AdminMode::Ready
                    && m.tracker.healthy == Some(true)
                    && m.tracker
                        .last
                        .as_ref()
                        .is_some_and(|o| !o.read_only && !is_replicating(o))
            })
            .collect();
        match candidates.as_slice() {
            [] => self.known_primary,
            [only] => Some(*only),
            _ if self.known_primary.is_some_and(|k| candidates.contains(&k)) => self.known_primary,
            _ => self.most_followed(&candidates).or(self.known_primary),
        }
    }

    /// The candidate most backends replicate from, if exactly one leads.
    fn most_followed(&self, candidates: &[usize]) -> Option<usize> {
        let followers = |c: usize| {
            let address = &self.members[c].address;
            self.members
                .iter()
                .filter(|m| {
                    m.tracker
                        .last
                        .as_ref()
                        .is_some_and(|o| o.replication.iter().any(|ch| &ch.master == address))
                })
                .count()
        };
        let mut counted: Vec<(usize, usize)> =
            candidates.iter().map(|&c| (followers(c), c)).collect();
        counted.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
        match counted.as_slice() {
            [(n, c), rest @ ..] if *n > 0 && rest.first().is_none_or(|r| r.0 < *n) => Some(*c),
            _ => None,
        }
    }

    fn decide(&self, i: usize, is_primary: bool) -> Decision {
        let m = &self.members[i];
        let t = &m.tracker;
        let lag_ms = match (&t.lag, is_primary) {
            (_, true) => Some(0),
            (Some(Lag::Ms(ms)), false) => Some(*ms),
            _ => None,
        };
        let d = |state, serving, reason: Option<Arc<str>>| Decision {
            role: if is_primary {
                Role::Primary
            } else {
                Role::Replica
            },
            state,
            serving,
            lag_ms,
            reason,
            read_share: 1000,
        };
        match (m.mode, t.healthy) {
            (AdminMode::Maintenance, _) => d(
                BackendState::Maintenance,
                false,
                Some("maintenance (admin API)".into()),
            ),
            (AdminMode::Draining, _) => d(
                BackendState::Draining,
                false,
                Some("draining (admin API)".into()),
            ),
            (AdminMode::Ready, Some(false)) => {
                let why = t.last_error.clone();
                d(
                    BackendState::Down,
                    false,
                    why.or_else(|| Some("checks failing".into())),
                )
            }
            (AdminMode::Ready, None) => {
                let why = self.policy.monitored.then(|| "not checked yet".into());
                d(BackendState::Up, true, why)
            }
            (AdminMode::Ready, Some(true)) if is_primary => d(BackendState::Up, true, None),
            (AdminMode::Ready, Some(true)) => {
                let (state, serving, why) = self.replica_state(t);
                let mut replica = d(state, serving, why);
                if serving {
                    replica.read_share = self.read_share(lag_ms);
                }
                replica
            }
        }
    }

    /// An up replica: serving, or lagging and why.
    fn replica_state(&self, t: &Tracker) -> (BackendState, bool, Option<Arc<str>>) {
        match &t.lag {
            Some(Lag::Broken(why)) => (BackendState::Lagging, false, Some(why.clone())),
            Some(Lag::Cut(_)) if self.primary_lost_within_staleness() => (
                BackendState::Up,
                true,
                Some(
                    "its primary is down: serving the newest data there is (max_staleness_ms)"
                        .into(),
                ),
            ),
            Some(Lag::Cut(why)) => (BackendState::Lagging, false, Some(why.clone())),
            Some(Lag::Ms(ms)) if t.lag_excluded => {
                let limit = self.policy.max_lag_ms;
                let why: Arc<str> = if limit != 0 && *ms > limit {
                    "replication lag over max_replication_lag_ms".into()
                } else {
                    format!(
                        "catching up: {} more check(s) within max_replication_lag_ms",
                        t.lag_checks_to_go(self.policy.rise)
                    )
                    .into()
                };
                (BackendState::Lagging, false, Some(why))
            }
            Some(Lag::Ms(_)) => (BackendState::Up, true, None),
            // Up but never judged as a replica: it was the primary until
            // this evaluation. No reads until its next check says how far
            // behind it is.
            None => (
                BackendState::Lagging,
                false,
                Some("no replication check since it stopped being the primary".into()),
            ),
        }
    }

    /// True while the known primary fails its checks (or none is known) and
    /// was last seen within `max_staleness_ms`: a replica cut off from it then
    /// has the newest data there is, and reads never depend on the primary.
    /// A replica cut off from a primary tandem still reaches is only behind.
    fn primary_lost_within_staleness(&self) -> bool {
        let down = match self.known_primary {
            Some(p) => self.members[p].tracker.healthy == Some(false),
            None => true,
        };
        let fresh = match (self.policy.max_staleness_ms, self.clock, self.primary_seen) {
            (0, _, _) => true,
            (limit, Some(now), Some(seen)) => {
                now.saturating_duration_since(seen).as_millis() <= u128::from(limit)
            }
            _ => false,
        };
        down && fresh
    }

    /// Lag weighting: the full share at no lag, falling linearly to
    /// [`MIN_SHARE`] at the limit.
    fn read_share(&self, lag_ms: Option<u64>) -> u32 {
        let (true, Some(lag)) = (self.policy.lag_weighting, lag_ms) else {
            return 1000;
        };
        let scale = match self.policy.max_lag_ms {
            0 => WEIGHTING_SCALE_MS,
            l => l,
        };
        let cut = (1000 - MIN_SHARE) as u64 * lag.min(scale) / scale;
        1000 - cut as u32
    }
}

/// When fewer than `min` replicas serve, the least-behind lagging replicas
/// serve again; a broken one (unknown lag) never does.
fn keep_min_serving(decisions: &mut [Decision], min: u32) {
    let serving = decisions
        .iter()
        .filter(|d| d.role == Role::Replica && d.serving)
        .count();
    let missing = (min as usize).saturating_sub(serving);
    if missing == 0 {
        return;
    }
    let mut spare: Vec<(u64, usize)> = decisions
        .iter()
        .enumerate()
        .filter(|(_, d)| d.role == Role::Replica && d.state == BackendState::Lagging)
        .filter_map(|(i, d)| Some((d.lag_ms?, i)))
        .collect();
    spare.sort_unstable();
    for (_, i) in spare.into_iter().take(missing) {
        decisions[i].serving = true;
        decisions[i].read_share = MIN_SHARE;
        decisions[i].reason = Some("lagging, kept serving by min_serving_replicas".into());
    }
}

#[cfg(test)]
mod tests;
