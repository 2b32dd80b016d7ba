//! Attribution: successive snapshots in, per-socket deltas and inferred state
//! events out. Pure: no clock, no I/O, driven by tests with built snapshots.
//!
//! Rules (see docs/attribution.md):
//! - A socket is its sock_diag cookie together with its tuple; a cookie seen
//!   again with another tuple is another socket.
//! - Sockets of the first poll are a baseline: only their growth counts. A
//!   socket first seen later was created in the window: all its counters
//!   count, and it is a PassiveOpen when its local endpoint is a listener's,
//!   else an ActiveOpen. A TIME_WAIT socket with no predecessor is a whole
//!   connection that lived and died between two polls: an open too.
//! - A socket that disappears keeps its last values. Leaving ESTABLISHED or
//!   CLOSE_WAIT for CLOSE or for nothing, with no TIME_WAIT successor on
//!   either tuple, is an EstabReset; leaving a handshake state so is an
//!   AttemptFail. All inferred, so marked approximate.
//! - Counters wrap at their kernel width; one that goes backwards makes the
//!   socket count as new (from zero), never a negative delta.
//!
//! The [`Tracker`] owns the socket table and these polling rules. Kernel
//! events (precision mode) are an optional part, [`events`], that the
//! tracker calls at a few points of a socket's life (first seen, life
//! ended, vanished, settle); with it, state counters come from the events
//! alone ([`StateCounts::FromEvents`]) and nothing is inferred.

mod closes;
mod events;
mod life;
mod overflows;
mod settle;
mod table;
mod waiting;
pub use closes::{Ending, NOTICE_CLOCK_SLACK_MS};
pub use events::{EventStats, EVENT_ONLY_GRACE_POLLS, NOTICE_GRACE_POLLS};
pub use overflows::{share_among_listeners, ListenerDrops, ListenerShare};
pub use settle::{
    fail_causes, request_listener, reset_lean, settle, unanswered_connect, FailCauses,
    FailCausesByNamespace, Lean, ListenerEvidence, ListenerId, RequestListener, Settlement, Tally,
    UnansweredConnect,
};

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use crate::counters::{cumulative, difference, CompactCounters, Counter, Counters};
use crate::filter::FilterSet;
use crate::model::event::Timed;
use crate::model::{
    unmap, Snapshot, SocketKey, SocketSample, SocketSource, StateHistory, TcpState,
};
use crate::rtt::RttSamples;
use events::EventAttribution;
use life::{Life, OpenKind, Told};
use table::SocketTable;

/// Who a tracked socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketId {
    /// Its sock_diag cookie.
    Cookie(u64),
    /// /proc/net/tcp has no cookie: a hash of its tuple, inode and kind.
    Proc(u64),
    /// A socket only kernel events know of: a number of this run's.
    EventOnly(u64),
}

impl SocketId {
    /// The identity of a polled socket.
    pub fn of(sample: &SocketSample) -> SocketId {
        if sample.cookie != 0 {
            return SocketId::Cookie(sample.cookie);
        }
        let mut h = DefaultHasher::new();
        sample.key.hash(&mut h);
        sample.inode.hash(&mut h);
        sample.state.is_mini_socket().hash(&mut h);
        SocketId::Proc(h.finish())
    }
}

/// Where a run's state counters (opens, fails, resets) come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateCounts {
    /// Inferred from what polls see appear and vanish: approximate.
    #[default]
    Inferred,
    /// From polls and the kernel's close notices, which name every
    /// connection's end: exact, but for endings the counters leave
    /// ambiguous (marked so).
    Notified,
    /// From kernel state-change events only: exact.
    FromEvents,
}

/// How a socket came to be, when it was first seen inside the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Present at the first poll.
    Baseline,
    Active,
    Passive,
    /// A mini socket (TIME_WAIT, request) or listener: no open of its own.
    Other,
    /// The TIME_WAIT (or FIN_WAIT2) socket a polled full socket became:
    /// that life was counted from polls, so its close notice only
    /// completes it.
    Successor,
}

/// One socket as tracked across polls.
#[derive(Debug, Clone)]
pub struct Tracked {
    /// The latest sample; its tcp_info holds the cumulative counters.
    pub sample: SocketSample,
    pub origin: Origin,
    /// What this socket did inside the current window (16 bytes while
    /// nothing moved).
    pub window: CompactCounters,
    /// Its smoothed RTT at each poll of the window (and its close
    /// notice's final one).
    pub rtt: RttSamples,
    /// The poll that last saw it.
    last_poll: u64,
    /// The marks (present, approximate) a zero difference from `sample`
    /// adds to the window.
    diffed: (u32, u32),
    /// Its life's ledger entry: how it opened and ended, counted once.
    life: Life,
}

/// Marks no window covers: the next poll takes the full path.
const NOT_DIFFED: (u32, u32) = (u32::MAX, u32::MAX);

impl Tracked {
    fn new(sample: SocketSample, origin: Origin, window: Counters, poll: u64) -> Tracked {
        Tracked {
            rtt: RttSamples::of_sample(&sample),
            sample,
            origin,
            window: window.into(),
            last_poll: poll,
            diffed: NOT_DIFFED,
            life: Life::default(),
        }
    }

    /// What it counted in this window, its life's opens, fails and resets
    /// with it.
    fn window_counts(&self) -> Counters {
        self.life.with_window_counts(self.window.counts())
    }

    /// Its sample was changed by other than a poll: the next poll diffs.
    fn forget_diff(&mut self) {
        self.diffed = NOT_DIFFED;
    }
}

/// A socket (or a socket's full life, before its TIME_WAIT) that ended
/// inside the current window.
#[derive(Debug, Clone)]
pub struct Closed {
    pub sample: SocketSample,
    /// Its cumulative counters when last seen: its lifetime totals up to
    /// then (tcp_info counts from the socket's creation).
    pub lifetime: Counters,
    pub window: Counters,
    /// Milliseconds between its last sighting and the poll that missed it.
    pub unseen_ms: u64,
    /// The states kernel events saw it go through.
    pub history: StateHistory,
    /// A receive call read the end of its stream (events): the peer's FIN
    /// reached the full socket, whatever its states say.
    pub end_of_stream_read: bool,
    /// Who held it, where its inode does not tell.
    pub holder: Holder,
    /// Where its lifetime counters come from.
    pub counted_from: CountedFrom,
    /// Its smoothed RTT at each poll of the window, and its close notice's
    /// final value.
    pub rtt: RttSamples,
    /// Polling: it was counted a connect's because no listener on its
    /// endpoint was known when a poll first saw it, and its notice's ending
    /// was read so; a listener learnt later makes it accepted.
    pub(crate) read_as_connect: Option<ReadAsConnect>,
    /// Its life's ledger entry (see [`Tracked`]).
    pub(crate) life: Life,
    /// What events counted in its window after its last poll
    /// (retransmits): a late close notice's final counters cover them.
    pub(crate) events_tail: Counters,
}

/// How a polled socket counted as a connect's ended, read both ways (see
/// [`Closed::read_as_connect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadAsConnect {
    /// As a connect's: what its window counted.
    pub ending: closes::Ending,
    /// As an accepted socket's.
    pub if_accepted: closes::Ending,
    /// Its state at its last poll.
    pub last_state: TcpState,
    /// Whether its notice's bytes received count the peer's FIN.
    pub fin: closes::PeerFin,
}

/// Where a closed socket's lifetime counters come from, as its report says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountedFrom {
    /// Its last poll's sample: what it did after that is missing. No close
    /// notice came, or, `cleared`, an abort cleared the one that did.
    LastPoll { cleared: bool },
    /// The kernel's close notice: its final counters. `polled`: a poll saw
    /// it alive before.
    CloseNotice { polled: bool },
    /// No poll saw it alive, and its close notice came with its counters
    /// cleared (an abort): only how it ended is known.
    ClearedNotice,
    /// Kernel events (and samples they prompted), precision mode: no poll
    /// saw it alive, and no close notice gave its counters.
    Events,
}

impl Closed {
    /// What a lifetime report counts: the socket's tcp_info totals, with
    /// the state events (opens, fails, resets) and the counters only
    /// kernel events fill taken from its window.
    pub fn lifetime_counters(&self) -> Counters {
        let mut events = Counters::default();
        let window = self.window_counts();
        for (counter, value) in window.iter() {
            let from_events = counter.is_state_event() || counter.is_event_only();
            if from_events && counter != Counter::CurrEstab {
                events.set(counter, value, window.is_approx(counter));
            }
        }
        let mut counters = self.lifetime;
        counters.add(&events);
        if self.life.may_have_sent_syn_again() {
            counters.mark_approx(Counter::OutSegs);
        }
        counters
    }

