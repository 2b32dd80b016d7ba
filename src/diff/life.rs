//! The ledger entry of one socket life: the facts its state counters come
//! from (how it opened, how it ended, and which source told each), kept
//! with the life from its first sighting to its report (on its tracked
//! socket, then on its closed life).
//!
//! A poll, a close notice and kernel events may each tell the same open or
//! ending, in any order. The entry takes the first one told and counts it
//! once; an ending a poll only guessed (a socket that vanished) yields to
//! one a notice or an event tells. A reading taken again (a listener
//! learnt later makes a connect's open an accepted one) changes the fact.
//! A life's opens, fails and resets in a window are derived from its facts
//! when its row is built ([`Life::window_counts`]); no window holds them.
//! Each fact is counted in the window it was first told in: one told in an
//! earlier window was reported there, and a later reading of it changes
//! nothing that window's report said. A socket reconnected after
//! `tcp_disconnect` begins a new life on the same entry.

use crate::counters::{Counter, Counters};

/// How a life opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenKind {
    /// A connect's: ActiveOpens.
    Active,
    /// A listener's child: PassiveOpens.
    Passive,
}

impl OpenKind {
    fn counter(self) -> Counter {
        match self {
            OpenKind::Active => Counter::ActiveOpens,
            OpenKind::Passive => Counter::PassiveOpens,
        }
    }

    /// The open `counts` hold, if any (a state change's, waiting counts').
    pub(crate) fn in_counts(counts: &Counters) -> Option<OpenKind> {
        [OpenKind::Active, OpenKind::Passive]
            .into_iter()
            .find(|kind| counts.value(kind.counter()) > 0)
    }
}

/// Who told an ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Told {
    /// Polls, by inference: a socket that vanished without a successor,
    /// or was seen in CLOSE.
    Guess,
    /// Its close notice.
    Notice,
    /// Kernel events (state changes).
    Event,
}

/// The four state counters with their marks (present, approximate), as
/// compact as a tracked socket wants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tally {
    values: [u16; 4],
    present: u8,
    approx: u8,
}

impl Tally {
    fn of(counts: &Counters) -> Tally {
        let mut tally = Tally::default();
        for (i, counter) in Counter::STATE_EVENTS.into_iter().enumerate() {
            tally.values[i] = u16::try_from(counts.value(counter)).unwrap_or(u16::MAX);
            tally.present |= u8::from(counts.is_present(counter)) << i;
            tally.approx |= u8::from(counts.is_approx(counter)) << i;
        }
        tally
    }

    /// The ending's part of `counts`: its fails and resets.
    fn ending_of(counts: &Counters) -> Tally {
        let mut tally = Tally::of(counts);
        for (i, counter) in Counter::STATE_EVENTS.into_iter().enumerate() {
            if !matches!(counter, Counter::AttemptFails | Counter::EstabResets) {
                tally.values[i] = 0;
                tally.present &= !(1 << i);
                tally.approx &= !(1 << i);
            }
        }
        tally
    }

