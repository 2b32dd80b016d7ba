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
//! Each change comes back as a [`Recount`], the counts before and after,
//! which the window the life is counted in takes: a life's state counters
//! are always those of its facts, whichever source came first. A socket
//! reconnected after `tcp_disconnect` begins a new life on the same entry.

use crate::counters::{CompactCounters, Counter, Counters};

/// How a life opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenKind {
    /// A connect's: ActiveOpens.
    Active,
    /// A listener's child: PassiveOpens.
    Passive,
}

impl OpenKind {
    pub(crate) fn counter(self) -> Counter {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Opening {
    kind: OpenKind,
    approx: bool,
}

/// The ending's AttemptFails and EstabResets, with their marks (present,
/// approximate), as compact as a tracked socket wants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct EndCounts {
    values: [u32; 2],
    present: u8,
    approx: u8,
}

const ENDINGS: [Counter; 2] = [Counter::AttemptFails, Counter::EstabResets];

impl EndCounts {
    fn of(counts: &Counters) -> EndCounts {
        let mut end = EndCounts::default();
        for (i, counter) in ENDINGS.into_iter().enumerate() {
            end.values[i] = u32::try_from(counts.value(counter)).unwrap_or(u32::MAX);
            end.present |= u8::from(counts.is_present(counter)) << i;
            end.approx |= u8::from(counts.is_approx(counter)) << i;
        }
        end
    }

    fn counts(self) -> Counters {
        let mut counts = Counters::default();
        for (i, counter) in ENDINGS.into_iter().enumerate() {
            if self.present & (1 << i) != 0 {
                let approx = self.approx & (1 << i) != 0;
                counts.set(counter, u64::from(self.values[i]), approx);
            }
        }
        counts
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ending {
    counts: EndCounts,
    told: Told,
}

/// One socket life's facts (see the module doc).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Life {
    open: Option<Opening>,
    ending: Option<Ending>,
}

impl Life {
    /// Takes the facts `earlier` holds (the same life, known from its
    /// events before a poll saw it) over its own.
    pub(crate) fn take_facts_of(&mut self, earlier: Life) {
        self.open = earlier.open.or(self.open);
        self.ending = earlier.ending.or(self.ending);
    }

    /// Its open, told now: counted if none was for this life.
    pub(crate) fn open(&mut self, kind: OpenKind, approx: bool) -> Recount {
        if self.open.is_some() {
            return Recount::default();
        }
        let opening = Opening { kind, approx };
        self.open = Some(opening);
        Recount::to(opening_counts(Some(opening)))
    }

    /// Whether its open was counted.
    pub(crate) fn opened(&self) -> bool {
        self.open.is_some()
    }

    /// Its open read again as `kind` (a connect's found accepted).
    pub(crate) fn reread_open(&mut self, kind: OpenKind) -> Recount {
        let Some(opening) = self.open else {
            return Recount::default();
        };
        let reread = Opening { kind, ..opening };
        self.open = Some(reread);
        Recount {
            before: opening_counts(Some(opening)),
            after: opening_counts(Some(reread)),
        }
    }

    /// It opened nothing after all (a connect that never sent its SYN).
    pub(crate) fn retract_open(&mut self) -> Recount {
        Recount {
            before: opening_counts(self.open.take()),
            after: Counters::default(),
        }
    }

    /// Its ending's fails and resets (`counts`), told by `told`: counted
    /// if no ending was, or in place of one only guessed.
    pub(crate) fn end(&mut self, counts: &Counters, told: Told) -> Recount {
        let ending = Ending {
            counts: EndCounts::of(counts),
            told,
        };
        match self.ending {
            None => {
                self.ending = Some(ending);
                Recount::to(ending.counts.counts())
            }
            Some(guessed) if guessed.told == Told::Guess && told != Told::Guess => {
                self.ending = Some(ending);
                Recount {
                    before: guessed.counts.counts(),
                    after: ending.counts.counts(),
                }
            }
            Some(_) => Recount::default(),
        }
    }

    /// Who told its ending, if one was counted.
    pub(crate) fn ending_told(&self) -> Option<Told> {
        self.ending.map(|ending| ending.told)
    }

    /// Its ending read again (`counts`: a connect's found accepted), by
    /// the source that told it.
    pub(crate) fn reread_ending(&mut self, counts: &Counters) -> Recount {
        let Some(ending) = self.ending else {
            return Recount::default();
        };
        let reread = Ending {
            counts: EndCounts::of(counts),
            ..ending
        };
        self.ending = Some(reread);
        Recount {
            before: ending.counts.counts(),
            after: reread.counts.counts(),
        }
    }

    /// The socket begins another life (a connect after `tcp_disconnect`):
    /// its open and ending count again.
    pub(crate) fn begin_again(&mut self) {
        *self = Life::default();
    }
}

fn opening_counts(opening: Option<Opening>) -> Counters {
    let mut counts = Counters::default();
    if let Some(Opening { kind, approx }) = opening {
        counts.set(kind.counter(), 1, approx);
    }
    counts
}

/// A life's state counts before and after a fact changed: the window it
/// is counted in takes the difference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use = "a window must take the recount"]
pub(crate) struct Recount {
    before: Counters,
    after: Counters,
}

impl Recount {
    fn to(after: Counters) -> Recount {
        Recount {
            before: Counters::default(),
            after,
        }
    }

