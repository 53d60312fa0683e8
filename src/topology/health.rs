//! One backend's health as the monitor judges it: what a check saw
//! ([`Sample`]), and the hysteresis that turns a stream of checks into up or
//! down and into "serves reads" or "too far behind" ([`Tracker`]).
//!
//! Pure: no I/O, no clock. Time arrives as an argument, so the tests replay
//! any sequence of checks.
//!
//! Hysteresis, like HAProxy's `rise`/`fall`: an up backend goes down after
//! `fall` failed checks in a row, a down one comes back after `rise` good
//! ones. The very first check decides at once (there is no history to
//! protect). Lag: a replica is excluded at the first check that finds it
//! too far behind or not replicating (a stale read is served the moment it
//! is late), and readmitted after `rise` checks in a row within the limit,
//! so a replica hovering around the limit does not flap.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::gtid::Gtid;

/// What one check of one backend found.
#[derive(Debug, Clone)]
pub enum Sample {
    /// Could not connect, log in, or run the checks in time.
    Failed(Arc<str>),
    Ok(Observation),
}

/// The answers of one successful check.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Observation {
    pub read_only: bool,
    /// One per replication channel (MariaDB multi-source); empty when the
    /// server replicates from nobody.
    pub replication: Vec<Channel>,
    /// Why the replication status could not be read (e.g. a missing
    /// privilege): such a replica's lag is unknown, so it serves no reads.
    pub replication_error: Option<String>,
    /// MariaDB `gtid_current_pos`, MySQL `gtid_executed`.
    #[serde(skip)]
    pub gtid_current: Option<Arc<Gtid>>,
    pub gtid_current_pos: Option<String>,
    pub gtid_slave_pos: Option<String>,
    pub gtid_binlog_pos: Option<String>,
    /// tandem's heartbeat row as this server has it: microseconds since the
    /// Unix epoch by the primary's clock when it was written.
    pub heartbeat_us: Option<u64>,
}

/// One replication channel, from `SHOW ALL SLAVES STATUS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Channel {
    /// MariaDB `Connection_name` ("" for the default channel).
    pub name: String,
    pub io_running: IoState,
    pub sql_running: bool,
    pub seconds_behind_master: Option<u64>,
    pub last_io_error: String,
    pub last_sql_error: String,
    /// `Master_Host:Master_Port`.
    pub master: String,
}

/// `Slave_IO_Running`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IoState {
    Yes,
    Connecting,
    No,
}

/// How far behind a replica is, as far as routing cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lag {
    /// Milliseconds behind the primary.
    Ms(u64),
    /// Not replicating (IO thread stopped, SQL thread stopped on an error,
    /// no replication at all): the lag is unknown and unbounded.
    Broken(Arc<str>),
    /// Cut off from its source: the IO thread is reconnecting. Behind a
    /// primary that is down, its data is the newest there is (the cluster
    /// judgement decides; see `decide.rs`).
    Cut(Arc<str>),
}

/// What the lag judgement needs from the rest of the cluster.
#[derive(Debug, Clone, Copy, Default)]
pub struct LagReference<'a> {
    /// The newest heartbeat seen on any backend: the primary's last write.
    pub heartbeat_us: Option<u64>,
    /// The primary's GTID position, to tell "stopped but nothing to apply".
    pub primary_gtid: Option<&'a Gtid>,
}

/// The monitor's last check of a backend, as `/status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckDetail {
    /// Wall-clock time of the check (milliseconds since the Unix epoch).
    pub at_unix_ms: u64,
    pub duration_ms: u64,
    pub ok: bool,
    pub error: Option<Arc<str>>,
    /// Failed checks since tandem started.
    pub errors_total: u64,
    /// `Seconds_Behind_Master` (the largest over channels).
    pub lag_seconds: Option<u64>,
    /// The lag routing uses (heartbeat when on, else seconds × 1000).
    pub lag_ms: Option<u64>,
    /// The last successful check (kept while the backend is down).
    pub last_good: Option<Observation>,
}

