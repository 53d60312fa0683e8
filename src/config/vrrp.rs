//! `[vrrp]`: floating IPs (VRRP instances), their tracked checks, sync
//! groups and actions. Raw serde structs, validated structs and the checks
//! between them live together here so the section reads as one unit.
//!
//! ```toml
//! [[vrrp.instances]]
//! name = "public"
//! interface = "eth0"
//! vrid = 51
//! priority = 150
//! advert_interval_ms = 1000
//! virtual_ips = ["10.0.0.100/24"]
//! version = 3                 # 2 for keepalived's default
//! preempt = true
//! unicast_peers = []          # empty = multicast
//! ```

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::raw::{opt_bool, opt_u32, opt_u64};
use super::validate::Invalid;

/// `[vrrp]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpConfig {
    /// At least one; names unique; VRIDs unique per interface.
    pub instances: Vec<VrrpInstance>,
    /// `[[vrrp.checks]]`: named checks that instances track.
    pub checks: Vec<VrrpCheck>,
    /// `[[vrrp.sync_groups]]`: instances that always change state together.
    pub sync_groups: Vec<SyncGroup>,
}

/// `[[vrrp.instances]]`: one virtual router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpInstance {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    /// 1..=255; 255 = the address owner (master at once, never adjusted).
    pub priority: u8,
    /// v3: 10..=40 950 in steps of 10; v2: whole seconds. Default 1 000.
    pub advert_interval_ms: u64,
    /// At least one; `a.b.c.d/len` (`/32` when no length is given).
    pub virtual_ips: Vec<VirtualIp>,
    /// 3 (default) or 2.
    pub version: u8,
    /// Default true.
    pub preempt: bool,
    /// Default 0: after startup (or first seeing a lower master) wait this long to preempt.
    pub preempt_delay_ms: u64,
    /// Empty = multicast to 224.0.0.18; otherwise adverts go to these and
    /// only these may send us adverts.
    pub unicast_peers: Vec<Ipv4Addr>,
    /// Source of unicast adverts; default the interface's primary address.
    pub unicast_src: Option<Ipv4Addr>,
    /// v3 checksum when sending: with the IPv4 pseudo-header (default,
    /// like keepalived) or over the message only. Both are accepted.
    pub checksum_pseudo_header: bool,
    /// v2 only: `auth_type PASS` password (at most 8 bytes).
    pub auth_pass: Option<String>,
    /// Gratuitous ARPs per VIP on becoming master; default 5.
    pub garp_count: u32,
    /// Between two of them; default 100.
    pub garp_interval_ms: u64,
    /// Resend while master this often; 0 (default) = never.
    pub garp_refresh_ms: u64,
    /// The interface losing its carrier or going down means FAULT; default true.
    pub track_interface: bool,
    pub track: Vec<TrackRef>,
    /// Run as `PROGRAM INSTANCE STATE` on every state change (like keepalived's `notify`,
    /// which passes `INSTANCE name STATE priority`).
    pub notify: Option<PathBuf>,
    /// Built-in database actions for a writer VIP.
    pub db: Option<DbAction>,
}

/// A virtual address with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VirtualIp {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

/// `track = [{ check = "web", weight = -60 }]`: weight 0 = FAULT when failing;
/// positive = added while the check passes; negative = added while it fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackRef {
    pub check: String,
    pub weight: i32,
}

/// `[vrrp.instances.db]`: on MASTER promote the local MariaDB (stop
/// replication, `read_only=OFF`); on BACKUP, FAULT and stop fence it
/// (`read_only=ON`).
#[derive(Clone, PartialEq, Eq)]
pub struct DbAction {
    pub address: String,
    pub user: String,
    pub password: String,
    /// `STOP SLAVE` before `read_only=OFF`; default true.
    pub stop_replication: bool,
    /// Default 2 000.
    pub timeout_ms: u64,
}

/// `[[vrrp.checks]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpCheck {
    pub name: String,
    pub kind: VrrpCheckKind,
    /// Default 1 000.
    pub interval_ms: u64,
    /// Default: the interval.
    pub timeout_ms: u64,
    /// Good results in a row to become up; default 2.
    pub rise: u32,
    /// Bad results in a row to become down; default 3.
    pub fall: u32,
}