    fn add_to(self, counts: &mut Counters) {
        for (i, counter) in Counter::STATE_EVENTS.into_iter().enumerate() {
            if self.present & (1 << i) != 0 {
                let approx = counts.is_approx(counter) || self.approx & (1 << i) != 0;
                let value = counts
                    .value(counter)
                    .saturating_add(u64::from(self.values[i]));
                counts.set(counter, value, approx);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Opening {
    kind: OpenKind,
    approx: bool,
    /// Told in the current window (else reported in an earlier one).
    in_window: bool,
    /// A connect whose tcp_info says its SYN may have met its peer's (a
    /// simultaneous open, a connect to itself): then it sent its SYN again
    /// with an ACK, a segment its `segs_out` counts and the namespace's
    /// OutSegs does not.
    syn_maybe_sent_again: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ending {
    counts: Tally,
    told: Told,
    in_window: bool,
}

/// One socket life's facts (see the module doc).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Life {
    open: Option<Opening>,
    ending: Option<Ending>,
    /// What earlier lives of this socket counted in the current window (a
    /// socket that connected again after `tcp_disconnect`).
    earlier_lives: Tally,
}

impl Life {
    /// Its open, told now: counted if none was for this life.
    pub(crate) fn open(&mut self, kind: OpenKind, approx: bool) {
        if self.open.is_none() {
            self.open = Some(Opening {
                kind,
                approx,
                in_window: true,
                syn_maybe_sent_again: false,
            });
        }
    }

    /// Whether its open was counted.
    pub(crate) fn opened(&self) -> bool {
        self.open.is_some()
    }

    /// Whether the current window counts its open as a connect's (one a
    /// listener first known later may make an accepted socket's).
    pub(crate) fn opened_as_connect_in_window(&self) -> bool {
        self.open
            .is_some_and(|open| open.kind == OpenKind::Active && open.in_window)
    }

    /// Its open read again as `kind` (a connect's found accepted: the
    /// SYN it seemed to send again was none).
    pub(crate) fn reread_open(&mut self, kind: OpenKind) {
        if let Some(open) = &mut self.open {
            open.kind = kind;
            open.syn_maybe_sent_again &= kind == OpenKind::Active;
        }
    }

    /// Its connect may have met its peer's SYN, as its tcp_info tells (see
    /// `closes::syn_maybe_sent_again`): the OutSegs of the window it opened
    /// in may hold one segment the namespace's do not.
    pub(crate) fn may_have_met_peers_syn(&mut self) {
        if let Some(open) = &mut self.open {
            open.syn_maybe_sent_again = open.kind == OpenKind::Active;
        }
    }

    /// Whether its connect may have sent its SYN again to a peer's SYN.
    pub(crate) fn may_have_sent_syn_again(&self) -> bool {
        self.open.is_some_and(|open| open.syn_maybe_sent_again)
    }

    /// It opened nothing after all (a connect that never sent its SYN).
    pub(crate) fn retract_open(&mut self) {
        self.open = None;
    }

    /// Its ending's fails and resets (`counts`), told by `told`: counted
    /// if no ending was, or in place of one only guessed.
    pub(crate) fn end(&mut self, counts: &Counters, told: Told) {
        let counts = Tally::ending_of(counts);
        match &mut self.ending {
            None => {
                self.ending = Some(Ending {
                    counts,
                    told,
                    in_window: true,
                })
            }
            Some(guessed) if guessed.told == Told::Guess && told != Told::Guess => {
                guessed.counts = counts;
                guessed.told = told;
            }
            Some(_) => {}
        }
    }

    /// Who told its ending, if one was counted.
    pub(crate) fn ending_told(&self) -> Option<Told> {
        self.ending.map(|ending| ending.told)
    }

    /// Its ending read again (`counts`: a connect's found accepted).
    pub(crate) fn reread_ending(&mut self, counts: &Counters) {
        if let Some(ending) = &mut self.ending {
            ending.counts = Tally::ending_of(counts);
        }
    }

    /// The socket begins another life (a connect after `tcp_disconnect`):
    /// its open and ending count again, the last life's stay counted.
    pub(crate) fn begin_again(&mut self) {
        let earlier = Tally::of(&self.window_counts());
        *self = Life {
            earlier_lives: earlier,
            ..Life::default()
        };
    }

    /// Takes the facts `earlier` holds (the same life, known from its
    /// events before a poll saw it) over its own.
    pub(crate) fn take_facts_of(&mut self, earlier: Life) {
        let mut lives = Counters::default();
        self.earlier_lives.add_to(&mut lives);
        earlier.earlier_lives.add_to(&mut lives);
        self.earlier_lives = Tally::of(&lives);
        self.open = earlier.open.or(self.open);
        self.ending = earlier.ending.or(self.ending);
    }

    /// A new window: facts told so far were reported.
    pub(crate) fn new_window(&mut self) {
        if let Some(open) = &mut self.open {
            open.in_window = false;
        }
        if let Some(ending) = &mut self.ending {
            ending.in_window = false;
        }
        self.earlier_lives = Tally::default();
    }

    /// Its opens, fails and resets in the current window.
    pub(crate) fn window_counts(&self) -> Counters {
        let mut counts = Counters::default();
        self.earlier_lives.add_to(&mut counts);
        if let Some(open) = self.open.filter(|open| open.in_window) {
            let approx = counts.is_approx(open.kind.counter()) || open.approx;
            let value = counts.value(open.kind.counter()).saturating_add(1);
            counts.set(open.kind.counter(), value, approx);
        }
        if let Some(ending) = self.ending.filter(|ending| ending.in_window) {
            ending.counts.add_to(&mut counts);
        }
        counts
    }

    /// Whether the current window counts anything of it.
    pub(crate) fn counts_in_window(&self) -> bool {
        self.earlier_lives.present != 0
            || self.open.is_some_and(|open| open.in_window)
            || self.ending.is_some_and(|ending| ending.in_window)
    }

    /// `window` with its opens, fails and resets added, and its OutSegs
    /// approximate where it opened in this window and may have sent its
    /// SYN again.
    pub(crate) fn with_window_counts(&self, mut window: Counters) -> Counters {
        if self.counts_in_window() {
            window.add(&self.window_counts());
        }
        let maybe_again = self
            .open
            .is_some_and(|open| open.syn_maybe_sent_again && open.in_window);
        if maybe_again && window.value(Counter::OutSegs) > 0 {
            window.mark_approx(Counter::OutSegs);
        }
        window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(counter: Counter, approx: bool) -> Counters {
        let mut counts = Counters::default();
        counts.set(counter, 1, approx);
        counts
    }

    #[test]
    fn an_entry_stays_small_beside_each_tracked_socket() {
        assert!(std::mem::size_of::<Life>() <= 32);
    }

    #[test]
    fn an_open_told_by_every_source_counts_once() {
        let mut life = Life::default();
        life.open(OpenKind::Active, false);
        life.open(OpenKind::Active, false);
        life.open(OpenKind::Passive, true);
        let window = life.window_counts();
        assert_eq!(window.value(Counter::ActiveOpens), 1);
        assert!(!window.is_approx(Counter::ActiveOpens));
        assert_eq!(window.value(Counter::PassiveOpens), 0);
    }

    #[test]
    fn a_guessed_ending_yields_to_a_told_one_and_a_told_one_to_none() {
        let mut life = Life::default();
        life.end(&one(Counter::EstabResets, true), Told::Guess);
        life.end(&one(Counter::AttemptFails, false), Told::Notice);
        life.end(&one(Counter::EstabResets, false), Told::Event);
        let window = life.window_counts();
        assert_eq!(window.value(Counter::EstabResets), 0);
        assert!(!window.is_approx(Counter::EstabResets));
        assert_eq!(window.value(Counter::AttemptFails), 1);
        assert!(!window.is_approx(Counter::AttemptFails));
        assert_eq!(life.ending_told(), Some(Told::Notice));
    }

    #[test]
    fn a_reread_changes_what_the_window_counts() {
        let mut life = Life::default();
        life.open(OpenKind::Active, false);
        life.end(&one(Counter::EstabResets, false), Told::Notice);
        assert!(life.opened_as_connect_in_window());
        life.reread_open(OpenKind::Passive);
        life.reread_ending(&one(Counter::AttemptFails, true));
        let window = life.window_counts();
        assert_eq!(window.value(Counter::ActiveOpens), 0);
        assert_eq!(window.value(Counter::PassiveOpens), 1);
        assert_eq!(window.value(Counter::EstabResets), 0);
        assert_eq!(window.value(Counter::AttemptFails), 1);
        assert!(window.is_approx(Counter::AttemptFails));
    }

    #[test]
    fn facts_count_in_the_window_they_were_told_in() {
        let mut life = Life::default();
        life.open(OpenKind::Active, false);
        assert_eq!(life.window_counts().value(Counter::ActiveOpens), 1);
        life.new_window();
        assert!(!life.counts_in_window());
        assert!(!life.opened_as_connect_in_window());
        // Told again, or its ending told now: the open stays where it was.
        life.open(OpenKind::Active, false);
        life.end(&one(Counter::EstabResets, false), Told::Event);
        let window = life.window_counts();
        assert_eq!(window.value(Counter::ActiveOpens), 0);
        assert_eq!(window.value(Counter::EstabResets), 1);
        // A connect that never sent its SYN: retracted in its window.
        let mut never_sent = Life::default();
        never_sent.open(OpenKind::Active, false);
        never_sent.retract_open();
        assert!(!never_sent.counts_in_window());
    }

    #[test]
    fn a_socket_connecting_again_opens_and_ends_again() {
        let mut life = Life::default();
        life.open(OpenKind::Active, false);
        life.end(&one(Counter::EstabResets, false), Told::Event);
        life.begin_again();
        life.open(OpenKind::Active, false);
        life.end(&one(Counter::EstabResets, false), Told::Event);
        let window = life.window_counts();
        assert_eq!(window.value(Counter::ActiveOpens), 2);
        assert_eq!(window.value(Counter::EstabResets), 2);
        life.new_window();
        assert!(!life.counts_in_window());
    }

    #[test]
    fn a_connect_that_may_have_sent_its_syn_again_has_its_windows_outsegs_approximate() {
        let sent = |n: u64| {
            let mut counts = Counters::default();
            counts.set(Counter::OutSegs, n, false);
            counts
        };
        let approx = |life: &Life| life.with_window_counts(sent(6)).is_approx(Counter::OutSegs);
        let mut life = Life::default();
        life.open(OpenKind::Active, false);
        assert!(!approx(&life));
        life.may_have_met_peers_syn();
        assert!(life.may_have_sent_syn_again() && approx(&life));
        assert_eq!(life.with_window_counts(sent(6)).value(Counter::OutSegs), 6);
        // Windows after the one it opened in count what they count.
        life.new_window();
        assert!(!approx(&life));
        // A connect found accepted sent no SYN.
        let mut accepted = Life::default();
        accepted.open(OpenKind::Active, false);
        accepted.may_have_met_peers_syn();
        accepted.reread_open(OpenKind::Passive);
        assert!(!approx(&accepted));
        // An accepted socket never met a peer's SYN of its own.
        let mut child = Life::default();
        child.open(OpenKind::Passive, false);
        child.may_have_met_peers_syn();
        assert!(!child.may_have_sent_syn_again());
    }
}
