//! Pure judgement of a server's health: active checks with HAProxy's rise/fall
//! hysteresis, passive ejection on consecutive errors, the operator's mode,
//! and slow start. No I/O and no clock: time comes in as an argument, so the
//! tests replay any sequence.

use std::time::Duration;

/// The operator's word on a server (`POST /http/frontends/{f}/servers/{s}/{action}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminMode {
    /// Checks decide.
    Ready,
    /// No new requests (sticky sessions still come); requests in flight finish.
    Drain,
    /// No requests at all, not even sticky ones; in flight ones finish.
    Maintenance,
}

/// The outcome of one active check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckOutcome {
    Pass,
    Fail,
    /// A 404 with `disable_on_404`: the server is alive but asks to be drained.
    NotFound404,
}

/// A change of the check judgement, to log and count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    WentUp,
    WentDown,
}

/// Whether a server takes a request now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serving {
    /// New and sticky requests.
    Yes,
    /// Only requests whose stickiness cookie names it (drain).
    StickyOnly,
    /// None.
    No,
}

/// HAProxy's check health counter (`check.health` in src/check.c): 0 ..=
/// rise + fall - 1; the server is up from `rise` on. A failure while up
/// takes one step down and goes down only at the `fall`-th one in a row;
/// once down the counter restarts at 0 and `rise` passes in a row bring it
/// back, at the top of the range. A server starts fully up, as HAProxy's do,
/// so a restart of the balancer does not empty the pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckJudge {
    rise: u32,
    fall: u32,
    health: u32,
    up: bool,
    /// The last check answered 404 under `disable_on_404`.
    disabled_by_404: bool,
}

/// Passive health: consecutive connect errors or 5xx answers, and the
/// time (ms on the frontend's clock) until which the server is ejected.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Passive {
    consecutive_errors: u32,
    ejected_until_ms: u64,
}

// === impl CheckJudge ===

impl CheckJudge {
    pub fn new(rise: u32, fall: u32) -> Self {
        CheckJudge {
            rise,
            fall,
            health: rise + fall - 1,
            up: true,
            disabled_by_404: false,
        }
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    pub fn disabled_by_404(&self) -> bool {
        self.disabled_by_404
    }

    /// The counter, for `/status` (HAProxy shows it as "UP 2/3").
    pub fn health(&self) -> u32 {
        self.health
    }

    /// Takes one check result; returns the transition it caused, if any.
    pub fn record(&mut self, outcome: CheckOutcome) -> Option<Transition> {
        // A 404 under disable_on_404 proves the server answers: it counts
        // as a pass for up/down and drains the server separately.
        self.disabled_by_404 = outcome == CheckOutcome::NotFound404;
        if outcome == CheckOutcome::Fail {
            if self.up && self.health > self.rise {
                self.health -= 1;
                return None;
            }
            self.health = 0;
            if self.up {
                self.up = false;
                return Some(Transition::WentDown);
            }
            return None;
        }
        let top = self.rise + self.fall - 1;
        if self.health < top {
            self.health += 1;
        }
        if !self.up && self.health >= self.rise {
            self.up = true;
            self.health = top;
            return Some(Transition::WentUp);
        }
        None
    }
}

// === impl Passive ===

impl Passive {
    /// Takes the result of one request to the server. `threshold` 0 turns
    /// ejection off; `may_eject` false (it would leave no server) keeps
    /// counting without ejecting. Returns true when this result ejected it.
    pub fn record(
        &mut self,
        ok: bool,
        now_ms: u64,
        threshold: u32,
        cooldown_ms: u64,
        may_eject: bool,
    ) -> bool {
        if ok {
            self.consecutive_errors = 0;
            return false;
        }
        self.consecutive_errors = self.consecutive_errors.saturating_add(1);
        if threshold == 0
            || !may_eject
            || self.consecutive_errors < threshold
            || self.is_ejected(now_ms)
        {
            return false;
        }
        self.consecutive_errors = 0;
        self.ejected_until_ms = now_ms + cooldown_ms;
        true
    }

    pub fn is_ejected(&self, now_ms: u64) -> bool {
        now_ms < self.ejected_until_ms
    }

