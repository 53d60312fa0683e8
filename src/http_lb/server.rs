//! A frontend's servers at run time: their health and mode (written by the
//! checker, the proxy's passive reports and the admin API), requests in
//! flight, and the choice of a server for a request.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::config::{FrontendConfig, HttpBalance, HttpServerConfig};

use super::balance::{self, Candidate};
use super::health::{self, AdminMode, CheckJudge, CheckOutcome, Passive, Serving, Transition};
use super::stats::ServerMetrics;

/// One server of a frontend.
pub struct Server {
    pub name: String,
    pub address: String,
    /// Resolved once at start.
    pub addr: SocketAddr,
    /// `ip:port`, the authority of every request URI sent to it.
    pub authority: hyper::http::uri::Authority,
    pub weight: u32,
    pub backup: bool,
    name_hash: u64,
    /// Requests in flight (until their response body is done): read by
    /// leastconn on every request, so an atomic rather than under the lock.
    pub active: AtomicUsize,
    /// Requests sent, for `/status`.
    pub requests: AtomicU64,
    /// [`Serving`] as a byte, recomputed under `state`'s lock on every
    /// change and read lock-free by every pick.
    serving: AtomicU8,
    /// Passive ejection end (ms on the frontend clock), read lock-free by picks.
    ejected_until_ms: AtomicU64,
    /// The last request result recorded was an error: a good result then
    /// has a count to reset. Lets [`Pool::report`] skip the lock for the
    /// usual good result after good ones (every request reports).
    erring: AtomicBool,
    /// When the server last came up (ms on the frontend clock), for slow start.
    up_since_ms: AtomicU64,
    /// Mode, check judgement and passive counts change together, rarely
    /// and without awaiting: a std mutex, never held across an await.
    state: Mutex<State>,
    /// The state word of `/status` ("up", "down", "drain", "maintenance"),
    /// sent on every change so that a waiter (an operator's tool, a test)
    /// awaits the transition instead of polling `/status`.
    state_word: watch::Sender<&'static str>,
    pub metrics: ServerMetrics,
}

struct State {
    mode: AdminMode,
    check: Option<CheckJudge>,
    passive: Passive,
    last_check: Option<String>,
}

/// The servers of one frontend and the balancer's state.
pub struct Pool {
    pub servers: Vec<Arc<Server>>,
    balance: HttpBalance,
    /// Current weights of smooth round-robin, one per server; a pick is a
    /// few additions, so a std mutex costs less than anything lock-free.
    current: Mutex<Vec<i64>>,
    rotor: AtomicUsize,
    /// Passive ejection threshold and cool-down, slow start period.
    eject_errors: u32,
    eject_cooldown_ms: u64,
    slow_start: Duration,
    /// The zero of the ms clock stored in the atomics above.
    epoch: Instant,
}

/// Why no server was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoServer {
    /// Every server is down, drained, in maintenance or ejected.
    NoneAvailable,
    /// Every usable server was tried already for this request.
    AllTried,
}

// === impl Server ===

impl Server {
    pub fn new(
        frontend: &str,
        cfg: &HttpServerConfig,
        addr: SocketAddr,
        checked: Option<(u32, u32)>,
    ) -> Self {
        Server {
            name: cfg.name.clone(),
            address: cfg.address.clone(),
            addr,
            authority: addr
                .to_string()
                .parse()
                .expect("a socket address is a valid authority"),
            weight: cfg.weight,
            backup: cfg.backup,
            name_hash: balance::hash_of(cfg.name.as_str()),
            active: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            serving: AtomicU8::new(Serving::Yes as u8),
            ejected_until_ms: AtomicU64::new(0),
            erring: AtomicBool::new(false),
            up_since_ms: AtomicU64::new(0),
            state: Mutex::new(State {
                mode: AdminMode::Ready,
                check: checked.map(|(rise, fall)| CheckJudge::new(rise, fall)),
                passive: Passive::default(),
                last_check: None,
            }),
            state_word: watch::Sender::new("up"),
            metrics: ServerMetrics::new(frontend, &cfg.name),
        }
    }

    /// The server's state word now and at every change.
    pub fn watch_state(&self) -> watch::Receiver<&'static str> {
        self.state_word.subscribe()
    }

    pub fn serving(&self) -> Serving {
        match self.serving.load(Ordering::Relaxed) {
            0 => Serving::Yes,
            1 => Serving::StickyOnly,
            _ => Serving::No,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding it leaves plain data; keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, state: &State) {
        let s = health::serving(state.mode, state.check.as_ref());
        self.serving.store(s as u8, Ordering::Relaxed);
        let word = self.state_word_of(state);
        self.metrics.set_state(word);
        self.state_word
            .send_if_modified(|w| std::mem::replace(w, word) != word);
    }

    fn state_word_of(&self, state: &State) -> &'static str {
        match (state.mode, state.check.as_ref()) {
            (AdminMode::Maintenance, _) => "maintenance",
            (_, Some(c)) if !c.is_up() => "down",
            (AdminMode::Drain, _) => "drain",
            (_, Some(c)) if c.disabled_by_404() => "drain",
            _ => "up",
        }
    }

    pub fn set_mode(&self, mode: AdminMode) {
        let mut s = self.lock();
        s.mode = mode;
        self.publish(&s);
    }

    /// One active check result; returns the transition it caused.
    pub fn record_check(
        &self,
        outcome: CheckOutcome,
        detail: String,
        now_ms: u64,
    ) -> Option<Transition> {
        let mut s = self.lock();
        s.last_check = Some(detail);
        let t = s.check.as_mut().and_then(|c| c.record(outcome));
        if t == Some(Transition::WentUp) {
            self.up_since_ms.store(now_ms, Ordering::Relaxed);
        }
        self.publish(&s);
        t
    }

    /// The JSON of `/status`.
    pub fn status_json(&self, now_ms: u64) -> serde_json::Value {
        let s = self.lock();
        serde_json::json!({
            "name": self.name,
            "address": self.address,
            "weight": self.weight,
            "backup": self.backup,
            "state": self.state_word_of(&s),
            "mode": match s.mode {
                AdminMode::Ready => "ready",
                AdminMode::Drain => "drain",
                AdminMode::Maintenance => "maintenance",
            },
            "check_health": s.check.as_ref().map(|c| c.health()),
            "last_check": s.last_check,
            "ejected": s.passive.is_ejected(now_ms),
            "active_requests": self.active.load(Ordering::Relaxed),
            "requests_total": self.requests.load(Ordering::Relaxed),
        })
    }
}