    /// What it counted in this window: its window's counters with the
    /// opens, fails and resets its life's facts give.
    pub fn window_counts(&self) -> Counters {
        self.life.with_window_counts(self.window)
    }

    /// Whether this is a connection's end: a mini socket expiring or a
    /// listener closing is none (an aborted connection keeps its peer
    /// address, not its port).
    pub fn is_connection(&self) -> bool {
        let state = self.sample.state;
        let key = &self.sample.key;
        state != TcpState::Listen
            && (key.remote_port != 0 || !key.remote.is_unspecified())
            && !(self.sample.tcp_info.is_none() && self.sample.is_mini_socket())
    }
}

/// What is known of the process that held a socket besides its inode,
/// which is 0 for a socket no poll saw held: a TIME_WAIT or orphan, and a
/// socket known only from its close notice or its events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Holder {
    /// The process its system calls (connect, sends, receives, close) ran
    /// in, the latest one kernel events saw (precision mode).
    pub pid: Option<u32>,
    /// No poll saw it alive: it opened and closed between two polls (its
    /// close notice or its events tell of it), so no inode was read.
    pub unpolled: bool,
}

impl Holder {
    /// A socket no poll saw alive, whose events ran in `pid` if known.
    pub fn unpolled(pid: Option<u32>) -> Holder {
        Holder {
            pid,
            unpolled: true,
        }
    }
}

/// One socket's contribution to a report.
#[derive(Debug, Clone, Copy)]
pub struct SocketRow<'a> {
    pub sample: &'a SocketSample,
    pub counters: Counters,
    pub closed: bool,
    /// States seen by kernel events (empty without precision mode).
    pub history: StateHistory,
    /// Who held it, where its inode does not tell.
    pub holder: Holder,
    /// Its smoothed RTT samples of the window.
    pub rtt: RttSamples,
}

/// (namespace, address, port) of each listener seen, with the poll that
/// last saw it: forgotten [`LISTENER_POLLS`] polls after.
pub(crate) type Listeners = HashMap<(u64, IpAddr, u16), u64>;
/// Polls a listener no longer seen is remembered for (its children's
/// notices may come a little after it closed).
const LISTENER_POLLS: u64 = 64;

#[derive(Debug, Default)]
pub struct Tracker {
    sockets: SocketTable,
    /// Closed sockets of this window, oldest first. Unbounded here: its
    /// owner bounds them with [`Tracker::fold_closed_past`], folding the
    /// oldest into the groups it reports.
    closed: Vec<Closed>,
    /// Connections of this window known from a notice alone whose tuple
    /// lost what the filters test (an abort's peer port): counted here, in
    /// no group (see [`FilterSet::cannot_tell`]).
    unplaced_by_filters: Folded,
    listeners: Listeners,
    /// Listeners seen (by a poll or their notice) in this window, for
    /// their request sockets' fails; at most [`WINDOW_LISTENERS_LIMIT`],
    /// past which the window's are not all known.
    window_listeners: rustc_hash::FxHashSet<(u64, IpAddr, u16)>,
    window_listeners_overflowed: bool,
    /// Sockets closed as vanished while notices are read, whose notice had
    /// not come (cookie → poll): a late notice completes that life rather
    /// than counting a connection of its own.
    vanished_unnoticed: rustc_hash::FxHashMap<u64, u64>,
    /// Closed lives a lifetime report left for their last events (the
    /// first ones of `closed`): the next poll's interval joins the span
    /// they closed in.
    held_over: usize,
    polls: u64,
    /// The last poll came with close notices read.
    notices_read: bool,
    last_poll_ms: u64,
    states: StateCounts,
    /// The namespace's `net.ipv4.tcp_syn_retries`, when it was read.
    syn_retries: Option<u32>,
    /// Kernel events' part, once events are fed in.
    events: Option<Box<EventAttribution>>,
    /// The run's first poll: when it began, and the namespaces it listed
    /// sockets in (where a socket it did not list was not alive).
    first_poll: Option<FirstPoll>,
    /// When this poll's close notices were read, if known.
    closes_read_ms: Option<u64>,
    /// Close notices of lives that ended before the run's first poll,
    /// told by their own clocks: they count nothing.
    notices_before_run: u64,
}

/// The baseline poll, against which a notice's age is told.
#[derive(Debug, Default)]
struct FirstPoll {
    taken_at_ms: u64,
    /// At most one entry per namespace the source samples.
    netns: rustc_hash::FxHashSet<u64>,
}

/// The kernel's default `net.ipv4.tcp_syn_retries`: a connect sends its
/// SYN again this many times before the kernel gives up.
pub const DEFAULT_SYN_RETRIES: u32 = 6;

/// Listeners a window remembers for their request sockets, at most.
const WINDOW_LISTENERS_LIMIT: usize = 4096;

/// Polls a late notice may still join the vanished socket it belongs to.
const LATE_NOTICE_POLLS: u64 = 32;
/// Vanished sockets waiting for a late notice, at most.
const LATE_NOTICE_LIMIT: usize = 1 << 16;

/// Closed sockets a window keeps one by one, at most (~1 KiB each): a
/// window of an hour at 3,000 connections/s would otherwise hold gigabytes.
pub const CLOSED_LIMIT: usize = 1 << 18;

