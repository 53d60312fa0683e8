//! The cluster judgement replayed from checks: states, lag exclusion,
//! min_serving_replicas, primary discovery and the writable alarm.

use std::time::Instant;

use super::*;
use crate::topology::health::{Channel, IoState, Observation};

fn policy() -> Policy {
    Policy {
        rise: 2,
        fall: 3,
        max_lag_ms: 5_000,
        min_serving: 0,
        lag_weighting: false,
        monitored: true,
        heartbeat_fresh_ms: 1_000,
        max_staleness_ms: 30_000,
    }
}

fn backend(name: &str, role: ConfiguredRole) -> BackendConfig {
    BackendConfig {
        name: name.into(),
        address: format!("10.0.0.{}:3306", name.len()),
        role,
        weight: 1,
        local: false,
    }
}

fn cluster(roles: &[(&str, ConfiguredRole)], policy: Policy) -> Cluster {
    let cfgs: Vec<BackendConfig> = roles.iter().map(|(n, r)| backend(n, *r)).collect();
    Cluster::new(&cfgs, policy)
}

fn primary_obs() -> Observation {
    Observation {
        read_only: false,
        ..Default::default()
    }
}

fn replica_obs(master: &str, sbm: Option<u64>, io: IoState) -> Observation {
    Observation {
        read_only: true,
        replication: vec![Channel {
            name: String::new(),
            io_running: io,
            sql_running: true,
            seconds_behind_master: sbm,
            last_io_error: String::new(),
            last_sql_error: String::new(),
            master: master.into(),
        }],
        ..Default::default()
    }
}

fn ok(o: Observation) -> Sample {
    Sample::Ok(o)
}

fn states(e: &Evaluation) -> Vec<(BackendState, bool)> {
    e.decisions.iter().map(|d| (d.state, d.serving)).collect()
}

use BackendState::*;
use ConfiguredRole as C;

#[test]
fn replicas_serve_until_broken_lagging_or_down() {
    let now = Instant::now();
    let mut c = cluster(
        &[("p", C::Primary), ("r1", C::Replica), ("r2", C::Replica)],
        policy(),
    );
    let m = "10.0.0.1:3306";
    c.observe(0, &ok(primary_obs()), now);
    c.observe(1, &ok(replica_obs(m, Some(0), IoState::Yes)), now);
    c.observe(2, &ok(replica_obs(m, Some(1), IoState::Yes)), now);
    let e = c.evaluate();
    assert_eq!(e.primary, Some(0));
    assert_eq!(states(&e), vec![(Up, true), (Up, true), (Up, true)]);
    assert_eq!(e.decisions[2].lag_ms, Some(1000));
    assert_eq!(
        e.decisions[0].lag_ms,
        Some(0),
        "lag never applies to the primary"
    );

    // r1: IO thread stopped -> out at once; r2: 9 s behind -> out at once.
    c.observe(1, &ok(replica_obs(m, None, IoState::No)), now);
    c.observe(2, &ok(replica_obs(m, Some(9), IoState::Yes)), now);
    let e = c.evaluate();
    assert_eq!(
        states(&e),
        vec![(Up, true), (Lagging, false), (Lagging, false)]
    );
    assert_eq!(e.decisions[1].lag_ms, None);
    assert_eq!(
        e.decisions[2].reason.as_deref(),
        Some("replication lag over max_replication_lag_ms")
    );

    // r2 catches up: back after `rise` checks within the limit.
    c.observe(2, &ok(replica_obs(m, Some(0), IoState::Yes)), now);
    assert_eq!(states(&c.evaluate())[2], (Lagging, false));
    c.observe(2, &ok(replica_obs(m, Some(0), IoState::Yes)), now);
    assert_eq!(states(&c.evaluate())[2], (Up, true));

    // r2 stops answering: down after `fall` failures.
    for _ in 0..2 {
        c.observe(2, &Sample::Failed("refused".into()), now);
        assert_eq!(states(&c.evaluate())[2], (Up, true));
    }
    assert_eq!(
        c.observe(2, &Sample::Failed("refused".into()), now),
        Some(false)
    );
    let e = c.evaluate();
    assert_eq!(states(&e)[2], (Down, false));
    assert_eq!(e.decisions[2].reason.as_deref(), Some("refused"));
}

