//! VRRP system tests: real `tandem` (and keepalived) processes in network
//! namespaces on a bridge, a client namespace that talks to the VIP.
//! Root only (CI runs as root); see `lab.rs`.

mod db;
mod keepalived;
mod lab;
mod tracking;

use std::time::Duration;

use lab::{wait_until, Lab, VIP};

const SETTLE: Duration = Duration::from_secs(10);

/// A tandem node running only VRRP (and the admin listener for `/status`).
pub fn tandem_conf(priority: u8, interval_ms: u64, extra: &str) -> String {
    format!(
        r#"
[admin]
listen = "127.0.0.1:9090"

[runtime]
shutdown_grace_ms = 2000

[[vrrp.instances]]
name = "public"
interface = "e0"
vrid = 51
priority = {priority}
advert_interval_ms = {interval_ms}
virtual_ips = ["{VIP}/24"]
# Spread over more than the kernel's 1 s neighbour lock time, so a client
# that talked to the old master moments ago still takes the update.
garp_count = 5
garp_interval_ms = 300
{extra}
"#
    )
}

fn adverts_received(lab: &Lab, i: usize) -> u64 {
    lab.status(i)
        .and_then(|s| s["adverts_received"].as_u64())
        .unwrap_or(0)
}

fn wait_holder(lab: &Lab, i: usize) {
    assert!(
        wait_until(SETTLE, || lab.holders() == vec![i]),
        "expected the VIP on r{i} only, holders: {:?}, states: {:?}",
        lab.holders(),
        (1..=2).map(|r| lab.state(r)).collect::<Vec<_>>()
    );
}

fn wait_state(lab: &Lab, i: usize, state: &str) {
    assert!(
        wait_until(SETTLE, || lab.state(i).as_deref() == Some(state)),
        "r{i} state {:?}, expected {state}",
        lab.state(i)
    );
}

