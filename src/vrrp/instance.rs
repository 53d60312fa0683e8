//! One VRRP instance as an actor: it owns its [`Machine`], its sockets and
//! its VIPs, and turns datagrams, deadlines, link and check changes into
//! machine inputs, then carries out the machine's actions.
//!
//! ```text
//!   raw socket ──decode/validate──┐
//!   deadline (machine) ───────────┼──> Machine::handle ──> send advert
//!   tick: link, checks, group ────┘                     ├─> add/remove VIPs, GARP
//!                                                       └─> status, metrics, actions
//! ```

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::actions::{self, Actions, Reported};
use super::addr::{self, Netlink};
use super::filter::{Filter, Verdict};
use super::machine::{Action, Input, Machine, Params, State};
use super::packet::{self, Advert, Auth, ChecksumMode, Version, MULTICAST_GROUP};
use super::socket::VrrpSocket;
use super::track::CheckState;
use super::{InstanceStatus, VrrpError};
use crate::config::{VirtualIp, VrrpInstance};
use crate::metrics;

/// How often link state, checks and the sync group are looked at.
const TICK: Duration = Duration::from_millis(50);
/// How long a stop waits for its actions (notify, DB fence) to finish.
const ACTIONS_DRAIN: Duration = Duration::from_secs(10);

/// A sync group (keepalived's `vrrp_sync_group`): its members change state
/// together. Any member in FAULT puts the others in FAULT; a member becoming
/// MASTER or falling back to BACKUP takes the others along.
pub struct Group {
    pub name: String,
    /// Weighted checks lower a member's priority (true) or fault the group (false).
    tracking_weight: bool,
    /// Members in FAULT now. A std Mutex: held for a set insert, never across an await.
    faulted: Mutex<HashSet<String>>,
    /// (member, new state) for every MASTER/BACKUP change.
    changes: tokio::sync::broadcast::Sender<(String, State)>,
}

/// A started instance, ready to run.
pub struct Instance {
    cfg: VrrpInstance,
    netlink: Netlink,
    index: u32,
    /// What an advert must satisfy to be acted on.
    filter: Filter,
    src: Ipv4Addr,
    socket: VrrpSocket,
    machine: Machine,
    checks: HashMap<String, CheckState>,
    group: Option<Arc<Group>>,
    status: Arc<Mutex<InstanceStatus>>,
    epoch: Instant,
    auth: Auth,
    next_garp_refresh: Option<Instant>,
    /// The gratuitous-ARP socket, used here and from blocking threads; a std
    /// Mutex, held for one non-blocking send, never across an await.
    arp: Arc<Mutex<Option<addr::ArpSender>>>,
    warned_addrs: bool,
}

// === impl Group ===

impl Group {
    pub fn new(name: &str, tracking_weight: bool) -> Group {
        Group {
            name: name.to_owned(),
            tracking_weight,
            faulted: Mutex::default(),
            changes: tokio::sync::broadcast::channel(64).0,
        }
    }

    fn set(&self, member: &str, faulted: bool) -> bool {
        let mut f = self.faulted.lock().unwrap_or_else(|e| e.into_inner());
        if faulted {
            f.insert(member.to_owned());
        } else {
            f.remove(member);
        }
        f.iter().any(|m| m != member)
    }
}

// === impl Instance ===