/// Sockets counted together rather than one by one, and what they counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Folded {
    pub sockets: u64,
    pub counters: Counters,
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// Connections of this window the filters cannot place (an abort no
    /// poll or event saw, whose notice lost the peer port they test).
    pub fn unplaced_by_filters(&self) -> &Folded {
        &self.unplaced_by_filters
    }

    /// Keeps the newest `limit` closed sockets of the window; each older
    /// one's row is handed to `fold` (which must count it: a bound on
    /// listing sockets must not change a total) and forgotten.
    pub fn fold_closed_past(&mut self, limit: usize, mut fold: impl FnMut(SocketRow<'_>)) {
        let excess = self.closed.len().saturating_sub(limit);
        if excess == 0 {
            return;
        }
        let mut closed = std::mem::take(&mut self.closed);
        for c in closed.drain(..excess) {
            fold(SocketRow {
                sample: &c.sample,
                counters: self.with_presence(c.window_counts()),
                closed: true,
                history: c.history,
                holder: c.holder,
                rtt: c.rtt,
            });
        }
        self.closed = closed;
    }

    pub fn polls(&self) -> u64 {
        self.polls
    }

    /// Says the sampled namespace's `net.ipv4.tcp_syn_retries`: a connect
    /// that ended unanswered with fewer SYNs sent again was closed by its
    /// application (no AttemptFail), not given up by the kernel.
    pub fn set_syn_retries(&mut self, retries: u32) {
        self.syn_retries = Some(retries);
        if let Some(events) = &mut self.events {
            events.set_syn_retries(retries);
        }
    }

    /// Says whether the retransmit events tell a connect's SYN sent again
    /// (without, an unanswered connect's end counts as the kernel giving
    /// up).
    pub fn set_syn_retransmits_told(&mut self, told: bool) {
        if let Some(events) = &mut self.events {
            events.set_syn_retransmits_told(told);
        }
    }

    /// Says whether destruction events name their socket's cookie (known
    /// from the first one otherwise): then a socket that ended without its
    /// destruction is held by its application, and its notice is waited
    /// for as long as it is held, from the run's first poll.
    pub fn set_destructions_told(&mut self, told: bool) {
        if let Some(events) = &mut self.events {
            events.set_destructions_told(told);
        }
    }

    /// Says whether every kernel event since the run began came (none lost
    /// to a full ring, none the kernel counted and never delivered): then
    /// a close notice whose socket no event saw destroyed is of a socket
    /// destroyed before the run's probes opened, which counts nothing.
    pub fn set_events_complete(&mut self, complete: bool) {
        if let Some(events) = &mut self.events {
            events.set_events_complete(complete);
        }
    }

    fn syn_retries(&self) -> u32 {
        self.syn_retries.unwrap_or(DEFAULT_SYN_RETRIES)
    }

    /// Sockets the last poll saw (and those kept for their last report).
    pub fn tracked(&self) -> usize {
        self.sockets.len()
    }

    /// Turns on event attribution: state counters come from `states`,
    /// `covered` lists the counters the running probes fill, and sockets
    /// known only from events are put in namespace `netns_for_unknown`.
    pub fn enable_events(
        &mut self,
        states: StateCounts,
        covered: &[Counter],
        netns_for_unknown: u64,
    ) {
        self.states = states;
        let mut part = EventAttribution::new(covered, netns_for_unknown);
        part.set_syn_retries(self.syn_retries());
        for (id, tracked) in self.sockets.iter() {
            part.remember(*id, &tracked.sample.key);
        }
        self.events = Some(Box::new(part));
    }

    /// Says whether the sampled namespace is the only one on the host (then
    /// no socket events tell of needs placing).
    pub fn set_sole_namespace(&mut self, sole: bool) {
        if let Some(events) = &mut self.events {
            events.set_sole_namespace(sole);
        }
    }

    /// What events added beyond the rows, this window.
    /// Close notices of lives that ended before the run's first poll
    /// (their clocks say so, or in precision mode no event saw them end),
    /// which counted nothing.
    pub fn notices_before_run(&self) -> u64 {
        let by_events = self.event_stats().map_or(0, |s| s.notices_before_run);
        self.notices_before_run + by_events
    }

    pub fn event_stats(&self) -> Option<&EventStats> {
        self.events.as_deref().map(EventAttribution::stats)
    }

    /// Counts of this window waiting for their socket's tuple (sent or
    /// received on a socket no event has named yet).
    pub fn unidentified(&self) -> Counters {
        self.events
            .as_deref()
            .map(EventAttribution::unidentified)
            .unwrap_or_default()
    }

    /// Counts of earlier windows still waiting for their socket's tuple.
    pub fn unidentified_earlier(&self) -> Counters {
        self.events
            .as_deref()
            .map(EventAttribution::unidentified_earlier)
            .unwrap_or_default()
    }

    /// Takes in kernel events, in time order, that happened before the next
    /// snapshot's dump began. `filter` is the one given to [`Tracker::observe`].
    pub fn apply_events(&mut self, events: &[Timed], filter: &FilterSet) {
        if let Some(part) = &mut self.events {
            part.apply(
                events,
                &mut self.sockets,
                &self.listeners,
                self.polls,
                self.states,
                filter,
            );
            // Late events of lives their notice ended: onto those lives
            // (the newest with the cookie), or unplaced once reported.
            let (counted, fin_revisions) = part.take_counted_after_notice(self.polls);
            for (cookie, counts) in counted {
                match newest_closed_with(&mut self.closed, cookie) {
                    Some(closed) => closed.window.add(&counts),
                    None => part.count_unplaced(&counts),
                }
            }
            // A life reported already keeps its count (reports are out).
            for revision in fin_revisions {
                let Some(closed) = newest_closed_with(&mut self.closed, revision.cookie) else {
                    continue;
                };
                if let Some(applied) = revision.counted_with {
                    closes::revise_peer_fin(&mut closed.window, applied, revision.last);
                    closes::revise_peer_fin(&mut closed.lifetime, applied, revision.last);
                }
                // Read as a connect's, it may yet be read as accepted.
                if let Some(read) = &mut closed.read_as_connect {
                    read.fin = revision.last;
                }
            }
        }
    }

    /// Takes in one poll. Sockets the filter rejects are ignored, except
    /// listeners, which decide whether a new socket was accepted.
    pub fn observe(&mut self, snapshot: &Snapshot, filter: &FilterSet) {
        self.polls += 1;
        let poll = self.polls;
        let elapsed = snapshot.taken_at_ms.saturating_sub(self.last_poll_ms);
        self.last_poll_ms = snapshot.taken_at_ms;
        if poll == 1 {
            self.first_poll = Some(FirstPoll {
                taken_at_ms: snapshot.taken_at_ms,
                netns: snapshot.sockets.iter().map(|s| s.key.netns).collect(),
            });
        }
        self.closes_read_ms = snapshot.closes_read_ms;
        let held_over = std::mem::take(&mut self.held_over);
        for closed in self.closed.iter_mut().take(held_over) {
            closed.unseen_ms = closed.unseen_ms.saturating_add(elapsed);
        }
        self.learn_listeners(snapshot);
        self.notices_read = snapshot.closes_watched;
        if snapshot.closes_watched && self.states == StateCounts::Inferred {
            self.states = StateCounts::Notified;
        }
        let tracked_before = self.sockets.len();
        let mut seen_again = self.take_samples(snapshot, filter, elapsed);
        // A socket a notice closed before this poll saw it is not missing.
        seen_again += self.take_close_notices(&snapshot.closed, filter, elapsed);
        self.take_unclaimed_notices(filter, elapsed);
        if let Some(events) = &mut self.events {
            events.set_placed_by_notices(snapshot.closes_watched);
            events.settle(poll, elapsed, &mut self.closed);
        }
        if !snapshot.unsampled_netns.is_empty() {
            // Unread this poll is not closed: such sockets keep their state.
            for tracked in self.sockets.values_mut() {
                if tracked.last_poll != poll
                    && snapshot.unsampled_netns.contains(&tracked.sample.key.netns)
                {
                    tracked.last_poll = poll;
                    seen_again += 1;
                }
            }
        }
        // When every socket tracked before this poll is still here, nothing
        // vanished and the scan is skipped.
        if seen_again != tracked_before {
            self.close_all_vanished(snapshot, elapsed);
        }
        if poll % LATE_NOTICE_POLLS == 0 {
            self.vanished_unnoticed
                .retain(|_, since| poll.saturating_sub(*since) < LATE_NOTICE_POLLS);
        }
    }

    fn learn_listeners(&mut self, snapshot: &Snapshot) {
        let listening = snapshot
            .sockets
            .iter()
            .filter(|s| s.state == TcpState::Listen);
        let poll = self.polls;
        // A listener that lived and died between two polls is known from
        // its own notice (state CLOSE by then, no peer). Learnt before the
        // poll's samples: its children this poll sees first are passive.
        let listener_ended = snapshot.closed.iter().filter(|n| {
            n.key.remote_port == 0 && n.key.remote.is_unspecified() && n.key.local_port != 0
        });
        let keys = snapshot.listeners.iter().chain(listening.map(|s| &s.key));
        let keys = keys.map(|key| (key, false));
        // Listeners no poll saw, first known now from their notice.
        let mut unseen = Listeners::default();
        for (key, ended) in keys.chain(listener_ended.map(|s| (&s.key, true))) {
            let listener = (key.netns, unmap(key.local), key.local_port);
            if self.listeners.insert(listener, poll).is_none() && ended && poll > 1 {
                unseen.insert(listener, poll);
            }
            if self.window_listeners.len() < WINDOW_LISTENERS_LIMIT {
                self.window_listeners.insert(listener);
            } else if !self.window_listeners.contains(&listener) {
                self.window_listeners_overflowed = true;
            }
        }
        if poll % LISTENER_POLLS == 0 {
            self.listeners
                .retain(|_, seen| poll.saturating_sub(*seen) <= LISTENER_POLLS);
        }
        // With events, a child's open is read from its birth, not guessed;
        // only one born before the first poll was read as a connect's.
        if !unseen.is_empty() {
            match self.events {
                None => self.revisit_children_of(&unseen),
                Some(_) => self.reread_closed_children_of(&unseen, false),
            }
        }
    }

    /// Updates or starts tracking each sample; returns how many sockets
    /// tracked before this poll it saw again.
    fn take_samples(&mut self, snapshot: &Snapshot, filter: &FilterSet, elapsed: u64) -> usize {
        let poll = self.polls;
        let previous_tuples = self.tuples_for_time_wait(snapshot);
        let mut seen_again = 0usize;
        for sample in &snapshot.sockets {
            if sample.lost_local_port() {
                // Listed as the kernel destroyed it: its tuple is not the
                // connection's (a local port 0 is no listener's: an
                // accepted socket would count as an active open), and its
                // notice, with the real one, tells how it ended. A
                // tracked one is still here this poll; one first seen so
                // is left to its notice (but at the first poll: a life
                // begun before the run, whose notice must open nothing).
                if let Some(tracked) = self.sockets.get_mut(&SocketId::of(sample)) {
                    if tracked.last_poll != poll {
                        tracked.last_poll = poll;
                        seen_again += 1;
                    }
                    continue;
                }
                if snapshot.closes_watched && poll > 1 {
                    continue;
                }
            }
            if !filter.matches(&sample.key) {
                continue;
            }
            let id = SocketId::of(sample);
            match self.sockets.get_mut(&id) {
                Some(tracked) if tracked.sample.grew_into(sample) => {
                    // A request socket's child (its cookie, once a dump
                    // gave the request one): the connection opens now.
                    self.sockets.remove(&id);
                    seen_again += 1;
                }
                Some(tracked) if tracked.sample.key == sample.key => {
                    // A socket listed twice (an inconsistent dump) counts once.
                    if tracked.last_poll != poll {
                        seen_again += 1;
                    }
                    let last_poll = tracked.last_poll;
                    if last_poll != poll {
                        // Once per poll (before a successor takes over: a
                        // life's last sample is its own).
                        tracked.rtt.record_sample(sample);
                    }
                    if self.events.is_none() {
                        // Precision mode reads it from the states events saw.
                        closes::note_syn_maybe_sent_again(&mut tracked.life, sample);
                    }
                    if let Some(mut ended) = update(tracked, sample, poll, elapsed, self.states) {
                        if let Some(events) = &mut self.events {
                            events.life_ended(id, last_poll, &mut ended);
                        }
                        self.closed.push(ended);
                    }
                    continue;
                }
                Some(_) => {
                    let old = self.sockets.remove(&id).expect("present");
                    self.close_vanished(id, old, false, elapsed);
                    seen_again += 1;
                }
                None => {}
            }
            let mut tracked = self.first_sighting(sample, poll, &previous_tuples);
            match &mut self.events {
                Some(events) => events.first_seen(id, &mut tracked, self.states),
                None => closes::note_syn_maybe_sent_again(&mut tracked.life, sample),
            }
            self.sockets.insert(id, tracked);
        }
        seen_again
    }

    /// Tuples present before this poll, to tell a TIME_WAIT successor from
    /// a connection that lived and died between polls. A TIME_WAIT socket
    /// keeps its full socket's sock_diag cookie, so this is only needed for
    /// sources without cookies (/proc/net/tcp).
    fn tuples_for_time_wait(&self, snapshot: &Snapshot) -> HashSet<SocketKey> {
        // sock_diag gives every socket its cookie: no pass over its sockets.
        if self.polls == 1 || snapshot.source != SocketSource::ProcNetTcp {
            return HashSet::default();
        }
        let cookieless_time_wait = snapshot
            .sockets
            .iter()
            .any(|s| s.state == TcpState::TimeWait && s.cookie == 0);
        if !cookieless_time_wait {
            return HashSet::default();
        }
        self.sockets.values().map(|t| t.sample.key).collect()
    }

    /// Closes the sockets this poll did not see. A vanished request socket
    /// whose child is present, or a connection whose tuple (either way
    /// round) sits in TIME_WAIT, ended normally.
    fn close_all_vanished(&mut self, snapshot: &Snapshot, elapsed: u64) {
        let poll = self.polls;
        let notified = self.states == StateCounts::Notified;
        let gone: Vec<SocketId> = self
            .sockets
            .iter()
            .filter(|(_, t)| t.last_poll != poll)
            // With notices, a connection that vanished gets one poll for
            // its notice to come (the kernel sends it from a workqueue).
            .filter(|(_, t)| !(notified && awaits_notice(t, poll)))
            .map(|(id, _)| *id)
            .collect();
        let gone: Vec<(SocketId, Tracked)> = gone
            .into_iter()
            .filter_map(|id| Some((id, self.sockets.remove(&id)?)))
            .collect();
        let time_wait: HashSet<SocketKey> = snapshot
            .sockets
            .iter()
            .filter(|s| s.state == TcpState::TimeWait)
            .map(|s| s.key)
            .collect();
        let present: HashSet<SocketKey> = if gone.iter().any(|(_, t)| t.sample.state.is_handshake())
        {
            self.sockets.values().map(|t| t.sample.key).collect()
        } else {
            HashSet::default()
        };
        for (id, tracked) in gone {
            let key = tracked.sample.key;
            let succeeded = time_wait.contains(&key)
                || time_wait.contains(&key.reversed())
                || present.contains(&key);
            self.close_vanished(id, tracked, succeeded, elapsed);
        }
    }

    fn is_listener_endpoint(&self, key: &SocketKey) -> bool {
        is_listener_endpoint(&self.listeners, key)
    }

    fn first_sighting(
        &self,
        sample: &SocketSample,
        poll: u64,
        previous_tuples: &HashSet<SocketKey>,
    ) -> Tracked {
        if poll == 1 {
            return Tracked::new(sample.clone(), Origin::Baseline, Counters::default(), poll);
        }
        let origin = match sample.state {
            TcpState::Listen | TcpState::NewSynRecv | TcpState::BoundInactive => Origin::Other,
            TcpState::TimeWait if previous_tuples.contains(&sample.key) => Origin::Other,
            // Its full socket's notice counted the connection.
            _ if self.states == StateCounts::Notified && sample.is_mini_socket() => Origin::Other,
            _ if self.is_listener_endpoint(&sample.key) => Origin::Passive,
            _ => Origin::Active,
        };
        // Created inside the window: everything it did counts.
        let mut window = cumulative(sample).counters;
        let mut life = Life::default();
        let kind = match origin {
            Origin::Active => Some(OpenKind::Active),
            Origin::Passive => Some(OpenKind::Passive),
            _ => None,
        };
        match (self.states, kind) {
            (StateCounts::Inferred, Some(kind)) => life.open(kind, true),
            // Notices name every close, so a socket new to a poll is new.
            (StateCounts::Notified, Some(kind)) => life.open(kind, false),
            _ => {}
        }
        if origin == Origin::Passive {
            add_syn_ack(&mut window);
        }
        if self.states == StateCounts::Inferred
            && sample.state == TcpState::Close
            && origin != Origin::Other
        {
            life.end(&guessed(Counter::AttemptFails), Told::Guess);
        }
        let mut tracked = Tracked::new(sample.clone(), origin, window, poll);
        tracked.life = life;
        tracked
    }

    fn close_vanished(&mut self, id: SocketId, tracked: Tracked, succeeded: bool, elapsed_ms: u64) {
        let mut closed = Closed {
            lifetime: cumulative(&tracked.sample).counters,
            window: tracked.window.counts(),
            sample: tracked.sample,
            unseen_ms: elapsed_ms,
            history: StateHistory::default(),
            end_of_stream_read: false,
            holder: Holder::default(),
            counted_from: CountedFrom::LastPoll { cleared: false },
            rtt: tracked.rtt,
            read_as_connect: None,
            events_tail: Counters::default(),
            life: tracked.life,
        };
        if let Some(events) = &mut self.events {
            events.vanished(id, tracked.last_poll, &mut closed);
        }
        let state = closed.sample.state;
        let notified = self.states == StateCounts::Notified;
        if !succeeded && self.states != StateCounts::FromEvents {
            let guess = if state.counts_as_established() {
                Some(Counter::EstabResets)
            } else if state.is_handshake() && !(notified && closed.sample.is_mini_socket()) {
                // With notices, a request socket that vanished most likely
                // became a child, whose notice tells how it went.
                Some(Counter::AttemptFails)
            } else {
                None
            };
            if let Some(counter) = guess {
                closed.life.end(&guessed(counter), Told::Guess);
            }
        }
        let opened_here = matches!(tracked.origin, Origin::Active | Origin::Passive);
        if closed.sample.is_mini_socket() && closed.window_counts().is_all_zero() && !opened_here {
            // An expiring TIME_WAIT or request socket: nothing to report.
            return;
        }
        // Precision mode reads notices too: a socket its application holds
        // after its CLOSE leaves the dumps long before its notice comes.
        if self.notices_read && closed.sample.cookie != 0 {
            self.expect_late_notice(closed.sample.cookie);
        }
        self.closed.push(closed);
    }

    /// Its notice may still come (the kernel sends notices from a
    /// workqueue, which a loaded host can hold past a poll).
    fn expect_late_notice(&mut self, cookie: u64) {
        let poll = self.polls;
        if self.vanished_unnoticed.len() >= LATE_NOTICE_LIMIT {
            self.vanished_unnoticed
                .retain(|_, since| poll.saturating_sub(*since) < LATE_NOTICE_POLLS);
            if self.vanished_unnoticed.len() >= LATE_NOTICE_LIMIT {
                return;
            }
        }
        self.vanished_unnoticed.insert(cookie, poll);
    }

    /// Sockets that closed in the current window.
    pub fn closed(&self) -> &[Closed] {
        &self.closed
    }

    /// Every socket with its window counters: those present now, then those
    /// only events know of, then those that closed inside the window.
    pub fn rows<'a>(&'a self) -> impl Iterator<Item = SocketRow<'a>> + 'a {
        self.rows_but_idle(false)
    }

    /// [`Tracker::rows`], leaving out, with `skip_idle`, present sockets
    /// whose window counted nothing, listeners aside (their drops are
    /// shared later): a report of a large quiet host builds no row for
    /// most of its sockets.
    pub fn rows_but_idle<'a>(
        &'a self,
        skip_idle: bool,
    ) -> impl Iterator<Item = SocketRow<'a>> + 'a {
        let events = self.events.as_deref();
        let moved = move |t: &Tracked| {
            !skip_idle
                || t.window.has_values()
                || t.life.counts_in_window()
                || t.sample.state == TcpState::Listen
        };
        let present = self
            .sockets
            .iter()
            .filter(move |(_, t)| moved(t))
            .map(move |(id, t)| {
                let history = events.map(|e| e.history_of(id)).unwrap_or_default();
                SocketRow {
                    sample: &t.sample,
                    counters: self.counted(t.window_counts(), &history),
                    closed: false,
                    history,
                    holder: Holder {
                        pid: events.and_then(|e| e.owner_of(id)),
                        unpolled: false,
                    },
                    rtt: t.rtt,
                }
            });
        let known_by_events = events.into_iter().flat_map(|e| e.event_only_sockets()).map(
            move |(t, history, pid)| SocketRow {
                sample: &t.sample,
                counters: self.counted(t.window_counts(), &history),
                closed: false,
                history,
                holder: Holder::unpolled(pid),
                rtt: t.rtt,
            },
        );
        let closed = self.closed.iter().map(move |c| SocketRow {
            sample: &c.sample,
            counters: self.counted(c.window_counts(), &c.history),
            closed: true,
            history: c.history,
            holder: c.holder,
            rtt: c.rtt,
        });
        present.chain(known_by_events).chain(closed)
    }

    /// A window's counts as a row shows them: marked as
    /// [`Tracker::with_presence`] says, less the SYN-ACK of a simultaneous
    /// open its events saw. A connect that met its peer's SYN (SYN_SENT →
    /// SYN_RECV) answers with its own SYN again, acknowledging: its
    /// `segs_out` counts that segment, the namespace's OutSegs does not
    /// (its sequence is not new).
    fn counted(&self, counters: Counters, history: &StateHistory) -> Counters {
        let mut counters = self.with_presence(counters);
        let mut before = None;
        let met_peers_syn = history.iter().any(|state| {
            let met = before == Some(TcpState::SynSent) && state == TcpState::SynRecv;
            before = Some(state);
            met
        });
        if met_peers_syn && counters.value(Counter::OutSegs) > 0 {
            let approx = counters.is_approx(Counter::OutSegs);
            let sent = counters.value(Counter::OutSegs) - 1;
            counters.replace(Counter::OutSegs, sent, approx);
        }
        counters
    }

    /// State events are always known in a tracking run, zero or not;
    /// inferred ones are approximate. The counters the probes fill are known
    /// too.
    fn with_presence(&self, mut counters: Counters) -> Counters {
        for c in Counter::STATE_EVENTS {
            match self.states {
                StateCounts::FromEvents | StateCounts::Notified => counters.mark_present(c),
                StateCounts::Inferred => counters.mark_approx(c),
            }
        }
        if let Some(events) = &self.events {
            events.mark_covered(&mut counters);
        }
        counters
    }

    /// Whether a closed life's last events are still to come: its notice
    /// was read with a dump that began before them, and they come with
    /// the next batch (its reset, an end-of-stream read that puts the
    /// peer's FIN in its bytes). A lifetime report waits for them.
    pub fn awaits_late_events(&self, closed: &Closed) -> bool {
        self.events
            .as_ref()
            .is_some_and(|events| events.awaits_late_events(closed.sample.cookie))
    }

    /// Forgets the sockets that closed (reported already), keeping every
    /// other socket's window and the closed lives that still await their
    /// last events (for the next lifetime report).
    pub fn clear_closed_reported(&mut self) {
        let Some(events) = &self.events else {
            self.closed.clear();
            return;
        };
        self.closed
            .retain(|closed| events.awaits_late_events(closed.sample.cookie));
        self.held_over = self.closed.len();
    }

    /// Starts a new window: counts so far are forgotten, sockets are kept.
    pub fn reset_window(&mut self) {
        for tracked in self.sockets.values_mut() {
            tracked.window.clear();
            tracked.rtt.clear();
            tracked.life.new_window();
        }
        if let Some(events) = &mut self.events {
            events.reset_window();
        }
        self.closed.clear();
        self.held_over = 0;
        self.unplaced_by_filters = Folded::default();
        self.window_listeners.clear();
        self.window_listeners_overflowed = false;
    }

    /// Every listener (namespace, address, port) of this window, sorted;
    /// None when there were more than the window remembers.
    pub fn window_listeners(&self) -> Option<Vec<(u64, IpAddr, u16)>> {
        if self.window_listeners_overflowed {
            return None;
        }
        let mut listeners: Vec<_> = self.window_listeners.iter().copied().collect();
        listeners.sort_unstable();
        Some(listeners)
    }
}