/// What a check looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VrrpCheckKind {
    /// A TCP connect succeeds.
    Tcp { address: SocketAddr },
    /// `GET path` answers `expect_status` (default 200).
    Http {
        address: SocketAddr,
        path: String,
        expect_status: u16,
    },
    /// Log in and `SELECT 1`.
    MariadbAlive {
        address: String,
        user: String,
        password: String,
    },
    /// Log in and `@@read_only = 0`.
    MariadbWritable {
        address: String,
        user: String,
        password: String,
    },
    /// This tandem's own HTTP load balancer at `address` answers `GET path`
    /// with a status below 500 (a 5xx means it has no healthy backend).
    TandemHttpLb { address: SocketAddr, path: String },
    /// This tandem's own MySQL listener at `address` sends a server greeting.
    TandemMysql { address: SocketAddr },
    /// A program's exit code: 0 = good.
    Script { command: Vec<String> },
}

/// `[[vrrp.sync_groups]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroup {
    pub name: String,
    pub instances: Vec<String>,
    /// keepalived's `sgroup_tracking_weight`. Default false: a weighted check
    /// of a member that fails puts the group in FAULT instead of lowering one
    /// member's priority (which would make the members disagree and flap).
    pub tracking_weight: bool,
}

// === raw ===

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVrrp {
    #[serde(default)]
    pub instances: Vec<RawInstance>,
    #[serde(default)]
    pub checks: Vec<RawCheck>,
    #[serde(default)]
    pub sync_groups: Vec<RawSyncGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInstance {
    pub name: String,
    pub interface: String,
    #[serde(deserialize_with = "req_u32")]
    pub vrid: u32,
    #[serde(deserialize_with = "req_u32")]
    pub priority: u32,
    #[serde(default, deserialize_with = "opt_u64")]
    pub advert_interval_ms: Option<u64>,
    #[serde(default)]
    pub virtual_ips: Vec<String>,
    #[serde(default, deserialize_with = "opt_u32")]
    pub version: Option<u32>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub preempt: Option<bool>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub preempt_delay_ms: Option<u64>,
    #[serde(default)]
    pub unicast_peers: Vec<String>,
    pub unicast_src: Option<String>,
    pub checksum: Option<String>,
    pub auth_pass: Option<String>,
    #[serde(default, deserialize_with = "opt_u32")]
    pub garp_count: Option<u32>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub garp_interval_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub garp_refresh_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub track_interface: Option<bool>,
    #[serde(default)]
    pub track: Vec<RawTrack>,
    pub notify: Option<PathBuf>,
    pub db: Option<RawDbAction>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTrack {
    pub check: String,
    #[serde(default)]
    pub weight: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDbAction {
    pub address: String,
    pub user: String,
    pub password: String,
    #[serde(default, deserialize_with = "opt_bool")]
    pub stop_replication: Option<bool>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCheck {
    pub name: String,
    pub kind: String,
    pub address: Option<String>,
    pub path: Option<String>,
    #[serde(default, deserialize_with = "opt_u32")]
    pub expect_status: Option<u32>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub command: Option<Vec<String>>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub interval_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_u32")]
    pub rise: Option<u32>,
    #[serde(default, deserialize_with = "opt_u32")]
    pub fall: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSyncGroup {
    pub name: String,
    pub instances: Vec<String>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub tracking_weight: Option<bool>,
}

// === impl DbAction ===

// Hand-written so that a `{:?}` of the config never prints the password.
impl std::fmt::Debug for DbAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbAction")
            .field("address", &self.address)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("stop_replication", &self.stop_replication)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

// === impl VirtualIp ===

impl VirtualIp {
    /// Whether `addr` is in this VIP's subnet.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        let mask = prefix_mask(self.prefix);
        u32::from(addr) & mask == u32::from(self.addr) & mask
    }
}

impl std::fmt::Display for VirtualIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

pub fn prefix_mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

// === validation ===

const ADVERT_INTERVAL_MS: u64 = 1_000;
const GARP_COUNT: u32 = 5;
const GARP_INTERVAL_MS: u64 = 100;
const CHECK_INTERVAL_MS: u64 = 1_000;
const CHECK_RISE: u32 = 2;
const CHECK_FALL: u32 = 3;
const DB_TIMEOUT_MS: u64 = 2_000;

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

pub(super) fn vrrp(raw: RawVrrp, base_dir: Option<&Path>) -> Result<VrrpConfig, Invalid> {
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

fn check_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > 64 || !name.chars().all(ok_char) {
        return Err(format!(
            "expected 1 to 64 letters, digits, '.', '_' or '-', found {name:?}"
        ));
    }
    Ok(())
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
pub(super) fn parse_vip(text: &str) -> Result<VirtualIp, String> {
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

fn req_u32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    opt_u32(d)?.ok_or_else(|| serde::de::Error::custom("expected an integer"))
}

#[cfg(test)]
mod tests;