impl Instance {
    /// Finds the interface and its address, removes stale VIPs, opens the
    /// sockets. Errors here stop tandem from starting.
    pub async fn prepare(
        cfg: VrrpInstance,
        netlink: Netlink,
        checks: HashMap<String, CheckState>,
        group: Option<Arc<Group>>,
        status: Arc<Mutex<InstanceStatus>>,
    ) -> Result<Instance, VrrpError> {
        let err = |reason: String| VrrpError::Instance {
            instance: cfg.name.clone(),
            reason,
        };
        let link = netlink
            .link(&cfg.interface)
            .await
            .map_err(|e| err(e.to_string()))?;
        let vips: HashSet<Ipv4Addr> = cfg.virtual_ips.iter().map(|v| v.addr).collect();
        let subnets: Vec<_> = netlink
            .addresses(link.index)
            .await
            .map_err(|e| err(e.to_string()))?
            .into_iter()
            .filter(|a| !vips.contains(&a.addr))
            .collect();
        let primary = subnets.first().map(|a| a.addr).ok_or_else(|| {
            err(format!(
                "interface {} has no IPv4 address of its own",
                cfg.interface
            ))
        })?;
        check_subnets(&cfg, &subnets).map_err(err)?;
        // A previous run that was killed may have left its VIPs behind.
        for v in &cfg.virtual_ips {
            match netlink.remove(link.index, v.addr).await {
                Ok(true) => {
                    tracing::info!(instance = %cfg.name, vip = %v, "removed a stale virtual IP")
                }
                Ok(false) => {}
                Err(e) => return Err(err(format!("cannot remove stale {v}: {e}"))),
            }
        }
        let arp = match addr::ArpSender::open(&cfg.interface) {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::warn!(instance = %cfg.name, error = %e, "gratuitous ARP socket not open yet");
                None
            }
        };
        let src = cfg.unicast_src.unwrap_or(primary);
        let socket =
            VrrpSocket::open(&cfg.interface, src, cfg.unicast_peers.is_empty()).map_err(|e| {
                err(format!(
                    "raw socket on {}: {e} (tandem needs root or CAP_NET_RAW)",
                    cfg.interface
                ))
            })?;
        let version = if cfg.version == 2 {
            Version::V2
        } else {
            Version::V3
        };
        let machine = Machine::new(Params {
            version,
            priority: cfg.priority,
            advert_interval_cs: (cfg.advert_interval_ms / 10) as u16,
            preempt: cfg.preempt,
            preempt_delay: Duration::from_millis(cfg.preempt_delay_ms),
            local_addr: src,
        });
        let auth = match &cfg.auth_pass {
            Some(p) => Auth::pass(p),
            None => Auth::None,
        };
        {
            let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
            s.local_address = src.to_string();
        }
        let filter = Filter {
            vrid: cfg.vrid,
            version,
            own: src,
            subnets: subnets
                .iter()
                .map(|a| VirtualIp {
                    addr: a.addr,
                    prefix: a.prefix,
                })
                .collect(),
            unicast_peers: cfg.unicast_peers.clone(),
            auth: auth.clone(),
            interval_cs: (cfg.advert_interval_ms / 10) as u16,
            vips,
        };
        Ok(Instance {
            index: link.index,
            netlink,
            filter,
            src,
            socket,
            machine,
            checks,
            group,
            status,
            epoch: Instant::now(),
            auth,
            next_garp_refresh: None,
            arp: Arc::new(Mutex::new(arp)),
            warned_addrs: false,
            cfg,
        })
    }

    /// Runs until `shutdown`, then steps down gracefully (priority 0,
    /// VIPs removed, actions drained).
    pub async fn run(mut self, shutdown: CancellationToken) {
        let (actions, worker) = Actions::start(&self.cfg);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut group_rx = self.group.as_ref().map(|g| g.changes.subscribe());
        // Fault and priority before the first decision.
        let (fault, priority) = self.conditions().await;
        self.step(Input::Priority(priority), &actions).await;
        self.step(Input::Fault(fault), &actions).await;
        self.step(Input::Startup, &actions).await;
        self.publish();
        loop {
            let deadline = self.machine.deadline().map(|d| self.epoch + d);
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = sleep_until(deadline) => self.step(Input::Timer, &actions).await,
                r = self.socket.recv() => match r {
                    Ok(datagram) => self.on_datagram(&datagram, &actions).await,
                    Err(e) => {
                        tracing::warn!(instance = %self.cfg.name, error = %e, "vrrp receive failed");
                        tokio::time::sleep(TICK).await;
                    }
                },
                _ = tick.tick() => self.on_tick(&actions).await,
                (member, to) = group_change(&mut group_rx) => {
                    let input = match to {
                        State::Master => Some(Input::GroupMaster),
                        State::Backup => Some(Input::GroupBackup),
                        _ => None,
                    };
                    if let (Some(input), true) = (input, member != self.cfg.name) {
                        self.step(input, &actions).await;
                    }
                }
            }
        }
        self.step(Input::Shutdown, &actions).await;
        actions.send(actions::Event {
            state: Reported::Stop,
            priority: self.machine.priority(),
        });
        drop(actions);
        if tokio::time::timeout(ACTIONS_DRAIN, worker).await.is_err() {
            tracing::warn!(instance = %self.cfg.name, "vrrp actions still running at stop");
        }
        if let Some(g) = &self.group {
            g.set(&self.cfg.name, false);
        }
        self.publish();
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Interface carrier, tracked checks and the sync group -> (fault, priority).
    async fn conditions(&mut self) -> (bool, u8) {
        let mut reasons = Vec::new();
        if self.cfg.track_interface {
            match self.netlink.link(&self.cfg.interface).await {
                Ok(l) if l.usable => {}
                Ok(_) => reasons.push(format!("interface {} down", self.cfg.interface)),
                Err(e) => reasons.push(e.to_string()),
            }
        }
        let mut priority = i32::from(self.cfg.priority);
        // keepalived: in a sync group, weights fault the group unless
        // `tracking_weight` (sgroup_tracking_weight) says otherwise.
        let weights_fault = self.group.as_ref().is_some_and(|g| !g.tracking_weight);
        let mut checks = serde_json::Map::new();
        for t in &self.cfg.track {
            let up = self.checks.get(&t.check).and_then(|rx| *rx.borrow());
            checks.insert(t.check.clone(), serde_json::json!(up));
            // Until its first result a check counts as good.
            let up = up.unwrap_or(true);
            match (t.weight, up) {
                (0, false) => reasons.push(format!("check {} failing", t.check)),
                (_, false) if weights_fault => reasons.push(format!(
                    "check {} failing (weights fault a sync group without tracking_weight)",
                    t.check
                )),
                _ if weights_fault => {}
                (w, true) if w > 0 => priority += w,
                (w, false) if w < 0 => priority += w,
                _ => {}
            }
        }
        let own_fault = !reasons.is_empty();
        if let Some(g) = &self.group {
            if g.set(&self.cfg.name, own_fault) {
                reasons.push(format!("sync group {} has a member in FAULT", g.name));
            }
        }
        // The address owner's priority is never adjusted.
        let priority = if self.cfg.priority == 255 {
            255
        } else {
            priority.clamp(1, 254) as u8
        };
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        s.fault_reasons = reasons;
        s.checks = checks;
        (!s.fault_reasons.is_empty(), priority)
    }

    async fn on_tick(&mut self, actions: &Actions) {
        let (fault, priority) = self.conditions().await;
        if priority != self.machine.priority() {
            self.step(Input::Priority(priority), actions).await;
        }
        let faulted = self.machine.state() == State::Fault;
        if fault != faulted {
            self.step(Input::Fault(fault), actions).await;
        }
        if let Some(at) = self.next_garp_refresh {
            if Instant::now() >= at && self.machine.state() == State::Master {
                self.garp(1);
            }
        }
        self.publish();
    }

    async fn on_datagram(&mut self, datagram: &[u8], actions: &Actions) {
        let name = &self.cfg.name;
        let r = match packet::decode_ipv4(datagram) {
            Ok(r) => r,
            Err(e) => return invalid(name, e.label()),
        };
        match self.filter.check(&r) {
            Verdict::Ignore => return,
            Verdict::Drop(reason) => return invalid(name, reason),
            Verdict::Accept { same_addresses } => {
                if !same_addresses && !self.warned_addrs && r.advert.priority != 255 {
                    // RFC 5798 Section 7.1: log and carry on.
                    tracing::warn!(instance = %name, from = %r.src, "vrrp advert lists other virtual IPs than ours");
                    self.warned_addrs = true;
                }
            }
        }
        ::metrics::counter!(metrics::VRRP_ADVERTS_RECEIVED_TOTAL, "instance" => name.clone())
            .increment(1);
        {
            let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
            s.adverts_received += 1;
        }
        let input = Input::Advert {
            src: r.src,
            priority: r.advert.priority,
            interval_cs: r.advert.interval_cs,
        };
        self.step(input, actions).await;
    }

    /// Feeds one input and carries out the actions, in order.
    async fn step(&mut self, input: Input, actions: &Actions) {
        let now = self.now();
        for action in self.machine.handle(now, input) {
            match action {
                Action::SendAdvert(p) => self.send_advert(p),
                Action::TakeAddresses => {
                    for v in &self.cfg.virtual_ips {
                        if let Err(e) = self.netlink.add(self.index, *v).await {
                            tracing::error!(instance = %self.cfg.name, vip = %v, error = %e, "cannot add virtual IP");
                        }
                    }
                    self.garp(self.cfg.garp_count);
                }
                Action::ReleaseAddresses => {
                    self.next_garp_refresh = None;
                    for v in &self.cfg.virtual_ips {
                        if let Err(e) = self.netlink.remove(self.index, v.addr).await {
                            tracing::error!(instance = %self.cfg.name, vip = %v, error = %e, "cannot remove virtual IP");
                        }
                    }
                }
                Action::Changed { from, to } => self.changed(from, to, actions),
            }
        }
        self.publish();
    }

    fn send_advert(&self, priority: u8) {
        let advert = Advert {
            version: if self.cfg.version == 2 {
                Version::V2
            } else {
                Version::V3
            },
            vrid: self.cfg.vrid,
            priority,
            interval_cs: (self.cfg.advert_interval_ms / 10) as u16,
            addrs: self.cfg.virtual_ips.iter().map(|v| v.addr).collect(),
            auth: self.auth.clone(),
        };
        let mode = if self.cfg.checksum_pseudo_header {
            ChecksumMode::PseudoHeader
        } else {
            ChecksumMode::MessageOnly
        };
        let dsts: Vec<Ipv4Addr> = if self.cfg.unicast_peers.is_empty() {
            vec![MULTICAST_GROUP]
        } else {
            self.cfg.unicast_peers.clone()
        };
        for dst in dsts {
            let msg = advert.encode(self.src, dst, mode);
            match self.socket.send(&msg, dst) {
                Ok(()) => {
                    ::metrics::counter!(metrics::VRRP_ADVERTS_SENT_TOTAL, "instance" => self.cfg.name.clone())
                        .increment(1);
                    let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
                    s.adverts_sent += 1;
                }
                Err(e) => {
                    tracing::warn!(instance = %self.cfg.name, to = %dst, error = %e, "vrrp send failed")
                }
            }
        }
    }

    /// Gratuitous ARPs on a blocking thread, so a slow burst never delays adverts.
    /// The first gratuitous ARP goes out at once (a non-blocking send); the
    /// rest of the burst runs on a blocking thread, so its pauses never delay
    /// adverts.
    fn garp(&mut self, count: u32) {
        if self.cfg.garp_refresh_ms > 0 {
            self.next_garp_refresh =
                Some(Instant::now() + Duration::from_millis(self.cfg.garp_refresh_ms));
        }
        if count == 0 {
            return;
        }
        let vips: Vec<Ipv4Addr> = self.cfg.virtual_ips.iter().map(|v| v.addr).collect();
        if !announce(&self.arp, &self.cfg.interface, &vips, &self.cfg.name) || count == 1 {
            return;
        }
        let arp = self.arp.clone();
        let iface = self.cfg.interface.clone();
        let interval = Duration::from_millis(self.cfg.garp_interval_ms);
        let name = self.cfg.name.clone();
        tokio::task::spawn_blocking(move || {
            for _ in 1..count {
                std::thread::sleep(interval);
                if !announce(&arp, &iface, &vips, &name) {
                    return;
                }
            }
        });
    }

    fn changed(&mut self, from: State, to: State, actions: &Actions) {
        let name = &self.cfg.name;
        tracing::info!(instance = %name, from = from.as_str(), to = to.as_str(), priority = self.machine.priority(), "vrrp state change");
        ::metrics::counter!(metrics::VRRP_TRANSITIONS_TOTAL, "instance" => name.clone(), "to" => to.as_str())
            .increment(1);
        {
            let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
            s.transitions += 1;
            s.last_change_unix_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
        }
        if let (Some(g), State::Master | State::Backup) = (&self.group, to) {
            // No receiver (a one-member moment at shutdown) is fine.
            let _ = g.changes.send((name.clone(), to));
        }
        let reported = match to {
            State::Master => Some(Reported::Master),
            State::Backup => Some(Reported::Backup),
            State::Fault => Some(Reported::Fault),
            // Shutdown reports STOP itself, after the last advert.
            State::Initialize => None,
        };
        if let Some(state) = reported {
            actions.send(actions::Event {
                state,
                priority: self.machine.priority(),
            });
        }
    }

    /// Copies the machine's view into the shared status and the gauges.
    fn publish(&self) {
        let state = self.machine.state();
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if s.state != state.as_str() {
            for st in State::ALL {
                ::metrics::gauge!(metrics::VRRP_STATE, "instance" => self.cfg.name.clone(), "state" => st.as_str())
                    .set(if st == state { 1.0 } else { 0.0 });
            }
        }
        s.state = state.as_str();
        s.priority = self.machine.priority();
        s.master = self.machine.master().map(|m| m.to_string());
        s.master_advert_interval_ms = self.machine.master_adver_interval().as_millis() as u64;
        ::metrics::gauge!(metrics::VRRP_PRIORITY, "instance" => self.cfg.name.clone())
            .set(f64::from(self.machine.priority()));
    }
}