/// The newest life of the window that closed with `cookie`.
fn newest_closed_with(closed: &mut [Closed], cookie: u64) -> Option<&mut Closed> {
    closed.iter_mut().rev().find(|c| c.sample.cookie == cookie)
}

/// An accepted socket's handshake sent a SYN-ACK from its listener's
/// request socket, which the namespace counts and the child's own
/// `segs_out` does not (its `segs_in` does count the SYN).
pub(crate) fn add_syn_ack(window: &mut Counters) {
    if let Some(sent) = window.get(Counter::OutSegs) {
        window.set(
            Counter::OutSegs,
            sent + 1,
            window.is_approx(Counter::OutSegs),
        );
    }
}

/// One ending guessed from polls (a fail or a reset): approximate.
fn guessed(counter: Counter) -> Counters {
    let mut counts = Counters::default();
    counts.bump_approx(counter, 1);
    counts
}

/// Whether a vanished socket may still get its close notice: a connection
/// (not a listener or mini socket) unseen for one poll only.
fn awaits_notice(tracked: &Tracked, poll: u64) -> bool {
    let state = tracked.sample.state;
    tracked.last_poll + 1 == poll && state != TcpState::Listen && !tracked.sample.is_mini_socket()
}

/// Whether `key`'s local endpoint is a listener's (its own address or a
/// wildcard one, same port and namespace).
pub(crate) fn is_listener_endpoint(listeners: &Listeners, key: &SocketKey) -> bool {
    let (ns, port) = (key.netns, key.local_port);
    listeners.contains_key(&(ns, unmap(key.local), port))
        || listeners.contains_key(&(ns, crate::model::UNSPECIFIED_V4, port))
        || listeners.contains_key(&(ns, crate::model::UNSPECIFIED_V6, port))
}

