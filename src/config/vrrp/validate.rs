//! `[vrrp]` raw structs -> validated structs: defaults and every check that
//! serde's types cannot make. Errors carry the dotted field path.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use super::{
    DbAction, RawCheck, RawDbAction, RawInstance, RawSyncGroup, RawTrack, RawVrrp, SyncGroup,
    TrackRef, VirtualIp, VrrpCheck, VrrpCheckKind, VrrpConfig, VrrpInstance,
};
use crate::config::validate::{check_name, invalid, Invalid};

const ADVERT_INTERVAL_MS: u64 = 1_000;
const GARP_COUNT: u32 = 5;
const GARP_INTERVAL_MS: u64 = 100;
const CHECK_INTERVAL_MS: u64 = 1_000;
const CHECK_RISE: u32 = 2;
const CHECK_FALL: u32 = 3;
const DB_TIMEOUT_MS: u64 = 2_000;

pub(in crate::config) fn vrrp(
    raw: RawVrrp,
    base_dir: Option<&Path>,
) -> Result<VrrpConfig, Invalid> {
    if raw.instances.is_empty() {
        return Err(invalid(
            "vrrp.instances",
            "at least one [[vrrp.instances]] is needed",
        ));
    }
    let checks = raw
        .checks
        .into_iter()
        .enumerate()
        .map(|(i, c)| check(i, c))
        .collect::<Result<Vec<_>, _>>()?;
    let mut names = HashSet::new();
    for (i, c) in checks.iter().enumerate() {
        if !names.insert(c.name.as_str()) {
            return Err(invalid(
                format!("vrrp.checks[{i}].name"),
                format!("duplicate check name {:?}", c.name),
            ));
        }
    }
    let instances = raw
        .instances
        .into_iter()
        .enumerate()
        .map(|(i, r)| instance(i, r, &names, base_dir))
        .collect::<Result<Vec<_>, _>>()?;
    unique_instances(&instances)?;
    let sync_groups = sync_groups(raw.sync_groups, &instances)?;
    Ok(VrrpConfig {
        instances,
        checks,
        sync_groups,
    })
}

fn unique_instances(instances: &[VrrpInstance]) -> Result<(), Invalid> {
    let mut names = HashSet::new();
    let mut vrids = HashMap::new();
    let mut vips = HashMap::new();
    for (i, inst) in instances.iter().enumerate() {
        if !names.insert(inst.name.as_str()) {
            return Err(invalid(
                format!("vrrp.instances[{i}].name"),
                format!("duplicate instance name {:?}", inst.name),
            ));
        }
        if let Some(other) = vrids.insert((inst.interface.as_str(), inst.vrid), &inst.name) {
            return Err(invalid(
                format!("vrrp.instances[{i}].vrid"),
                format!(
                    "vrid {} is already used on {} by instance {other:?}",
                    inst.vrid, inst.interface
                ),
            ));
        }
        for (j, v) in inst.virtual_ips.iter().enumerate() {
            if let Some(other) = vips.insert(v.addr, &inst.name) {
                return Err(invalid(
                    format!("vrrp.instances[{i}].virtual_ips[{j}]"),
                    format!("{} is already a virtual IP of instance {other:?}", v.addr),
                ));
            }
        }
    }
    Ok(())
}