fn invalid(instance: &str, reason: &'static str) {
    ::metrics::counter!(metrics::VRRP_INVALID_PACKETS_TOTAL, "instance" => instance.to_owned(), "reason" => reason)
        .increment(1);
    tracing::debug!(instance, reason, "vrrp datagram dropped");
}

/// One gratuitous ARP per VIP; false (logged) when it failed. Opens the
/// socket if it is not open (not at start, or failed since).
fn announce(
    arp: &Mutex<Option<addr::ArpSender>>,
    iface: &str,
    vips: &[Ipv4Addr],
    name: &str,
) -> bool {
    let mut sender = arp.lock().unwrap_or_else(|e| e.into_inner());
    if sender.is_none() {
        match addr::ArpSender::open(iface) {
            Ok(s) => *sender = Some(s),
            Err(e) => {
                tracing::warn!(instance = %name, error = %e, "gratuitous ARP failed");
                return false;
            }
        }
    }
    if let Some(Err(e)) = sender.as_mut().map(|s| s.announce(vips)) {
        tracing::warn!(instance = %name, error = %e, "gratuitous ARP failed");
        // Reopen next time (the interface may have been recreated).
        *sender = None;
        return false;
    }
    true
}

/// Every VIP with a prefix must lie in a subnet of the interface's own
/// addresses (like keepalived users expect): one outside is almost always a
/// typo, and the LAN's clients would have no route to it.
fn check_subnets(cfg: &VrrpInstance, subnets: &[addr::IfAddr]) -> Result<(), String> {
    for v in &cfg.virtual_ips {
        if v.prefix < 32 && !subnets.iter().any(|a| v.contains(a.addr)) {
            let have: Vec<String> = subnets
                .iter()
                .map(|a| format!("{}/{}", a.addr, a.prefix))
                .collect();
            return Err(format!(
                "virtual IP {v} is not in a subnet of {} (its addresses: {})",
                cfg.interface,
                have.join(", ")
            ));
        }
    }
    Ok(())
}

/// The next change of another sync group member; never, without a group.
async fn group_change(
    rx: &mut Option<tokio::sync::broadcast::Receiver<(String, State)>>,
) -> (String, State) {
    if let Some(rx) = rx {
        loop {
            match rx.recv().await {
                Ok(change) => return change,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    }
    std::future::pending().await
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
