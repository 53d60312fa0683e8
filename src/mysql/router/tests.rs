//! Router decisions as tables: statement + session -> intent; and the
//! balance policies over a snapshot with fixed random inputs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::config::{
    BackendConfig, Balance, PrimaryReads, ReadOnlyTransactions, Role, RoutingConfig,
};
use crate::mysql::classify::{self, Options};
use crate::topology::Topology;

fn cfg() -> RoutingConfig {
    RoutingConfig {
        read_write_split: true,
        balance: Balance::Random,
        primary_reads: PrimaryReads::Fallback,
        read_only_transactions: ReadOnlyTransactions::Replica,
        read_only_functions: vec![],
        backend_retry_ms: 5000,
        max_prepared_statements_per_backend: 256,
        consistency: crate::config::Consistency::Eventual,
        consistency_timeout_ms: 1000,
    }
}

fn decide_sql(sql: &str, s: &SessionView<'_>, cfg: &RoutingConfig) -> Intent {
    let opts = Options {
        ansi_quotes: false,
        no_backslash_escapes: false,
        read_only_functions: &cfg.read_only_functions,
    };
    decide(&classify::classify(sql.as_bytes(), &opts), s, cfg)
}

#[test]
fn statements_outside_a_transaction() {
    let s = SessionView::default();
    let c = cfg();
    let cases = [
        ("SELECT * FROM t WHERE id = 1", Intent::Read(Reason::Read)),
        ("INSERT INTO t VALUES (1)", Intent::Primary(Reason::Write)),
        (
            "SELECT * FROM t FOR UPDATE",
            Intent::Primary(Reason::LockingRead),
        ),
        (
            "SELECT LAST_INSERT_ID()",
            Intent::Primary(Reason::SessionFunction),
        ),
        (
            "SELECT GET_LOCK('a', 1)",
            Intent::Primary(Reason::SideEffect),
        ),
        ("CREATE TABLE x (a INT)", Intent::Primary(Reason::Ddl)),
        ("BEGIN", Intent::Primary(Reason::InTransaction)),
        ("SET NAMES utf8mb4", Intent::Primary(Reason::SessionState)),
        ("START TRANSACTION READ ONLY", Intent::ReadOnlyTransaction),
        (
            "/* tandem:primary */ SELECT 1",
            Intent::Primary(Reason::Hint),
        ),
        ("/* tandem:replica */ SELECT 1", Intent::Read(Reason::Hint)),
        (
            "/* tandem:backend=db3 */ SELECT 1",
            Intent::Backend("db3".into(), Reason::Hint),
        ),
        ("SHOW WARNINGS", Intent::Primary(Reason::Diagnostics)),
    ];
    for (sql, want) in cases {
        assert_eq!(decide_sql(sql, &s, &c), want, "{sql}");
    }
}

#[test]
fn session_state_overrides_reads() {
    let c = cfg();
    let in_tx = SessionView {
        in_transaction: true,
        ..Default::default()
    };
    assert_eq!(
        decide_sql("SELECT 1", &in_tx, &c),
        Intent::Primary(Reason::InTransaction)
    );
    let down = SessionView {
        in_transaction: true,
        primary_unreachable: true,
        ..Default::default()
    };
    assert_eq!(
        decide_sql("SELECT 1", &down, &c),
        Intent::Read(Reason::PrimaryDown)
    );
    assert_eq!(
        decide_sql("INSERT INTO t VALUES (1)", &down, &c),
        Intent::Primary(Reason::InTransaction)
    );
    let pinned = SessionView {
        pinned: true,
        ..Default::default()
    };
    assert_eq!(
        decide_sql("SELECT 1", &pinned, &c),
        Intent::Primary(Reason::SessionPinned)
    );
    let ro = SessionView {
        in_transaction: true,
        transaction_backend: Some("db2"),
        ..Default::default()
    };
    assert_eq!(
        decide_sql("COMMIT", &ro, &c),
        Intent::Backend("db2".into(), Reason::ReadOnlyTransaction)
    );
    let after_replica_read = SessionView {
        last_backend: Some("db3"),
        ..Default::default()
    };
    assert_eq!(
        decide_sql("SHOW WARNINGS", &after_replica_read, &c),
        Intent::Backend("db3".into(), Reason::Diagnostics)
    );
    assert_eq!(
        decide_sql("SELECT ROW_COUNT()", &after_replica_read, &c),
        Intent::Backend("db3".into(), Reason::Diagnostics)
    );
    let mut off = cfg();
    off.read_write_split = false;
    assert_eq!(
        decide_sql("SELECT 1", &SessionView::default(), &off),
        Intent::Primary(Reason::SplitDisabled)
    );
    let mut ro_primary = cfg();
    ro_primary.read_only_transactions = ReadOnlyTransactions::Primary;
    assert_eq!(
        decide_sql(
            "START TRANSACTION READ ONLY",
            &SessionView::default(),
            &ro_primary
        ),
        Intent::Primary(Reason::InTransaction)
    );
}

fn backend(name: &str, role: Role, weight: u32, local: bool) -> BackendConfig {
    BackendConfig {
        name: name.into(),
        address: "127.0.0.1:1".into(),
        role: role.into(),
        weight,
        local,
    }
}

fn topo() -> Topology {
    Topology::from_config(&[
        backend("p", Role::Primary, 1, false),
        backend("r1", Role::Replica, 1, false),
        backend("r2", Role::Replica, 3, true),
    ])
}

