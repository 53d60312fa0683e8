//! Embedded VRRP: floating IPs that move between nodes when a node or a
//! tracked service fails. VRRPv3 (RFC 5798 / RFC 9568) and VRRPv2
//! (RFC 3768) for IPv4, interoperable with keepalived.
//!
//! ```text
//!   App::start ──> Vrrp::start ──> thread "vrrp" (current-thread runtime)
//!                                   ├─ netlink connection task
//!                                   ├─ track: one task per [[vrrp.checks]]
//!                                   └─ instance::run per [[vrrp.instances]]
//!                                        machine (pure) + socket + addr + actions
//!   /status <── InstanceStatus (std Mutex, copied on read)
//! ```
//! The instances run on their own thread and runtime so that MySQL or HTTP
//! load on the main runtime can never delay an advert or a takeover.
//!
//! - `packet`: the codec; `machine`: the RFC state machine, no I/O, no clock;
//! - `filter`: which adverts an instance acts on (VRID, version, source, auth);
//! - `socket`: raw protocol-112 sockets; `addr`: link state, VIPs (netlink),
//!   gratuitous ARP; `track`: checks; `actions`: notify and DB promote/fence;
//! - `instance`: the actor that wires them together.

mod actions;
mod addr;
mod filter;
mod instance;
pub mod machine;
pub mod packet;
mod socket;
mod track;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::VrrpConfig;
use instance::{Group, Instance};

/// How long start waits for the instances to find their interfaces.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Why VRRP could not start.
#[derive(Debug, thiserror::Error)]
pub enum VrrpError {
    #[error("vrrp instance {instance}: {reason}")]
    Instance { instance: String, reason: String },
    #[error("vrrp: {0}")]
    Start(String),
}

/// What `/status` shows for one instance.
#[derive(Clone, Debug, Default, Serialize)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub version: u8,
    pub state: &'static str,
    /// Effective priority (configured ± weights).
    pub priority: u8,
    pub configured_priority: u8,
    /// The master as last heard (our own address when master).
    pub master: Option<String>,
    pub local_address: String,
    pub virtual_ips: Vec<String>,
    pub advert_interval_ms: u64,
    pub master_advert_interval_ms: u64,
    pub unicast_peers: Vec<String>,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    pub transitions: u64,
    pub last_change_unix_ms: u64,
    pub fault_reasons: Vec<String>,
    /// Tracked check -> up (null until its first result).
    pub checks: serde_json::Map<String, serde_json::Value>,
}

/// The running VRRP part of a node.
pub struct Vrrp {
    /// Written by the VRRP thread, read by the admin handler; a std Mutex
    /// because both sides hold it only to copy a few fields.
    statuses: Vec<Arc<Mutex<InstanceStatus>>>,
    /// Taken by the first `stop`; a Mutex so `stop` works through the `Arc`
    /// the admin status callback also holds.
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    stop: CancellationToken,
}

// === impl Vrrp ===

impl Vrrp {
    /// Starts every instance on the VRRP thread; returns once each has found
    /// its interface and opened its sockets (or with the first error).
    /// Cancelling `shutdown` steps every instance down gracefully.
    pub async fn start(cfg: VrrpConfig, shutdown: &CancellationToken) -> Result<Vrrp, VrrpError> {
        let stop = shutdown.child_token();
        let statuses: Vec<_> = cfg
            .instances
            .iter()
            .map(|i| {
                Arc::new(Mutex::new(InstanceStatus {
                    name: i.name.clone(),
                    interface: i.interface.clone(),
                    vrid: i.vrid,
                    version: i.version,
                    state: "INIT",
                    priority: i.priority,
                    configured_priority: i.priority,
                    virtual_ips: i.virtual_ips.iter().map(|v| v.to_string()).collect(),
                    advert_interval_ms: i.advert_interval_ms,
                    unicast_peers: i.unicast_peers.iter().map(|p| p.to_string()).collect(),
                    ..Default::default()
                }))
            })
            .collect();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let thread = {
            let statuses = statuses.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("vrrp".into())
                .spawn(move || run_thread(cfg, statuses, stop, ready_tx))
                .map_err(|e| VrrpError::Start(format!("cannot start the vrrp thread: {e}")))?
        };
        let ready = tokio::time::timeout(START_TIMEOUT, ready_rx).await;
        let vrrp = Vrrp {
            statuses,
            thread: Mutex::new(Some(thread)),
            stop,
        };
        match ready {
            Ok(Ok(Ok(()))) => Ok(vrrp),
            Ok(Ok(Err(e))) => {
                vrrp.stop().await;
                Err(e)
            }
            Ok(Err(_)) => Err(VrrpError::Start(
                "the vrrp thread ended while starting".into(),
            )),
            Err(_) => {
                vrrp.stop.cancel();
                Err(VrrpError::Start("instances did not start in time".into()))
            }
        }
    }

    /// `/status`: one object per instance.
    pub fn status_json(&self) -> serde_json::Value {
        let list: Vec<InstanceStatus> = self
            .statuses
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect();
        serde_json::json!({ "instances": list })
    }

    /// Steps every instance down (priority-0 adverts, VIPs removed, DB
    /// fenced) and waits for the thread.
    pub async fn stop(&self) {
        self.stop.cancel();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Drop for Vrrp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn run_thread(
    cfg: VrrpConfig,
    statuses: Vec<Arc<Mutex<InstanceStatus>>>,
    stop: CancellationToken,
    ready: tokio::sync::oneshot::Sender<Result<(), VrrpError>>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(VrrpError::Start(format!("runtime: {e}"))));
            return;
        }
    };
    rt.block_on(async move {
        let netlink = match addr::Netlink::open() {
            Ok(n) => n,
            Err(e) => {
                let _ = ready.send(Err(VrrpError::Start(e.to_string())));
                return;
            }
        };
        let checks = track::start(&cfg.checks, &stop);
        let mut groups: HashMap<&str, Arc<Group>> = HashMap::new();
        for g in &cfg.sync_groups {
            let group = Arc::new(Group::new(&g.name, g.tracking_weight));
            for member in &g.instances {
                groups.insert(member.as_str(), group.clone());
            }
        }
        let mut prepared = Vec::new();
        for (inst, status) in cfg.instances.iter().zip(&statuses) {
            let tracked = inst
                .track
                .iter()
                .filter_map(|t| checks.get(&t.check).map(|c| (t.check.clone(), c.clone())))
                .collect();
            let group = groups.get(inst.name.as_str()).cloned();
            match Instance::prepare(
                inst.clone(),
                netlink.clone(),
                tracked,
                group,
                status.clone(),
            )
            .await
            {
                Ok(i) => prepared.push(i),
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            }
        }
        let _ = ready.send(Ok(()));
        let tasks: Vec<_> = prepared
            .into_iter()
            .map(|i| tokio::spawn(i.run(stop.clone())))
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    });
}
