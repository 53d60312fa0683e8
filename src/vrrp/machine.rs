//! The VRRP state machine of one virtual router (RFC 5798 Section 6.4,
//! RFC 9568 Section 6.4, RFC 3768 Section 6.4), plus keepalived's FAULT state.
//!
//! Pure: no I/O and no clock. Every call takes `now` (time since an epoch the
//! caller chooses) and an [`Input`], and returns the [`Action`]s the caller
//! must carry out, in order. [`Machine::deadline`] says when to call again
//! with [`Input::Timer`] if nothing else happens first.
//!
//! ```text
//!              Startup (prio 255)                 Master_Down_Timer
//!   Initialize ─────────────────────> Master <──────────────────── Backup
//!        │ Startup                      │  higher-priority advert    ^
//!        └──────────────────────────────┼────────────────────────────┘
//!   any ── Fault(true) ──> Fault ── Fault(false) ──> (as Startup)
//! ```

use std::net::Ipv4Addr;
use std::time::Duration;

use super::packet::Version;

/// What the machine needs to know about its virtual router.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    pub version: Version,
    /// Configured priority, 1..=255 (255 = address owner).
    pub priority: u8,
    /// Advertisement_Interval in centiseconds (v2: multiple of 100).
    pub advert_interval_cs: u16,
    /// Preempt_Mode: a backup with a higher priority takes over from a live master.
    pub preempt: bool,
    /// keepalived's `preempt_delay`: after startup, or after first seeing a
    /// lower-priority master, wait this long before preempting it.
    pub preempt_delay: Duration,
    /// This router's primary address on the interface: the tie-breaker
    /// between equal priorities (RFC 5798 Section 6.4.3).
    pub local_addr: Ipv4Addr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Initialize,
    Backup,
    Master,
    /// The interface is down or a tracked check with `fault` failed.
    Fault,
}

/// One event for the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Startup,
    /// Graceful stop: a master sends a priority-0 advert (RFC 5798 Section 6.4.3).
    Shutdown,
    /// A valid advert for this VRID (already checked by the caller).
    Advert {
        src: Ipv4Addr,
        priority: u8,
        interval_cs: u16,
    },
    /// A deadline passed.
    Timer,
    /// The interface or a fault-tracked check went bad (true) or recovered (false).
    Fault(bool),
    /// The effective priority changed (tracked checks with weights).
    Priority(u8),
    /// Another member of this instance's sync group became MASTER
    /// (keepalived's `vrrp_sync_group`: members change state together).
    GroupMaster,
    /// Another member of the sync group went from MASTER to BACKUP.
    GroupBackup,
}

/// What the caller must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send an advert with this priority.
    SendAdvert(u8),
    /// Add the virtual addresses, then send gratuitous ARPs for them.
    TakeAddresses,
    /// Remove the virtual addresses.
    ReleaseAddresses,
    /// The state changed (notify hooks, metrics, DB actions).
    Changed { from: State, to: State },
}

/// The state machine of one virtual router.
#[derive(Clone, Debug)]
pub struct Machine {
    params: Params,
    state: State,
    /// Effective priority (configured ± tracking weights).
    priority: u8,
    /// Master_Adver_Interval (v3 adopts the master's, RFC 5798 Section 6.1).
    master_adver_interval_cs: u16,
    master_down_at: Option<Duration>,
    adver_at: Option<Duration>,
    /// When preemption of a lower-priority master becomes allowed.
    preempt_after: Option<Duration>,
    faulted: bool,
    started: bool,
    /// The address of the current master as last heard (ours when master).
    master: Option<Ipv4Addr>,
}

// === impl State ===

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }

    pub const ALL: [State; 4] = [
        State::Initialize,
        State::Backup,
        State::Master,
        State::Fault,
    ];
}

// === impl Machine ===