fn names(cfg: &RoutingConfig, snap: &crate::topology::Snapshot, exclude: &[&str]) -> Vec<String> {
    (0..400u64)
        .filter_map(|r| pick_read(snap, cfg, Instant::now(), r, exclude))
        .map(|(b, _)| b.name.clone())
        .collect()
}

#[test]
fn balance_policies() {
    let t = topo();
    let snap = t.load();
    let mut c = cfg();
    let random = names(&c, &snap, &[]);
    assert!(
        random.iter().all(|n| n != "p"),
        "fallback keeps the primary out"
    );
    assert_eq!(random.iter().filter(|n| *n == "r1").count(), 200);
    c.balance = Balance::Weighted;
    let weighted = names(&c, &snap, &[]);
    assert_eq!(
        weighted.iter().filter(|n| *n == "r2").count(),
        300,
        "weight 3 of 4"
    );
    c.balance = Balance::PreferLocal;
    assert!(names(&c, &snap, &[]).iter().all(|n| n == "r2"));
    assert!(names(&c, &snap, &["r2"]).iter().all(|n| n == "r1"));
    c.balance = Balance::LeastOutstanding;
    let busy = snap.by_name("r1").unwrap().health.start_statement();
    assert!(names(&c, &snap, &[]).iter().all(|n| n == "r2"));
    drop(busy);
    c.primary_reads = PrimaryReads::Always;
    c.balance = Balance::Random;
    assert!(names(&c, &snap, &[]).iter().any(|n| n == "p"));
}

#[test]
fn unusable_replicas_fall_back_or_fail() {
    let t = topo();
    let snap = t.load();
    let now = Instant::now();
    for r in ["r1", "r2"] {
        snap.by_name(r)
            .unwrap()
            .health
            .mark_down(now, Duration::from_secs(60));
    }
    let c = cfg();
    let (b, fallback) = pick_read(&snap, &c, now, 7, &[]).unwrap();
    assert_eq!((b.name.as_str(), fallback), ("p", true));
    let mut never = cfg();
    never.primary_reads = PrimaryReads::Never;
    assert!(pick_read(&snap, &never, now, 7, &[]).is_none());
    // Down backends come back after the retry period.
    let later = now + Duration::from_secs(61);
    let (b, fallback) = pick_read(&snap, &c, later, 0, &[]).unwrap();
    assert!(b.name.starts_with('r') && !fallback);
    let _ = Arc::clone(&b);
}

/// `snap` with backend `name` changed by `f`, as the monitor would publish it.
fn judged(
    snap: &crate::topology::Snapshot,
    name: &str,
    f: impl Fn(&mut crate::topology::Backend),
) -> crate::topology::Snapshot {
    let mut next = snap.clone();
    for b in &mut next.backends {
        if b.name == name {
            let mut changed = (**b).clone();
            f(&mut changed);
            *b = Arc::new(changed);
        }
    }
    next
}

#[test]
fn replicas_the_monitor_took_out_get_no_reads() {
    use crate::topology::BackendState;
    let t = topo();
    let snap = t.load();
    let c = cfg();
    for state in [
        BackendState::Down,
        BackendState::Lagging,
        BackendState::Draining,
        BackendState::Maintenance,
    ] {
        let next = judged(&snap, "r1", |b| {
            b.state = state;
            b.serving = false;
        });
        assert!(names(&c, &next, &[]).iter().all(|n| n == "r2"), "{state:?}");
    }
    // Kept by min_serving_replicas: lagging but serving.
    let kept = judged(&snap, "r1", |b| b.state = BackendState::Lagging);
    assert!(names(&c, &kept, &[]).iter().any(|n| n == "r1"));
    // Neither replica serves: the primary stands in.
    let none = judged(&judged(&snap, "r1", |b| b.serving = false), "r2", |b| {
        b.serving = false
    });
    let (b, fallback) = pick_read(&none, &c, Instant::now(), 3, &[]).unwrap();
    assert_eq!((b.name.as_str(), fallback), ("p", true));
    // Lag weighting: r2 at a quarter of r1's share gets a fifth of the reads.
    let weighted = judged(&snap, "r2", |b| b.read_share = 250);
    let picks = names(&c, &weighted, &[]);
    assert_eq!(picks.iter().filter(|n| *n == "r2").count(), 80);
}

#[test]
fn reason_all_is_in_declaration_order() {
    // Metrics index their counters by `reason as usize` over `Reason::ALL`.
    for (i, r) in Reason::ALL.iter().enumerate() {
        assert_eq!(*r as usize, i, "{r:?}");
    }
}

#[test]
fn server_identity_reads_may_use_replicas_but_server_state_does_not() {
    let s = SessionView::default();
    let c = cfg();
    assert_eq!(
        decide_sql("SELECT @@port, @@server_id", &s, &c),
        Intent::Read(Reason::Read)
    );
    assert_eq!(
        decide_sql("SELECT @@read_only", &s, &c),
        Intent::Primary(Reason::ServerState)
    );
    assert_eq!(
        decide_sql("SELECT @@warning_count", &s, &c),
        Intent::Primary(Reason::Diagnostics)
    );
    assert_eq!(
        decide_sql("SELECT FOUND_ROWS()", &s, &c),
        Intent::Primary(Reason::Diagnostics)
    );
    assert_eq!(
        decide_sql("SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1", &s, &c),
        Intent::Primary(Reason::SessionFunction)
    );
}
