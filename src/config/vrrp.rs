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

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;

use super::raw::{opt_bool, opt_u32, opt_u64};

mod validate;

pub(super) use validate::vrrp;

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
    /// Apply the relay log already received (at most `timeout_ms / 2`), then
    /// `STOP ALL SLAVES`, before `read_only=OFF`; default true.
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

fn req_u32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    opt_u32(d)?.ok_or_else(|| serde::de::Error::custom("expected an integer"))
}

#[cfg(test)]
mod tests;