fn instance(
    i: usize,
    raw: RawInstance,
    checks: &HashSet<&str>,
    base_dir: Option<&Path>,
) -> Result<VrrpInstance, Invalid> {
    let f = |key: &str| format!("vrrp.instances[{i}].{key}");
    check_name(&raw.name).map_err(|r| invalid(f("name"), r))?;
    if raw.interface.is_empty() || raw.interface.len() > 15 || raw.interface.contains('/') {
        return Err(invalid(
            f("interface"),
            "expected an interface name of 1 to 15 characters",
        ));
    }
    let vrid = match raw.vrid {
        1..=255 => raw.vrid as u8,
        v => return Err(invalid(f("vrid"), format!("must be 1 to 255, found {v}"))),
    };
    let priority = match raw.priority {
        1..=255 => raw.priority as u8,
        v => {
            return Err(invalid(
                f("priority"),
                format!("must be 1 to 255 (255 = address owner), found {v}"),
            ))
        }
    };
    let version = match raw.version.unwrap_or(3) {
        v @ (2 | 3) => v as u8,
        v => return Err(invalid(f("version"), format!("must be 2 or 3, found {v}"))),
    };
    let advert_interval_ms =
        advert_interval(&f("advert_interval_ms"), version, raw.advert_interval_ms)?;
    let virtual_ips = virtual_ips(i, &raw.virtual_ips)?;
    let unicast_peers = raw
        .unicast_peers
        .iter()
        .enumerate()
        .map(|(j, t)| {
            parse_unicast(t)
                .map_err(|r| invalid(format!("vrrp.instances[{i}].unicast_peers[{j}]"), r))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let unicast_src = raw
        .unicast_src
        .as_deref()
        .map(|t| parse_unicast(t).map_err(|r| invalid(f("unicast_src"), r)))
        .transpose()?;
    if unicast_src.is_some() && unicast_peers.is_empty() {
        return Err(invalid(f("unicast_src"), "needs unicast_peers"));
    }
    let checksum_pseudo_header = checksum(&f("checksum"), version, raw.checksum.as_deref())?;
    if let Some(p) = &raw.auth_pass {
        if version != 2 {
            return Err(invalid(
                f("auth_pass"),
                "authentication exists only in VRRPv2 (version = 2)",
            ));
        }
        if p.is_empty() || p.len() > 8 {
            return Err(invalid(f("auth_pass"), "must be 1 to 8 bytes"));
        }
    }
    let track = tracks(i, raw.track, checks)?;
    let notify = raw.notify.map(|p| match base_dir {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p,
    });
    let db = raw.db.map(|d| db_action(&f("db.address"), d)).transpose()?;
    Ok(VrrpInstance {
        name: raw.name,
        interface: raw.interface,
        vrid,
        priority,
        advert_interval_ms,
        virtual_ips,
        version,
        preempt: raw.preempt.unwrap_or(true),
        preempt_delay_ms: raw.preempt_delay_ms.unwrap_or(0),
        unicast_peers,
        unicast_src,
        checksum_pseudo_header,
        auth_pass: raw.auth_pass,
        garp_count: raw.garp_count.unwrap_or(GARP_COUNT),
        garp_interval_ms: raw.garp_interval_ms.unwrap_or(GARP_INTERVAL_MS),
        garp_refresh_ms: raw.garp_refresh_ms.unwrap_or(0),
        track_interface: raw.track_interface.unwrap_or(true),
        track,
        notify,
        db,
    })
}

/// v3 counts centiseconds (12 bits), v2 whole seconds (8 bits).
fn advert_interval(field: &str, version: u8, raw: Option<u64>) -> Result<u64, Invalid> {
    let ms = raw.unwrap_or(ADVERT_INTERVAL_MS);
    let (ok, want) = match version {
        3 => (
            ms % 10 == 0 && (10..=40_950).contains(&ms),
            "a multiple of 10 from 10 to 40950 (VRRPv3 counts centiseconds)",
        ),
        _ => (
            ms % 1000 == 0 && (1000..=255_000).contains(&ms),
            "whole seconds from 1000 to 255000 (VRRPv2 counts seconds)",
        ),
    };
    if !ok {
        return Err(invalid(field, format!("must be {want}, found {ms}")));
    }
    Ok(ms)
}

fn virtual_ips(i: usize, raw: &[String]) -> Result<Vec<VirtualIp>, Invalid> {
    let field = format!("vrrp.instances[{i}].virtual_ips");
    if raw.is_empty() {
        return Err(invalid(field, "at least one virtual IP is needed"));
    }
    if raw.len() > 20 {
        return Err(invalid(
            field,
            "at most 20 virtual IPs per instance (keepalived's limit per advert)",
        ));
    }
    raw.iter()
        .enumerate()
        .map(|(j, t)| parse_vip(t).map_err(|r| invalid(format!("{field}[{j}]"), r)))
        .collect()
}

/// `true` = with the IPv4 pseudo-header (the default).
fn checksum(field: &str, version: u8, raw: Option<&str>) -> Result<bool, Invalid> {
    match raw {
        None | Some("pseudo_header") => Ok(true),
        Some("message_only") if version == 3 => Ok(false),
        Some("message_only") => Err(invalid(field, "only applies to version = 3")),
        Some(other) => Err(invalid(
            field,
            format!("expected \"pseudo_header\" or \"message_only\", found {other:?}"),
        )),
    }
}

fn tracks(i: usize, raw: Vec<RawTrack>, checks: &HashSet<&str>) -> Result<Vec<TrackRef>, Invalid> {
    let mut track = Vec::with_capacity(raw.len());
    for (j, t) in raw.into_iter().enumerate() {
        if !checks.contains(t.check.as_str()) {
            return Err(invalid(
                format!("vrrp.instances[{i}].track[{j}].check"),
                format!("no [[vrrp.checks]] named {:?}", t.check),
            ));
        }
        if !(-254..=254).contains(&t.weight) {
            return Err(invalid(
                format!("vrrp.instances[{i}].track[{j}].weight"),
                "must be -254 to 254 (0 = FAULT when failing)",
            ));
        }
        track.push(TrackRef {
            check: t.check,
            weight: t.weight,
        });
    }
    Ok(track)
}

fn db_action(address_field: &str, d: RawDbAction) -> Result<DbAction, Invalid> {
    check_address(&d.address).map_err(|r| invalid(address_field, r))?;
    Ok(DbAction {
        address: d.address,
        user: d.user,
        password: d.password,
        stop_replication: d.stop_replication.unwrap_or(true),
        timeout_ms: d.timeout_ms.unwrap_or(DB_TIMEOUT_MS).max(1),
    })
}

fn check(i: usize, raw: RawCheck) -> Result<VrrpCheck, Invalid> {
    let f = |key: &str| format!("vrrp.checks[{i}].{key}");
    check_name(&raw.name).map_err(|r| invalid(f("name"), r))?;
    let socket = |raw: &RawCheck| -> Result<SocketAddr, Invalid> {
        let text = raw
            .address
            .as_deref()
            .ok_or_else(|| invalid(f("address"), "this kind of check needs an address"))?;
        text.parse().map_err(|_| {
            invalid(
                f("address"),
                format!("expected an IP address and port like \"127.0.0.1:80\", found {text:?}"),
            )
        })
    };
    let login = |raw: &RawCheck| -> Result<(String, String, String), Invalid> {
        let address = raw
            .address
            .clone()
            .ok_or_else(|| invalid(f("address"), "a MariaDB check needs an address"))?;
        check_address(&address).map_err(|r| invalid(f("address"), r))?;
        let user = raw
            .user
            .clone()
            .ok_or_else(|| invalid(f("user"), "a MariaDB check needs a user"))?;
        Ok((address, user, raw.password.clone().unwrap_or_default()))
    };
    let kind = match raw.kind.as_str() {
        "tcp" => VrrpCheckKind::Tcp {
            address: socket(&raw)?,
        },
        "http" => {
            let expect = raw.expect_status.unwrap_or(200);
            if !(100..=599).contains(&expect) {
                return Err(invalid(f("expect_status"), "must be 100 to 599"));
            }
            VrrpCheckKind::Http {
                address: socket(&raw)?,
                path: raw.path.clone().unwrap_or_else(|| "/".into()),
                expect_status: expect as u16,
            }
        }
        "mariadb_alive" => {
            let (address, user, password) = login(&raw)?;
            VrrpCheckKind::MariadbAlive {
                address,
                user,
                password,
            }
        }
        "mariadb_writable" => {
            let (address, user, password) = login(&raw)?;
            VrrpCheckKind::MariadbWritable {
                address,
                user,
                password,
            }
        }
        "tandem_http_lb" => VrrpCheckKind::TandemHttpLb {
            address: socket(&raw)?,
            path: raw.path.clone().unwrap_or_else(|| "/".into()),
        },
        "tandem_mysql" => VrrpCheckKind::TandemMysql {
            address: socket(&raw)?,
        },
        "script" => match &raw.command {
            Some(c) if !c.is_empty() && !c[0].is_empty() => {
                VrrpCheckKind::Script { command: c.clone() }
            }
            _ => {
                return Err(invalid(
                    f("command"),
                    "a script check needs command = [\"program\", \"arg\", ...]",
                ))
            }
        },
        other => {
            return Err(invalid(
                f("kind"),
                format!(
                    "unknown kind {other:?}, expected tcp, http, mariadb_alive, mariadb_writable, \
                     tandem_http_lb, tandem_mysql or script"
                ),
            ))
        }
    };
    let interval_ms = raw.interval_ms.unwrap_or(CHECK_INTERVAL_MS);
    if interval_ms < 10 {
        return Err(invalid(f("interval_ms"), "must be at least 10"));
    }
    let at_least_one = |key: &str, v: u32| {
        if v == 0 {
            Err(invalid(f(key), "must be at least 1"))
        } else {
            Ok(v)
        }
    };
    Ok(VrrpCheck {
        name: raw.name,
        kind,
        interval_ms,
        timeout_ms: raw.timeout_ms.unwrap_or(interval_ms).max(1),
        rise: at_least_one("rise", raw.rise.unwrap_or(CHECK_RISE))?,
        fall: at_least_one("fall", raw.fall.unwrap_or(CHECK_FALL))?,
    })
}

fn sync_groups(
    raw: Vec<RawSyncGroup>,
    instances: &[VrrpInstance],
) -> Result<Vec<SyncGroup>, Invalid> {
    let mut member_of: HashMap<String, String> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, g) in raw.into_iter().enumerate() {
        if g.instances.len() < 2 {
            return Err(invalid(
                format!("vrrp.sync_groups[{i}].instances"),
                "a sync group needs at least two instances",
            ));
        }
        for (j, name) in g.instances.iter().enumerate() {
            let field = format!("vrrp.sync_groups[{i}].instances[{j}]");
            if !instances.iter().any(|inst| &inst.name == name) {
                return Err(invalid(field, format!("no instance named {name:?}")));
            }
            if let Some(other) = member_of.insert(name.clone(), g.name.clone()) {
                return Err(invalid(
                    field,
                    format!("instance {name:?} is already in sync group {other:?}"),
                ));
            }
        }
        check_name(&g.name).map_err(|r| invalid(format!("vrrp.sync_groups[{i}].name"), r))?;
        out.push(SyncGroup {
            name: g.name,
            instances: g.instances,
            tracking_weight: g.tracking_weight.unwrap_or(false),
        });
    }
    Ok(out)
}

fn check_address(text: &str) -> Result<(), String> {
    match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0) => {
            Ok(())
        }
        _ => Err(format!(
            "expected \"host:port\" like \"127.0.0.1:3306\", found {text:?}"
        )),
    }
}

fn parse_unicast(text: &str) -> Result<Ipv4Addr, String> {
    match text.parse::<Ipv4Addr>() {
        Ok(a) if !a.is_multicast() && !a.is_unspecified() && !a.is_broadcast() => Ok(a),
        _ => Err(format!(
            "expected a unicast IPv4 address like \"10.0.0.2\", found {text:?}"
        )),
    }
}

/// `a.b.c.d/len`, or `a.b.c.d` for /32.
fn parse_vip(text: &str) -> Result<VirtualIp, String> {
    let bad = || {
        format!(
            "expected an IPv4 address with a prefix length like \"10.0.0.100/24\", found {text:?}"
        )
    };
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, p.parse::<u8>().map_err(|_| bad())?),
        None => (text, 32),
    };
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    if prefix == 0 || prefix > 32 {
        return Err(bad());
    }
    if addr.is_multicast() || addr.is_unspecified() || addr.is_broadcast() || addr.is_loopback() {
        return Err(format!("{addr} cannot be a virtual IP"));
    }
    Ok(VirtualIp { addr, prefix })
}