    /// Applies the change to `window`. What `before` counted is taken
    /// out (not below zero: a fact counted in an earlier window, whose
    /// report is out, stays there), keeping a counter approximate only
    /// when something besides `before` made it so.
    pub(crate) fn apply(&self, window: &mut Counters) {
        if self.before.marks().0 == 0 {
            window.add(&self.after);
            return;
        }
        for counter in Counter::STATE_EVENTS {
            let (before, after) = (&self.before, &self.after);
            if before.get(counter).is_none() && after.get(counter).is_none() {
                continue;
            }
            let rest = window.value(counter).saturating_sub(before.value(counter));
            let rest_approx = window.is_approx(counter) && (!before.is_approx(counter) || rest > 0);
            let value = rest.saturating_add(after.value(counter));
            let approx = rest_approx || after.is_approx(counter);
            if window.get(counter).is_some() || after.get(counter).is_some() {
                window.replace(counter, value, approx);
            }
        }
    }

    /// [`Recount::apply`] to a tracked socket's window.
    pub(crate) fn apply_compact(&self, window: &mut CompactCounters) {
        if self.before.marks().0 == 0 {
            window.add(&self.after);
            return;
        }
        let mut counts = window.counts();
        self.apply(&mut counts);
        *window = counts.into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(recounts: &[Recount]) -> Counters {
        let mut window = Counters::default();
        for recount in recounts {
            recount.apply(&mut window);
        }
        window
    }

    #[test]
    fn an_open_told_by_every_source_counts_once() {
        let mut life = Life::default();
        let window = applied(&[
            life.open(OpenKind::Active, false),
            life.open(OpenKind::Active, false),
            life.open(OpenKind::Passive, true),
        ]);
        assert_eq!(window.value(Counter::ActiveOpens), 1);
        assert!(!window.is_approx(Counter::ActiveOpens));
        assert_eq!(window.value(Counter::PassiveOpens), 0);
    }

    #[test]
    fn a_guessed_ending_yields_to_a_told_one_and_a_told_one_to_none() {
        let mut guess = Counters::default();
        guess.bump_approx(Counter::EstabResets, 1);
        let mut refused = Counters::default();
        refused.bump(Counter::AttemptFails, 1);
        let mut life = Life::default();
        let window = applied(&[
            life.end(&guess, Told::Guess),
            life.end(&refused, Told::Notice),
            life.end(&guess, Told::Event),
        ]);
        assert_eq!(window.value(Counter::EstabResets), 0);
        assert!(!window.is_approx(Counter::EstabResets));
        assert_eq!(window.value(Counter::AttemptFails), 1);
        assert!(!window.is_approx(Counter::AttemptFails));
        assert_eq!(life.ending_told(), Some(Told::Notice));
    }

    #[test]
    fn a_reread_changes_the_count_and_keeps_what_other_lives_counted() {
        let mut window = Counters::default();
        // Another life's approximate reset in the same window stays.
        window.bump_approx(Counter::EstabResets, 1);
        let mut life = Life::default();
        life.open(OpenKind::Active, false).apply(&mut window);
        let mut reset = Counters::default();
        reset.bump(Counter::EstabResets, 1);
        life.end(&reset, Told::Notice).apply(&mut window);
        life.reread_open(OpenKind::Passive).apply(&mut window);
        let mut failed = Counters::default();
        failed.bump(Counter::AttemptFails, 1);
        life.reread_ending(&failed).apply(&mut window);
        assert_eq!(window.value(Counter::ActiveOpens), 0);
        assert_eq!(window.value(Counter::PassiveOpens), 1);
        assert_eq!(window.value(Counter::EstabResets), 1);
        assert!(window.is_approx(Counter::EstabResets));
        assert_eq!(window.value(Counter::AttemptFails), 1);
    }

    #[test]
    fn a_retracted_open_counted_in_an_earlier_window_stays_there() {
        let mut life = Life::default();
        let mut earlier = Counters::default();
        life.open(OpenKind::Active, false).apply(&mut earlier);
        let mut now = Counters::default();
        life.retract_open().apply(&mut now);
        assert_eq!(earlier.value(Counter::ActiveOpens), 1);
        assert_eq!(now.value(Counter::ActiveOpens), 0);
        assert!(!life.opened());
    }

    #[test]
    fn a_socket_connecting_again_opens_and_ends_again() {
        let mut life = Life::default();
        let mut reset = Counters::default();
        reset.bump(Counter::EstabResets, 1);
        let mut recounts = vec![
            life.open(OpenKind::Active, false),
            life.end(&reset, Told::Event),
        ];
        life.begin_again();
        recounts.push(life.open(OpenKind::Active, false));
        recounts.push(life.end(&reset, Told::Event));
        let window = applied(&recounts);
        assert_eq!(window.value(Counter::ActiveOpens), 2);
        assert_eq!(window.value(Counter::EstabResets), 2);
    }
}