impl Machine {
    pub fn new(params: Params) -> Machine {
        Machine {
            priority: params.priority,
            master_adver_interval_cs: params.advert_interval_cs,
            params,
            state: State::Initialize,
            master_down_at: None,
            adver_at: None,
            preempt_after: None,
            faulted: false,
            started: false,
            master: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn priority(&self) -> u8 {
        self.priority
    }

    pub fn master(&self) -> Option<Ipv4Addr> {
        self.master
    }

    pub fn master_adver_interval(&self) -> Duration {
        cs(self.master_adver_interval_cs)
    }

    /// When to feed [`Input::Timer`], if no other input comes first.
    pub fn deadline(&self) -> Option<Duration> {
        match self.state {
            State::Master => self.adver_at,
            State::Backup => self.master_down_at,
            State::Initialize | State::Fault => None,
        }
    }

    /// Skew_Time (RFC 5798 Section 6.1; RFC 3768: in seconds, for v2).
    pub fn skew_time(&self) -> Duration {
        let weight = u64::from(256 - u16::from(self.priority));
        match self.params.version {
            Version::V3 => Duration::from_micros(
                weight * u64::from(self.master_adver_interval_cs) * 10_000 / 256,
            ),
            Version::V2 => Duration::from_micros(weight * 1_000_000 / 256),
        }
    }

    /// Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time.
    pub fn master_down_interval(&self) -> Duration {
        let interval = match self.params.version {
            Version::V3 => self.master_adver_interval_cs,
            Version::V2 => self.params.advert_interval_cs,
        };
        3 * cs(interval) + self.skew_time()
    }

    pub fn handle(&mut self, now: Duration, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Startup => {
                self.started = true;
                self.preempt_after = Some(now + self.params.preempt_delay);
                if !self.faulted && self.state == State::Initialize {
                    self.start(now, &mut out);
                }
            }
            Input::Shutdown => {
                self.started = false;
                if self.state == State::Master {
                    out.push(Action::SendAdvert(0));
                    out.push(Action::ReleaseAddresses);
                }
                self.enter(State::Initialize, &mut out);
            }
            Input::Advert {
                src,
                priority,
                interval_cs,
            } => self.on_advert(now, src, priority, interval_cs, &mut out),
            Input::Timer => self.on_timer(now, &mut out),
            Input::Fault(bad) => self.on_fault(now, bad, &mut out),
            Input::GroupMaster => {
                if self.state == State::Backup {
                    self.become_master(now, &mut out);
                }
            }
            Input::GroupBackup => {
                if self.state == State::Master {
                    self.adver_at = None;
                    self.master = None;
                    self.master_down_at = Some(now + self.master_down_interval());
                    out.push(Action::ReleaseAddresses);
                    self.enter(State::Backup, &mut out);
                }
            }
            Input::Priority(p) => {
                // The address owner's priority is not adjusted (keepalived does the same).
                if self.params.priority != 255 {
                    self.priority = p.clamp(1, 254);
                }
            }
        }
        out
    }

    /// RFC 5798 Section 6.4.1: Initialize on Startup.
    fn start(&mut self, now: Duration, out: &mut Vec<Action>) {
        if self.priority == 255 {
            self.become_master(now, out);
        } else {
            self.master_adver_interval_cs = self.params.advert_interval_cs;
            self.master_down_at = Some(now + self.master_down_interval());
            self.enter(State::Backup, out);
        }
    }

    fn on_timer(&mut self, now: Duration, out: &mut Vec<Action>) {
        match self.state {
            // RFC 5798 Section 6.4.3: Adver_Timer fires.
            State::Master if self.adver_at.is_some_and(|t| t <= now) => {
                out.push(Action::SendAdvert(self.priority));
                self.adver_at = Some(now + cs(self.params.advert_interval_cs));
            }
            // RFC 5798 Section 6.4.2: Master_Down_Timer fires.
            State::Backup if self.master_down_at.is_some_and(|t| t <= now) => {
                self.become_master(now, out);
            }
            _ => {}
        }
    }

    fn on_advert(
        &mut self,
        now: Duration,
        src: Ipv4Addr,
        priority: u8,
        interval_cs: u16,
        out: &mut Vec<Action>,
    ) {
        match self.state {
            State::Backup => {
                if priority == 0 {
                    // The master is stopping: take over after Skew_Time.
                    self.master_down_at = Some(now + self.skew_time());
                    return;
                }
                let lower = priority < self.priority;
                if !self.params.preempt || !lower || self.preempt_delayed(now) {
                    self.master = Some(src);
                    if self.params.version == Version::V3 {
                        self.master_adver_interval_cs = interval_cs.max(1);
                    }
                    self.master_down_at = Some(now + self.master_down_interval());
                }
                // Otherwise (RFC 9568 Section 6.4.2) the advert is discarded
                // and the Master_Down_Timer runs out: preemption.
            }
            State::Master => {
                if priority == 0 {
                    // Another router is leaving: make ourselves known at once.
                    out.push(Action::SendAdvert(self.priority));
                    self.adver_at = Some(now + cs(self.params.advert_interval_cs));
                } else if priority > self.priority
                    || (priority == self.priority && src > self.params.local_addr)
                {
                    self.adver_at = None;
                    self.master = Some(src);
                    if self.params.version == Version::V3 {
                        self.master_adver_interval_cs = interval_cs.max(1);
                    }
                    self.master_down_at = Some(now + self.master_down_interval());
                    out.push(Action::ReleaseAddresses);
                    self.enter(State::Backup, out);
                } else {
                    // A lower-priority router thinks it is master (a healed
                    // partition): answer now so it steps down within one advert.
                    out.push(Action::SendAdvert(self.priority));
                    self.adver_at = Some(now + cs(self.params.advert_interval_cs));
                }
            }
            State::Initialize | State::Fault => {}
        }
    }

    /// keepalived's preempt_delay: lower-priority adverts still hold us back
    /// until the delay since startup (or since the first one seen) is over.
    fn preempt_delayed(&mut self, now: Duration) -> bool {
        if self.params.preempt_delay.is_zero() {
            return false;
        }
        let after = *self
            .preempt_after
            .get_or_insert(now + self.params.preempt_delay);
        now < after
    }

    fn on_fault(&mut self, now: Duration, bad: bool, out: &mut Vec<Action>) {
        self.faulted = bad;
        if bad && self.state != State::Fault {
            if self.state == State::Master {
                out.push(Action::SendAdvert(0));
                out.push(Action::ReleaseAddresses);
            }
            self.master_down_at = None;
            self.adver_at = None;
            self.enter(State::Fault, out);
        } else if !bad && self.state == State::Fault {
            self.state = State::Initialize;
            if self.started {
                let before = out.len();
                self.start(now, out);
                // Report Fault -> new state, not Initialize -> new state.
                for a in &mut out[before..] {
                    if let Action::Changed { from, .. } = a {
                        *from = State::Fault;
                    }
                }
            } else {
                out.push(Action::Changed {
                    from: State::Fault,
                    to: State::Initialize,
                });
            }
        }
    }

    fn become_master(&mut self, now: Duration, out: &mut Vec<Action>) {
        self.master_down_at = None;
        self.preempt_after = None;
        self.master = Some(self.params.local_addr);
        out.push(Action::SendAdvert(self.priority));
        out.push(Action::TakeAddresses);
        self.adver_at = Some(now + cs(self.params.advert_interval_cs));
        self.enter(State::Master, out);
    }

    fn enter(&mut self, to: State, out: &mut Vec<Action>) {
        if to == State::Initialize {
            self.master_down_at = None;
            self.adver_at = None;
            self.master = None;
        }
        if self.state != to {
            out.push(Action::Changed {
                from: self.state,
                to,
            });
            self.state = to;
        }
    }
}

fn cs(centiseconds: u16) -> Duration {
    Duration::from_millis(u64::from(centiseconds) * 10)
}

#[cfg(test)]
mod tests;
