//! Every transition of RFC 5798 Section 6.4 (and keepalived's FAULT), with
//! time as an input: `ms(n)` is n milliseconds after the epoch.

use super::*;

const ME: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const LOWER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const HIGHER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn params(priority: u8) -> Params {
    Params {
        version: Version::V3,
        priority,
        advert_interval_cs: 100,
        preempt: true,
        preempt_delay: Duration::ZERO,
        local_addr: ME,
    }
}

fn advert(src: Ipv4Addr, priority: u8) -> Input {
    Input::Advert {
        src,
        priority,
        interval_cs: 100,
    }
}

fn changed(from: State, to: State) -> Action {
    Action::Changed { from, to }
}

fn backup(p: Params) -> Machine {
    let mut m = Machine::new(p);
    let out = m.handle(ms(0), Input::Startup);
    assert_eq!(out, vec![changed(State::Initialize, State::Backup)]);
    m
}

#[test]
fn timers_follow_the_rfc_formulas() {
    let m = Machine::new(params(100));
    // Skew_Time = (256 - 100) * 100 cs / 256 = 60.9375 cs.
    assert_eq!(m.skew_time(), Duration::from_micros(609_375));
    assert_eq!(
        m.master_down_interval(),
        ms(3000) + Duration::from_micros(609_375)
    );
    let m = Machine::new(Params {
        advert_interval_cs: 10,
        ..params(200)
    });
    assert_eq!(m.skew_time(), Duration::from_micros(21_875));
    let v2 = Machine::new(Params {
        version: Version::V2,
        advert_interval_cs: 200,
        ..params(100)
    });
    // v2: Skew_Time = (256 - priority) / 256 seconds, whatever the interval.
    assert_eq!(
        v2.master_down_interval(),
        ms(6000) + Duration::from_micros(609_375)
    );
}

#[test]
fn owner_becomes_master_at_startup() {
    let mut m = Machine::new(params(255));
    let out = m.handle(ms(0), Input::Startup);
    assert_eq!(
        out,
        vec![
            Action::SendAdvert(255),
            Action::TakeAddresses,
            changed(State::Initialize, State::Master)
        ]
    );
    assert_eq!(m.deadline(), Some(ms(1000)));
    assert_eq!(
        m.handle(ms(1000), Input::Timer),
        vec![Action::SendAdvert(255)]
    );
    assert_eq!(m.deadline(), Some(ms(2000)));
    // Weights never change the owner's priority.
    m.handle(ms(1100), Input::Priority(100));
    assert_eq!(m.priority(), 255);
}

#[test]
fn backup_becomes_master_when_master_down_timer_fires() {
    let mut m = backup(params(100));
    let down = m.master_down_interval();
    assert_eq!(m.deadline(), Some(down));
    assert_eq!(m.handle(down - ms(1), Input::Timer), vec![]);
    let out = m.handle(down, Input::Timer);
    assert_eq!(
        out,
        vec![
            Action::SendAdvert(100),
            Action::TakeAddresses,
            changed(State::Backup, State::Master)
        ]
    );
    assert_eq!(m.master(), Some(ME));
}

#[test]
fn backup_adverts_from_higher_priority_reset_the_timer_and_adopt_the_interval() {
    let mut m = backup(params(100));
    let out = m.handle(
        ms(2000),
        Input::Advert {
            src: HIGHER_IP,
            priority: 150,
            interval_cs: 10,
        },
    );
    assert!(out.is_empty());
    assert_eq!(m.master_adver_interval(), ms(100));
    // 3 * 100 ms + (256-100) * 100 ms / 256.
    assert_eq!(m.deadline(), Some(ms(2300) + Duration::from_micros(60_937)));
    assert_eq!(m.master(), Some(HIGHER_IP));
}

#[test]
fn v2_backup_keeps_its_own_interval() {
    let mut m = backup(Params {
        version: Version::V2,
        ..params(100)
    });
    m.handle(
        ms(500),
        Input::Advert {
            src: HIGHER_IP,
            priority: 150,
            interval_cs: 300,
        },
    );
    assert_eq!(m.master_adver_interval(), ms(1000));
}

#[test]
fn backup_takes_over_after_skew_time_on_priority_zero() {
    let mut m = backup(params(100));
    m.handle(ms(500), advert(HIGHER_IP, 150));
    assert!(m.handle(ms(900), advert(HIGHER_IP, 0)).is_empty());
    assert_eq!(m.deadline(), Some(ms(900) + m.skew_time()));
    let out = m.handle(ms(900) + m.skew_time(), Input::Timer);
    assert_eq!(out.last(), Some(&changed(State::Backup, State::Master)));
}

#[test]
fn preempt_discards_lower_priority_adverts() {
    let mut m = backup(params(150));
    let down = m.master_down_interval();
    // A lower-priority master keeps advertising; we ignore it and take over.
    for t in [1000, 2000, 3000] {
        m.handle(ms(t), advert(LOWER_IP, 100));
    }
    assert_eq!(m.deadline(), Some(down));
    let out = m.handle(down, Input::Timer);
    assert_eq!(out.last(), Some(&changed(State::Backup, State::Master)));
}

#[test]
fn nopreempt_accepts_lower_priority_master() {
    let mut m = backup(Params {
        preempt: false,
        ..params(150)
    });
    for t in (1..=10).map(|s| s * 1000) {
        m.handle(ms(t), advert(LOWER_IP, 100));
        assert_eq!(m.state(), State::Backup);
    }
    assert!(m.deadline().unwrap() > ms(10_000));
}