/// Takes in a socket's new sample. A full socket that became TIME_WAIT
/// (which keeps its cookie) ended its life: that life is handed back as
/// [`Closed`], and the entry goes on as the mini socket.
fn update(
    tracked: &mut Tracked,
    sample: &SocketSample,
    poll: u64,
    elapsed_ms: u64,
    states: StateCounts,
) -> Option<Closed> {
    // Most sockets of a large host are idle: nothing to diff or copy.
    if tracked.diffed != NOT_DIFFED && tracked.sample.unchanged_in(sample) {
        tracked.window.add_marks(tracked.diffed);
        tracked.last_poll = poll;
        return None;
    }
    if sample.is_mini_socket() && !tracked.sample.is_mini_socket() {
        let ended = Closed {
            lifetime: cumulative(&tracked.sample).counters,
            window: tracked.window.counts(),
            sample: std::mem::replace(&mut tracked.sample, sample.clone()),
            unseen_ms: elapsed_ms,
            history: StateHistory::default(),
            end_of_stream_read: false,
            holder: Holder::default(),
            // Its notice, when it comes, completes it.
            counted_from: CountedFrom::LastPoll { cleared: false },
            rtt: tracked.rtt,
            read_as_connect: None,
            events_tail: Counters::default(),
            // The successor opens and ends nothing of its own.
            life: std::mem::take(&mut tracked.life),
        };
        tracked.window.clear();
        tracked.rtt.clear();
        tracked.origin = Origin::Successor;
        tracked.last_poll = poll;
        return Some(ended);
    }
    let now = cumulative(sample);
    // What a zero difference from this sample would mark next poll.
    let next_marks = now.counters.marks();
    let added = match difference(&now, &cumulative(&tracked.sample)) {
        Ok(delta) => delta,
        // Treated as a new socket: its counters start again from zero.
        Err(_) => now.counters,
    };
    tracked.window.add(&added);
    tracked.diffed = next_marks;
    let (old_state, new_state) = (tracked.sample.state, sample.state);
    if states == StateCounts::Inferred
        && new_state == TcpState::Close
        && old_state != TcpState::Close
    {
        let guess = if old_state.counts_as_established() {
            Some(Counter::EstabResets)
        } else if old_state.is_handshake() {
            Some(Counter::AttemptFails)
        } else {
            None
        };
        if let Some(counter) = guess {
            tracked.life.end(&guessed(counter), Told::Guess);
        }
    }
    // A socket its process closed is an orphan with no inode: it stays
    // its last owner's.
    let (owner_inode, congestion, skmem) = (
        tracked.sample.inode,
        tracked.sample.congestion,
        tracked.sample.skmem,
    );
    tracked.sample = sample.clone();
    if sample.inode == 0 {
        tracked.sample.inode = owner_inode;
    }
    // A lean poll between two reports does not ask for these.
    if sample.congestion.is_none() {
        tracked.sample.congestion = congestion;
    }
    if sample.skmem.is_none() {
        tracked.sample.skmem = skmem;
    }
    tracked.last_poll = poll;
    None
}