#[test]
fn vrrp_higher_priority_wins_and_sigkill_fails_over_with_garp() {
    let mut lab = Lab::new("a", 2);
    lab.service(1);
    lab.service(2);
    let _r1 = lab.tandem(1, "r1", &tandem_conf(100, 100, ""));
    let r2 = lab.tandem(2, "r2", &tandem_conf(200, 100, ""));
    wait_holder(&lab, 2);
    wait_state(&lab, 1, "BACKUP");
    assert_eq!(
        lab.status(1).unwrap()["master"].as_str(),
        Some(Lab::router_ip(2).as_str())
    );
    assert!(wait_until(SETTLE, || lab.client_reaches().as_deref() == Some("r2")));
    assert_eq!(lab.client_neighbour(), Some(lab.mac(2)));
    let metrics = lab.admin_get(2, "/metrics").unwrap();
    for line in [
        r#"tandem_vrrp_state{instance="public",state="MASTER"} 1"#,
        r#"tandem_vrrp_state{instance="public",state="BACKUP"} 0"#,
        r#"tandem_vrrp_priority{instance="public"} 200"#,
        r#"tandem_vrrp_transitions_total{instance="public",to="MASTER"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in:\n{metrics}"
        );
    }
    assert!(metrics.contains(r#"tandem_vrrp_adverts_sent_total{instance="public"}"#));
    assert!(lab
        .admin_get(1, "/metrics")
        .unwrap()
        .contains(r#"tandem_vrrp_adverts_received_total{instance="public"}"#));

    // The master process dies without a word: r1 takes over after
    // Master_Down_Interval and announces itself with gratuitous ARP.
    lab.signal(&r2, "-KILL");
    assert!(
        wait_until(SETTLE, || lab.has_vip(1)),
        "r1 never took the VIP"
    );
    wait_state(&lab, 1, "MASTER");
    // The client's neighbour entry moves without it asking (GARP).
    let mac1 = lab.mac(1);
    assert!(
        wait_until(SETTLE, || lab.client_neighbour().as_deref()
            == Some(mac1.as_str())),
        "client neighbour still {:?}, r1 is {mac1}",
        lab.client_neighbour()
    );
    assert!(wait_until(SETTLE, || lab.client_reaches().as_deref() == Some("r1")));
}

#[test]
fn vrrp_graceful_stop_hands_over_after_skew_time() {
    let mut lab = Lab::new("b", 2);
    // 2 s adverts: Master_Down_Interval is 6.1 s for r1, its Skew_Time 0.125 s.
    let _r1 = lab.tandem(1, "r1", &tandem_conf(240, 2000, ""));
    // The owner (255) is master at once.
    let r2 = lab.tandem(2, "r2", &tandem_conf(255, 2000, ""));
    wait_holder(&lab, 2);
    wait_state(&lab, 1, "BACKUP");
    let stopped = std::time::Instant::now();
    let status = lab.signal(&r2, "-TERM").expect("r2 exits on SIGTERM");
    assert!(status.success(), "r2 exit: {status:?}");
    assert!(!lab.has_vip(2), "a stopped router keeps no VIP");
    // The priority-0 advert makes r1 take over after Skew_Time, long before
    // the 6.1 s Master_Down_Interval.
    assert!(
        wait_until(Duration::from_secs(3), || lab.has_vip(1)),
        "no takeover within 3 s of the graceful stop"
    );
    assert!(stopped.elapsed() < Duration::from_secs(6));
    wait_state(&lab, 1, "MASTER");
}

#[test]
fn vrrp_link_down_means_fault_and_takeover() {
    let mut lab = Lab::new("c", 2);
    let _r1 = lab.tandem(1, "r1", &tandem_conf(100, 100, ""));
    let _r2 = lab.tandem(2, "r2", &tandem_conf(200, 100, ""));
    wait_holder(&lab, 2);
    lab.link(2, false);
    wait_state(&lab, 2, "FAULT");
    wait_holder(&lab, 1);
    let reasons = lab.status(2).unwrap()["fault_reasons"].to_string();
    assert!(reasons.contains("interface e0 down"), "{reasons}");
    // Carrier back: r2 preempts again.
    lab.link(2, true);
    wait_state(&lab, 2, "MASTER");
    wait_holder(&lab, 2);
    wait_state(&lab, 1, "BACKUP");
}

#[test]
fn vrrp_preempt_and_nopreempt_when_the_old_master_returns() {
    let mut lab = Lab::new("d", 2);
    let _r1 = lab.tandem(1, "r1", &tandem_conf(100, 100, ""));
    let r2 = lab.tandem(2, "r2", &tandem_conf(200, 100, ""));
    wait_holder(&lab, 2);
    lab.signal(&r2, "-TERM").expect("r2 stops");
    wait_holder(&lab, 1);
    // preempt = true (default): the higher priority takes the VIP back.
    let r2 = lab.tandem(2, "r2b", &tandem_conf(200, 100, ""));
    wait_holder(&lab, 2);
    wait_state(&lab, 1, "BACKUP");
    lab.signal(&r2, "-TERM").expect("r2 stops");
    wait_holder(&lab, 1);
    // preempt = false: the returning router stays backup of the lower master.
    let _r2 = lab.tandem(2, "r2c", &tandem_conf(200, 100, "preempt = false"));
    wait_state(&lab, 2, "BACKUP");
    let seen = adverts_received(&lab, 2);
    // 30 adverts = 3 s, well past r2's 0.33 s Master_Down_Interval.
    assert!(wait_until(SETTLE, || {
        assert_eq!(lab.holders(), vec![1], "nopreempt router took the VIP");
        adverts_received(&lab, 2) >= seen + 30
    }));
    assert_eq!(lab.state(2).as_deref(), Some("BACKUP"));
}

#[test]
fn vrrp_partition_then_heal_leaves_exactly_one_master() {
    let mut lab = Lab::new("e", 2);
    let _r1 = lab.tandem(1, "r1", &tandem_conf(100, 100, ""));
    let _r2 = lab.tandem(2, "r2", &tandem_conf(200, 100, ""));
    wait_holder(&lab, 2);
    lab.partition(1, true);
    // Cut off, r1 hears nobody and becomes master too (carrier is still up).
    wait_state(&lab, 1, "MASTER");
    assert_eq!(lab.holders(), vec![1, 2]);
    lab.partition(1, false);
    wait_state(&lab, 1, "BACKUP");
    wait_holder(&lab, 2);
    let seen = adverts_received(&lab, 1);
    assert!(wait_until(SETTLE, || {
        assert_eq!(lab.holders(), vec![2], "split brain after heal");
        adverts_received(&lab, 1) >= seen + 20
    }));
}

#[test]
fn vrrp_unicast_peers_and_both_checksum_forms() {
    let mut lab = Lab::new("f", 2);
    let peer = |i: usize| format!("unicast_peers = [\"{}\"]", Lab::router_ip(i));
    // r1 also sends the message-only v3 checksum: both forms are accepted.
    let r1_extra = format!("{}\nchecksum = \"message_only\"", peer(2));
    let _r1 = lab.tandem(1, "r1", &tandem_conf(100, 100, &r1_extra));
    let r2 = lab.tandem(2, "r2", &tandem_conf(200, 100, &peer(1)));
    wait_holder(&lab, 2);
    wait_state(&lab, 1, "BACKUP");
    assert!(wait_until(SETTLE, || adverts_received(&lab, 1) >= 5));
    lab.signal(&r2, "-KILL");
    wait_holder_or_both(&lab);
    wait_state(&lab, 1, "MASTER");
    // r2 back without preemption: it follows r1's adverts, so it accepts
    // their message-only checksums.
    let r2_extra = format!("{}\npreempt = false", peer(1));
    let _r2 = lab.tandem(2, "r2b", &tandem_conf(200, 100, &r2_extra));
    wait_state(&lab, 2, "BACKUP");
    assert!(wait_until(SETTLE, || adverts_received(&lab, 2) >= 5));
    assert_eq!(lab.status(2).unwrap()["master"], Lab::router_ip(1).as_str());
    assert!(lab.has_vip(1) && !lab.has_vip(2));
}

/// After a SIGKILL the dead router's VIP stays on its interface (nobody
/// removes it), so r1 holding it is what counts.
fn wait_holder_or_both(lab: &Lab) {
    assert!(
        wait_until(SETTLE, || lab.has_vip(1)),
        "r1 never took the VIP"
    );
}

#[test]
fn vrrp_stale_vip_is_removed_at_start_and_bad_subnet_is_refused() {
    let mut lab = Lab::new("g", 1);
    // A VIP left behind by a killed run.
    lab::run(&[
        "ip",
        "-n",
        &lab.router(1),
        "addr",
        "add",
        &format!("{VIP}/24"),
        "dev",
        "e0",
    ]);
    // 2 s adverts: backup for 6.9 s, time enough to look.
    let _r1 = lab.tandem(1, "r1", &tandem_conf(100, 2000, ""));
    wait_state(&lab, 1, "BACKUP");
    assert!(!lab.has_vip(1), "stale VIP not removed at start");
    wait_state(&lab, 1, "MASTER");
    assert!(lab.has_vip(1));
    // A VIP outside the interface's subnets stops tandem with a clear error.
    let bad = tandem_conf(100, 100, "").replace("10.88.0.100/24", "10.99.0.100/24");
    let path = lab.write("bad.toml", &bad);
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.router(1),
            env!("CARGO_BIN_EXE_tandem"),
        ])
        .args(["run", "--config", path.to_str().unwrap()])
        .env("TANDEM__ADMIN__LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "vrrp instance public: virtual IP 10.99.0.100/24 is not in a subnet of e0 (its addresses: 10.88.0.1/24"
        ),
        "{err}"
    );
}

/// A config with only `[vrrp]` runs (no NothingToRun); an interface that
/// does not exist stops the start with a message that names it.
#[tokio::test]
async fn vrrp_missing_interface_is_a_clear_start_error() {
    let text = tandem_conf(100, 1000, "")
        .replace("interface = \"e0\"", "interface = \"tvnope0\"")
        .replace("[admin]\nlisten = \"127.0.0.1:9090\"", "");
    let cfg = tandem::config::Config::from_toml_str(&text, "<test>").unwrap();
    assert!(!cfg.runs_nothing());
    let err = tandem::app::App::start(cfg)
        .await
        .err()
        .expect("start fails");
    assert_eq!(
        err.to_string(),
        "vrrp instance public: no interface named \"tvnope0\""
    );
}

/// `garp_refresh_ms`: a master keeps announcing its VIP after the burst.
#[test]
fn vrrp_garp_refresh_repeats_announcements() {
    let mut lab = Lab::new("h", 1);
    let client = lab.client();
    lab.spawn(&client, "arp", &["tcpdump", "-i", "e0", "-nn", "-l", "arp"]);
    let extra = "garp_count = 1\ngarp_refresh_ms = 200";
    let conf = tandem_conf(100, 100, "")
        .replace("garp_count = 5\n", "")
        .replace("garp_interval_ms = 300\n", "")
        + extra;
    let _r1 = lab.tandem(1, "r1", &conf);
    wait_state(&lab, 1, "MASTER");
    let announced = || {
        lab.log("arp")
            .lines()
            .filter(|l| l.contains(&format!("who-has {VIP}")) && l.contains(&format!("tell {VIP}")))
            .count()
    };
    // One from the burst, then one every 200 ms.
    assert!(
        wait_until(SETTLE, || announced() >= 5),
        "gratuitous ARPs seen: {}\n{}",
        announced(),
        lab.log("arp")
    );
}