#[test]
fn operator_modes_win_over_health() {
    let now = Instant::now();
    let mut c = cluster(&[("p", C::Primary), ("r1", C::Replica)], policy());
    c.observe(0, &ok(primary_obs()), now);
    c.observe(1, &Sample::Failed("refused".into()), now);
    c.members[1].mode = AdminMode::Maintenance;
    assert_eq!(states(&c.evaluate())[1], (Maintenance, false));
    c.members[1].mode = AdminMode::Draining;
    assert_eq!(states(&c.evaluate())[1], (Draining, false));
    c.members[1].mode = AdminMode::Ready;
    assert_eq!(states(&c.evaluate())[1], (Down, false));
}

#[test]
fn min_serving_keeps_the_least_behind_but_never_a_broken_one() {
    let now = Instant::now();
    let p = Policy {
        min_serving: 1,
        ..policy()
    };
    let mut c = cluster(
        &[
            ("p", C::Primary),
            ("r1", C::Replica),
            ("r2", C::Replica),
            ("r3", C::Replica),
        ],
        p,
    );
    let m = "10.0.0.1:3306";
    c.observe(0, &ok(primary_obs()), now);
    c.observe(1, &ok(replica_obs(m, Some(30), IoState::Yes)), now);
    c.observe(2, &ok(replica_obs(m, Some(8), IoState::Yes)), now);
    c.observe(3, &ok(replica_obs(m, None, IoState::No)), now);
    let e = c.evaluate();
    assert_eq!(
        states(&e),
        vec![
            (Up, true),
            (Lagging, false),
            (Lagging, true),
            (Lagging, false)
        ]
    );
    assert_eq!(
        e.decisions[2].reason.as_deref(),
        Some("lagging, kept serving by min_serving_replicas")
    );
    // With only broken replicas, none is kept: the primary fallback decides.
    c.observe(1, &ok(replica_obs(m, None, IoState::Connecting)), now);
    c.observe(2, &ok(replica_obs(m, None, IoState::No)), now);
    assert!(c.evaluate().decisions[1..].iter().all(|d| !d.serving));
}

#[test]
fn lag_weighting_lowers_the_share_of_late_replicas() {
    let now = Instant::now();
    let p = Policy {
        lag_weighting: true,
        ..policy()
    };
    let mut c = cluster(
        &[("p", C::Primary), ("r1", C::Replica), ("r2", C::Replica)],
        p,
    );
    let m = "10.0.0.1:3306";
    c.observe(0, &ok(primary_obs()), now);
    c.observe(1, &ok(replica_obs(m, Some(0), IoState::Yes)), now);
    c.observe(2, &ok(replica_obs(m, Some(4), IoState::Yes)), now);
    let e = c.evaluate();
    assert_eq!(e.decisions[1].read_share, 1000);
    assert_eq!(e.decisions[2].read_share, 1000 - 950 * 4 / 5);
}

#[test]
fn auto_roles_find_the_primary_and_follow_a_failover() {
    let now = Instant::now();
    let mut c = cluster(
        &[("a", C::Auto), ("bb", C::Auto), ("ccc", C::Auto)],
        policy(),
    );
    assert_eq!(c.known_primary, None);
    let a = "10.0.0.1:3306";
    let b = "10.0.0.2:3306";
    c.observe(0, &ok(primary_obs()), now);
    c.observe(1, &ok(replica_obs(a, Some(0), IoState::Yes)), now);
    c.observe(2, &ok(replica_obs(a, Some(0), IoState::Yes)), now);
    let e = c.evaluate();
    assert_eq!(e.primary, Some(0));
    assert_eq!(e.decisions[0].role, Role::Primary);
    assert_eq!(e.decisions[1].role, Role::Replica);
    assert_eq!(e.writable, vec![0]);

    // A replica made writable while still replicating: an alarm, but the
    // writes stay on the known primary.
    let mut rogue = replica_obs(a, Some(0), IoState::Yes);
    rogue.read_only = false;
    c.observe(1, &ok(rogue), now);
    let e = c.evaluate();
    assert_eq!(e.primary, Some(0));
    assert_eq!(e.writable, vec![0, 1]);

    // Even a second writable server replicating from nobody does not move
    // the writes while the known primary is still a candidate.
    c.observe(1, &ok(primary_obs()), now);
    assert_eq!(c.evaluate().primary, Some(0));

    // Failover: a goes down, bb is promoted (writable, replicating from
    // nobody), ccc now replicates from bb.
    for _ in 0..3 {
        c.observe(0, &Sample::Failed("refused".into()), now);
    }
    c.observe(2, &ok(replica_obs(b, Some(0), IoState::Yes)), now);
    let e = c.evaluate();
    assert_eq!(e.primary, Some(1));
    assert_eq!(states(&e), vec![(Down, false), (Up, true), (Up, true)]);
    assert_eq!(e.decisions[0].role, Role::Replica);

    // a comes back as a replica of bb: no reads until a check judged it.
    for _ in 0..2 {
        c.observe(0, &ok(replica_obs(b, Some(0), IoState::Yes)), now);
    }
    assert_eq!(states(&c.evaluate())[0], (Up, true));
}