/// Rows for `--once`: every socket's counters since its creation.
pub fn lifetime_rows<'a>(
    snapshot: &'a Snapshot,
    filter: &'a FilterSet,
) -> impl Iterator<Item = SocketRow<'a>> + 'a {
    snapshot
        .sockets
        .iter()
        .filter(move |s| filter.matches(&s.key))
        .map(lifetime_row)
}

/// A socket's counters since its creation, as a row.
pub fn lifetime_row(sample: &SocketSample) -> SocketRow<'_> {
    SocketRow {
        sample,
        counters: cumulative(sample).counters,
        closed: false,
        history: StateHistory::default(),
        holder: Holder::default(),
        rtt: RttSamples::of_sample(sample),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tcp_info::TcpInfo;

    fn info(segs_out: u32, bytes_sent: u64, bytes_received: u64) -> TcpInfo {
        clocked(segs_out, bytes_sent, bytes_received, 0)
    }

    /// `info` with the idle clocks (ms since the last data and ACK) set.
    fn clocked(segs_out: u32, bytes_sent: u64, bytes_received: u64, ms: u32) -> TcpInfo {
        let mut raw = vec![0u8; 232];
        raw[0] = 1;
        raw[136..140].copy_from_slice(&segs_out.to_ne_bytes());
        raw[140..144].copy_from_slice(&segs_out.to_ne_bytes());
        raw[200..208].copy_from_slice(&bytes_sent.to_ne_bytes());
        raw[120..128].copy_from_slice(&bytes_sent.to_ne_bytes());
        raw[128..136].copy_from_slice(&bytes_received.to_ne_bytes());
        for at in [44, 48, 52, 56] {
            raw[at..at + 4].copy_from_slice(&ms.to_ne_bytes());
        }
        TcpInfo::from_bytes(&raw).unwrap()
    }

    fn sock(
        cookie: u64,
        l: &str,
        lp: u16,
        r: &str,
        rp: u16,
        state: TcpState,
        i: Option<TcpInfo>,
    ) -> SocketSample {
        let key = SocketKey::new(l.parse().unwrap(), lp, r.parse().unwrap(), rp);
        let mut s = SocketSample::bare(key, cookie, state);
        s.tcp_info = i;
        s
    }

    fn snap(ms: u64, sockets: Vec<SocketSample>) -> Snapshot {
        Snapshot::new(ms, SocketSource::SockDiag, sockets)
    }

    fn totals(t: &Tracker) -> Counters {
        let mut c = Counters::default();
        for row in t.rows() {
            c.add(&row.counters);
        }
        c
    }

    const EST: TcpState = TcpState::Established;
    const ANY: FilterSet = FilterSet {
        filters: Vec::new(),
        index: None,
    };

    #[test]
    fn baseline_counts_only_growth() {
        let mut t = Tracker::new();
        t.observe(
            &snap(
                0,
                vec![sock(
                    1,
                    "10.0.0.1",
                    22,
                    "10.0.0.2",
                    5000,
                    EST,
                    Some(info(100, 5000, 70)),
                )],
            ),
            &ANY,
        );
        assert_eq!(totals(&t).value(Counter::BytesSent), 0);
        t.observe(
            &snap(
                1000,
                vec![sock(
                    1,
                    "10.0.0.1",
                    22,
                    "10.0.0.2",
                    5000,
                    EST,
                    Some(info(110, 5200, 90)),
                )],
            ),
            &ANY,
        );
        let c = totals(&t);
        assert_eq!(c.get(Counter::BytesSent), Some(200));
        assert_eq!(c.get(Counter::BytesReceived), Some(20));
        assert_eq!(c.get(Counter::OutSegs), Some(10));
        assert_eq!(c.get(Counter::ActiveOpens), Some(0));
    }

    #[test]
    fn new_socket_counts_whole_life_and_is_active_or_passive() {
        let mut t = Tracker::new();
        let listener = sock(
            9,
            "0.0.0.0",
            80,
            "0.0.0.0",
            0,
            TcpState::Listen,
            Some(info(0, 0, 0)),
        );
        t.observe(&snap(0, vec![listener.clone()]), &ANY);
        t.observe(
            &snap(
                1000,
                vec![
                    listener,
                    // accepted by the listener on :80
                    sock(
                        2,
                        "127.0.0.1",
                        80,
                        "127.0.0.1",
                        40000,
                        EST,
                        Some(info(3, 0, 100)),
                    ),
                    // the client end
                    sock(
                        3,
                        "127.0.0.1",
                        40000,
                        "127.0.0.1",
                        80,
                        EST,
                        Some(info(4, 100, 0)),
                    ),
                ],
            ),
            &ANY,
        );
        let c = totals(&t);
        assert_eq!(c.get(Counter::PassiveOpens), Some(1));
        assert_eq!(c.get(Counter::ActiveOpens), Some(1));
        assert_eq!(c.get(Counter::BytesSent), Some(100));
        assert_eq!(c.get(Counter::BytesReceived), Some(100));
        assert!(c.is_approx(Counter::ActiveOpens));
    }

    #[test]
    fn cookie_reused_with_other_tuple_is_another_socket() {
        let mut t = Tracker::new();
        t.observe(
            &snap(
                0,
                vec![sock(
                    5,
                    "10.0.0.1",
                    1,
                    "10.0.0.2",
                    2,
                    EST,
                    Some(info(10, 1000, 0)),
                )],
            ),
            &ANY,
        );
        t.observe(
            &snap(
                1000,
                vec![sock(
                    5,
                    "10.0.0.1",
                    3,
                    "10.0.0.2",
                    4,
                    EST,
                    Some(info(2, 30, 0)),
                )],
            ),
            &ANY,
        );
        let c = totals(&t);
        // The new one counts whole (30 bytes), the old one is gone unreset?
        assert_eq!(c.get(Counter::BytesSent), Some(30));
        assert_eq!(c.get(Counter::ActiveOpens), Some(1));
        assert_eq!(t.closed().len(), 1);
    }

    #[test]
    fn backwards_counter_counts_from_zero() {
        let mut t = Tracker::new();
        t.observe(
            &snap(
                0,
                vec![sock(
                    5,
                    "10.0.0.1",
                    1,
                    "10.0.0.2",
                    2,
                    EST,
                    Some(info(10, 1000, 0)),
                )],
            ),
            &ANY,
        );
        t.observe(
            &snap(
                1000,
                vec![sock(
                    5,
                    "10.0.0.1",
                    1,
                    "10.0.0.2",
                    2,
                    EST,
                    Some(info(12, 40, 0)),
                )],
            ),
            &ANY,
        );
        assert_eq!(totals(&t).get(Counter::BytesSent), Some(40));
    }

    #[test]
    fn wrapped_segment_counter_is_a_small_delta() {
        let mut t = Tracker::new();
        t.observe(
            &snap(
                0,
                vec![sock(
                    5,
                    "10.0.0.1",
                    1,
                    "10.0.0.2",
                    2,
                    EST,
                    Some(info(u32::MAX - 1, 0, 0)),
                )],
            ),
            &ANY,
        );
        t.observe(
            &snap(
                1000,
                vec![sock(
                    5,
                    "10.0.0.1",
                    1,
                    "10.0.0.2",
                    2,
                    EST,
                    Some(info(3, 0, 0)),
                )],
            ),
            &ANY,
        );
        assert_eq!(totals(&t).get(Counter::OutSegs), Some(5));
    }

    #[test]
    fn vanished_established_without_time_wait_is_estab_reset() {
        let mut t = Tracker::new();
        t.observe(
            &snap(
                0,
                vec![sock(
                    5,
                    "10.0.0.1",
                    1,
                    "10.0.0.2",
                    2,
                    EST,
                    Some(info(1, 1, 0)),
                )],
            ),
            &ANY,
        );
        t.observe(&snap(1000, vec![]), &ANY);
        let c = totals(&t);
        assert_eq!(c.get(Counter::EstabResets), Some(1));
        assert!(c.is_approx(Counter::EstabResets));
    }

    #[test]
    fn orderly_close_with_time_wait_successor_is_not_a_reset() {
        let mut t = Tracker::new();
        let a = sock(
            5,
            "127.0.0.1",
            40000,
            "127.0.0.1",
            80,
            EST,
            Some(info(1, 1, 0)),
        );
        let b = sock(
            6,
            "127.0.0.1",
            80,
            "127.0.0.1",
            40000,
            EST,
            Some(info(1, 1, 0)),
        );
        t.observe(&snap(0, vec![a, b]), &ANY);
        // TIME_WAIT keeps the full socket's cookie.
        let tw = sock(
            5,
            "127.0.0.1",
            40000,
            "127.0.0.1",
            80,
            TcpState::TimeWait,
            None,
        );
        t.observe(&snap(1000, vec![tw]), &ANY);
        let c = totals(&t);
        assert_eq!(c.get(Counter::EstabResets), Some(0));
        assert_eq!(c.get(Counter::ActiveOpens), Some(0));
    }

    #[test]
    fn without_cookies_a_time_wait_on_a_known_tuple_is_no_new_open() {
        // /proc/net/tcp: no cookies; TIME_WAIT has inode 0.
        let mut t = Tracker::new();
        let proc_net = |ms: u64, sockets: Vec<SocketSample>| {
            Snapshot::new(ms, SocketSource::ProcNetTcp, sockets)
        };
        let mut a = sock(0, "127.0.0.1", 40000, "127.0.0.1", 80, EST, None);
        a.inode = 77;
        t.observe(&proc_net(0, vec![a]), &ANY);
        let tw = sock(
            0,
            "127.0.0.1",
            40000,
            "127.0.0.1",
            80,
            TcpState::TimeWait,
            None,
        );
        t.observe(&proc_net(1000, vec![tw]), &ANY);
        let c = totals(&t);
        assert_eq!(c.get(Counter::ActiveOpens), Some(0));
        assert_eq!(c.get(Counter::EstabResets), Some(0));
    }

    #[test]
    fn full_socket_turning_time_wait_with_its_cookie_is_closed_once() {
        let mut t = Tracker::new();
        t.observe(&snap(0, vec![]), &ANY);
        t.observe(
            &snap(
                500,
                vec![sock(
                    5,
                    "127.0.0.1",
                    40000,
                    "127.0.0.1",
                    80,
                    EST,
                    Some(info(4, 4321, 0)),
                )],
            ),
            &ANY,
        );
        t.observe(
            &snap(
                1000,
                vec![sock(
                    5,
                    "127.0.0.1",
                    40000,
                    "127.0.0.1",
                    80,
                    TcpState::TimeWait,
                    None,
                )],
            ),
            &ANY,
        );
        assert_eq!(t.closed().len(), 1);
        assert_eq!(t.closed()[0].lifetime.get(Counter::BytesSent), Some(4321));
        let c = totals(&t);
        assert_eq!(c.get(Counter::BytesSent), Some(4321));
        assert_eq!(c.get(Counter::ActiveOpens), Some(1));
        assert_eq!(c.get(Counter::EstabResets), Some(0));
        t.reset_window();
        t.observe(
            &snap(
                1500,
                vec![sock(
                    5,
                    "127.0.0.1",
                    40000,
                    "127.0.0.1",
                    80,
                    TcpState::TimeWait,
                    None,
                )],
            ),
            &ANY,
        );
        assert!(t.closed().is_empty());
    }

    #[test]
    fn time_wait_without_predecessor_is_a_short_lived_connection() {
        let mut t = Tracker::new();
        t.observe(&snap(0, vec![]), &ANY);
        let tw = sock(
            7,
            "127.0.0.1",
            40000,
            "127.0.0.1",
            80,
            TcpState::TimeWait,
            None,
        );
        t.observe(&snap(1000, vec![tw]), &ANY);
        assert_eq!(totals(&t).get(Counter::ActiveOpens), Some(1));
    }

    #[test]
    fn request_socket_replaced_by_its_child_is_not_a_failure() {
        let mut t = Tracker::new();
        let listener = sock(
            9,
            "0.0.0.0",
            80,
            "0.0.0.0",
            0,
            TcpState::Listen,
            Some(info(0, 0, 0)),
        );
        t.observe(&snap(0, vec![listener.clone()]), &ANY);
        let req = sock(
            4,
            "127.0.0.1",
            80,
            "127.0.0.1",
            40000,
            TcpState::NewSynRecv,
            None,
        );
        t.observe(&snap(500, vec![listener.clone(), req]), &ANY);
        let child = sock(
            5,
            "127.0.0.1",
            80,
            "127.0.0.1",
            40000,
            EST,
            Some(info(1, 0, 0)),
        );
        t.observe(&snap(1000, vec![listener, child]), &ANY);
        let c = totals(&t);
        assert_eq!(c.get(Counter::AttemptFails), Some(0));
        assert_eq!(c.get(Counter::PassiveOpens), Some(1));
    }

    #[test]
    fn request_socket_that_vanishes_without_child_is_attempt_fail() {
        let mut t = Tracker::new();
        let listener = sock(
            9,
            "0.0.0.0",
            80,
            "0.0.0.0",
            0,
            TcpState::Listen,
            Some(info(0, 0, 0)),
        );
        t.observe(&snap(0, vec![listener.clone()]), &ANY);
        let req = sock(
            4,
            "127.0.0.1",
            80,
            "127.0.0.1",
            40000,
            TcpState::NewSynRecv,
            None,
        );
        t.observe(&snap(500, vec![listener.clone(), req]), &ANY);
        t.observe(&snap(1000, vec![listener]), &ANY);
        assert_eq!(totals(&t).get(Counter::AttemptFails), Some(1));
    }

    #[test]
    fn a_socket_listed_twice_does_not_hide_one_that_vanished() {
        let a = sock(1, "10.0.0.1", 1, "10.0.0.2", 80, EST, Some(info(1, 1, 0)));
        let b = sock(2, "10.0.0.1", 2, "10.0.0.2", 80, EST, Some(info(1, 1, 0)));
        let mut t = Tracker::new();
        t.observe(&snap(0, vec![a.clone(), b]), &ANY);
        t.observe(&snap(1000, vec![a.clone(), a]), &ANY);
        assert_eq!(t.closed().len(), 1);
    }

    #[test]
    fn syn_sent_that_vanishes_is_attempt_fail() {
        let mut t = Tracker::new();
        t.observe(&snap(0, vec![]), &ANY);
        t.observe(
            &snap(
                500,
                vec![sock(
                    8,
                    "10.0.0.1",
                    4000,
                    "10.9.9.9",
                    80,
                    TcpState::SynSent,
                    Some(info(1, 0, 0)),
                )],
            ),
            &ANY,
        );
        t.observe(&snap(1000, vec![]), &ANY);
        let c = totals(&t);
        assert_eq!(c.get(Counter::ActiveOpens), Some(1));
        assert_eq!(c.get(Counter::AttemptFails), Some(1));
    }

    #[test]
    fn sockets_vanishing_anywhere_leave_the_others_tracked() {
        let socks = |ids: &[u64], bytes: u64| -> Vec<SocketSample> {
            ids.iter()
                .map(|&id| {
                    sock(
                        id,
                        "10.0.0.1",
                        id as u16,
                        "10.0.0.2",
                        80,
                        EST,
                        Some(info(1, bytes, 0)),
                    )
                })
                .collect()
        };
        let mut t = Tracker::new();
        t.observe(&snap(0, socks(&[1, 2, 3, 4, 5, 6], 100)), &ANY);
        // First, middle and last go; the rest grow by 50 bytes each.
        t.observe(&snap(1000, socks(&[2, 3, 5], 150)), &ANY);
        t.observe(&snap(2000, socks(&[2, 3, 5], 170)), &ANY);
        assert_eq!(t.rows().filter(|r| !r.closed).count(), 3);
        assert_eq!(t.closed().len(), 3);
        assert_eq!(totals(&t).get(Counter::BytesSent), Some(3 * 70));
    }

    #[test]
    fn sockets_of_a_namespace_not_read_this_poll_are_not_closed() {
        let mut a = sock(1, "10.0.0.1", 1, "10.0.0.2", 80, EST, Some(info(1, 10, 0)));
        a.key.netns = 7;
        let mut t = Tracker::new();
        t.observe(&snap(0, vec![a.clone()]), &ANY);
        let mut missing = snap(1000, vec![]);
        missing.unsampled_netns.push(7);
        t.observe(&missing, &ANY);
        assert!(t.closed().is_empty());
        let mut grown = a;
        grown.tcp_info = Some(info(2, 30, 0));
        t.observe(&snap(2000, vec![grown]), &ANY);
        let c = totals(&t);
        assert_eq!(
            c.get(Counter::BytesSent),
            Some(20),
            "growth, not the whole history"
        );
        assert_eq!(c.get(Counter::EstabResets), Some(0));
    }

    #[test]
    fn window_reset_keeps_sockets_and_forgets_counts() {
        let mut t = Tracker::new();
        t.observe(
            &snap(
                0,
                vec![sock(
                    1,
                    "10.0.0.1",
                    1,
                    "10.0.0.2",
                    2,
                    EST,
                    Some(info(1, 10, 0)),
                )],
            ),
            &ANY,
        );
        t.observe(
            &snap(
                1000,
                vec![sock(
                    1,
                    "10.0.0.1",
                    1,
                    "10.0.0.2",
                    2,
                    EST,
                    Some(info(2, 20, 0)),
                )],
            ),
            &ANY,
        );
        t.reset_window();
        t.observe(
            &snap(
                2000,
                vec![sock(
                    1,
                    "10.0.0.1",
                    1,
                    "10.0.0.2",
                    2,
                    EST,
                    Some(info(3, 25, 0)),
                )],
            ),
            &ANY,
        );
        assert_eq!(totals(&t).get(Counter::BytesSent), Some(5));
    }

    #[test]
    fn an_idle_socket_keeps_its_counters_present_in_every_window() {
        let mut t = Tracker::new();
        let at = |ms: u32, (segs, sent, recv): (u32, u64, u64)| {
            let mut s = sock(
                1,
                "10.0.0.1",
                1,
                "10.0.0.2",
                2,
                EST,
                Some(clocked(segs, sent, recv, ms)),
            );
            s.inode = if ms < 3000 { 7 } else { 0 };
            snap(u64::from(ms), vec![s])
        };
        t.observe(&at(0, (1, 10, 0)), &ANY);
        t.observe(&at(1000, (1, 10, 0)), &ANY);
        // A window in which nothing moved, polled twice (the second time
        // orphaned: inode 0), still says its counters are known zeros.
        t.reset_window();
        t.observe(&at(2000, (1, 10, 0)), &ANY);
        t.observe(&at(3000, (1, 10, 0)), &ANY);
        let rows: Vec<_> = t.rows().collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].counters.get(Counter::BytesSent), Some(0));
        assert_eq!(rows[0].counters.get(Counter::OutSegs), Some(0));
        assert_eq!(rows[0].sample.inode, 7, "an orphan stays its owner's");
        // Then it moves: the delta since the last sample that differed.
        t.observe(&at(4000, (3, 25, 4)), &ANY);
        let c = totals(&t);
        assert_eq!(c.get(Counter::BytesSent), Some(15));
        assert_eq!(c.get(Counter::BytesReceived), Some(4));
        assert_eq!(c.get(Counter::OutSegs), Some(2));
    }

    #[test]
    fn a_lean_poll_keeps_the_last_memory_and_congestion_control_known() {
        let mut t = Tracker::new();
        let full = |segs: u32, sent: u64| {
            let mut s = sock(
                1,
                "10.0.0.1",
                1,
                "10.0.0.2",
                2,
                EST,
                Some(info(segs, sent, 0)),
            );
            s.congestion = crate::model::CongestionName::from_bytes(b"cubic");
            s.skmem = Some(crate::model::SkMemInfo {
                rmem_alloc: 7,
                ..Default::default()
            });
            s
        };
        let lean = |segs: u32, sent: u64| {
            sock(
                1,
                "10.0.0.1",
                1,
                "10.0.0.2",
                2,
                EST,
                Some(info(segs, sent, 0)),
            )
        };
        t.observe(&snap(0, vec![full(1, 10)]), &ANY);
        // Idle, then moved: the lean samples take neither path's gauges away.
        t.observe(&snap(1000, vec![lean(1, 10)]), &ANY);
        t.observe(&snap(2000, vec![lean(2, 30)]), &ANY);
        let row = t.rows().next().unwrap();
        assert_eq!(
            row.sample
                .congestion
                .map(|c| c.as_str().to_string())
                .as_deref(),
            Some("cubic")
        );
        assert_eq!(row.sample.skmem.map(|m| m.rmem_alloc), Some(7));
        assert_eq!(row.counters.get(Counter::BytesSent), Some(20));
    }

    proptest::proptest! {
        /// Whatever mix of idle polls (clocks only), moves and window
        /// resets, a window's counts are its last sample minus the sample
        /// that opened it, as if every poll were diffed in full.
        #[test]
        fn windows_count_last_minus_first_however_idle_the_polls(
            steps in proptest::collection::vec((0u32..3, 0u64..1000, 0u32..5000, proptest::bool::ANY), 1..40)
        ) {
            let mut t = Tracker::new();
            let (mut sent, mut segs) = (100u64, 10u32);
            let sample = |ms: u32, sent: u64, segs: u32| {
                sock(1, "10.0.0.1", 1, "10.0.0.2", 2, EST, Some(clocked(segs, sent, 0, ms)))
            };
            t.observe(&snap(0, vec![sample(0, sent, segs)]), &ANY);
            let (mut start_sent, mut start_segs) = (sent, segs);
            for (i, (moved, more, clock, reset)) in steps.into_iter().enumerate() {
                if reset {
                    t.reset_window();
                    (start_sent, start_segs) = (sent, segs);
                }
                if moved == 0 {
                    sent += more;
                    segs += (more % 7) as u32;
                }
                t.observe(&snap(1000 * (i as u64 + 1), vec![sample(clock, sent, segs)]), &ANY);
                let c = totals(&t);
                proptest::prop_assert_eq!(c.get(Counter::BytesSent), Some(sent - start_sent));
                proptest::prop_assert_eq!(c.get(Counter::OutSegs), Some(u64::from(segs - start_segs)));
            }
        }
    }

    #[test]
    fn closed_sockets_past_the_bound_are_handed_over_with_their_counts() {
        let mut t = Tracker::new();
        // Ten connections that have sent `sent` bytes so far.
        let connections = |sent: u64| -> Vec<SocketSample> {
            (0..10u16)
                .map(|i| {
                    let (cookie, port) = (100 + u64::from(i), 1000 + i);
                    let info = Some(info(1, sent, 0));
                    sock(
                        cookie,
                        "10.0.0.1",
                        port,
                        "10.0.0.2",
                        80,
                        TcpState::Established,
                        info,
                    )
                })
                .collect()
        };
        t.observe(&snap(0, connections(10)), &FilterSet::default());
        let grown = connections(30);
        t.observe(&snap(1000, grown), &FilterSet::default());
        t.observe(&snap(2000, vec![]), &FilterSet::default());
        assert_eq!(t.closed().len(), 10);
        let (mut sockets, mut folded) = (Vec::new(), Counters::default());
        t.fold_closed_past(4, |row| {
            assert!(row.closed);
            sockets.push(row.sample.key.local_port);
            folded.add(&row.counters);
        });
        assert_eq!(t.closed().len(), 4);
        // The oldest go, each with its own tuple, counts and presence marks.
        assert_eq!(sockets, (1000..1006).collect::<Vec<u16>>());
        assert_eq!(folded.get(Counter::BytesSent), Some(6 * 20));
        assert!(folded.get(Counter::ActiveOpens).is_some());
        t.fold_closed_past(4, |_| panic!("nothing past the bound"));
    }

    #[test]
    fn a_simultaneous_opens_syn_ack_is_no_outseg_of_the_namespace() {
        let t = Tracker::default();
        let mut counters = Counters::default();
        counters.set(Counter::OutSegs, 6, false);
        let mut history = StateHistory::default();
        for state in [TcpState::SynSent, TcpState::SynRecv, TcpState::Established] {
            history.push(state);
        }
        let row = t.counted(counters, &history);
        assert_eq!(row.get(Counter::OutSegs), Some(5));
        assert!(!row.is_approx(Counter::OutSegs));
        // A connect answered by a SYN-ACK sent no SYN again.
        let mut plain = StateHistory::default();
        plain.push(TcpState::SynSent);
        plain.push(TcpState::Established);
        assert_eq!(t.counted(counters, &plain).get(Counter::OutSegs), Some(6));
    }

    #[test]
    fn listeners_gone_for_long_are_forgotten() {
        let mut t = Tracker::new();
        let listener = sock(1, "10.0.0.1", 80, "0.0.0.0", 0, TcpState::Listen, None);
        let child_key = SocketKey::new(
            "10.0.0.1".parse().unwrap(),
            80,
            "10.0.0.9".parse().unwrap(),
            5,
        );
        t.observe(&snap(0, vec![listener]), &FilterSet::default());
        assert!(t.is_listener_endpoint(&child_key));
        for poll in 1..=2 * LISTENER_POLLS {
            t.observe(&snap(poll * 1000, vec![]), &FilterSet::default());
        }
        assert!(!t.is_listener_endpoint(&child_key));
    }

    #[test]
    fn filtered_out_sockets_are_not_counted() {
        let filter = FilterSet::parse(&["*:*-*.*.*.*:9"]).unwrap();
        let mut t = Tracker::new();
        t.observe(&snap(0, vec![]), &filter);
        t.observe(
            &snap(
                1000,
                vec![
                    sock(1, "10.0.0.1", 1, "10.0.0.2", 9, EST, Some(info(1, 10, 0))),
                    sock(2, "10.0.0.1", 1, "10.0.0.2", 8, EST, Some(info(1, 99, 0))),
                ],
            ),
            &filter,
        );
        assert_eq!(totals(&t).get(Counter::BytesSent), Some(10));
    }
}