/// Hysteresis state of one backend.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    /// `None` until the first check.
    pub healthy: Option<bool>,
    ok_streak: u32,
    fail_streak: u32,
    /// The last successful check (kept while down, for `/status`).
    pub last: Option<Observation>,
    /// Why the last check failed, if it did.
    pub last_error: Option<Arc<str>>,
    /// The lag of the last good check of a replica.
    pub lag: Option<Lag>,
    /// Excluded for lag until `rise` good lag readings in a row.
    pub lag_excluded: bool,
    lag_ok_streak: u32,
    /// Since when an applier stopped on purpose has had work waiting (lag
    /// estimate when there is no heartbeat).
    behind_since: Option<Instant>,
}

// === impl CheckDetail ===

impl CheckDetail {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

// === impl Observation ===

impl Observation {
    /// `Seconds_Behind_Master`, the largest over channels; `None` when any
    /// is NULL or there is no channel.
    pub fn seconds_behind(&self) -> Option<u64> {
        if self.replication.is_empty() {
            return None;
        }
        self.replication
            .iter()
            .try_fold(0u64, |acc, c| c.seconds_behind_master.map(|s| acc.max(s)))
    }
}

// === impl Tracker ===

impl Tracker {
    /// Counts one check; returns the new health when it changed.
    pub fn observe(&mut self, sample: &Sample, rise: u32, fall: u32) -> Option<bool> {
        let ok = matches!(sample, Sample::Ok(_));
        match sample {
            Sample::Ok(obs) => {
                self.last = Some(obs.clone());
                self.last_error = None;
            }
            Sample::Failed(e) => self.last_error = Some(e.clone()),
        }
        if ok {
            self.ok_streak = self.ok_streak.saturating_add(1);
            self.fail_streak = 0;
        } else {
            self.fail_streak = self.fail_streak.saturating_add(1);
            self.ok_streak = 0;
        }
        let next = match self.healthy {
            None => ok,
            Some(true) => self.fail_streak < fall,
            Some(false) => self.ok_streak >= rise,
        };
        let changed = self.healthy != Some(next);
        self.healthy = Some(next);
        changed.then_some(next)
    }

    /// Judges the lag of the last good check of a replica against `limit_ms`
    /// (0 = no limit). Call once per check, after [`Tracker::observe`].
    pub fn judge_lag(&mut self, refs: LagReference<'_>, limit_ms: u64, rise: u32, now: Instant) {
        let Some(obs) = &self.last else {
            return;
        };
        let lag = lag_of(obs, refs, &mut self.behind_since, now);
        let within = match &lag {
            Lag::Broken(_) | Lag::Cut(_) => false,
            Lag::Ms(ms) => limit_ms == 0 || *ms <= limit_ms,
        };
        if within {
            self.lag_ok_streak = self.lag_ok_streak.saturating_add(1);
            if self.lag_excluded && self.lag_ok_streak >= rise {
                self.lag_excluded = false;
            }
        } else {
            self.lag_ok_streak = 0;
            self.lag_excluded = true;
        }
        self.lag = Some(lag);
    }

    /// Forgets the lag judgement (the backend became the primary).
    pub fn clear_lag(&mut self) {
        self.lag = None;
        self.lag_excluded = false;
        self.lag_ok_streak = 0;
        self.behind_since = None;
    }

