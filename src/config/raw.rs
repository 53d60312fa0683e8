//! The configuration as written: serde structs that mirror the TOML one to one.
//!
//! Every struct denies unknown fields, so a typo or a section this version does
//! not implement is an error naming its path instead of a silently ignored
//! setting. Defaults are not applied here: optional keys stay
//! `Option` and `validate.rs` fills them in, so the defaults live in one place.

use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::{
    AuthMode, AuthPlugin, Balance, ConfiguredRole, LogFormat, PrimaryReads, ReadOnlyTransactions,
};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub admin: Option<RawAdmin>,
    pub mysql: Option<RawMysql>,
    pub http: Option<super::http::RawHttp>,
    pub vrrp: Option<super::vrrp::RawVrrp>,
    #[serde(default)]
    pub runtime: RawRuntime,
    #[serde(default)]
    pub log: RawLog,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    pub listen: String,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub metrics_public: Option<bool>,
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub max_connections: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRuntime {
    #[serde(default, deserialize_with = "opt_u32")]
    pub worker_threads: Option<u32>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub shutdown_grace_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub level: Option<String>,
    pub format: Option<LogFormat>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMysql {
    pub listen: String,
    // Empty lists are reported by validation ("at least one ..."), which reads
    // better than serde's "missing field".
    #[serde(default)]
    pub users: Vec<RawUser>,
    pub monitor: Option<RawMonitor>,
    pub auth: Option<AuthMode>,
    pub passthrough: Option<RawPassthrough>,
    #[serde(default)]
    pub backends: Vec<RawBackend>,
    #[serde(default, deserialize_with = "opt_u32")]
    pub max_client_connections: Option<u32>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub handshake_timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub net_read_timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub client_idle_timeout_ms: Option<u64>,
    // u64 so that an out-of-range value gets the range message from validation.
    #[serde(default, deserialize_with = "opt_u64")]
    pub max_allowed_packet: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub backend_connect_timeout_ms: Option<u64>,
    pub default_auth_plugin: Option<AuthPlugin>,
    pub server_version: Option<String>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub require_tls: Option<bool>,
    pub tls: Option<RawTlsFiles>,
    pub backend_tls: Option<RawBackendTls>,
    pub rsa_private_key_file: Option<PathBuf>,
    pub routing: Option<RawRouting>,
    pub pool: Option<RawPool>,
    pub failover: Option<RawFailover>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFailover {
    #[serde(default, deserialize_with = "opt_u64")]
    pub write_pause_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPool {
    #[serde(default, deserialize_with = "opt_bool")]
    pub multiplex: Option<bool>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub max_backend_connections: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub min_idle: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub idle_timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub max_lifetime_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub acquire_timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub ping_after_idle_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub hold_for_diagnostics_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRouting {
    #[serde(default, deserialize_with = "opt_bool")]
    pub read_write_split: Option<bool>,
    pub balance: Option<Balance>,
    pub primary_reads: Option<PrimaryReads>,
    pub read_only_transactions: Option<ReadOnlyTransactions>,
    #[serde(default)]
    pub read_only_functions: Vec<String>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub backend_retry_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub max_prepared_statements_per_backend: Option<u64>,
    pub consistency: Option<String>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub consistency_timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUser {
    pub user: String,
    pub password: Option<String>,
    pub password_hash: Option<String>,
    #[serde(default, deserialize_with = "opt_u32")]
    pub max_connections: Option<u32>,
    pub consistency: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPassthrough {
    pub user: String,
    pub password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMonitor {
    pub user: String,
    pub password: String,
    #[serde(default, deserialize_with = "opt_u64")]
    pub interval_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub connect_timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub query_timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_u32")]
    pub rise: Option<u32>,
    #[serde(default, deserialize_with = "opt_u32")]
    pub fall: Option<u32>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub heartbeat_interval_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub max_replication_lag_ms: Option<u64>,
    #[serde(default, deserialize_with = "opt_u32")]
    pub min_serving_replicas: Option<u32>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub lag_weighting: Option<bool>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub max_staleness_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackend {
    pub name: String,
    pub address: String,
    pub role: ConfiguredRole,
    #[serde(default, deserialize_with = "opt_u32")]
    pub weight: Option<u32>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub local: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackendTls {
    pub ca_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub verify: Option<bool>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub required: Option<bool>,
}

// === lenient scalars ===
//
// Environment overrides arrive as strings (`TANDEM__MYSQL__MAX_CLIENT_CONNECTIONS=4096`).
// The `config` crate's `try_parsing` would turn them into numbers, but it guesses
// without knowing the field and loses text: a password "0123" would become 123,
// "TRUE" would become true. So the environment stays text and the numeric and
// boolean fields below also accept a string holding their value.

/// Unsigned integer types a lenient field can hold.
trait Unsigned: Sized {
    const MAX: u64;
    fn from_u64(v: u64) -> Self;
}

struct UnsignedVisitor<T>(PhantomData<T>);

struct BoolVisitor;

// === impl Unsigned ===

impl Unsigned for u32 {
    const MAX: u64 = u32::MAX as u64;
    fn from_u64(v: u64) -> Self {
        v as u32
    }
}

impl Unsigned for u64 {
    const MAX: u64 = u64::MAX;
    fn from_u64(v: u64) -> Self {
        v
    }
}

// === impl UnsignedVisitor ===

impl<'de, T: Unsigned> Visitor<'de> for UnsignedVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an integer from 0 to {}", T::MAX)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        if v > T::MAX {
            return Err(E::invalid_value(de::Unexpected::Unsigned(v), &self));
        }
        Ok(T::from_u64(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        match v.trim().parse::<u64>() {
            Ok(n) => self.visit_u64(n),
            Err(_) => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }
}

// === impl BoolVisitor ===

impl Visitor<'_> for BoolVisitor {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("true or false")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        match v.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }
}

pub(super) fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    d.deserialize_any(UnsignedVisitor::<u32>(PhantomData))
        .map(Some)
}

pub(super) fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    d.deserialize_any(UnsignedVisitor::<u64>(PhantomData))
        .map(Some)
}

pub(super) fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    d.deserialize_any(BoolVisitor).map(Some)
}