#[test]
fn a_demoted_primary_serves_no_reads_before_its_next_check() {
    let now = Instant::now();
    let mut c = cluster(&[("a", C::Auto), ("bb", C::Auto)], policy());
    c.observe(0, &ok(primary_obs()), now);
    c.observe(
        1,
        &ok(replica_obs("10.0.0.1:3306", Some(0), IoState::Yes)),
        now,
    );
    assert_eq!(c.evaluate().primary, Some(0));
    // Switchover: a read-only, bb detached and writable.
    let mut demoted = primary_obs();
    demoted.read_only = true;
    c.observe(0, &ok(demoted.clone()), now);
    c.observe(1, &ok(primary_obs()), now);
    let e = c.evaluate();
    assert_eq!(e.primary, Some(1));
    assert_eq!(
        states(&e)[0],
        (Lagging, false),
        "not judged as a replica yet"
    );
    // Its next check: it replicates from nobody, so it stays out.
    c.observe(0, &ok(demoted), now);
    let e = c.evaluate();
    assert_eq!(states(&e)[0], (Lagging, false));
    assert!(e.decisions[0]
        .reason
        .as_deref()
        .unwrap()
        .starts_with("not replicating"));
}

#[test]
fn two_writable_at_start_are_told_apart_by_their_replicas_or_not_at_all() {
    let now = Instant::now();
    let mut c = cluster(
        &[("a", C::Auto), ("bb", C::Auto), ("ccc", C::Auto)],
        policy(),
    );
    c.observe(0, &ok(primary_obs()), now);
    c.observe(1, &ok(primary_obs()), now);
    c.observe(
        2,
        &ok(replica_obs("10.0.0.2:3306", Some(0), IoState::Yes)),
        now,
    );
    assert_eq!(c.evaluate().primary, Some(1), "ccc replicates from bb");

    let mut c = cluster(&[("a", C::Auto), ("bb", C::Auto)], policy());
    c.observe(0, &ok(primary_obs()), now);
    c.observe(1, &ok(primary_obs()), now);
    let e = c.evaluate();
    assert_eq!(e.primary, None, "no guess between two writable servers");
    assert_eq!(e.writable.len(), 2);
}

#[test]
fn fixed_replicas_never_become_the_primary() {
    let now = Instant::now();
    let mut c = cluster(&[("a", C::Auto), ("r", C::Replica)], policy());
    c.observe(0, &Sample::Failed("refused".into()), now);
    c.observe(1, &ok(primary_obs()), now);
    let e = c.evaluate();
    assert_eq!(e.primary, None);
    assert_eq!(e.writable, vec![1]);
}

#[test]
fn a_heartbeat_that_stopped_moving_is_not_trusted() {
    let t0 = Instant::now();
    let mut c = cluster(&[("p", C::Primary), ("r1", C::Replica)], policy());
    let m = "10.0.0.1:3306";
    let beat = |us| Observation {
        heartbeat_us: Some(us),
        ..primary_obs()
    };
    let late = |us, sql_running| {
        let mut o = replica_obs(m, None, IoState::Yes);
        o.replication[0].sql_running = sql_running;
        o.heartbeat_us = Some(us);
        o
    };
    c.observe(0, &ok(beat(10_000_000)), t0);
    c.observe(1, &ok(late(9_000_000, false)), t0);
    assert_eq!(
        c.evaluate().decisions[1].lag_ms,
        Some(1000),
        "heartbeat lag"
    );
    // The heartbeat stops (writes failing): after heartbeat_fresh_ms it no
    // longer measures anything, and the applier-stopped replica's lag is
    // counted from when it was first seen behind.
    let later = t0 + std::time::Duration::from_millis(1500);
    c.observe(0, &ok(beat(10_000_000)), later);
    c.observe(1, &ok(late(9_000_000, false)), later);
    assert_eq!(c.evaluate().decisions[1].lag_ms, Some(0));
    let much_later = later + std::time::Duration::from_millis(700);
    c.observe(1, &ok(late(9_000_000, false)), much_later);
    assert_eq!(c.evaluate().decisions[1].lag_ms, Some(700));
}