    pub fn ejected_until_ms(&self) -> u64 {
        self.ejected_until_ms
    }
}

/// Whether a server takes requests, from everything known about it.
pub fn serving(mode: AdminMode, check: Option<&CheckJudge>) -> Serving {
    match (mode, check) {
        (AdminMode::Maintenance, _) => Serving::No,
        (_, Some(c)) if !c.is_up() => Serving::No,
        (AdminMode::Drain, _) => Serving::StickyOnly,
        (_, Some(c)) if c.disabled_by_404() => Serving::StickyOnly,
        _ => Serving::Yes,
    }
}

/// The weight a server gets `since_up` after it came back, growing
/// linearly to `weight` over `period` (HAProxy's `slowstart`), at least 1.
pub fn slow_start_weight(weight: u32, since_up: Duration, period: Duration) -> u32 {
    if period.is_zero() || since_up >= period {
        return weight;
    }
    let scaled = u128::from(weight) * since_up.as_millis() / period.as_millis();
    (scaled as u32).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckOutcome::{Fail, NotFound404, Pass};

    fn run(judge: &mut CheckJudge, outcomes: &[CheckOutcome]) -> Vec<Option<Transition>> {
        outcomes.iter().map(|&o| judge.record(o)).collect()
    }

    #[test]
    fn starts_up_and_goes_down_at_the_fall_th_failure() {
        let mut j = CheckJudge::new(2, 3);
        assert!(j.is_up());
        assert_eq!(
            run(&mut j, &[Fail, Fail, Fail]),
            [None, None, Some(Transition::WentDown)]
        );
        assert!(!j.is_up());
    }

    #[test]
    fn a_pass_between_failures_resets_the_fall_count() {
        let mut j = CheckJudge::new(2, 3);
        run(&mut j, &[Fail, Fail, Pass, Pass, Fail, Fail]);
        assert!(j.is_up(), "never three failures in a row");
    }

    #[test]
    fn comes_back_after_rise_passes_in_a_row() {
        let mut j = CheckJudge::new(2, 3);
        run(&mut j, &[Fail, Fail, Fail]);
        assert_eq!(run(&mut j, &[Pass, Fail, Pass]), [None, None, None]);
        assert!(!j.is_up(), "a failure while down restarts the count");
        assert_eq!(j.record(Pass), Some(Transition::WentUp));
        // Back at the top: fall failures are needed again.
        assert_eq!(run(&mut j, &[Fail, Fail]), [None, None]);
        assert!(j.is_up());
    }

    #[test]
    fn rise_and_fall_of_one_flip_on_every_change() {
        let mut j = CheckJudge::new(1, 1);
        assert_eq!(j.record(Fail), Some(Transition::WentDown));
        assert_eq!(j.record(Pass), Some(Transition::WentUp));
    }

    #[test]
    fn a_404_with_disable_on_404_drains_without_going_down() {
        let mut j = CheckJudge::new(2, 3);
        assert_eq!(j.record(NotFound404), None);
        assert!(j.is_up());
        assert_eq!(serving(AdminMode::Ready, Some(&j)), Serving::StickyOnly);
        j.record(Pass);
        assert_eq!(serving(AdminMode::Ready, Some(&j)), Serving::Yes);
    }

    #[test]
    fn serving_combines_mode_and_checks() {
        let up = CheckJudge::new(2, 3);
        let mut down = CheckJudge::new(1, 1);
        down.record(Fail);
        assert_eq!(serving(AdminMode::Ready, None), Serving::Yes);
        assert_eq!(serving(AdminMode::Ready, Some(&up)), Serving::Yes);
        assert_eq!(serving(AdminMode::Drain, Some(&up)), Serving::StickyOnly);
        assert_eq!(serving(AdminMode::Maintenance, Some(&up)), Serving::No);
        assert_eq!(serving(AdminMode::Drain, Some(&down)), Serving::No);
        assert_eq!(serving(AdminMode::Ready, Some(&down)), Serving::No);
    }

    #[test]
    fn passive_ejects_after_consecutive_errors_for_the_cooldown() {
        let mut p = Passive::default();
        assert!(!p.record(false, 0, 3, 1000, true));
        assert!(
            !p.record(true, 1, 3, 1000, true),
            "a success resets the count"
        );
        assert!(!p.record(false, 2, 3, 1000, true));
        assert!(!p.record(false, 3, 3, 1000, true));
        assert!(!p.record(false, 4, 3, 1000, false), "not the last server");
        assert!(p.record(false, 5, 3, 1000, true));
        assert!(p.is_ejected(1004));
        assert!(!p.is_ejected(1005));
        let mut off = Passive::default();
        for t in 0..10 {
            assert!(!off.record(false, t, 0, 1000, true));
        }
    }

    #[test]
    fn slow_start_grows_linearly_to_the_weight() {
        let period = Duration::from_secs(10);
        assert_eq!(slow_start_weight(100, Duration::ZERO, period), 1);
        assert_eq!(slow_start_weight(100, Duration::from_secs(5), period), 50);
        assert_eq!(slow_start_weight(100, Duration::from_secs(11), period), 100);
        assert_eq!(
            slow_start_weight(3, Duration::from_secs(1), Duration::ZERO),
            3
        );
    }
}
