//! Counts kernel events gave a socket address before any event named the
//! socket's tuple, kept apart by window: those counted in the current
//! window and those still waiting from earlier ones, so that a report
//! says what its own window left unidentified.

use rustc_hash::FxHashMap;

use crate::counters::Counters;

/// Addresses → counts waiting for their socket to be named. An address
/// counted in both an earlier window and this one has an entry in each
/// map; together they never hold more than `limit` entries.
#[derive(Debug, Default)]
pub(super) struct Waiting {
    window: FxHashMap<u64, Counters>,
    earlier: FxHashMap<u64, Counters>,
}

impl Waiting {
    /// Adds `counts` under `sk`; false when a new address would pass
    /// `limit` (the counts are then not kept). At the bound, an address
    /// earlier windows hold takes them there: kept, if in an earlier part.
    pub(super) fn add(&mut self, sk: u64, counts: &Counters, limit: usize) -> bool {
        if let Some(waiting) = self.window.get_mut(&sk) {
            waiting.add(counts);
            return true;
        }
        if self.window.len() + self.earlier.len() >= limit {
            return match self.earlier.get_mut(&sk) {
                Some(waiting) => {
                    waiting.add(counts);
                    true
                }
                None => false,
            };
        }
        self.window.insert(sk, *counts);
        true
    }

    /// Takes everything waiting under `sk`, whichever window counted it.
    pub(super) fn remove(&mut self, sk: &u64) -> Option<Counters> {
        match (self.earlier.remove(sk), self.window.remove(sk)) {
            (Some(mut earlier), Some(window)) => {
                earlier.add(&window);
                Some(earlier)
            }
            (earlier, window) => earlier.or(window),
        }
    }

    /// What this window counted that still waits.
    pub(super) fn this_window(&self) -> Counters {
        sum(self.window.values())
    }

    /// What earlier windows counted that still waits.
    pub(super) fn earlier_windows(&self) -> Counters {
        sum(self.earlier.values())
    }

    /// A new window: what waits now was counted before it.
    pub(super) fn end_window(&mut self) {
        for (sk, counts) in self.window.drain() {
            self.earlier.entry(sk).or_default().add(&counts);
        }
    }
}

fn sum<'a>(all: impl Iterator<Item = &'a Counters>) -> Counters {
    let mut total = Counters::default();
    for counts in all {
        total.add(counts);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Counter;

    fn sent(n: u64) -> Counters {
        let mut c = Counters::default();
        c.set(Counter::MessagesSent, n, false);
        c
    }

    #[test]
    fn unidentified_counts_are_told_per_window_and_earlier_windows_apart() {
        let mut waiting = Waiting::default();
        assert!(waiting.add(1, &sent(2), 10));
        assert_eq!(waiting.this_window().value(Counter::MessagesSent), 2);
        waiting.end_window();
        // The next window counted nothing yet: its own part is empty.
        assert_eq!(waiting.this_window().value(Counter::MessagesSent), 0);
        assert_eq!(waiting.earlier_windows().value(Counter::MessagesSent), 2);
        assert!(waiting.add(1, &sent(3), 10));
        assert!(waiting.add(2, &sent(4), 10));
        assert_eq!(waiting.this_window().value(Counter::MessagesSent), 7);
        // Named: everything under the address goes, whichever window.
        assert_eq!(waiting.remove(&1).unwrap().value(Counter::MessagesSent), 5);
        assert_eq!(waiting.this_window().value(Counter::MessagesSent), 4);
        assert_eq!(waiting.earlier_windows().value(Counter::MessagesSent), 0);
        waiting.end_window();
        waiting.end_window();
        assert_eq!(waiting.earlier_windows().value(Counter::MessagesSent), 4);
    }

    #[test]
    fn waiting_counts_past_the_bound_are_refused_whichever_window_holds_them() {
        let mut waiting = Waiting::default();
        assert!(waiting.add(1, &sent(1), 2));
        waiting.end_window();
        assert!(waiting.add(2, &sent(1), 2));
        assert!(!waiting.add(3, &sent(1), 2));
        // An address already counted in this window takes more.
        assert!(waiting.add(2, &sent(1), 2));
        assert_eq!(waiting.remove(&3), None);
    }
}