#[test]
fn a_server_in_maintenance_is_no_candidate_and_no_alarm() {
    let now = Instant::now();
    let mut c = cluster(&[("a", C::Auto), ("bb", C::Auto)], policy());
    c.observe(0, &ok(primary_obs()), now);
    c.observe(
        1,
        &ok(replica_obs("10.0.0.1:3306", Some(0), IoState::Yes)),
        now,
    );
    assert_eq!(c.evaluate().primary, Some(0));
    // bb in maintenance, made writable and detached for the work; then a dies.
    c.members[1].mode = AdminMode::Maintenance;
    c.observe(1, &ok(primary_obs()), now);
    assert_eq!(
        c.evaluate().writable,
        vec![0],
        "no alarm for the server in maintenance"
    );
    for _ in 0..3 {
        c.observe(0, &Sample::Failed("refused".into()), now);
    }
    let e = c.evaluate();
    assert_eq!(
        e.primary,
        Some(0),
        "writes never move to a server in maintenance"
    );
    assert_eq!(states(&e), vec![(Down, false), (Maintenance, false)]);
}

/// Reads never depend on the primary: replicas cut off from a primary that
/// is down (IO thread reconnecting) keep serving, for `max_staleness_ms`
/// after the primary was last seen; a replica cut off from a primary that
/// tandem still reaches, or stopped by an error or an operator, does not.
#[test]
fn replicas_cut_off_from_a_dead_primary_serve_within_max_staleness() {
    use std::time::Duration;
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut c = cluster(
        &[("p", C::Primary), ("r1", C::Replica), ("r2", C::Replica)],
        policy(),
    );
    let m = "10.0.0.1:3306";
    c.observe(0, &ok(primary_obs()), at(0));
    c.observe(1, &ok(replica_obs(m, Some(0), IoState::Yes)), at(0));
    c.observe(2, &ok(replica_obs(m, Some(0), IoState::Yes)), at(0));

    // The replicas lose their source while tandem still reaches the
    // primary: a network problem of theirs, they are only behind.
    c.observe(1, &ok(replica_obs(m, None, IoState::Connecting)), at(100));
    let e = c.evaluate();
    assert_eq!(states(&e)[1], (Lagging, false));

    // The primary fails its checks (fall = 3): it is down, and both cut-off
    // replicas serve; r2's IO thread was stopped by an operator: not it.
    let mut now = 100;
    for _ in 0..3 {
        now += 500;
        c.observe(0, &Sample::Failed("connect: refused".into()), at(now));
    }
    c.observe(1, &ok(replica_obs(m, None, IoState::Connecting)), at(now));
    c.observe(2, &ok(replica_obs(m, None, IoState::No)), at(now));
    let e = c.evaluate();
    assert_eq!(
        states(&e),
        vec![(Down, false), (Up, true), (Lagging, false)]
    );
    assert!(e.decisions[1]
        .reason
        .as_deref()
        .is_some_and(|r| r.contains("max_staleness_ms")));

    // Past max_staleness_ms (30 s) since the primary was last seen (at 0):
    // out of rotation.
    c.observe(
        1,
        &ok(replica_obs(m, None, IoState::Connecting)),
        at(29_000),
    );
    assert_eq!(states(&c.evaluate())[1], (Up, true));
    c.observe(
        1,
        &ok(replica_obs(m, None, IoState::Connecting)),
        at(30_500),
    );
    assert_eq!(states(&c.evaluate())[1], (Lagging, false));

    // 0 = forever.
    let mut forever = policy();
    forever.max_staleness_ms = 0;
    c.policy = forever;
    assert_eq!(states(&c.evaluate())[1], (Up, true));
}