    /// Good checks still needed before a lag-excluded replica serves again.
    pub fn lag_checks_to_go(&self, rise: u32) -> u32 {
        rise.saturating_sub(self.lag_ok_streak)
    }
}

// === lag ===

/// True when the server replicates from someone (threads running or trying).
pub fn is_replicating(obs: &Observation) -> bool {
    obs.replication
        .iter()
        .any(|c| c.io_running != IoState::No || c.sql_running)
}

/// The lag of one observation. Order of evidence: a broken channel makes the
/// replica unusable whatever else is known; otherwise the heartbeat (ms,
/// primary clock only) beats `Seconds_Behind_Master` (whole seconds).
fn lag_of(
    obs: &Observation,
    refs: LagReference<'_>,
    behind_since: &mut Option<Instant>,
    now: Instant,
) -> Lag {
    if let Some(e) = &obs.replication_error {
        return Lag::Broken(format!("cannot read the replication status: {e}").into());
    }
    if obs.replication.is_empty() {
        return Lag::Broken("not replicating: no replication channel is configured".into());
    }
    if let Some(broken) = obs.replication.iter().find_map(broken_channel) {
        *behind_since = None;
        return broken;
    }
    let heartbeat = match (refs.heartbeat_us, obs.heartbeat_us) {
        (Some(primary), Some(mine)) => Some(primary.saturating_sub(mine) / 1000),
        _ => None,
    };
    let applier_stopped = obs.replication.iter().any(|c| !c.sql_running);
    if applier_stopped {
        // Stopped on purpose (no error) while the IO thread still fetches:
        // Seconds_Behind_Master is NULL, but the replica only falls behind.
        if let Some(ms) = heartbeat {
            return Lag::Ms(ms);
        }
        let caught_up = match (&obs.gtid_current, refs.primary_gtid) {
            (Some(mine), Some(primary)) => mine.contains(primary),
            _ => false,
        };
        if caught_up {
            *behind_since = None;
            return Lag::Ms(0);
        }
        let since = *behind_since.get_or_insert(now);
        return Lag::Ms(now.saturating_duration_since(since).as_millis() as u64);
    }
    *behind_since = None;
    if let Some(ms) = heartbeat {
        return Lag::Ms(ms);
    }
    match obs.seconds_behind() {
        Some(s) => Lag::Ms(s.saturating_mul(1000)),
        None => Lag::Broken("replication lag unknown (Seconds_Behind_Master is NULL)".into()),
    }
}

/// Why a channel cannot bring new data, if it cannot: [`Lag::Cut`] while
/// its IO thread reconnects to the source, else [`Lag::Broken`].
fn broken_channel(c: &Channel) -> Option<Lag> {
    let err = |what: &str, e: &str| -> Arc<str> {
        if e.is_empty() {
            what.into()
        } else {
            format!("{what}: {e}").into()
        }
    };
    match c.io_running {
        IoState::No => {
            return Some(Lag::Broken(err(
                "replication IO thread stopped",
                &c.last_io_error,
            )))
        }
        IoState::Connecting => {
            return Some(Lag::Cut(err(
                "replication IO thread connecting",
                &c.last_io_error,
            )))
        }
        IoState::Yes => {}
    }
    if !c.sql_running && !c.last_sql_error.is_empty() {
        return Some(Lag::Broken(err(
            "replication SQL thread stopped",
            &c.last_sql_error,
        )));
    }
    None
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn failed() -> Sample {
        Sample::Failed("connection refused".into())
    }

    fn replica(io: IoState, sql: bool, sbm: Option<u64>) -> Observation {
        Observation {
            read_only: true,
            replication: vec![Channel {
                name: String::new(),
                io_running: io,
                sql_running: sql,
                seconds_behind_master: sbm,
                last_io_error: String::new(),
                last_sql_error: String::new(),
                master: "127.0.0.1:3306".into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn first_check_decides_then_rise_and_fall_apply() {
        let ok = Sample::Ok(Observation::default());
        let mut t = Tracker::default();
        assert_eq!(
            t.observe(&failed(), 2, 3),
            Some(false),
            "first check decides"
        );
        assert_eq!(t.observe(&ok, 2, 3), None, "one good check is not enough");
        assert_eq!(t.observe(&failed(), 2, 3), None);
        assert_eq!(t.observe(&ok, 2, 3), None, "the streak restarted");
        assert_eq!(t.observe(&ok, 2, 3), Some(true));
        assert_eq!(t.observe(&failed(), 2, 3), None);
        assert_eq!(t.observe(&failed(), 2, 3), None);
        assert_eq!(
            t.observe(&ok, 2, 3),
            None,
            "a good check resets the fall count"
        );
        for _ in 0..2 {
            assert_eq!(t.observe(&failed(), 2, 3), None);
        }
        assert_eq!(
            t.observe(&failed(), 2, 3),
            Some(false),
            "third failure in a row"
        );
        assert_eq!(t.last_error.as_deref(), Some("connection refused"));
        assert!(t.last.is_some(), "the last good check is kept for /status");
    }

    #[test]
    fn lag_excludes_at_once_and_readmits_after_rise_checks() {
        let now = Instant::now();
        let mut t = Tracker::default();
        let refs = LagReference::default();
        let check = |t: &mut Tracker, sbm| {
            t.observe(&Sample::Ok(replica(IoState::Yes, true, sbm)), 2, 3);
            t.judge_lag(refs, 5_000, 2, now);
        };
        check(&mut t, Some(1));
        assert_eq!(
            (t.lag.clone(), t.lag_excluded),
            (Some(Lag::Ms(1000)), false)
        );
        check(&mut t, Some(9));
        assert!(t.lag_excluded, "over the limit: out at once");
        check(&mut t, Some(2));
        assert!(t.lag_excluded, "one good reading is not enough");
        assert_eq!(t.lag_checks_to_go(2), 1);
        check(&mut t, Some(0));
        assert!(!t.lag_excluded, "back after rise readings within the limit");
        check(&mut t, None);
        assert!(t.lag_excluded, "NULL lag: out at once");
        assert!(matches!(t.lag, Some(Lag::Broken(_))));
    }

    #[test]
    fn broken_channels_are_broken_whatever_the_lag_says() {
        let now = Instant::now();
        let refs = LagReference {
            heartbeat_us: Some(10_000_000),
            primary_gtid: None,
        };
        let mut since = None;
        let mut io_stopped = replica(IoState::No, true, Some(0));
        io_stopped.replication[0].last_io_error = "error reconnecting".into();
        io_stopped.heartbeat_us = Some(10_000_000);
        assert_eq!(
            lag_of(&io_stopped, refs, &mut since, now),
            Lag::Broken("replication IO thread stopped: error reconnecting".into())
        );
        let connecting = replica(IoState::Connecting, true, None);
        assert!(matches!(
            lag_of(&connecting, refs, &mut since, now),
            Lag::Cut(_)
        ));
        let mut sql_error = replica(IoState::Yes, false, None);
        sql_error.replication[0].last_sql_error = "Duplicate entry".into();
        assert!(
            matches!(lag_of(&sql_error, refs, &mut since, now), Lag::Broken(r) if r.contains("Duplicate"))
        );
        let none = Observation::default();
        assert!(matches!(
            lag_of(&none, refs, &mut since, now),
            Lag::Broken(_)
        ));
    }

    #[test]
    fn heartbeat_gives_milliseconds_and_a_stopped_applier_grows_lag() {
        let t0 = Instant::now();
        let mut since = None;
        let refs = LagReference {
            heartbeat_us: Some(5_750_000),
            primary_gtid: None,
        };
        let mut running = replica(IoState::Yes, true, Some(0));
        running.heartbeat_us = Some(5_500_000);
        assert_eq!(lag_of(&running, refs, &mut since, t0), Lag::Ms(250));
        // Applier stopped on purpose: Seconds_Behind_Master is NULL, the
        // heartbeat still measures.
        let mut stopped = replica(IoState::Yes, false, None);
        stopped.heartbeat_us = Some(4_000_000);
        assert_eq!(lag_of(&stopped, refs, &mut since, t0), Lag::Ms(1750));
        // No heartbeat: caught up if its position holds the primary's...
        stopped.heartbeat_us = None;
        let primary = Gtid::parse("0-1-10").unwrap();
        stopped.gtid_current = Some(Arc::new(Gtid::parse("0-1-10").unwrap()));
        let refs = LagReference {
            heartbeat_us: None,
            primary_gtid: Some(&primary),
        };
        assert_eq!(lag_of(&stopped, refs, &mut since, t0), Lag::Ms(0));
        // ...otherwise behind since first seen so, growing with time.
        let primary = Gtid::parse("0-1-12").unwrap();
        let refs = LagReference {
            heartbeat_us: None,
            primary_gtid: Some(&primary),
        };
        assert_eq!(lag_of(&stopped, refs, &mut since, t0), Lag::Ms(0));
        let later = t0 + Duration::from_millis(1500);
        assert_eq!(lag_of(&stopped, refs, &mut since, later), Lag::Ms(1500));
    }
}
