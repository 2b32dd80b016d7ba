//! Where a session's kernel events come from: the [`EventFeed`] seam, its
//! live implementation (precision mode's collector of tracepoints and
//! kprobes) and a replayed one for tests. The session orders events against
//! its dumps through this seam only.

use std::collections::VecDeque;
use std::time::Duration;

use crate::model::event::Timed;
use crate::trace::collector::Collector;
use crate::trace::perf_ring::monotonic_now_ns;

pub use crate::trace::collector::ProbeSummary;

/// A stream of decoded kernel events, read between polls.
pub trait EventFeed {
    /// Marks the moment a dump begins: events before it are what the dump's
    /// sockets went through.
    fn dump_mark(&mut self) -> u64;
    /// Reads whatever the kernel has buffered, without waiting.
    fn drain(&mut self);
    /// The events before `mark`, oldest first; later ones stay.
    fn take_before(&mut self, mark: u64) -> Vec<Timed>;
    /// Waits up to `timeout` for events, reading them as they come.
    fn wait(&mut self, timeout: Duration);
    /// How long a wait may last before events are read.
    fn wake_interval(&self) -> Duration;
    /// Events the kernel could not deliver, since the start.
    fn lost(&self) -> u64;
    /// Events the kernel counted that never arrived, with no word of a
    /// loss (a kernel's perf path dropping them).
    fn undelivered(&self) -> u64 {
        0
    }
    fn summary(&self) -> &ProbeSummary;
    /// Reads the names of the processes events run in from now on
    /// (`true`), as their events are read, or stops.
    fn want_process_names(&mut self, _wanted: bool) {}
    /// The names of processes events ran in, read since the last call.
    fn take_process_names(&mut self) -> Vec<(u32, String)> {
        Vec::new()
    }
    /// Processes left unnamed by the bound on names read, since the start.
    fn process_names_unkept(&self) -> u64 {
        0
    }
}

/// Precision mode's collector as a feed.
pub struct LiveFeed {
    collector: Collector,
}

impl LiveFeed {
    pub fn new(collector: Collector) -> LiveFeed {
        LiveFeed { collector }
    }
}

impl EventFeed for LiveFeed {
    fn dump_mark(&mut self) -> u64 {
        monotonic_now_ns()
    }

    fn drain(&mut self) {
        self.collector.drain();
    }

    fn take_before(&mut self, mark: u64) -> Vec<Timed> {
        self.collector.take_before(mark)
    }

    fn wait(&mut self, timeout: Duration) {
        self.collector.pump(timeout);
    }

    fn wake_interval(&self) -> Duration {
        self.collector.wake_interval()
    }

    fn lost(&self) -> u64 {
        self.collector.lost()
    }

    fn undelivered(&self) -> u64 {
        self.collector.undelivered()
    }

    fn summary(&self) -> &ProbeSummary {
        self.collector.summary()
    }

    fn want_process_names(&mut self, wanted: bool) {
        self.collector.want_process_names(wanted);
    }

    fn take_process_names(&mut self) -> Vec<(u32, String)> {
        self.collector.take_process_names()
    }

    fn process_names_unkept(&self) -> u64 {
        self.collector.process_names_unkept()
    }
}

/// Recorded or built events, handed out one batch per dump: batch `k` is
/// what happened before dump `k` (batch 0, before the baseline, is never
/// counted, as in a live run).
pub struct ReplayFeed {
    batches: VecDeque<Vec<Timed>>,
    /// Dumps marked so far.
    marks: u64,
    /// Batches handed out so far.
    taken: u64,
    lost: u64,
    summary: ProbeSummary,
    /// Names of the processes the events ran in, handed out with the
    /// first batch of events once asked for, as a live feed reads them
    /// with their events.
    process_names: Vec<(u32, String)>,
    process_names_wanted: bool,
    /// The last batch handed out had events.
    events_handed: bool,
}

impl ReplayFeed {
    pub fn new(summary: ProbeSummary, batches: Vec<Vec<Timed>>) -> ReplayFeed {
        ReplayFeed {
            batches: batches.into(),
            marks: 0,
            taken: 0,
            lost: 0,
            summary,
            process_names: Vec::new(),
            process_names_wanted: false,
            events_handed: false,
        }
    }

    /// The names the processes of the events' pids had when they ran.
    pub fn with_process_names(mut self, names: Vec<(u32, String)>) -> ReplayFeed {
        self.process_names = names;
        self
    }

    /// Pretends the kernel lost `count` events.
    pub fn with_lost(mut self, count: u64) -> ReplayFeed {
        self.lost = count;
        self
    }
}

impl EventFeed for ReplayFeed {
    fn dump_mark(&mut self) -> u64 {
        self.marks += 1;
        self.marks
    }

    fn drain(&mut self) {}

    fn take_before(&mut self, mark: u64) -> Vec<Timed> {
        let mut events = Vec::new();
        while self.taken < mark {
            events.extend(self.batches.pop_front().unwrap_or_default());
            self.taken += 1;
        }
        self.events_handed = !events.is_empty();
        events
    }

    fn wait(&mut self, timeout: Duration) {
        std::thread::sleep(timeout);
    }

    fn wake_interval(&self) -> Duration {
        Duration::from_millis(50)
    }

    fn lost(&self) -> u64 {
        self.lost
    }

    fn summary(&self) -> &ProbeSummary {
        &self.summary
    }

    fn want_process_names(&mut self, wanted: bool) {
        self.process_names_wanted = wanted;
    }

    fn take_process_names(&mut self) -> Vec<(u32, String)> {
        if !self.process_names_wanted || !self.events_handed {
            return Vec::new();
        }
        std::mem::take(&mut self.process_names)
    }
}