// === impl Pool ===

impl Pool {
    pub fn new(cfg: &FrontendConfig, servers: Vec<Arc<Server>>) -> Self {
        Pool {
            current: Mutex::new(vec![0; servers.len()]),
            servers,
            balance: cfg.balance,
            rotor: AtomicUsize::new(0),
            eject_errors: cfg.eject_consecutive_errors,
            eject_cooldown_ms: cfg.eject_cooldown_ms,
            slow_start: Duration::from_millis(cfg.slow_start_ms),
            epoch: Instant::now(),
        }
    }

    /// Milliseconds since the pool was made: the clock of ejection and slow start.
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn find(&self, name: &str) -> Option<&Arc<Server>> {
        self.servers.iter().find(|s| s.name == name)
    }

    /// Chooses a server for a request from `client`. `sticky` is the server
    /// named by the stickiness cookie, honoured while it takes sticky
    /// requests; `tried` are servers this request already failed on.
    pub fn pick(
        &self,
        client: IpAddr,
        sticky: Option<&str>,
        tried: &[usize],
    ) -> Result<usize, NoServer> {
        let now = self.now_ms();
        if let Some(name) = sticky {
            if let Some(i) = self.servers.iter().position(|s| s.name == name) {
                let s = &self.servers[i];
                if s.serving() != Serving::No && !tried.contains(&i) && !self.ejected(s, now) {
                    return Ok(i);
                }
            }
        }
        let mut any_usable = false;
        for backup in [false, true] {
            let mut candidates = Vec::with_capacity(self.servers.len());
            for (i, s) in self.servers.iter().enumerate() {
                if s.backup != backup || s.serving() != Serving::Yes || self.ejected(s, now) {
                    continue;
                }
                any_usable = true;
                if tried.contains(&i) {
                    continue;
                }
                candidates.push(Candidate {
                    index: i,
                    weight: self.effective_weight(s, now),
                    active: s.active.load(Ordering::Relaxed),
                    name_hash: s.name_hash,
                });
            }
            if !candidates.is_empty() {
                return Ok(self.choose(&candidates, client));
            }
            // Backups serve only when no normal server is usable at all,
            // not when the normal ones were merely tried by this request.
            if any_usable {
                return Err(NoServer::AllTried);
            }
        }
        Err(NoServer::NoneAvailable)
    }

    fn choose(&self, candidates: &[Candidate], client: IpAddr) -> usize {
        match self.balance {
            HttpBalance::Roundrobin => {
                let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
                balance::smooth_round_robin(&mut cur, candidates)
            }
            HttpBalance::Leastconn => {
                balance::least_connections(candidates, self.rotor.fetch_add(1, Ordering::Relaxed))
            }
            HttpBalance::Random2 => balance::random_two(candidates, rand::random(), rand::random()),
            HttpBalance::Source => balance::source_hash(candidates, client),
        }
    }

    fn ejected(&self, s: &Server, now: u64) -> bool {
        now < s.ejected_until_ms.load(Ordering::Relaxed)
    }

    fn effective_weight(&self, s: &Server, now: u64) -> u32 {
        if self.slow_start.is_zero() {
            return s.weight;
        }
        let since = s.up_since_ms.load(Ordering::Relaxed);
        if since == 0 {
            return s.weight;
        }
        health::slow_start_weight(
            s.weight,
            Duration::from_millis(now.saturating_sub(since)),
            self.slow_start,
        )
    }

    /// The result of one request on server `i`: a connect error or a 5xx
    /// is an error for passive ejection. A server is never ejected when no
    /// other normal server would be left serving: an application error on
    /// every server must not turn into 503s for every page.
    pub fn report(&self, i: usize, ok: bool) {
        let s = &self.servers[i];
        if self.eject_errors == 0 || (ok && !s.erring.load(Ordering::Relaxed)) {
            return;
        }
        s.erring.store(!ok, Ordering::Relaxed);
        let now = self.now_ms();
        let may_eject = !ok
            && self.servers.iter().enumerate().any(|(j, o)| {
                j != i && !o.backup && o.serving() == Serving::Yes && !self.ejected(o, now)
            });
        let mut st = s.lock();
        if st.passive.record(
            ok,
            now,
            self.eject_errors,
            self.eject_cooldown_ms,
            may_eject,
        ) {
            s.ejected_until_ms
                .store(st.passive.ejected_until_ms(), Ordering::Relaxed);
            s.metrics.ejections.increment(1);
            tracing::warn!(
                server = %s.name,
                cooldown_ms = self.eject_cooldown_ms,
                "http: server ejected after {} consecutive errors",
                self.eject_errors
            );
        }
    }
}