#[test]
fn preempt_delay_holds_back_preemption() {
    let mut m = backup(Params {
        preempt_delay: ms(5000),
        ..params(150)
    });
    // Lower-priority adverts reset the timer during the delay...
    for t in (1..=5).map(|s| s * 1000 - 1) {
        m.handle(ms(t), advert(LOWER_IP, 100));
        assert_eq!(m.state(), State::Backup);
    }
    let held = m.deadline().unwrap();
    assert!(held > ms(7000), "{held:?}");
    // ...and are ignored after it, so the timer runs out.
    m.handle(ms(5500), advert(LOWER_IP, 100));
    assert_eq!(m.deadline(), Some(held));
    let out = m.handle(held, Input::Timer);
    assert_eq!(out.last(), Some(&changed(State::Backup, State::Master)));
}

fn master(p: Params) -> Machine {
    let mut m = backup(p);
    let d = m.master_down_interval();
    m.handle(d, Input::Timer);
    assert_eq!(m.state(), State::Master);
    m
}

#[test]
fn master_steps_down_for_higher_priority() {
    let mut m = master(params(100));
    let out = m.handle(ms(5000), advert(LOWER_IP, 101));
    assert_eq!(
        out,
        vec![
            Action::ReleaseAddresses,
            changed(State::Master, State::Backup)
        ]
    );
    assert_eq!(m.deadline(), Some(ms(5000) + m.master_down_interval()));
}

#[test]
fn equal_priority_is_won_by_the_higher_address() {
    let mut m = master(params(100));
    let out = m.handle(ms(5000), advert(LOWER_IP, 100));
    assert_eq!(out, vec![Action::SendAdvert(100)]);
    assert_eq!(m.state(), State::Master);
    let out = m.handle(ms(5100), advert(HIGHER_IP, 100));
    assert_eq!(out.last(), Some(&changed(State::Master, State::Backup)));
}

#[test]
fn master_answers_priority_zero_and_lower_adverts_at_once() {
    let mut m = master(params(100));
    assert_eq!(
        m.handle(ms(5000), advert(HIGHER_IP, 0)),
        vec![Action::SendAdvert(100)]
    );
    assert_eq!(m.deadline(), Some(ms(6000)));
    assert_eq!(m.state(), State::Master);
}

#[test]
fn graceful_shutdown_of_master_sends_priority_zero() {
    let mut m = master(params(100));
    let out = m.handle(ms(5000), Input::Shutdown);
    assert_eq!(
        out,
        vec![
            Action::SendAdvert(0),
            Action::ReleaseAddresses,
            changed(State::Master, State::Initialize)
        ]
    );
    assert_eq!(m.deadline(), None);
    // Backup shutdown: no advert.
    let mut b = backup(params(100));
    assert_eq!(
        b.handle(ms(1), Input::Shutdown),
        vec![changed(State::Backup, State::Initialize)]
    );
}

#[test]
fn fault_releases_and_recovery_restarts_as_backup() {
    let mut m = master(params(100));
    let out = m.handle(ms(5000), Input::Fault(true));
    assert_eq!(
        out,
        vec![
            Action::SendAdvert(0),
            Action::ReleaseAddresses,
            changed(State::Master, State::Fault)
        ]
    );
    assert_eq!(m.deadline(), None);
    // Adverts are ignored in FAULT.
    assert!(m.handle(ms(5100), advert(HIGHER_IP, 0)).is_empty());
    let out = m.handle(ms(6000), Input::Fault(false));
    assert_eq!(out, vec![changed(State::Fault, State::Backup)]);
    assert_eq!(m.deadline(), Some(ms(6000) + m.master_down_interval()));
}

#[test]
fn fault_before_startup_holds_the_router_down() {
    let mut m = Machine::new(params(255));
    m.handle(ms(0), Input::Fault(true));
    assert_eq!(m.state(), State::Fault);
    assert!(m.handle(ms(1), Input::Startup).is_empty());
    let out = m.handle(ms(2), Input::Fault(false));
    assert_eq!(out.last(), Some(&changed(State::Fault, State::Master)));
}

#[test]
fn weighted_priority_drop_lets_the_peer_preempt() {
    let mut m = master(params(150));
    m.handle(ms(5000), Input::Priority(90));
    assert_eq!(
        m.handle(ms(5000) + ms(1000), Input::Timer),
        vec![Action::SendAdvert(90)]
    );
    let out = m.handle(ms(6100), advert(LOWER_IP, 100));
    assert_eq!(out.last(), Some(&changed(State::Master, State::Backup)));
    // Clamped to 1..=254.
    m.handle(ms(7000), Input::Priority(0));
    assert_eq!(m.priority(), 1);
}

#[test]
fn sync_group_members_follow_each_other() {
    let mut m = backup(params(100));
    let out = m.handle(ms(100), Input::GroupMaster);
    assert_eq!(
        out,
        vec![
            Action::SendAdvert(100),
            Action::TakeAddresses,
            changed(State::Backup, State::Master)
        ]
    );
    // Already master: nothing to do.
    assert!(m.handle(ms(200), Input::GroupMaster).is_empty());
    let out = m.handle(ms(300), Input::GroupBackup);
    assert_eq!(
        out,
        vec![
            Action::ReleaseAddresses,
            changed(State::Master, State::Backup)
        ]
    );
    assert_eq!(m.deadline(), Some(ms(300) + m.master_down_interval()));
    // FAULT is left alone by either.
    m.handle(ms(400), Input::Fault(true));
    assert!(m.handle(ms(500), Input::GroupMaster).is_empty());
    assert_eq!(m.state(), State::Fault);
}
