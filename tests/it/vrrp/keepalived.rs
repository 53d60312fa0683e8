//! tandem and Debian's keepalived in one virtual router, both directions:
//! election by priority and takeover each way, VRRPv3 and VRRPv2 (with
//! `auth_type PASS`, for migrations).

use super::lab::{wait_until, Lab, VIP};
use super::{tandem_conf, wait_holder, wait_state, SETTLE};

fn keepalived_conf(
    priority: u8,
    version: u8,
    advert_int: &str,
    auth: bool,
    unicast: bool,
) -> String {
    let auth = if auth {
        "authentication {\n    auth_type PASS\n    auth_pass secret1\n  }"
    } else {
        ""
    };
    // keepalived on r2 (10.88.0.2) sends to tandem on r1 only.
    let unicast = if unicast {
        "unicast_src_ip 10.88.0.2\n  unicast_peer {\n    10.88.0.1\n  }"
    } else {
        ""
    };
    format!(
        r#"
global_defs {{
  router_id tandem_interop
}}
vrrp_instance VI_1 {{
  state BACKUP
  interface e0
  virtual_router_id 51
  priority {priority}
  advert_int {advert_int}
  version {version}
  {auth}
  {unicast}
  virtual_ipaddress {{
    {VIP}/24
  }}
}}
"#
    )
}

/// How often keepalived has logged entering MASTER so far.
fn masters(lab: &Lab) -> usize {
    lab.log("keepalived")
        .matches("Entering MASTER STATE")
        .count()
}

fn status_u64(lab: &Lab, key: &str) -> u64 {
    lab.status(1).and_then(|s| s[key].as_u64()).unwrap_or(0)
}

/// r1 runs tandem, r2 keepalived, with the same settings.
fn interop(id: &str, version: u8, interval_ms: u64, auth: bool, unicast: bool) {
    let mut lab = Lab::new(id, 2);
    let advert_int = format!("{}", interval_ms as f64 / 1000.0);
    let extra = format!(
        "version = {version}\n{}\n{}",
        if auth { "auth_pass = \"secret1\"" } else { "" },
        if unicast {
            "unicast_peers = [\"10.88.0.2\"]"
        } else {
            ""
        }
    );

    // 1. tandem (200) is master, keepalived (100) its backup.
    let t = lab.tandem(1, "tandem", &tandem_conf(200, interval_ms, &extra));
    let k = lab.keepalived(
        2,
        "keepalived",
        &keepalived_conf(100, version, &advert_int, auth, unicast),
    );
    wait_holder(&lab, 1);
    // keepalived must keep hearing tandem: well past its Master_Down_Interval
    // (6 adverts > 3 x interval + skew) it still has no VIP.
    // (keepalived may win the first election if it starts faster; count
    // only what happens once tandem holds the VIP.)
    let before = masters(&lab);
    let sent = status_u64(&lab, "adverts_sent");
    assert!(wait_until(SETTLE, || {
        assert_eq!(
            lab.holders(),
            vec![1],
            "keepalived did not accept tandem's adverts"
        );
        status_u64(&lab, "adverts_sent") >= sent + 6
    }));
    assert_eq!(
        masters(&lab),
        before,
        "keepalived became master under tandem"
    );

    // 2. tandem stops gracefully: keepalived takes over.
    lab.signal(&t, "-TERM").expect("tandem stops");
    wait_holder(&lab, 2);
    assert!(wait_until(SETTLE, || masters(&lab) > before));

    // 3. tandem comes back below keepalived (50): it follows keepalived's adverts.
    let _t = lab.tandem(1, "tandem2", &tandem_conf(50, interval_ms, &extra));
    wait_state(&lab, 1, "BACKUP");
    assert!(wait_until(SETTLE, || status_u64(&lab, "adverts_received") >= 6));
    assert_eq!(
        lab.status(1).unwrap()["master"].as_str(),
        Some(Lab::router_ip(2).as_str())
    );
    assert_eq!(lab.holders(), vec![2]);

    // 4. keepalived stops: tandem takes over.
    lab.signal(&k, "-TERM").expect("keepalived stops");
    wait_holder(&lab, 1);
    wait_state(&lab, 1, "MASTER");
}

#[test]
fn vrrp_interop_keepalived_v3() {
    interop("k3", 3, 100, false, false);
}

#[test]
fn vrrp_interop_keepalived_v2_with_pass_auth() {
    interop("k2", 2, 1000, true, false);
}

#[test]
fn vrrp_interop_keepalived_v3_unicast() {
    interop("ku", 3, 100, false, true);
}
