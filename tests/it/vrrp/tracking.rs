//! Tracked checks move the VIP: a weight lowers the priority so the peer
//! preempts; a weight-0 check puts its instance in FAULT, and a sync group
//! takes its other members along. The notify program sees every change.

use super::lab::{wait_until, Lab, VIP};
use super::{wait_holder, SETTLE};

const VIP2: &str = "10.88.0.101";

/// Two instances in sync group "node"; `tracked` adds r2's checks.
fn node_conf(priority: u8, dir: &str, tracked: bool) -> String {
    let group = r#"
[[vrrp.sync_groups]]
name = "node"
instances = ["public", "private"]
"#;
    let (track_public, track_private, extra) = if tracked {
        (
            r#"track = [{ check = "svc", weight = -150 }]"#,
            r#"track = [{ check = "db", weight = 0 }]"#,
            format!(
                r#"
[[vrrp.checks]]
name = "svc"
kind = "script"
command = ["test", "-e", "{dir}/svc-ok"]
interval_ms = 100
rise = 1
fall = 2

[[vrrp.checks]]
name = "db"
kind = "script"
command = ["test", "-e", "{dir}/db-ok"]
interval_ms = 100
rise = 1
fall = 2
"#
            ),
        )
    } else {
        ("", "", String::new())
    };
    format!(
        r#"
[admin]
listen = "127.0.0.1:9090"

[[vrrp.instances]]
name = "public"
interface = "e0"
vrid = 51
priority = {priority}
advert_interval_ms = 100
virtual_ips = ["{VIP}/24"]
{track_public}

[[vrrp.instances]]
name = "private"
interface = "e0"
vrid = 52
priority = {priority}
advert_interval_ms = 100
virtual_ips = ["{VIP2}/24"]
{track_private}
{group}
{extra}
"#
    )
}

fn state(lab: &Lab, i: usize, n: usize) -> Option<String> {
    lab.instance_status(i, n)?["state"]
        .as_str()
        .map(str::to_owned)
}

/// One instance per router; r2 tracks a script check with weight -150.
fn weighted_conf(priority: u8, dir: &str, tracked: bool) -> String {
    let track = if tracked {
        format!(
            r#"track = [{{ check = "svc", weight = -150 }}]
notify = "notify.sh"

[[vrrp.checks]]
name = "svc"
kind = "script"
command = ["test", "-e", "{dir}/svc-ok"]
interval_ms = 100
rise = 1
fall = 2
"#
        )
    } else {
        String::new()
    };
    super::tandem_conf(priority, 100, &track)
}

#[test]
fn vrrp_tracked_weight_lets_the_peer_preempt_and_notify_runs() {
    let mut lab = Lab::new("tw", 2);
    let dir = lab.dir.path().to_str().unwrap().to_owned();
    let out = format!("{dir}/notify.out");
    let notify = lab.write("notify.sh", &format!("#!/bin/sh\necho \"$@\" >> {out}\n"));
    super::lab::run(&["chmod", "+x", notify.to_str().unwrap()]);
    lab.write("svc-ok", "");
    let _r1 = lab.tandem(1, "r1", &weighted_conf(100, &dir, false));
    let r2 = lab.tandem(2, "r2", &weighted_conf(200, &dir, true));
    wait_holder(&lab, 2);

    // The check fails: 200 - 150 = 50 < 100, r1 preempts.
    std::fs::remove_file(format!("{dir}/svc-ok")).unwrap();
    wait_holder(&lab, 1);
    assert_eq!(lab.status(2).unwrap()["priority"].as_u64(), Some(50));
    assert_eq!(lab.status(2).unwrap()["checks"]["svc"], false);
    // It passes again: 200, r2 preempts back.
    lab.write("svc-ok", "");
    wait_holder(&lab, 2);

    lab.signal(&r2, "-TERM").expect("r2 stops");
    let notified = std::fs::read_to_string(&out).unwrap_or_default();
    for line in [
        "INSTANCE public BACKUP 200",
        "INSTANCE public MASTER 200",
        "INSTANCE public BACKUP 50",
        "INSTANCE public STOP 200",
    ] {
        assert!(
            notified.lines().any(|l| l == line),
            "{line:?} not in:\n{notified}"
        );
    }
}

#[test]
fn vrrp_sync_group_members_move_together() {
    let mut lab = Lab::new("ts", 2);
    let dir = lab.dir.path().to_str().unwrap().to_owned();
    lab.write("svc-ok", "");
    lab.write("db-ok", "");
    let _r1 = lab.tandem(1, "r1", &node_conf(100, &dir, false));
    let _r2 = lab.tandem(2, "r2", &node_conf(200, &dir, true));
    wait_holder(&lab, 2);
    assert!(wait_until(SETTLE, || lab.has_addr(2, VIP2)));

    // In a sync group a weighted check faults the group (keepalived's
    // default), so both VIPs move, not just the one whose check failed.
    std::fs::remove_file(format!("{dir}/svc-ok")).unwrap();
    assert!(wait_until(SETTLE, || state(&lab, 2, 0).as_deref() == Some("FAULT")));
    assert!(wait_until(SETTLE, || state(&lab, 2, 1).as_deref() == Some("FAULT")));
    wait_holder(&lab, 1);
    assert!(wait_until(SETTLE, || lab.has_addr(1, VIP2) && !lab.has_addr(2, VIP2)));
    let reasons = lab.status(2).unwrap()["fault_reasons"].to_string();
    assert!(reasons.contains("weights fault a sync group"), "{reasons}");
    lab.write("svc-ok", "");
    wait_holder(&lab, 2);
    assert!(wait_until(SETTLE, || lab.has_addr(2, VIP2)));

    // The weight-0 check of "private" fails: "public" follows it into FAULT.
    std::fs::remove_file(format!("{dir}/db-ok")).unwrap();
    assert!(wait_until(SETTLE, || state(&lab, 2, 1).as_deref() == Some("FAULT")));
    assert!(wait_until(SETTLE, || state(&lab, 2, 0).as_deref() == Some("FAULT")));
    wait_holder(&lab, 1);
    assert!(wait_until(SETTLE, || lab.has_addr(1, VIP2) && !lab.has_addr(2, VIP2)));
    let reasons = lab.status(2).unwrap()["fault_reasons"].to_string();
    assert!(
        reasons.contains("sync group node has a member in FAULT"),
        "{reasons}"
    );
    lab.write("db-ok", "");
    wait_holder(&lab, 2);
    assert!(wait_until(SETTLE, || lab.has_addr(2, VIP2) && !lab.has_addr(1, VIP2)));
}
