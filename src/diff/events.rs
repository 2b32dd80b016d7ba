//! Kernel events onto tracked sockets (precision mode). Pure, like the rest
//! of `diff`: events and snapshots in, counters out.
//!
//! How events and polls add up without counting anything twice:
//! - State counters (opens, fails, resets) come from state-change events
//!   alone (through the life's ledger entry, [`super::life`], which counts
//!   each once whichever of poll, notice or event tells it first), counted
//!   where the kernel counts its MIB: CLOSE→SYN_SENT is an
//!   ActiveOpen, a child's LISTEN→SYN_RECV a PassiveOpen (SYN_RECV→ESTABLISHED
//!   where the probe cannot see the child's birth), SYN_SENT/SYN_RECV→CLOSE
//!   an AttemptFail, ESTABLISHED/CLOSE_WAIT→CLOSE an EstabReset. Nothing is
//!   inferred from polls.
//! - Counters only events see (resets sent and received, messages, drops,
//!   SYN-ACK retransmits) go straight into the socket's window.
//! - Counters both see (RetransSegs): a poll's delta is exact for the span it
//!   covers, so events since a socket's last sample are held apart (its
//!   tail) and dropped when the next sample comes. They count only for spans
//!   no sample covers: after the last poll of a socket that then closed, or
//!   the whole life of a socket no poll saw.
//! - A socket is found by its kernel address (learned from any event that
//!   carries both address and tuple) or by its tuple. Events of a socket
//!   whose tuple is not known yet (a connect's first state change, before
//!   its port is chosen; a send call, whose event has no tuple) wait under
//!   the address until an event tells it: every TCP socket's close does.
//! - A socket no poll has seen yet is kept from its events ("event-only");
//!   the poll that sees it takes its counts over. Event-only sockets that
//!   ended, or that [`EVENT_ONLY_GRACE_POLLS`] polls did not see, are closed
//!   with their counts and state history.
//! - Events carry no network namespace; close notices do. With notices read,
//!   an event-only socket is placed by its own notice, joined by the cookie
//!   its destruction event names (or, without one, by its tuple after one
//!   more batch of events), or by a poll that lists it. It is bound to one
//!   kernel address, so another namespace's socket with the same tuple is
//!   another socket. Without notices, it is kept if a poll sees its tuple, a
//!   sock_diag lookup in the namespace finds it, it is the child of a
//!   listener polled there, or its loopback peer is placed (or the host has
//!   no other namespace). The rest are counted apart, as "elsewhere".

use std::collections::BTreeMap;
use std::net::IpAddr;

use rustc_hash::FxHashMap;

use super::closes::{Ending, FinClues, PeerFin};
use super::life::{OpenKind, Told};
use super::table::SocketTable;
use super::{Closed, CountedFrom, Holder, Listeners, Origin, SocketId, StateCounts, Tracked};
use crate::counters::{cumulative, difference, Counter, Counters};
use crate::filter::FilterSet;
use crate::model::event::{DropReason, EventTuple, Timed, TraceEvent};
use crate::model::{unmap, SocketSample, StateHistory, TcpState, UNSPECIFIED_V4, UNSPECIFIED_V6};

/// Polls an event-only socket may go unseen before it is taken as gone (one
/// for a socket born while a dump ran, one to spare).
pub const EVENT_ONLY_GRACE_POLLS: u64 = 2;
/// Addresses with counts waiting for their tuple, at most; past this, new
/// ones count as unplaced rather than grow without bound.
const PENDING_LIMIT: usize = 1 << 20;
/// Polls an event-only socket that ended (or whose notice came) waits for
/// its close notice (or its end) when notices are read.
pub const NOTICE_GRACE_POLLS: u64 = 2;
/// Listeners' endpoints remembered as just closed, at most.
const STOPPED_LISTENERS_LIMIT: usize = 1024;
/// Close notices held for the next batch of events, at most; past this a
/// notice is counted on its own at once.
const HELD_NOTICES_LIMIT: usize = 1 << 16;
/// Sockets between their CLOSE and their destruction event, at most, and
/// for how many polls (an application may hold a closed socket).
const CLOSING_LIMIT: usize = 1 << 16;
const CLOSING_POLLS: u64 = 64;
/// Addresses whose owner's pid waits for their socket to be known, at
/// most; past this an owner is not kept (and counted).
const PENDING_OWNERS_LIMIT: usize = 1 << 16;
/// Connects under way whose SYN's time is kept for their handshake, at
/// most; past this (once those older than [`CONNECT_TIMING_STALE_NS`] are
/// let go) a connect's handshake is not timed (and counted).
const CONNECTS_TIMED_LIMIT: usize = 1 << 16;
/// A connect still in SYN_SENT this long has long given up (the default
/// SYN retries take ~2 minutes): its start is forgotten when room is due.
const CONNECT_TIMING_STALE_NS: u64 = 10 * 60 * 1_000_000_000;

/// Where a kernel socket address leads: the socket, and its tuple to find
/// it again once a poll took it over.
#[derive(Debug, Clone, Copy)]
enum Place {
    Socket(SocketId, EventTuple),
    /// A socket whose events are not wanted (another namespace's).
    Ignored,
    /// A socket the filters reject on its tuple: its events are not
    /// wanted, and its close notice, which may have lost the peer port the
    /// filters test, counts nothing.
    Rejected,
}

/// An event-only socket and the poll it was first known at.
#[derive(Debug)]
struct EventOnly {
    tracked: Tracked,
    /// The kernel address its first event gave (0: none): another address
    /// with the same tuple is another socket (another namespace's).
    sk: u64,
    since_poll: u64,
    /// Seen to live in a sampled namespace: events carry no namespace,
    /// so a socket only events know of could be another namespace's.
    confirmed: bool,
    /// Its sock_diag cookie, once an event told it (its destruction does).
    cookie: Option<u64>,
    /// Its close notice was taken in.
    noticed: bool,
    /// Its counters are its close notice's (an abort's notice has them
    /// cleared: the events' stand).
    counted_by_notice: bool,
    /// Its destruction event came: later events with its address or tuple
    /// are another socket's.
    destroyed: bool,
    /// The poll at which it ended or its notice came, whichever first
    /// (or, for its notice, its destruction, if later): from then it
    /// waits a few polls for the other.
    closing_since: Option<u64>,
    /// Its notice ended an orderly close: what its window took of the
    /// peer's FIN, and what tells it once its last events came.
    fin: Option<NoticeFin>,
}

/// The peer's FIN in an event-only socket's notice (see
/// [`super::closes::peer_fin`]).
#[derive(Debug, Clone, Copy)]
struct NoticeFin {
    /// The verdict its window's delta was taken with, from the events
    /// in by then: the notice may come before those of its close.
    applied: PeerFin,
    /// What the notice tells, for the verdict once its close's events came.
    clues: FinClues,
    /// Its lifetime, the notice's `bytes_received` whole, holds the FIN
    /// if it came (its last sample was not past the peer's FIN already).
    in_lifetime: bool,
}

/// Who a close notice belongs to.
enum Claim {
    /// Event-only socket number n.
    Socket(u64),
    /// A socket settled (and reported) before its notice came.
    Counted,
}

/// A close notice that no event-only socket claimed yet: its socket's
/// events (its destruction, with its cookie) may come with the next batch.
#[derive(Debug)]
struct HeldNotice {
    notice: SocketSample,
    ending: Ending,
    passive: bool,
    poll: u64,
    /// When it was read (`Snapshot::closes_read_ms`): its clock counts
    /// back from before then.
    read_ms: Option<u64>,
}

/// A polled socket its notice ended before its last events came.
#[derive(Debug, Clone, Copy)]
pub(super) struct NoticedEarly {
    /// The poll that read the notice.
    pub poll: u64,
    /// The verdict on the peer's FIN from the events seen so far, and
    /// whether its bytes received were read with it (an orderly close;
    /// else a re-reading as an accepted socket's may use it later).
    pub fin: PeerFin,
    pub fin_counted: bool,
    /// What the notice and the last poll told of the FIN.
    pub clues: FinClues,
    /// Its states as events saw them, the late ones too.
    pub history: StateHistory,
    /// Its application read the end of the stream.
    pub end_of_stream_read: bool,
}

/// A closed life's peer's FIN read again once its last events came.
#[derive(Debug, Clone, Copy)]
pub(super) struct FinRevision {
    pub cookie: u64,
    /// The verdict its bytes received were counted with, if they were.
    pub counted_with: Option<PeerFin>,
    /// The verdict now.
    pub last: PeerFin,
}

/// What events tell of one socket beyond its counters.
#[derive(Debug, Clone, Copy, Default)]
struct Marks {
    /// Event counts since the socket's last sample that its next sample's
    /// delta would count again (retransmits): they count only if no later
    /// sample comes.
    tail: Counters,
    /// The socket's last poll when the tail was counted; a later sample
    /// makes the tail stale.
    tail_after_poll: u64,
    /// The states kernel events saw it go through.
    history: StateHistory,
    /// A reset came to it (a connect it ended was refused).
    reset_received: bool,
    /// Its SYN sent again, so far.
    syn_retransmits: u32,
    /// The process its latest system call's event ran in.
    owner: Option<u32>,
    /// Its application read the end of the stream (a receive call gave
    /// 0): the peer's FIN reached the full socket.
    end_of_stream_read: bool,
}

/// The event part of the tracker: which kernel address and tuple lead to
/// which socket, what events told of each, the sockets only events know,
/// and the window's account of what no row shows.
#[derive(Debug, Default)]
pub(super) struct EventAttribution {
    /// The sampled namespace is the host's only one: every socket events
    /// tell of lives in it.
    sole_namespace: bool,
    /// Close notices are read in every sampled namespace: an event-only
    /// socket is placed by its notice (or a poll, or a lookup), never by
    /// its listener's or peer's tuple, which another namespace may share.
    placed_by_notices: bool,
    by_cookie: FxHashMap<u64, u64>,
    /// Local endpoints of listeners events saw close, with the poll: a
    /// listener's close resets its pending children right after
    /// (`inet_csk_listen_stop`, bottom halves off), which is no tcp_done.
    /// Bounded by [`STOPPED_LISTENERS_LIMIT`], forgotten a poll later.
    stopped_listeners: FxHashMap<(IpAddr, u16), u64>,
    /// Sockets whose CLOSE events saw, until their destruction event:
    /// address → (socket, poll).
    closing: FxHashMap<u64, (SocketId, u64)>,
    /// Sockets destroyed lately: address → (socket, its tuple, poll). A
    /// socket that aborts on data after its close (`tcp_rcv_state_process`
    /// ends it, then its caller answers with a reset) sends that reset
    /// from its own address after its destruction event. Forgotten when
    /// the address starts a new life or a poll later; bounded by
    /// [`CLOSING_LIMIT`] (past it such a reset counts as unplaced).
    destroyed_lately: FxHashMap<u64, (SocketId, EventTuple, u64)>,
    held_notices: Vec<HeldNotice>,
    /// Polled sockets a close notice ended before their last events came
    /// (cookie → what the notice left open): a notice is read with a
    /// poll's dump, and events from after the dump began wait for the next
    /// poll. Bounded by [`CLOSING_LIMIT`], forgotten two polls later.
    noticed_before_events: FxHashMap<u64, NoticedEarly>,
    /// What such late events counted that the notice does not (resets,
    /// calls, drops), by cookie, for the closed life.
    counted_after_notice: FxHashMap<u64, Counters>,
    /// Such lives whose peer's FIN their late events told otherwise than
    /// the events before their notice (an end-of-stream read, a state
    /// past the FIN, or the states of a first closer after an unknown).
    fin_revisions: Vec<FinRevision>,
    /// Cookies whose notices count nothing: of event-only sockets
    /// destroyed after they were settled (reported), already counted, and
    /// of sockets the filters reject on the tuple events gave (an abort's
    /// notice has lost the peer port they test). Cookie → poll.
    settled_cookies: FxHashMap<u64, u64>,
    /// Counters the running probes fill: present (zero or not) in rows.
    covered: Counters,
    netns_for_unknown: u64,
    /// The namespace's `net.ipv4.tcp_syn_retries`.
    syn_retries: u32,
    /// Retransmit events say whether the segment was a connect's SYN.
    syn_retransmits_told: bool,
    /// Destruction events (with their cookie) have come: a socket that
    /// ended without one is still held by its application.
    destructions_told: bool,
    /// No event was lost or left undelivered since the run began.
    events_complete: bool,
    by_tuple: FxHashMap<EventTuple, SocketId>,
    by_sk: FxHashMap<u64, Place>,
    pending: super::waiting::Waiting,
    /// Owners (pids) of addresses whose socket is not known yet (a
    /// connect's first state change, before its port is chosen), with the
    /// poll: forgotten [`EVENT_ONLY_GRACE_POLLS`] later (the address may be
    /// another socket's by then; a live socket's next call tells again).
    pending_owners: FxHashMap<u64, (u32, u64)>,
    /// Connects under way: address → the time (ns) of its CLOSE→SYN_SENT,
    /// until SYN_SENT ends (ESTABLISHED: its handshake is timed).
    connects_started: FxHashMap<u64, u64>,
    event_only: FxHashMap<u64, EventOnly>,
    marks: FxHashMap<SocketId, Marks>,
    next_id: u64,
    stats: EventStats,
}

/// What events added that no socket row shows, and how much came in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventStats {
    /// Counts no socket could be tied to (a reset answering a segment for
    /// no socket, a TCP drop before any socket), this window.
    pub unplaced: Counters,
    /// TCP drops by reason, this window.
    pub drops_by_reason: BTreeMap<String, u64>,
    /// Sockets whose last-moment sample was taken in, this window.
    pub last_samples: u64,
    /// Events taken in, this window.
    pub events: u64,
    /// Sockets known only from events that no poll, lookup, listener or
    /// peer placed in a sampled namespace (most likely another
    /// namespace's), and what their events counted: left out of the rows.
    pub elsewhere_sockets: u64,
    pub elsewhere: Counters,
    /// Event-only sockets that ended and wait for their close notice to
    /// place them (counted in the window it comes), now.
    pub awaiting_notice: u64,
    /// Close notices that could not be held for their events (the bound
    /// was reached) and were counted on their own.
    pub notices_unheld: u64,
    /// Close notices of sockets destroyed before the run's probes opened
    /// (no event saw them end or be destroyed, and none was lost): they
    /// count nothing, this window.
    pub notices_before_run: u64,
    /// Owners of sockets not known yet that could not be held (the bound
    /// was reached): those sockets show no owner from events, this window.
    pub owners_unkept: u64,
    /// Connects whose handshake could not be timed (the bound on connects
    /// under way was reached), this window.
    pub handshakes_untimed: u64,
}

fn reversed(tuple: &EventTuple) -> EventTuple {
    EventTuple {
        local: tuple.remote,
        local_port: tuple.remote_port,
        remote: tuple.local,
        remote_port: tuple.local_port,
    }
}

/// Whether a close notice's tuple is that of socket `known`: the same, or
/// what an abort leaves of it (no peer port, and no local address for a
/// socket not bound to one).
fn same_connection(known: &EventTuple, notice: &EventTuple) -> bool {
    known == notice
        || (notice.remote_port == 0
            && (known.local == notice.local || notice.local.is_unspecified())
            && known.local_port == notice.local_port
            && known.remote == notice.remote)
}

fn is_unspecified(tuple: &EventTuple) -> bool {
    tuple.local.is_unspecified() && tuple.remote.is_unspecified()
}

/// The state counters one state change adds, as the kernel counts them.
fn state_counts(old: TcpState, new: TcpState) -> Counters {
    let mut counts = Counters::default();
    if old == TcpState::Close && new == TcpState::SynSent {
        counts.bump(Counter::ActiveOpens, 1);
    }
    if new == TcpState::Close {
        if matches!(old, TcpState::SynSent | TcpState::SynRecv) {
            counts.bump(Counter::AttemptFails, 1);
        } else if old.counts_as_established() {
            counts.bump(Counter::EstabResets, 1);
        }
    }
    counts
}

/// The AttemptFails of an accepted socket's end from `old`, as the kernel
/// counts them, where the plain rule (a handshake state left for CLOSE is
/// one) does not hold; None where it does. `history` is the states seen
/// before this change.
/// - A system call's close (`in_softirq` false: the listener closed and
///   `tcp_disconnect` reset its children, or the application closed one
///   with unread data) is no tcp_done: none.
/// - A Fast Open child (born in SYN_RECV, never ESTABLISHED: its request
///   still pending) that a reset ends: `tcp_check_req` counts one for the
///   reset, and `tcp_done` another when it was still in SYN_RECV (one in
///   FIN_WAIT1, its application having closed it before the handshake's
///   ACK).
fn embryonic_close_fails(
    history: &StateHistory,
    old: TcpState,
    reset_received: bool,
    in_softirq: Option<bool>,
) -> Option<u64> {
    let accepted = old == TcpState::SynRecv || history.iter().any(|s| s == TcpState::SynRecv);
    let connected = history
        .iter()
        .any(|s| s == TcpState::SynSent || s == TcpState::Established);
    if !accepted || connected {
        return None;
    }
    match (old, in_softirq) {
        (TcpState::SynRecv, Some(false)) => Some(0),
        (TcpState::SynRecv, _) if reset_received => Some(2),
        (TcpState::FinWait1, Some(true) | None) if reset_received => Some(1),
        _ => None,
    }
}

/// One event's counts for the socket's window.
fn single(counter: Counter, amount: u64) -> Counters {
    let mut counts = Counters::default();
    counts.bump(counter, amount);
    counts
}

impl Marks {
    /// The tail, if no sample came after it was counted.
    fn live_tail(&self, last_poll: u64) -> Counters {
        if self.tail_after_poll == last_poll {
            self.tail
        } else {
            Counters::default()
        }
    }
}

/// The hooks the polling tracker calls.
impl EventAttribution {
    pub(super) fn new(covered: &[Counter], netns_for_unknown: u64) -> EventAttribution {
        let mut present = Counters::default();
        for counter in covered {
            present.mark_present(*counter);
        }
        EventAttribution {
            covered: present,
            netns_for_unknown,
            ..EventAttribution::default()
        }
    }

    pub(super) fn set_syn_retries(&mut self, retries: u32) {
        self.syn_retries = retries;
    }

    pub(super) fn set_syn_retransmits_told(&mut self, told: bool) {
        self.syn_retransmits_told = told;
    }

    pub(super) fn set_destructions_told(&mut self, told: bool) {
        self.destructions_told |= told;
    }

    pub(super) fn set_events_complete(&mut self, complete: bool) {
        self.events_complete = complete;
    }

    pub(super) fn set_sole_namespace(&mut self, sole: bool) {
        self.sole_namespace = sole;
    }

    pub(super) fn set_placed_by_notices(&mut self, watched: bool) {
        self.placed_by_notices = watched;
    }

    /// Whether an event-only socket is shown in the rows now: with notices
    /// read, only once something placed it in a sampled namespace.
    fn shown(&self, e: &EventOnly) -> bool {
        e.confirmed || !self.placed_by_notices
    }

    pub(super) fn stats(&self) -> &EventStats {
        &self.stats
    }

    /// Counts of this window still waiting for their socket's tuple.
    pub(super) fn unidentified(&self) -> Counters {
        self.pending.this_window()
    }

    /// Counts of earlier windows still waiting for their socket's tuple.
    pub(super) fn unidentified_earlier(&self) -> Counters {
        self.pending.earlier_windows()
    }

    /// Marks the counters the probes fill as known (zero or not).
    pub(super) fn mark_covered(&self, counters: &mut Counters) {
        for (counter, _) in self.covered.iter() {
            counters.mark_present(counter);
        }
    }

    /// Whether the peer's FIN reached socket `id` before its end, as far
    /// as its events and `notice` tell (see [`super::closes::peer_fin`]).
    pub(super) fn peer_fin(
        &self,
        id: &SocketId,
        notice: &SocketSample,
        last_polled: &SocketSample,
    ) -> super::closes::PeerFin {
        let marks = self.marks.get(id).copied().unwrap_or_default();
        super::closes::peer_fin(
            notice,
            Some(marks.history),
            marks.end_of_stream_read,
            Some(last_polled),
        )
    }

    pub(super) fn history_of(&self, id: &SocketId) -> StateHistory {
        self.marks.get(id).map(|m| m.history).unwrap_or_default()
    }

    /// Whether a receive call of the socket's read the end of its stream.
    pub(super) fn end_of_stream_read_by(&self, id: &SocketId) -> bool {
        self.marks.get(id).is_some_and(|m| m.end_of_stream_read)
    }

    /// The process the socket's system calls ran in, as events saw.
    pub(super) fn owner_of(&self, id: &SocketId) -> Option<u32> {
        self.marks.get(id).and_then(|m| m.owner)
    }

    pub(super) fn event_only_sockets(
        &self,
    ) -> impl Iterator<Item = (&Tracked, StateHistory, Option<u32>)> {
        self.event_only
            .iter()
            .filter(|(_, e)| self.shown(e))
            .map(|(n, e)| {
                let id = SocketId::EventOnly(*n);
                (&e.tracked, self.history_of(&id), self.owner_of(&id))
            })
    }

    /// A new window: what the rows showed is forgotten; a socket not shown
    /// yet keeps its counts for the window that places it.
    pub(super) fn reset_window(&mut self) {
        let placed_by_notices = self.placed_by_notices;
        for e in self.event_only.values_mut() {
            if e.confirmed || !placed_by_notices {
                e.tracked.window.clear();
                e.tracked.rtt.clear();
                e.tracked.life.new_window();
            }
        }
        self.pending.end_window();
        let awaiting_notice = self.stats.awaiting_notice;
        self.stats = EventStats {
            awaiting_notice,
            ..EventStats::default()
        };
    }

    /// Events may find this polled socket by its tuple.
    pub(super) fn remember(&mut self, id: SocketId, key: &crate::model::SocketKey) {
        self.by_tuple.insert(EventTuple::of_key(key), id);
    }

    /// A socket a poll sees for the first time: events may find it by its
    /// tuple from now on, and it takes over the counts of the event-only
    /// socket with its tuple, if there is one that has not ended.
    pub(super) fn first_seen(&mut self, id: SocketId, tracked: &mut Tracked, states: StateCounts) {
        if states == StateCounts::FromEvents && tracked.sample.is_mini_socket() {
            // A TIME_WAIT or request socket opens nothing of its own.
            tracked.origin = Origin::Other;
        }
        if tracked.sample.state == TcpState::NewSynRecv {
            // Its child's events are the child's, an event-only socket
            // until a poll sees it (its notice, or a poll, places it).
            return;
        }
        let tuple = EventTuple::of_key(&tracked.sample.key);
        if let Some(&SocketId::EventOnly(n)) = self.by_tuple.get(&tuple) {
            // Not the same socket when its events named another cookie.
            let cookie = tracked.sample.cookie;
            let adoptable = self.event_only.get(&n).is_some_and(|e| {
                !e.tracked.history_ended(&self.marks, n)
                    && e.cookie.is_none_or(|c| c == cookie || cookie == 0)
            });
            if adoptable && !tracked.sample.is_mini_socket() {
                let known = self.event_only.remove(&n).expect("present");
                if let Some(c) = known.cookie {
                    self.by_cookie.remove(&c);
                }
                self.adopt(known.tracked, SocketId::EventOnly(n), id, tracked);
            }
        }
        self.by_tuple.insert(tuple, id);
        if states == StateCounts::FromEvents {
            self.count_open_not_seen(tracked);
        }
    }

    /// A socket new to the polls (born in the window) whose open no event
    /// has counted by its first poll: its open's event went missing (the
    /// kernel counted it and never delivered it), or waits under its
    /// address for a tuple (a connect still in SYN_SENT), or comes with
    /// the next batch (a dump that began before it). The open counts now,
    /// and the event, if it comes, counts it no more.
    fn count_open_not_seen(&mut self, tracked: &mut Tracked) {
        let open = match tracked.origin {
            Origin::Active => OpenKind::Active,
            Origin::Passive => OpenKind::Passive,
            Origin::Baseline | Origin::Other | Origin::Successor => return,
        };
        tracked.life.open(open, false);
    }

    fn adopt(&mut self, known: Tracked, known_id: SocketId, id: SocketId, tracked: &mut Tracked) {
        let mut window = known.window;
        match &known.sample.tcp_info {
            // A last-moment sample was taken: count only what came after it.
            Some(_) => match difference(&cumulative(&tracked.sample), &cumulative(&known.sample)) {
                Ok(delta) => window.add(&delta),
                Err(_) => window.add(&cumulative(&tracked.sample).counters),
            },
            // The poll's first sample counts from the socket's creation.
            None => window.add(&tracked.window.counts()),
        }
        tracked.window = window;
        tracked.life.take_facts_of(known.life);
        if let Some(us) = known.rtt.handshake_us() {
            tracked.rtt.set_handshake(us);
        }
        if let Some(mut marks) = self.marks.remove(&known_id) {
            // The poll's sample covers what the tail counted.
            marks.tail.clear();
            self.marks.insert(id, marks);
        }
    }

    /// A socket's full life ended (it went on as a TIME_WAIT socket): the
    /// closed life takes its history and what events counted after its
    /// last sample.
    pub(super) fn life_ended(&mut self, id: SocketId, last_poll: u64, closed: &mut Closed) {
        if let Some(marks) = self.marks.remove(&id) {
            let tail = marks.live_tail(last_poll);
            closed.window.add(&tail);
            closed.events_tail = tail;
            closed.history = marks.history;
            closed.end_of_stream_read = marks.end_of_stream_read;
            closed.holder.pid = marks.owner;
        }
    }

    /// A socket the polls no longer see: events no longer lead to it.
    pub(super) fn vanished(&mut self, id: SocketId, last_poll: u64, closed: &mut Closed) {
        let tuple = EventTuple::of_key(&closed.sample.key);
        if self.by_tuple.get(&tuple) == Some(&id) {
            self.by_tuple.remove(&tuple);
        }
        self.life_ended(id, last_poll, closed);
    }

    /// A close notice of a socket no poll tracked, in precision mode: it
    /// joins the event-only socket it closes (found by cookie, or by tuple
    /// where events named no cookie), or waits for the next batch of
    /// events, which may bring that socket's destruction. False when it
    /// can be neither (the bound on held notices): count it on its own.
    pub(super) fn offer_notice(
        &mut self,
        notice: &SocketSample,
        ending: Ending,
        passive: bool,
        (poll, read_ms): (u64, Option<u64>),
    ) -> bool {
        match self.claimant(notice, false) {
            Some(Claim::Socket(n)) => {
                self.join_notice(n, notice, ending, passive);
                return true;
            }
            Some(Claim::Counted) => return true,
            None => {}
        }
        if self.held_notices.len() >= HELD_NOTICES_LIMIT {
            self.stats.notices_unheld += 1;
            return false;
        }
        self.held_notices.push(HeldNotice {
            notice: notice.clone(),
            ending,
            passive,
            poll,
            read_ms,
        });
        true
    }

    /// A polled socket's notice ended it before events saw it end (no
    /// CLOSE yet): its last events may come with the next batch.
    pub(super) fn noticed_before_events(&mut self, cookie: u64, noticed: NoticedEarly) {
        if cookie != 0 && self.noticed_before_events.len() < CLOSING_LIMIT {
            self.noticed_before_events.insert(cookie, noticed);
        }
    }

    /// Whether the life with `cookie` was ended by its notice before its
    /// last events came (until its destruction event, two polls at most).
    pub(super) fn awaits_late_events(&self, cookie: u64) -> bool {
        cookie != 0 && self.noticed_before_events.contains_key(&cookie)
    }

    /// What late events counted for sockets their notice ended already,
    /// by cookie, and the cookies of those whose bytes received hold the
    /// peer's FIN after all; the tracker corrects their closed lives.
    pub(super) fn take_counted_after_notice(
        &mut self,
        poll: u64,
    ) -> (FxHashMap<u64, Counters>, Vec<FinRevision>) {
        self.noticed_before_events
            .retain(|_, noticed| poll.saturating_sub(noticed.poll) <= 2);
        (
            std::mem::take(&mut self.counted_after_notice),
            std::mem::take(&mut self.fin_revisions),
        )
    }

    /// Counts no socket of this window takes.
    pub(super) fn count_unplaced(&mut self, counts: &Counters) {
        self.stats.unplaced.add(counts);
    }

    /// Offers the notices held since an earlier poll once more, now that
    /// another batch of events came; returns those no socket claims (a
    /// connection events missed: count them on their own).
    pub(super) fn retry_held_notices(&mut self, poll: u64) -> Vec<(SocketSample, Option<u64>)> {
        let held = std::mem::take(&mut self.held_notices);
        let mut unclaimed = Vec::new();
        for h in held {
            if h.poll == poll {
                self.held_notices.push(h);
                continue;
            }
            match self.claimant(&h.notice, true) {
                Some(Claim::Socket(n)) => self.join_notice(n, &h.notice, h.ending, h.passive),
                Some(Claim::Counted) => {}
                // No event saw its socket's state change or destruction,
                // and none was lost: it ended, and was destroyed, before
                // the probes opened (its notice was sent late, or read
                // after the first poll): nothing of it is in the run.
                None if self.destructions_told && self.events_complete => {
                    self.stats.notices_before_run += 1;
                }
                None => unclaimed.push((h.notice, h.read_ms)),
            }
        }
        unclaimed
    }

    /// The event-only socket a notice closes: the one with its cookie (and
    /// its tuple, whose peer port an abort cleared); else, on a `last_try`,
    /// the one with its tuple whose events named no cookie.
    fn claimant(&self, notice: &SocketSample, last_try: bool) -> Option<Claim> {
        let tuple = EventTuple::of_key(&notice.key);
        if self.settled_cookies.contains_key(&notice.cookie) {
            return Some(Claim::Counted);
        }
        if let Some(&n) = self.by_cookie.get(&notice.cookie) {
            let e = self.event_only.get(&n)?;
            let same = same_connection(&EventTuple::of_key(&e.tracked.sample.key), &tuple);
            return same.then_some(Claim::Socket(n));
        }
        // Where destruction events name their cookie, a notice (sent as
        // its socket is destroyed) that none named after a batch is of a
        // socket no event saw destroyed: a life before the run, say, which
        // another socket with its tuple (the next connect from its port,
        // a twin in another namespace) must not take for its own.
        if !last_try || self.destructions_told {
            return None;
        }
        // No event named this socket's cookie (a kernel without it, or
        // without the destruction tracepoint): the one socket with its
        // tuple that no notice claimed yet.
        let unnamed = |e: &&EventOnly| e.cookie.is_none() && !e.noticed;
        if tuple.remote_port != 0 {
            let Some(SocketId::EventOnly(n)) = self.by_tuple.get(&tuple).copied() else {
                return None;
            };
            return self
                .event_only
                .get(&n)
                .filter(unnamed)
                .map(|_| Claim::Socket(n));
        }
        // An aborted socket's tuple lost its peer port: found by the rest,
        // if only one matches.
        let mut matching = self.event_only.iter().filter(|(_, e)| {
            unnamed(e) && same_connection(&EventTuple::of_key(&e.tracked.sample.key), &tuple)
        });
        match (matching.next(), matching.next()) {
            (Some((n, _)), None) => Some(Claim::Socket(*n)),
            _ => None,
        }
    }

    /// The notice's final counters (bytes and segments, which events do
    /// not give) join socket `n`, and the notice, read in a sampled
    /// namespace, places it there.
    fn join_notice(&mut self, n: u64, notice: &SocketSample, ending: Ending, passive: bool) {
        let aborted = notice.key.remote_port == 0;
        let marks = self.marks.entry(SocketId::EventOnly(n)).or_default();
        // Its events saw it born of a listener that no poll listed yet
        // (the listener's notice may come later): the ending is read as
        // an accepted socket's (its bytes_acked has no SYN of its own).
        let born_of_listener = marks.history.iter().any(|s| s == TcpState::SynRecv)
            && !marks.history.iter().any(|s| s == TcpState::SynSent);
        let (ending, passive) = if born_of_listener && !passive {
            (Ending::of(notice, true, self.syn_retries), true)
        } else {
            (ending, passive)
        };
        if !aborted {
            // The notice's counters cover the retransmits events counted.
            marks.tail = Counters::default();
        }
        let marks_now = *marks;
        let Some(known) = self.event_only.get_mut(&n) else {
            return;
        };
        let tracked = &mut known.tracked;
        let last = tracked
            .sample
            .tcp_info
            .is_some()
            .then(|| cumulative(&tracked.sample));
        // `cumulative` of a sample in a state past the peer's FIN leaves
        // the FIN out already: a lifetime taken from it has none.
        let sample_drops_fin = tracked.sample.state.peer_fin_received();
        // Its close's events may come after its notice (those after the
        // dump's mark wait for the next poll): an unknown verdict is
        // marked, and read again when the socket settles.
        let fin = (ending == Ending::Orderly && !aborted).then(|| {
            let clues = FinClues::of(notice, None);
            NoticeFin {
                applied: clues.verdict(Some(marks_now.history), marks_now.end_of_stream_read),
                clues,
                in_lifetime: !sample_drops_fin,
            }
        });
        let mut delta = match last {
            // An abort cleared the counters: what was sampled stands, and
            // what came after (all of it, if nothing was) is not known.
            _ if aborted => {
                let mut unknown = Counters::default();
                super::closes::mark_cleared(&mut unknown, notice);
                unknown
            }
            // A last-moment sample was taken: only what came after it.
            Some(last) => difference(&cumulative(notice), &last)
                .unwrap_or_else(|_| cumulative(notice).counters),
            None => cumulative(notice).counters,
        };
        // The delta from a last-moment sample has the FIN either way.
        if let Some(fin) = &fin {
            super::closes::drop_peer_fin(&mut delta, fin.applied);
        }
        if passive && last.is_none() && !aborted {
            super::add_syn_ack(&mut delta);
        }
        // Its open's event went missing (the kernel counted events it
        // never delivered): the notice tells there was a connection, and
        // no poll saw it before this window, so it opened in it.
        let open = if passive {
            OpenKind::Passive
        } else {
            OpenKind::Active
        };
        tracked.life.open(open, false);
        // Its CLOSE event never came (the kernel counted it and never
        // delivered it): the notice's ending counts in its place.
        let told = ending.state_counts(Some(tracked.sample.state));
        tracked.life.end(&told, Told::Notice);
        tracked.window.add(&delta);
        // A connect that never left SYN_SENT, cleared by its failed
        // connect() and sampled by no one, sent one segment the namespace
        // counts in OutSegs: its SYN (tcp_connect's, data and all with Fast
        // Open); a SYN sent again is no OutSeg.
        let connect_only = marks_now.history.iter().any(|s| s == TcpState::SynSent)
            && marks_now
                .history
                .iter()
                .all(|s| matches!(s, TcpState::SynSent | TcpState::Close));
        if aborted && last.is_none() && connect_only && !passive {
            let mut window = tracked.window.counts();
            window.replace(Counter::OutSegs, 1, false);
            tracked.window = window.into();
        }
        // Likewise an accepted socket still in its handshake (a Fast Open
        // child its listener's close reset: inet_child_forget's
        // tcp_disconnect zeroes its counts): the SYN came in, its SYN-ACK
        // and each reset events saw it send went out. Marked `~`: data it
        // may have sent or taken in besides is not known.
        let child_in_handshake = marks_now.history.iter().any(|s| s == TcpState::SynRecv)
            && marks_now
                .history
                .iter()
                .all(|s| matches!(s, TcpState::Listen | TcpState::SynRecv | TcpState::Close));
        if aborted && last.is_none() && child_in_handshake && passive {
            let mut window = tracked.window.counts();
            let resets = window.value(Counter::OutRsts);
            window.replace(Counter::InSegs, window.value(Counter::InSegs).max(1), true);
            window.replace(
                Counter::OutSegs,
                window.value(Counter::OutSegs).max(1 + resets),
                true,
            );
            tracked.window = window.into();
        }
        if ending == Ending::NeverSent {
            tracked.life.retract_open();
        }
        if !aborted {
            tracked.sample.tcp_info = notice.tcp_info;
        }
        tracked.sample.key.netns = notice.key.netns;
        tracked.forget_diff();
        known.confirmed = true;
        known.noticed = true;
        known.counted_by_notice = !aborted;
        known.fin = fin;
        known.cookie = Some(notice.cookie);
        self.by_cookie.insert(notice.cookie, n);
    }

    /// Closes event-only sockets that ended or that polls keep missing;
    /// those placed in no sampled namespace are counted apart. With
    /// notices read, one that ended waits a few polls for its notice (and
    /// one noticed for its end), so that both its counters and its place
    /// come from the kernel.
    pub(super) fn settle(&mut self, poll: u64, elapsed_ms: u64, closed: &mut Vec<Closed>) {
        self.place_event_only();
        self.closing
            .retain(|_, (_, since)| poll.saturating_sub(*since) <= CLOSING_POLLS);
        self.destroyed_lately
            .retain(|_, (_, _, since)| poll.saturating_sub(*since) <= 1);
        self.settled_cookies
            .retain(|_, since| poll.saturating_sub(*since) <= NOTICE_GRACE_POLLS);
        self.pending_owners
            .retain(|_, (_, since)| poll.saturating_sub(*since) < EVENT_ONLY_GRACE_POLLS);
        let placed_by_notices = self.placed_by_notices;
        let destructions_told = self.destructions_told;
        let mut done = Vec::new();
        let mut held = 0usize;
        for (n, e) in self.event_only.iter_mut() {
            let ended = e.tracked.history_ended(&self.marks, *n);
            let finished = if !placed_by_notices {
                ended
            } else {
                if (ended || e.noticed) && e.closing_since.is_none() {
                    e.closing_since = Some(poll);
                }
                // Ended (a reset, a timeout) but not destroyed: its
                // application still holds it, and its notice comes when
                // it lets go; a socket another namespace's is destroyed
                // and settles as soon as ever.
                let held_open = ended && !e.noticed && !e.destroyed && destructions_told;
                held += usize::from(held_open);
                let grace = if held_open && held <= CLOSING_LIMIT {
                    CLOSING_POLLS
                } else {
                    NOTICE_GRACE_POLLS
                };
                (ended && e.noticed)
                    || e.closing_since
                        .is_some_and(|since| poll.saturating_sub(since) >= grace)
            };
            let unseen = e.closing_since.is_none()
                && poll.saturating_sub(e.since_poll) >= EVENT_ONLY_GRACE_POLLS;
            if finished || unseen {
                done.push(*n);
            }
        }
        for n in done {
            let id = SocketId::EventOnly(n);
            let known = self.event_only.remove(&n).expect("present");
            if let Some(c) = known.cookie {
                self.by_cookie.remove(&c);
            }
            let tracked = known.tracked;
            let tuple = EventTuple::of_key(&tracked.sample.key);
            if self.by_tuple.get(&tuple) == Some(&id) {
                self.by_tuple.remove(&tuple);
            }
            let mut ended = Closed {
                lifetime: cumulative(&tracked.sample).counters,
                window: tracked.window.counts(),
                rtt: tracked.rtt,
                sample: tracked.sample,
                unseen_ms: elapsed_ms,
                history: StateHistory::default(),
                end_of_stream_read: false,
                holder: Holder::unpolled(None),
                counted_from: if known.counted_by_notice {
                    CountedFrom::CloseNotice { polled: false }
                } else {
                    CountedFrom::Events
                },
                read_as_connect: None,
                events_tail: Counters::default(),
                life: tracked.life,
            };
            if let Some(fin) = known.fin {
                // Its window had the FIN dropped as the notice joined told;
                // its close's events, all in now (a first closer's read of
                // the end of stream, say), may tell otherwise.
                let marks = self.marks.get(&id).copied().unwrap_or_default();
                let last = fin
                    .clues
                    .verdict(Some(marks.history), marks.end_of_stream_read);
                super::closes::revise_peer_fin(&mut ended.window, fin.applied, last);
                if fin.in_lifetime {
                    super::closes::drop_peer_fin(&mut ended.lifetime, last);
                }
            }
            if known.counted_by_notice {
                // The notice's final counters cover every retransmit, those
                // whose events came after it (past the dump's mark) too.
                if let Some(marks) = self.marks.get_mut(&id) {
                    marks.tail.clear();
                }
            }
            self.life_ended(id, tracked.last_poll, &mut ended);
            if known.confirmed {
                closed.push(ended);
            } else {
                self.stats.elsewhere_sockets += 1;
                self.stats.elsewhere.add(&ended.window_counts());
            }
        }
        self.stats.awaiting_notice = self
            .event_only
            .values()
            .filter(|e| !self.shown(e) && e.closing_since.is_some())
            .count() as u64;
    }

    /// Confirms the event-only sockets that something places in a sampled
    /// namespace: a poll that saw the tuple (either way round: a loopback
    /// peer), or a placed peer's other end.
    fn place_event_only(&mut self) {
        if self.sole_namespace {
            for e in self.event_only.values_mut() {
                e.confirmed = true;
            }
        }
        if self.placed_by_notices {
            // Notices place sockets exactly; a tuple may be another
            // namespace's too.
            return;
        }
        for _ in 0..2 {
            let placed: Vec<u64> = self
                .event_only
                .iter()
                .filter(|(_, e)| !e.confirmed)
                .filter(|(n, e)| {
                    let tuple = EventTuple::of_key(&e.tracked.sample.key);
                    [tuple, reversed(&tuple)].iter().any(|t| {
                        self.by_tuple
                            .get(t)
                            .is_some_and(|other| self.places(other, **n))
                    })
                })
                .map(|(n, _)| *n)
                .collect();
            for n in placed {
                if let Some(e) = self.event_only.get_mut(&n) {
                    e.confirmed = true;
                }
            }
        }
    }

    /// Whether `other` (found by event-only socket `n`'s tuple) puts `n` in
    /// a sampled namespace.
    fn places(&self, other: &SocketId, n: u64) -> bool {
        match other {
            SocketId::EventOnly(m) if *m == n => false,
            SocketId::EventOnly(m) => self.event_only.get(m).is_some_and(|o| o.confirmed),
            _ => true,
        }
    }

    /// Takes in kernel events, in time order, that happened before the next
    /// snapshot's dump began.
    pub(super) fn apply(
        &mut self,
        events: &[Timed],
        sockets: &mut SocketTable,
        listeners: &Listeners,
        poll: u64,
        states: StateCounts,
        filter: &FilterSet,
    ) {
        let destined = destined_addresses(events);
        let mut ctx = Attribution {
            sockets,
            part: self,
            filter,
            poll,
            listeners,
            states,
            destined: &destined,
            at: 0,
        };
        for (at, timed) in events.iter().enumerate() {
            ctx.at = at;
            ctx.part.stats.events += 1;
            ctx.apply_event(&timed.event, timed.time_ns);
            if let Some(pid) = timed.pid {
                ctx.note_owner(timed.event.socket_address(), pid);
            }
        }
    }
}

impl Tracked {
    /// Whether events saw this event-only socket (number `n`) close.
    fn history_ended(&self, marks: &FxHashMap<SocketId, Marks>, n: u64) -> bool {
        marks
            .get(&SocketId::EventOnly(n))
            .is_some_and(|m| m.history.last() == Some(TcpState::Close))
    }
}

/// A state change as [`TraceEvent::StateChange`] tells it.
#[derive(Debug, Clone, Copy)]
struct StateChangeOf {
    old: TcpState,
    new: TcpState,
    in_softirq: Option<bool>,
}

/// One batch's attribution: the tracker's tables borrowed apart.
struct Attribution<'t, 'f> {
    sockets: &'t mut SocketTable,
    part: &'t mut EventAttribution,
    filter: &'f FilterSet,
    poll: u64,
    /// (namespace, address, port) of the listeners polled.
    listeners: &'t Listeners,
    states: StateCounts,
    /// The batch's destructions: address → (cookie, its index), in order.
    destined: &'t FxHashMap<u64, Vec<(u64, usize)>>,
    /// The index in the batch of the event being applied.
    at: usize,
}

/// Each address's destructions with a cookie in a batch, in order, with
/// their index: until the next one, the address's events are that
/// cookie's socket's. Twins (one tuple in two namespaces) are told apart
/// so from their first event of the batch, where their tuple leads to
/// either.
fn destined_addresses(events: &[Timed]) -> FxHashMap<u64, Vec<(u64, usize)>> {
    let mut destined: FxHashMap<u64, Vec<(u64, usize)>> = FxHashMap::default();
    for (at, timed) in events.iter().enumerate() {
        if let TraceEvent::Destroyed {
            sk,
            cookie: Some(cookie),
            ..
        } = timed.event
        {
            if sk != 0 {
                destined.entry(sk).or_default().push((cookie, at));
            }
        }
    }
    destined
}

impl Attribution<'_, '_> {
    fn apply_event(&mut self, event: &TraceEvent, time_ns: u64) {
        if let Some(cookie) = self.noticed_already(event.socket_address()) {
            self.after_notice(cookie, event);
            return;
        }
        match event {
            TraceEvent::StateChange {
                sk,
                tuple,
                old,
                new,
                in_softirq,
            } => {
                let handshake_us = self.time_handshake(*sk, (*old, *new), time_ns);
                self.state_change(*sk, tuple, (*old, *new), *in_softirq, handshake_us)
            }
            TraceEvent::SendReset { sk, tuple } => self.reset_sent(*sk, tuple.as_ref()),
            TraceEvent::ReceiveReset { sk, tuple, cookie } => {
                self.reset_received(*sk, tuple, *cookie)
            }
            TraceEvent::Retransmit { sk, tuple, syn } => self.retransmit(*sk, tuple, *syn),
            TraceEvent::SynAckRetransmit { listener_sk, tuple } => {
                self.synack_retransmit(*listener_sk, tuple)
            }
            TraceEvent::Sent { sk, tuple, bytes } => self.call(
                *sk,
                tuple.as_ref(),
                *bytes,
                Counter::MessagesSent,
                Counter::MessageBytesSent,
            ),
            TraceEvent::Received {
                sk,
                tuple,
                bytes: 0,
            } => self.end_of_stream_read(*sk, tuple.as_ref()),
            TraceEvent::Received { sk, tuple, bytes } => self.call(
                *sk,
                tuple.as_ref(),
                *bytes,
                Counter::MessagesReceived,
                Counter::MessageBytesReceived,
            ),
            TraceEvent::Drop { reason, sk } => self.dropped(reason, *sk),
            TraceEvent::Identity { sk, tuple, cookie } => self.identity(*sk, tuple, *cookie),
            TraceEvent::Destroyed { sk, tuple, cookie } => self.destroyed(*sk, tuple, *cookie),
            TraceEvent::DelayedAck { sk } => self.delayed_ack(*sk),
            TraceEvent::LastSample { sk, sample } => self.last_sample(*sk, sample),
            // UDP's events are the UDP tracker's (`crate::udp`).
            TraceEvent::UdpMessage { .. }
            | TraceEvent::UdpName { .. }
            | TraceEvent::UdpInode { .. }
            | TraceEvent::UdpQueueFail { .. }
            | TraceEvent::UdpDrop { .. }
            | TraceEvent::IcmpUnreachable { .. } => {}
        }
    }

    /// The cookie of the socket at address `sk` whose destruction comes
    /// later in this batch, when its notice ended it already.
    fn noticed_already(&self, sk: u64) -> Option<u64> {
        let cookie = self.destined_cookie(sk)?;
        self.part
            .noticed_before_events
            .contains_key(&cookie)
            .then_some(cookie)
    }

    /// An event of a socket its notice ended already: the notice counted
    /// its ending (its CLOSE was not seen) and its final counters; what
    /// only events tell (resets, calls, drops, delayed ACKs, SYNs sent
    /// again) joins its closed life, and its destruction frees the address.
    fn after_notice(&mut self, cookie: u64, event: &TraceEvent) {
        let counts = match event {
            TraceEvent::SendReset { .. } => single(Counter::OutRsts, 1),
            TraceEvent::ReceiveReset { .. } => single(Counter::InRsts, 1),
            TraceEvent::Retransmit { syn: true, .. } => single(Counter::TCPSynRetrans, 1),
            TraceEvent::Sent { bytes, .. } if *bytes > 0 => {
                let mut counts = single(Counter::MessagesSent, 1);
                counts.bump(Counter::MessageBytesSent, bytes.unsigned_abs());
                counts
            }
            TraceEvent::Received { bytes, .. } if *bytes > 0 => {
                let mut counts = single(Counter::MessagesReceived, 1);
                counts.bump(Counter::MessageBytesReceived, bytes.unsigned_abs());
                counts
            }
            TraceEvent::Drop { reason, .. } => {
                *self
                    .part
                    .stats
                    .drops_by_reason
                    .entry(reason.label())
                    .or_default() += 1;
                single(Counter::Drops, 1)
            }
            TraceEvent::DelayedAck { .. } => single(Counter::DelayedACKs, 1),
            // What tells whether the peer's FIN reached the full socket,
            // read again at its destruction.
            TraceEvent::StateChange { old, new, .. } => {
                if let Some(noticed) = self.part.noticed_before_events.get_mut(&cookie) {
                    if noticed.history.is_empty() {
                        noticed.history.push(*old);
                    }
                    noticed.history.push(*new);
                }
                return;
            }
            TraceEvent::Received { bytes: 0, .. } => {
                if let Some(noticed) = self.part.noticed_before_events.get_mut(&cookie) {
                    noticed.end_of_stream_read = true;
                }
                return;
            }
            TraceEvent::Destroyed { sk, .. } => {
                if let Some(noticed) = self.part.noticed_before_events.remove(&cookie) {
                    let last = noticed
                        .clues
                        .verdict(Some(noticed.history), noticed.end_of_stream_read);
                    if last != noticed.fin {
                        self.part.fin_revisions.push(FinRevision {
                            cookie,
                            counted_with: noticed.fin_counted.then_some(noticed.fin),
                            last,
                        });
                    }
                }
                self.part.by_sk.remove(sk);
                self.part.closing.remove(sk);
                self.part.pending.remove(sk);
                self.part.pending_owners.remove(sk);
                return;
            }
            _ => return,
        };
        self.part
            .counted_after_notice
            .entry(cookie)
            .or_default()
            .add(&counts);
    }

    /// A reset this host sent; one from no socket (sk 0: a reply to a
    /// segment for no socket) is placed nowhere.
    fn reset_sent(&mut self, sk: u64, tuple: Option<&EventTuple>) {
        let counts = single(Counter::OutRsts, 1);
        if sk == 0 {
            self.part.stats.unplaced.add(&counts);
        } else if let Some(tracked) = self.destroyed_here(sk, tuple) {
            tracked.window.add(&counts);
        } else {
            self.credit(sk, tuple, Some(TcpState::Unknown), counts, false);
        }
    }

    fn reset_received(&mut self, sk: u64, tuple: &EventTuple, cookie: Option<u64>) {
        if self.names_other_socket(sk, Some(tuple), cookie) {
            return;
        }
        let counts = single(Counter::InRsts, 1);
        self.credit(sk, Some(tuple), Some(TcpState::Unknown), counts, false);
        self.note_cookie(sk, Some(tuple), cookie);
        self.mark(sk, tuple, |m| m.reset_received = true);
    }

    fn retransmit(&mut self, sk: u64, tuple: &EventTuple, syn: bool) {
        let counts = single(Counter::RetransSegs, 1);
        let state = if syn {
            TcpState::SynSent
        } else {
            TcpState::Established
        };
        self.credit(sk, Some(tuple), Some(state), counts, true);
        if syn {
            // A connect's SYN sent again: TCPSynRetrans, which no
            // poll gives.
            let counts = single(Counter::TCPSynRetrans, 1);
            self.credit(sk, Some(tuple), Some(state), counts, false);
            self.mark(sk, tuple, |m| m.syn_retransmits += 1);
        }
    }

    /// A receive call that returned 0: the peer's FIN was read.
    fn end_of_stream_read(&mut self, sk: u64, tuple: Option<&EventTuple>) {
        if let Some(id) = self.locate(sk, tuple) {
            self.part.marks.entry(id).or_default().end_of_stream_read = true;
        }
    }

    fn dropped(&mut self, reason: &DropReason, sk: u64) {
        let placed = sk != 0 && self.locate(sk, None).is_some();
        if placed {
            self.credit(sk, None, None, single(Counter::Drops, 1), false);
        } else if reason.is_tcp() {
            self.part.stats.unplaced.bump(Counter::Drops, 1);
        }
        if placed || reason.is_tcp() {
            *self
                .part
                .stats
                .drops_by_reason
                .entry(reason.label())
                .or_default() += 1;
        }
    }

    /// A socket's address named with its tuple (and cookie, where told).
    fn identity(&mut self, sk: u64, tuple: &EventTuple, cookie: Option<u64>) {
        if self.names_other_socket(sk, Some(tuple), cookie) {
            return;
        }
        if self.locate(sk, Some(tuple)).is_none() && sk != 0 {
            // Named, and no socket of ours or wanted: what waited
            // under its address belongs nowhere here.
            if let Some(waiting) = self.part.pending.remove(&sk) {
                self.part.stats.elsewhere_sockets += 1;
                self.part.stats.elsewhere.add(&waiting);
            }
            self.part.by_sk.insert(sk, Place::Ignored);
            return;
        }
        self.note_cookie(sk, Some(tuple), cookie);
    }

    fn destroyed(&mut self, sk: u64, tuple: &EventTuple, cookie: Option<u64>) {
        let rejected = matches!(self.part.by_sk.get(&sk), Some(Place::Rejected));
        if let (true, Some(cookie)) = (rejected, cookie) {
            if self.part.settled_cookies.len() < CLOSING_LIMIT {
                self.part.settled_cookies.insert(cookie, self.poll);
            }
        }
        let id = match self.part.closing.remove(&sk) {
            Some((id, _)) => Some(id),
            None => self.locate(sk, Some(tuple)),
        };
        self.part.destructions_told |= cookie.is_some();
        if let Some(SocketId::EventOnly(n)) = id {
            // The kernel sends its close notice as it destroys it, which
            // an application holding the closed socket may do polls after
            // its CLOSE: the wait for the notice counts from now.
            let noticed_from = self.poll + 1;
            if let Some(e) = self.part.event_only.get_mut(&n).filter(|e| !e.noticed) {
                if let Some(since) = &mut e.closing_since {
                    *since = (*since).max(noticed_from);
                }
            }
        }
        if let (Some(SocketId::EventOnly(n)), Some(cookie)) = (id, cookie) {
            if let Some(e) = self.part.event_only.get_mut(&n) {
                e.destroyed = true;
                self.name_event_only(n, cookie);
            } else if self.part.settled_cookies.len() < CLOSING_LIMIT {
                self.part.settled_cookies.insert(cookie, self.poll);
            }
        }
        // A polled socket's tuple is free for the next socket too (a
        // connect from the same bound port): its notice finds it by cookie.
        if let Some(id @ SocketId::Cookie(_)) = id {
            if let Some(known) = self.entry(id).map(|t| EventTuple::of_key(&t.sample.key)) {
                if self.part.by_tuple.get(&known) == Some(&id) {
                    self.part.by_tuple.remove(&known);
                }
            }
        }
        if let Some(id) = id {
            if self.part.destroyed_lately.len() < CLOSING_LIMIT {
                let since = self.poll;
                self.part.destroyed_lately.insert(sk, (id, *tuple, since));
            }
        }
        // The address is free for the next socket.
        self.part.by_sk.remove(&sk);
        self.part.pending.remove(&sk);
        self.part.pending_owners.remove(&sk);
    }

    /// The socket destroyed last at `sk` with this tuple, while no new
    /// life took the address.
    fn destroyed_here(&mut self, sk: u64, tuple: Option<&EventTuple>) -> Option<&mut Tracked> {
        if self.part.by_sk.contains_key(&sk) {
            return None;
        }
        let (id, destroyed_tuple, _) = *self.part.destroyed_lately.get(&sk)?;
        if tuple.is_some_and(|t| *t != destroyed_tuple) {
            return None;
        }
        self.entry(id)
    }

    fn delayed_ack(&mut self, sk: u64) {
        // Every socket of the host has its timer: only a socket an
        // event placed at this address counts it, looked up
        // without the tuple fallbacks of `locate` (which tidy the
        // tables as they go: these events are too many, and most
        // are other namespaces').
        let placed = match self.part.by_sk.get(&sk) {
            Some(Place::Socket(id, tuple)) if sk != 0 => Some((*id, *tuple)),
            _ => None,
        };
        let Some((id, tuple)) = placed else { return };
        // Taken over by a poll since: the same tuple's socket.
        let id = match self.entry(id) {
            Some(_) => id,
            None => match self.part.by_tuple.get(&tuple) {
                Some(polled @ SocketId::Cookie(_)) => *polled,
                _ => return,
            },
        };
        if let Some(tracked) = self.entry(id) {
            tracked.window.add(&single(Counter::DelayedACKs, 1));
        }
    }

    /// One send or receive call that moved `bytes` (nothing, or an error,
    /// when not positive).
    fn call(
        &mut self,
        sk: u64,
        tuple: Option<&EventTuple>,
        bytes: i64,
        calls: Counter,
        moved: Counter,
    ) {
        if bytes <= 0 {
            return;
        }
        let mut counts = Counters::default();
        counts.bump(calls, 1);
        counts.bump(moved, bytes as u64);
        let create = tuple.map(|_| TcpState::Established);
        self.credit(sk, tuple, create, counts, false);
    }

    /// Whether an event's cookie says its socket is not the polled one
    /// with its tuple (another namespace's socket with the same tuple):
    /// then that address is not followed.
    fn names_other_socket(
        &mut self,
        sk: u64,
        tuple: Option<&EventTuple>,
        cookie: Option<u64>,
    ) -> bool {
        let (Some(cookie), Some(tuple)) = (cookie, tuple) else {
            return false;
        };
        let polled = match self.part.by_tuple.get(tuple) {
            Some(SocketId::Cookie(c)) => Some(*c),
            _ => None,
        };
        let other = polled.is_some_and(|c| c != 0 && c != cookie);
        if other && sk != 0 {
            self.part.by_sk.insert(sk, Place::Ignored);
            self.part.pending.remove(&sk);
        }
        other
    }

    /// Notes the process an event of the socket at `sk` ran in: on its
    /// socket if known, else under the address until it is.
    fn note_owner(&mut self, sk: u64, pid: u32) {
        if sk == 0
            || matches!(
                self.part.by_sk.get(&sk),
                Some(Place::Ignored | Place::Rejected)
            )
        {
            return;
        }
        if let Some(id) = self.locate(sk, None) {
            self.part.marks.entry(id).or_default().owner = Some(pid);
            return;
        }
        let owners = &mut self.part.pending_owners;
        if owners.len() >= PENDING_OWNERS_LIMIT && !owners.contains_key(&sk) {
            self.part.stats.owners_unkept += 1;
            return;
        }
        owners.insert(sk, (pid, self.poll));
    }

    /// Notes what an event told of the socket it is about, if known.
    fn mark(&mut self, sk: u64, tuple: &EventTuple, note: impl FnOnce(&mut Marks)) {
        if let Some(id) = self.locate(sk, Some(tuple)) {
            note(self.part.marks.entry(id).or_default());
        }
    }

    /// Records the cookie an event gave for the event-only socket it names.
    fn note_cookie(&mut self, sk: u64, tuple: Option<&EventTuple>, cookie: Option<u64>) {
        let Some(cookie) = cookie else {
            return;
        };
        if let Some(SocketId::EventOnly(n)) = self.locate(sk, tuple) {
            self.name_event_only(n, cookie);
        }
    }

    fn name_event_only(&mut self, n: u64, cookie: u64) {
        if let Some(e) = self.part.event_only.get_mut(&n) {
            e.cookie = Some(cookie);
            self.part.by_cookie.insert(cookie, n);
        }
    }

    fn entry(&mut self, id: SocketId) -> Option<&mut Tracked> {
        match id {
            SocketId::EventOnly(n) => self.part.event_only.get_mut(&n).map(|e| &mut e.tracked),
            polled => self.sockets.get_mut(&polled),
        }
    }

    /// The id of the socket an event is about, learning its address on the
    /// way: by address, else by tuple (by ports alone for the `::` tuples
    /// of IPv6 kprobes). None when unknown or unwanted.
    fn locate(&mut self, sk: u64, tuple: Option<&EventTuple>) -> Option<SocketId> {
        let learned = match self.part.by_sk.get(&sk) {
            Some(Place::Ignored | Place::Rejected) if sk != 0 => return None,
            Some(Place::Socket(id, t)) if sk != 0 => Some((*id, *t)),
            _ => None,
        };
        // A socket whose cookie is not the one this address's destruction,
        // later in the batch, names is not the one at the address now
        // (the address's previous socket, its own destruction lost).
        let learned = learned.filter(|(id, _)| !self.destined_elsewhere(sk, *id));
        if learned.is_none() && sk != 0 {
            if let Some(id) = self.closing_socket(sk, tuple) {
                if !self.destined_elsewhere(sk, id) {
                    return Some(id);
                }
                self.part.closing.remove(&sk);
            }
            if let Some(id) = self.destined_socket(sk) {
                return Some(id);
            }
        }
        if let Some((id, known)) = learned {
            let renamed = tuple.is_some_and(|t| t.is_complete() && *t != known);
            if renamed {
                // Another tuple at this address: the socket that was there
                // is gone (a kernel without destruction events).
                self.part.by_sk.remove(&sk);
            } else if self.entry(id).is_some() {
                return Some(id);
            }
            // Taken over by a poll: found again by its tuple.
        }
        let tuple = tuple
            .copied()
            .filter(EventTuple::is_complete)
            .or(learned.map(|(_, t)| t))?;
        let id = match self.part.by_tuple.get(&tuple) {
            Some(id) => Some(*id),
            None if is_unspecified(&tuple) => self.by_ports(&tuple),
            None => None,
        }?;
        if self.destined_elsewhere(sk, id) {
            return None;
        }
        if let SocketId::EventOnly(n) = id {
            let (owner, destroyed) = self
                .part
                .event_only
                .get(&n)
                .map_or((0, false), |e| (e.sk, e.destroyed));
            if destroyed || (sk != 0 && owner != 0 && owner != sk) {
                // Another socket with the same tuple (another namespace's,
                // or the next at its address).
                return None;
            }
        }
        let Some(tracked) = self.entry(id) else {
            self.part.by_tuple.remove(&tuple);
            return None;
        };
        let key = EventTuple::of_key(&tracked.sample.key);
        if sk != 0 {
            self.learn(sk, Place::Socket(id, key), id);
        }
        Some(id)
    }

    /// Whether socket `id` has a cookie other than the one the
    /// destruction of address `sk`, later in this batch, names.
    fn destined_elsewhere(&self, sk: u64, id: SocketId) -> bool {
        let Some(destined) = self.destined_cookie(sk) else {
            return false;
        };
        let cookie = match id {
            SocketId::Cookie(c) => Some(c),
            SocketId::EventOnly(n) => self.part.event_only.get(&n).and_then(|e| e.cookie),
            SocketId::Proc(_) => None,
        };
        cookie.is_some_and(|c| c != destined)
    }

    /// The cookie of the next destruction of address `sk` in this batch
    /// (from the event being applied on).
    fn destined_cookie(&self, sk: u64) -> Option<u64> {
        if sk == 0 {
            return None;
        }
        let ahead = self.destined.get(&sk)?;
        ahead
            .iter()
            .find(|(_, destroyed_at)| *destroyed_at >= self.at)
            .map(|(cookie, _)| *cookie)
    }

    /// The polled full socket whose destruction, later in this batch,
    /// names address `sk` with its cookie: the address is that socket's
    /// until then, whatever socket its tuple leads to.
    fn destined_socket(&mut self, sk: u64) -> Option<SocketId> {
        let id = SocketId::Cookie(self.destined_cookie(sk)?);
        let tracked = self.entry(id)?;
        // A request socket polled before its child was born shares the
        // cookie here, not the child's events: those are the child's.
        if tracked.sample.is_mini_socket() {
            return None;
        }
        let key = EventTuple::of_key(&tracked.sample.key);
        self.learn(sk, Place::Socket(id, key), id);
        Some(id)
    }

    /// The socket at `sk` between its CLOSE and its destruction: events
    /// after its CLOSE (an abort's reset, sent after tcp_disconnect set
    /// CLOSE) are its own, even when another namespace's socket with the
    /// same tuple took over the tuple's place meanwhile. Not when the
    /// event names another tuple: a kernel without destruction events
    /// gave the address to the next socket.
    fn closing_socket(&mut self, sk: u64, tuple: Option<&EventTuple>) -> Option<SocketId> {
        let (id, _) = *self.part.closing.get(&sk)?;
        let Some(tracked) = self.entry(id) else {
            self.part.closing.remove(&sk);
            return None;
        };
        let known = EventTuple::of_key(&tracked.sample.key);
        let same = tuple.is_none_or(|t| !t.is_complete() || same_connection(&known, t));
        if !same {
            self.part.closing.remove(&sk);
            return None;
        }
        Some(id)
    }

    fn by_ports(&self, tuple: &EventTuple) -> Option<SocketId> {
        self.part
            .by_tuple
            .iter()
            .find(|(t, _)| {
                t.local_port == tuple.local_port
                    && t.remote_port == tuple.remote_port
                    && t.local.is_ipv6()
            })
            .map(|(_, id)| *id)
    }

    /// Records where `sk` leads and hands over what waited for it.
    fn learn(&mut self, sk: u64, place: Place, id: SocketId) {
        self.part.by_sk.insert(sk, place);
        if let Some((pid, _)) = self.part.pending_owners.remove(&sk) {
            let marks = self.part.marks.entry(id).or_default();
            marks.owner = marks.owner.or(Some(pid));
        }
        let Some(mut waiting) = self.part.pending.remove(&sk) else {
            return;
        };
        let open = OpenKind::in_counts(&waiting);
        let ending = [Counter::AttemptFails, Counter::EstabResets]
            .into_iter()
            .any(|counter| waiting.is_present(counter));
        let mut ended = Counters::default();
        for counter in Counter::STATE_EVENTS {
            if let Some(value) = waiting.get(counter) {
                ended.set(counter, value, waiting.is_approx(counter));
            }
            waiting.remove(counter);
        }
        let Some(tracked) = self.entry(id) else {
            return;
        };
        tracked.window.add(&waiting);
        if ending {
            // A CLOSE that came before its tuple was known.
            tracked.life.end(&ended, Told::Event);
        }
        let Some(open) = open else {
            return;
        };
        // Once: a poll that saw the socket first counted its open (a
        // connect still in SYN_SENT, or a socket listed by a dump that
        // began before its open's event).
        if tracked.life.opened() {
            return;
        }
        tracked.life.open(open, false);
        // The open waited with the socket's first states.
        let marks = self.part.marks.entry(id).or_default();
        match open {
            OpenKind::Active => marks.history.push(TcpState::SynSent),
            OpenKind::Passive => {
                marks.history.push(TcpState::Listen);
                marks.history.push(TcpState::SynRecv);
            }
        }
    }

    /// A socket known from events only, unless the filters reject it.
    fn create(&mut self, sk: u64, tuple: &EventTuple, state: TcpState) -> Option<SocketId> {
        if !tuple.is_complete() {
            return None;
        }
        let key = tuple.key(self.part.netns_for_unknown);
        if !self.filter.matches(&key) {
            if sk != 0 {
                self.part.by_sk.insert(sk, Place::Rejected);
                self.part.pending.remove(&sk);
            }
            return None;
        }
        let n = self.part.next_id;
        self.part.next_id += 1;
        let sample = SocketSample::bare(key, 0, state);
        let tracked = Tracked::new(sample, Origin::Other, Counters::default(), self.poll);
        self.part.event_only.insert(
            n,
            EventOnly {
                tracked,
                sk,
                since_poll: self.poll,
                confirmed: false,
                cookie: None,
                noticed: false,
                counted_by_notice: false,
                destroyed: false,
                closing_since: None,
                fin: None,
            },
        );
        let id = SocketId::EventOnly(n);
        self.part.by_tuple.insert(*tuple, id);
        if sk != 0 {
            self.learn(sk, Place::Socket(id, *tuple), id);
        }
        Some(id)
    }

    /// Adds `counts` to the socket's window (or its tail); creates an
    /// event-only socket in `create_state` when none is known; holds the
    /// counts under `sk` when the tuple is not known yet.
    fn credit(
        &mut self,
        sk: u64,
        tuple: Option<&EventTuple>,
        create_state: Option<TcpState>,
        counts: Counters,
        to_tail: bool,
    ) {
        if sk != 0
            && matches!(
                self.part.by_sk.get(&sk),
                Some(Place::Ignored | Place::Rejected)
            )
        {
            return;
        }
        let id = match self.locate(sk, tuple) {
            Some(id) => Some(id),
            None => match (tuple, create_state) {
                (Some(t), Some(state)) if t.is_complete() => self.create(sk, t, state),
                _ => None,
            },
        };
        let found = id.and_then(|id| Some((id, self.entry(id)?.last_poll)));
        match found {
            Some((id, last_poll)) if to_tail => {
                let marks = self.part.marks.entry(id).or_default();
                if marks.tail_after_poll != last_poll {
                    marks.tail.clear();
                    marks.tail_after_poll = last_poll;
                }
                marks.tail.add(&counts);
            }
            Some((id, _)) => {
                if let Some(tracked) = self.entry(id) {
                    tracked.window.add(&counts);
                }
            }
            None if sk != 0 && tuple.is_none_or(|t| !t.is_complete()) => self.wait(sk, counts),
            None => {}
        }
    }

    fn wait(&mut self, sk: u64, counts: Counters) {
        if counts.is_all_zero() {
            return;
        }
        if !self.part.pending.add(sk, &counts, PENDING_LIMIT) {
            self.part.stats.unplaced.add(&counts);
        }
    }

    /// A connect's SYN is sent (CLOSE→SYN_SENT): its time is kept under
    /// its address; its SYN_SENT→ESTABLISHED gives the handshake's µs
    /// (SYN retransmits included, as the application waited them).
    fn time_handshake(
        &mut self,
        sk: u64,
        (old, new): (TcpState, TcpState),
        time_ns: u64,
    ) -> Option<u32> {
        let started = &mut self.part.connects_started;
        if sk == 0 {
            return None;
        }
        if old == TcpState::Close && new == TcpState::SynSent {
            if started.len() >= CONNECTS_TIMED_LIMIT && !started.contains_key(&sk) {
                started.retain(|_, at| time_ns.saturating_sub(*at) < CONNECT_TIMING_STALE_NS);
            }
            if started.len() < CONNECTS_TIMED_LIMIT || started.contains_key(&sk) {
                started.insert(sk, time_ns);
            } else {
                self.part.stats.handshakes_untimed += 1;
            }
            return None;
        }
        if old != TcpState::SynSent {
            return None;
        }
        let at = started.remove(&sk)?;
        let us = time_ns.saturating_sub(at) / 1_000;
        (new == TcpState::Established).then(|| u32::try_from(us).unwrap_or(u32::MAX))
    }

    fn state_change(
        &mut self,
        sk: u64,
        tuple: &EventTuple,
        (old, new): (TcpState, TcpState),
        in_softirq: Option<bool>,
        handshake_us: Option<u32>,
    ) {
        // A new life at the address, or the old one's last change.
        if new != TcpState::Close {
            self.part.destroyed_lately.remove(&sk);
        }
        let exact = self.states == StateCounts::FromEvents;
        let births = old == TcpState::Listen && new == TcpState::SynRecv;
        let mut counts = if exact {
            state_counts(old, new)
        } else {
            Counters::default()
        };
        if exact && births {
            // A child socket is born: the kernel's PassiveOpen. Its peer
            // address is not set yet, so this waits under its address.
            counts.bump(Counter::PassiveOpens, 1);
        }
        let listener = old == TcpState::Listen && !births || new == TcpState::Listen;
        if old == TcpState::Listen && new == TcpState::Close {
            self.note_stopped_listener(tuple);
        }
        if listener || !tuple.is_complete() {
            // A listener's own changes open nothing; a connect's first
            // change waits for the port to be chosen.
            if sk != 0 {
                self.wait(sk, counts);
            }
        } else {
            let id = self
                .locate(sk, Some(tuple))
                .or_else(|| self.create(sk, tuple, new));
            if let Some(id) = id {
                let change = StateChangeOf {
                    old,
                    new,
                    in_softirq,
                };
                self.socket_state_change(id, tuple, change, counts);
                if let Some(us) = handshake_us {
                    if let Some(tracked) = self.entry(id) {
                        tracked.rtt.set_handshake(us);
                    }
                }
            }
        }
        if new == TcpState::Close && sk != 0 {
            // Its destruction event, next, may have lost the peer port.
            if let Some(Place::Socket(id, _)) = self.part.by_sk.get(&sk) {
                if self.part.closing.len() < CLOSING_LIMIT {
                    self.part.closing.insert(sk, (*id, self.poll));
                }
            }
            // The address may be reused by the next socket.
            self.part.by_sk.remove(&sk);
            self.part.pending.remove(&sk);
        }
    }

    fn note_stopped_listener(&mut self, tuple: &EventTuple) {
        let stopped = &mut self.part.stopped_listeners;
        let poll = self.poll;
        stopped.retain(|_, at| poll.saturating_sub(*at) <= 1);
        if stopped.len() < STOPPED_LISTENERS_LIMIT {
            stopped.insert((unmap(tuple.local), tuple.local_port), poll);
        }
    }

    /// Whether a listener on `tuple`'s local endpoint closed in this poll or
    /// the one before.
    fn listener_stopped_for(&self, tuple: &EventTuple) -> bool {
        let stopped = &self.part.stopped_listeners;
        let port = tuple.local_port;
        [unmap(tuple.local), UNSPECIFIED_V4, UNSPECIFIED_V6]
            .iter()
            .any(|local| stopped.contains_key(&(*local, port)))
    }

    /// A state change of a known socket: its counts, history and place.
    fn socket_state_change(
        &mut self,
        id: SocketId,
        tuple: &EventTuple,
        change: StateChangeOf,
        mut counts: Counters,
    ) {
        let StateChangeOf {
            old,
            new,
            in_softirq,
        } = change;
        let exact = self.states == StateCounts::FromEvents;
        let Some(tracked) = self.entry(id) else {
            return;
        };
        let baseline = tracked.origin == Origin::Baseline;
        let opened = tracked.life.opened();
        if tracked.sample.cookie == 0 && tracked.sample.tcp_info.is_none() {
            // Event-only: the state is what the events say.
            tracked.sample.state = new;
            tracked.forget_diff();
        }
        // A connect the application closed unanswered, retries left, is
        // no failed attempt to the kernel (only tcp_done counts one);
        // unless syn retransmits are told, every retry counts as spent.
        let syn_retries = if self.part.syn_retransmits_told {
            self.part.syn_retries
        } else {
            0
        };
        let stopped_listener = !self.part.marks.get(&id).is_some_and(|m| m.reset_received)
            && self.listener_stopped_for(tuple);
        let marks = self.part.marks.entry(id).or_default();
        // An open after its CLOSE is the socket's next life (a connect
        // after `tcp_disconnect`); else one a poll that listed the socket
        // before its open's event came counted already (its life's entry
        // counts it once).
        let mut open = OpenKind::in_counts(&counts);
        let next_life = open.is_some() && marks.history.last() == Some(TcpState::Close);
        for counter in [Counter::ActiveOpens, Counter::PassiveOpens] {
            counts.remove(counter);
        }
        // Where the probe cannot see a child's birth (a kprobe on
        // tcp_set_state), its handshake's end is its open.
        let completes = old == TcpState::SynRecv && new == TcpState::Established;
        if exact && completes && !opened && !baseline {
            open = Some(OpenKind::Passive);
        }
        let unanswered =
            old == TcpState::SynSent && new == TcpState::Close && !marks.reset_received;
        if exact && unanswered {
            match in_softirq {
                // No reset refused it. The kernel's own doing (a timer that
                // gave up, an ICMP error) is tcp_done, an AttemptFail; a
                // system call's (the application closed it) is none.
                Some(by_kernel) => {
                    counts.replace(Counter::AttemptFails, u64::from(by_kernel), false)
                }
                // Where the record does not say: the kernel gave up if every
                // retry was spent. `~`: a socket's TCP_SYNCNT or an ICMP
                // error may say otherwise.
                None => {
                    let gave_up = marks.syn_retransmits >= syn_retries;
                    counts.replace(Counter::AttemptFails, u64::from(gave_up), true);
                }
            }
        }
        if exact && new == TcpState::Close {
            // A child its listener's close reset came from a system call.
            let in_softirq = if old == TcpState::SynRecv && stopped_listener {
                Some(false)
            } else {
                in_softirq
            };
            let fails =
                embryonic_close_fails(&marks.history, old, marks.reset_received, in_softirq);
            if let Some(fails) = fails {
                counts.replace(Counter::AttemptFails, fails, false);
            }
        }
        let accepted =
            old == TcpState::SynRecv || marks.history.iter().any(|s| s == TcpState::SynRecv);
        if marks.history.is_empty() {
            marks.history.push(old);
        }
        marks.history.push(new);
        if let Some(tracked) = self.entry(id) {
            if next_life {
                tracked.life.begin_again();
            }
            if let Some(open) = open {
                tracked.life.open(open, false);
            }
            if exact && new == TcpState::Close {
                // Once: a notice read before this event (a ring behind
                // the notices) may have counted the ending in its place.
                tracked.life.end(&counts, Told::Event);
            } else {
                tracked.window.add(&counts);
            }
        }
        // Accepted by a listener polled here: it lives here too.
        let (local, port) = (unmap(tuple.local), tuple.local_port);
        let child_of_listener = accepted
            && !self.part.placed_by_notices
            && self
                .listeners
                .keys()
                .any(|(_, addr, p)| *p == port && (*addr == local || addr.is_unspecified()));
        if let (true, SocketId::EventOnly(n)) = (child_of_listener, id) {
            if let Some(known) = self.part.event_only.get_mut(&n) {
                known.confirmed = true;
            }
        }
    }

    fn synack_retransmit(&mut self, listener_sk: u64, tuple: &EventTuple) {
        let counts = single(Counter::TCPSynRetrans, 1);
        let mut found = self.locate(listener_sk, None);
        for local in [tuple.local, UNSPECIFIED_V4, UNSPECIFIED_V6] {
            for remote in [UNSPECIFIED_V4, UNSPECIFIED_V6] {
                if found.is_some() {
                    break;
                }
                let key = EventTuple {
                    local,
                    local_port: tuple.local_port,
                    remote,
                    remote_port: 0,
                };
                found = self.part.by_tuple.get(&key).copied();
            }
        }
        match found.and_then(|id| self.entry(id)) {
            Some(listener) => listener.window.add(&counts),
            None => self.part.stats.unplaced.add(&counts),
        }
    }

    fn last_sample(&mut self, sk: u64, sample: &SocketSample) {
        // A lookup for a socket already gone can answer with its listener.
        if sample.state == TcpState::Listen {
            return;
        }
        let tuple = EventTuple::of_key(&sample.key);
        let Some(id) = self.locate(sk, Some(&tuple)) else {
            return;
        };
        // Found in the namespace: it lives there.
        if let SocketId::EventOnly(n) = id {
            if let Some(known) = self.part.event_only.get_mut(&n) {
                known.confirmed = true;
            }
        }
        if sample.tcp_info.is_none() {
            // Already TIME_WAIT: nothing more to count.
            return;
        }
        let states = self.states;
        let passive = super::is_listener_endpoint(self.listeners, &sample.key);
        let Some(tracked) = self.entry(id) else {
            return;
        };
        let mut sample = sample.clone();
        // The socket stays in the namespace it was tracked in.
        sample.key.netns = tracked.sample.key.netns;
        if tracked.sample.tcp_info.is_none() {
            // Known from events only: its whole life so far counts.
            let mut life = cumulative(&sample).counters;
            if passive {
                super::add_syn_ack(&mut life);
            }
            tracked.window.add(&life);
            tracked.sample = sample;
            tracked.forget_diff();
        } else if tracked.sample.cookie == sample.cookie {
            let last_poll = tracked.last_poll;
            super::update(tracked, &sample, last_poll, 0, states);
        } else {
            return;
        }
        // The sample covers what the tail counted.
        if let Some(marks) = self.part.marks.get_mut(&id) {
            marks.tail.clear();
        }
        self.part.stats.last_samples += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::super::Tracker;
    use super::*;
    use crate::model::event::{DropReason, Probe};
    use crate::model::tcp_info::TcpInfo;
    use crate::model::{Snapshot, SocketSource};

    const ANY: FilterSet = FilterSet {
        filters: Vec::new(),
        index: None,
    };

    fn tuple(l: &str, lp: u16, r: &str, rp: u16) -> EventTuple {
        EventTuple {
            local: l.parse().unwrap(),
            local_port: lp,
            remote: r.parse().unwrap(),
            remote_port: rp,
        }
    }

    fn at(time_ns: u64, event: TraceEvent) -> Timed {
        Timed {
            time_ns,
            probe: Probe::Tracepoint,
            event,
            pid: None,
        }
    }

    /// A retransmit event of socket `sk` at `time_ns` (`syn`: its SYN).
    fn retransmit_of(sk: u64, tuple: EventTuple, syn: bool, time_ns: u64) -> Timed {
        at(time_ns, TraceEvent::Retransmit { sk, tuple, syn })
    }

    fn change(sk: u64, t: EventTuple, old: TcpState, new: TcpState) -> TraceEvent {
        TraceEvent::StateChange {
            sk,
            tuple: t,
            old,
            new,
            in_softirq: None,
        }
    }

    fn info(bytes_sent: u64, total_retrans: u32) -> TcpInfo {
        let mut raw = vec![0u8; 232];
        raw[0] = 1;
        raw[100..104].copy_from_slice(&total_retrans.to_ne_bytes());
        // segs_out counts the retransmitted segments too.
        raw[136..140].copy_from_slice(&total_retrans.to_ne_bytes());
        raw[200..208].copy_from_slice(&bytes_sent.to_ne_bytes());
        raw[120..128].copy_from_slice(&bytes_sent.to_ne_bytes());
        // The peer's window: a SYN-ACK came.
        raw[228..232].copy_from_slice(&65535u32.to_ne_bytes());
        TcpInfo::from_bytes(&raw).unwrap()
    }

    fn sample(cookie: u64, t: EventTuple, state: TcpState, i: Option<TcpInfo>) -> SocketSample {
        let mut s = SocketSample::bare(t.key(0), cookie, state);
        s.tcp_info = i;
        s
    }

    fn snap(ms: u64, sockets: Vec<SocketSample>) -> Snapshot {
        Snapshot::new(ms, SocketSource::SockDiag, sockets)
    }

    /// The listener the test connections' server ends are accepted from.
    fn listener() -> SocketSample {
        sample(
            1,
            tuple("10.0.0.2", 80, "0.0.0.0", 0),
            TcpState::Listen,
            None,
        )
    }

    fn tracker() -> Tracker {
        let mut t = Tracker::new();
        t.enable_events(
            StateCounts::FromEvents,
            &[Counter::OutRsts, Counter::InRsts, Counter::MessagesSent],
            0,
        );
        t
    }

    fn totals(t: &Tracker) -> Counters {
        let mut c = Counters::default();
        for row in t.rows() {
            c.add(&row.counters);
        }
        c
    }

    /// The events of one loopback connection that opens and closes
    /// between two polls, client port `port`.
    fn short_connection(port: u16, base_sk: u64) -> Vec<Timed> {
        use TcpState::*;
        let client = tuple("10.0.0.1", port, "10.0.0.2", 80);
        let server = tuple("10.0.0.2", 80, "10.0.0.1", port);
        let no_port = tuple("10.0.0.1", 0, "10.0.0.2", 80);
        // A child is born with its listener's wildcard peer address.
        let newborn = tuple("10.0.0.2", 80, "0.0.0.0", port);
        let (c, s) = (base_sk, base_sk + 1);
        [
            change(c, no_port, Close, SynSent),
            change(s, newborn, Listen, SynRecv),
            change(c, client, SynSent, Established),
            change(s, server, SynRecv, Established),
            change(c, client, Established, FinWait1),
            change(s, server, Established, CloseWait),
            change(c, client, FinWait1, FinWait2),
            change(s, server, CloseWait, LastAck),
            change(s, server, LastAck, Close),
            change(c, client, FinWait2, Close),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, e)| at(i as u64, e))
        .collect()
    }

    /// A connection aborted by its client (SO_LINGER 0), server socket
    /// `base_sk + 1`: both ends' events to their destruction, with cookies
    /// `cookie` (client) and `cookie + 1` (server); without them, as a
    /// kernel with no destruction tracepoint tells it.
    fn aborted_connection(port: u16, base_sk: u64, cookie: Option<u64>) -> Vec<Timed> {
        use TcpState::*;
        let client = tuple("10.0.0.1", port, "10.0.0.2", 80);
        let server = tuple("10.0.0.2", 80, "10.0.0.1", port);
        let no_port = tuple("10.0.0.1", 0, "10.0.0.2", 80);
        let cleared = tuple("10.0.0.1", port, "10.0.0.2", 0);
        let newborn = tuple("10.0.0.2", 80, "0.0.0.0", port);
        let (c, s) = (base_sk, base_sk + 1);
        [
            change(c, no_port, Close, SynSent),
            change(s, newborn, Listen, SynRecv),
            change(c, client, SynSent, Established),
            change(s, server, SynRecv, Established),
            change(c, client, Established, Close),
            TraceEvent::SendReset {
                sk: c,
                tuple: Some(client),
            },
            TraceEvent::Destroyed {
                sk: c,
                tuple: cleared,
                cookie,
            },
            TraceEvent::ReceiveReset {
                sk: s,
                tuple: server,
                cookie: cookie.map(|c| c + 1),
            },
            change(s, server, Established, Close),
            TraceEvent::Destroyed {
                sk: s,
                tuple: server,
                cookie: cookie.map(|c| c + 1),
            },
        ]
        .into_iter()
        .filter(|e| cookie.is_some() || !matches!(e, TraceEvent::Destroyed { .. }))
        .enumerate()
        .map(|(i, e)| at(i as u64, e))
        .collect()
    }

    /// A snapshot whose close notices are read, with these notices.
    fn noticed(ms: u64, notices: Vec<SocketSample>) -> Snapshot {
        let mut s = snap(ms, vec![]);
        s.closes_watched = true;
        s.closed = notices;
        s
    }

    /// Our aborted connection's close notices (cookies 100, 101).
    fn aborted_notices() -> Vec<SocketSample> {
        let mut client = sample(
            100,
            tuple("10.0.0.1", 40000, "10.0.0.2", 0),
            TcpState::Close,
            None,
        );
        client.tcp_info = Some(info(0, 0));
        let mut server = sample(
            101,
            tuple("10.0.0.2", 80, "10.0.0.1", 40000),
            TcpState::Close,
            None,
        );
        server.tcp_info = Some(info(500, 0));
        vec![client, server]
    }

    #[test]
    fn notices_place_event_only_sockets_and_leave_another_namespaces_out() {
        let mut t = tracker();
        t.observe(&noticed(0, vec![]), &ANY);
        // Ours (cookies 100, 101) and another namespace's with the very
        // same tuples (cookies 200, 201), at other kernel addresses.
        t.apply_events(&aborted_connection(40000, 0x1000, Some(100)), &ANY);
        t.apply_events(&aborted_connection(40000, 0x2000, Some(200)), &ANY);
        t.observe(&noticed(1000, aborted_notices()), &ANY);
        let c = totals(&t);
        assert_eq!(c.get(Counter::ActiveOpens), Some(1), "{c:?}");
        assert_eq!(c.get(Counter::PassiveOpens), Some(1));
        assert_eq!(c.get(Counter::OutRsts), Some(1));
        assert_eq!(c.get(Counter::InRsts), Some(1));
        assert_eq!(c.get(Counter::EstabResets), Some(2));
        // The other namespace's pair waits for a notice that never comes,
        // then is left out.
        t.apply_events(&[], &ANY);
        t.observe(&noticed(2000, vec![]), &ANY);
        t.apply_events(&[], &ANY);
        t.observe(&noticed(3000, vec![]), &ANY);
        let stats = t.event_stats().unwrap();
        assert_eq!(stats.elsewhere_sockets, 2, "{stats:?}");
        assert_eq!(stats.elsewhere.get(Counter::OutRsts), Some(1));
        assert_eq!(totals(&t).get(Counter::PassiveOpens), Some(1));
    }

    /// Socket (cookie 9) `client` in `state`, its SYN and FIN
    /// acknowledged (an orderly close) and `received` bytes received.
    fn orderly_closer(client: EventTuple, state: TcpState, received: u64) -> SocketSample {
        let mut raw = vec![0u8; 232];
        raw[0] = state as u8;
        raw[228..232].copy_from_slice(&65535u32.to_ne_bytes());
        raw[120..128].copy_from_slice(&2u64.to_ne_bytes());
        raw[136..140].copy_from_slice(&3u32.to_ne_bytes());
        raw[140..144].copy_from_slice(&3u32.to_ne_bytes());
        raw[128..136].copy_from_slice(&received.to_ne_bytes());
        sample(9, client, state, TcpInfo::from_bytes(&raw))
    }

    #[test]
    fn a_late_notice_keeps_the_peers_fin_out_when_the_end_of_stream_was_read() {
        use TcpState::*;
        // shutdown(SHUT_WR), the peer's FIN read as the end of stream,
        // then close(): the full socket took the FIN, which its notice's
        // bytes_received counts, though its states are a first closer's.
        let client = tuple("10.0.0.1", 40000, "10.0.0.2", 80);
        let with_received = |state, received| orderly_closer(client, state, received);
        let listing = |ms: u64, socket: SocketSample| {
            let mut s = noticed(ms, vec![]);
            s.sockets = vec![socket];
            s
        };
        let mut t = tracker();
        t.observe(&listing(0, with_received(Established, 100)), &ANY);
        t.apply_events(
            &[
                at(1, change(0x10, client, Established, FinWait1)),
                at(2, change(0x10, client, FinWait1, FinWait2)),
            ],
            &ANY,
        );
        t.observe(&listing(1000, with_received(FinWait2, 100)), &ANY);
        let eof = TraceEvent::Received {
            sk: 0x10,
            tuple: None,
            bytes: 0,
        };
        t.apply_events(
            &[at(3, change(0x10, client, FinWait2, Close)), at(4, eof)],
            &ANY,
        );
        // Gone from the dump (CLOSE), its notice still to come.
        t.observe(&noticed(2000, vec![]), &ANY);
        t.apply_events(&[], &ANY);
        t.observe(&noticed(3000, vec![with_received(Close, 101)]), &ANY);
        assert_eq!(totals(&t).get(Counter::BytesReceived), Some(0));
    }

    #[test]
    fn a_notice_that_comes_before_its_sockets_closing_events_waits_for_them_to_tell_the_fin() {
        use TcpState::*;
        let client = tuple("10.0.0.1", 40000, "10.0.0.2", 80);
        let destroyed = TraceEvent::Destroyed {
            sk: 0x10,
            tuple: client,
            cookie: Some(9),
        };
        // Known from events only; its notice is read before the events of
        // its close: a first closer (its FIN_WAIT2 timewait successor took
        // the peer's FIN: 100 bytes, all data), then a passive closer
        // (101: the FIN counted).
        for (closing, received) in [([FinWait1, FinWait2], 100), ([CloseWait, LastAck], 101)] {
            let mut t = tracker();
            t.set_sole_namespace(true);
            t.set_destructions_told(true);
            t.observe(&noticed(0, vec![]), &ANY);
            // Data it received named its cookie (tcp_rcv_space_adjust).
            let identity = TraceEvent::Identity {
                sk: 0x10,
                tuple: client,
                cookie: Some(9),
            };
            t.apply_events(
                &[
                    at(1, change(0x10, client, Close, SynSent)),
                    at(2, change(0x10, client, SynSent, Established)),
                    at(3, identity),
                ],
                &ANY,
            );
            let notice = orderly_closer(client, Close, received);
            t.observe(&noticed(1000, vec![notice]), &ANY);
            t.apply_events(
                &[
                    at(4, change(0x10, client, Established, closing[0])),
                    at(5, change(0x10, client, closing[0], closing[1])),
                    at(6, change(0x10, client, closing[1], Close)),
                    at(7, destroyed.clone()),
                ],
                &ANY,
            );
            t.observe(&noticed(2000, vec![]), &ANY);
            let c = totals(&t);
            assert_eq!(c.get(Counter::BytesReceived), Some(100), "{closing:?}");
            assert!(!c.is_approx(Counter::BytesReceived), "{closing:?}");
            assert_eq!(c.get(Counter::ActiveOpens), Some(1), "{closing:?}");
        }
    }

    #[test]
    fn a_reset_a_socket_sends_after_its_destruction_is_its_own() {
        use TcpState::*;
        // TCP_USER_TIMEOUT ended the orphan in FIN_WAIT1; data came, the
        // kernel closed and destroyed it, then answered from its address.
        let server = tuple("10.0.0.2", 8080, "10.0.0.1", 40000);
        let mut t = tracker();
        let mut first = noticed(0, vec![]);
        first.sockets = vec![sample(9, server, FinWait1, TcpInfo::from_bytes(&[]))];
        t.observe(&first, &ANY);
        let events = [
            change(0x10, server, FinWait1, Close),
            TraceEvent::Destroyed {
                sk: 0x10,
                tuple: server,
                cookie: Some(9),
            },
            TraceEvent::SendReset {
                sk: 0x10,
                tuple: Some(server),
            },
        ];
        let events: Vec<Timed> = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| at(i as u64, e))
            .collect();
        t.apply_events(&events, &ANY);
        t.observe(
            &noticed(
                1000,
                vec![sample(9, server, Close, TcpInfo::from_bytes(&[]))],
            ),
            &ANY,
        );
        t.apply_events(&[], &ANY);
        t.observe(&noticed(2000, vec![]), &ANY);
        assert_eq!(totals(&t).get(Counter::OutRsts), Some(1));
        assert_eq!(
            t.event_stats().map(|s| s.unplaced.value(Counter::OutRsts)),
            Some(0)
        );
    }

    #[test]
    fn a_reset_from_an_address_a_new_socket_took_is_not_the_destroyed_ones() {
        use TcpState::*;
        let old = tuple("10.0.0.2", 8080, "10.0.0.1", 40000);
        let new = tuple("10.0.0.2", 8080, "10.0.0.1", 40001);
        let mut t = tracker();
        let mut first = noticed(0, vec![]);
        first.sockets = vec![sample(9, old, FinWait1, TcpInfo::from_bytes(&[]))];
        t.observe(&first, &ANY);
        let events = [
            change(0x10, old, FinWait1, Close),
            TraceEvent::Destroyed {
                sk: 0x10,
                tuple: old,
                cookie: Some(9),
            },
            TraceEvent::SendReset {
                sk: 0x10,
                tuple: Some(new),
            },
        ];
        let events: Vec<Timed> = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| at(i as u64, e))
            .collect();
        t.apply_events(&events, &ANY);
        t.observe(
            &noticed(1000, vec![sample(9, old, Close, TcpInfo::from_bytes(&[]))]),
            &ANY,
        );
        let on_old: u64 = t
            .rows()
            .filter(|r| r.sample.key.remote_port == 40000)
            .filter_map(|r| r.counters.get(Counter::OutRsts))
            .sum();
        assert_eq!(on_old, 0);
    }

    #[test]
    fn a_connect_on_the_tuple_of_a_destroyed_polled_socket_is_a_socket_of_its_own() {
        use TcpState::*;
        // The polled socket closes and is freed; the next connect from the
        // same bound port (at the same kernel address) is refused, and
        // both notices come with the next poll.
        let client = tuple("10.0.0.1", 40000, "10.0.0.2", 80);
        let with = |cookie: u64, state: TcpState, acked: u64, segs: u32| {
            let mut raw = vec![0u8; 232];
            raw[0] = state as u8;
            raw[120..128].copy_from_slice(&acked.to_ne_bytes());
            raw[136..140].copy_from_slice(&segs.to_ne_bytes());
            raw[140..144].copy_from_slice(&segs.to_ne_bytes());
            sample(cookie, client, state, TcpInfo::from_bytes(&raw))
        };
        let mut t = tracker();
        let mut first = noticed(0, vec![]);
        first.sockets = vec![with(9, FinWait1, 2, 3)];
        t.observe(&first, &ANY);
        let destroyed = |cookie| TraceEvent::Destroyed {
            sk: 0x10,
            tuple: client,
            cookie: Some(cookie),
        };
        let refused = TraceEvent::StateChange {
            sk: 0x10,
            tuple: client,
            old: SynSent,
            new: Close,
            in_softirq: Some(true),
        };
        let reset = TraceEvent::ReceiveReset {
            sk: 0x10,
            tuple: client,
            cookie: Some(12),
        };
        let events = [
            change(0x10, client, FinWait1, FinWait2),
            change(0x10, client, FinWait2, Close),
            destroyed(9),
            change(0x10, client, Close, SynSent),
            reset,
            refused,
            destroyed(12),
        ];
        let events: Vec<Timed> = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| at(i as u64, e))
            .collect();
        t.apply_events(&events, &ANY);
        let notices = vec![with(9, Close, 2, 3), with(12, Close, 0, 1)];
        t.observe(&noticed(1000, notices), &ANY);
        t.apply_events(&[], &ANY);
        t.observe(&noticed(2000, vec![]), &ANY);
        let c = totals(&t);
        assert_eq!(c.get(Counter::ActiveOpens), Some(1), "{c:?}");
        assert_eq!(c.get(Counter::AttemptFails), Some(1), "{c:?}");
        assert_eq!(c.get(Counter::InRsts), Some(1), "{c:?}");
    }

    #[test]
    fn a_child_known_from_events_ends_orderly_though_no_poll_saw_its_listener() {
        use TcpState::*;
        // Accepted, closed by the peer first, then by us; its listener
        // lived and died between polls, its notice not read yet: the
        // child's events tell it was accepted.
        let server = tuple("10.0.0.2", 80, "10.0.0.1", 40000);
        let newborn = tuple("10.0.0.2", 80, "0.0.0.0", 40000);
        let events = [
            change(0x20, newborn, Listen, SynRecv),
            change(0x20, server, SynRecv, Established),
            change(0x20, server, Established, CloseWait),
            change(0x20, server, CloseWait, LastAck),
            change(0x20, server, LastAck, Close),
            TraceEvent::Destroyed {
                sk: 0x20,
                tuple: server,
                cookie: Some(50),
            },
        ];
        let events: Vec<Timed> = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| at(i as u64, e))
            .collect();
        // Its FIN acknowledged (no SYN of its own in bytes_acked), the
        // peer's FIN received.
        let mut raw = vec![0u8; 232];
        raw[0] = Close as u8;
        raw[120..128].copy_from_slice(&1u64.to_ne_bytes());
        raw[128..136].copy_from_slice(&1u64.to_ne_bytes());
        raw[136..140].copy_from_slice(&2u32.to_ne_bytes());
        raw[140..144].copy_from_slice(&3u32.to_ne_bytes());
        let notice = sample(50, server, Close, TcpInfo::from_bytes(&raw));
        let mut t = tracker();
        t.observe(&noticed(0, vec![]), &ANY);
        t.apply_events(&events, &ANY);
        t.observe(&noticed(1000, vec![notice]), &ANY);
        let c = totals(&t);
        assert_eq!(c.get(Counter::PassiveOpens), Some(1), "{c:?}");
        assert_eq!(c.get(Counter::BytesReceived), Some(0), "{c:?}");
    }

    #[test]
    fn an_aborted_event_only_sockets_bytes_are_marked_approximate() {
        // No poll saw the client, and its abort's notice has its counters
        // cleared: what it sent and received is not known.
        let mut t = tracker();
        t.observe(&noticed(0, vec![]), &ANY);
        t.apply_events(&aborted_connection(40000, 0x1000, Some(100)), &ANY);
        t.observe(&noticed(1000, aborted_notices()), &ANY);
        let client = t
            .rows()
            .find(|r| r.sample.key.local_port == 40000)
            .expect("the client's row");
        assert!(
            client.counters.is_approx(Counter::BytesReceived),
            "{client:?}"
        );
        assert!(client.counters.is_approx(Counter::BytesSent));
        assert!(!client.counters.is_approx(Counter::EstabResets));
        assert_eq!(client.counters.get(Counter::EstabResets), Some(1));
    }

    #[test]
    fn a_reset_after_its_close_stays_with_its_socket_when_another_namespace_reuses_the_tuple() {
        // The other namespace's client picks the same port while ours is
        // up (ephemeral ports are hashed without the namespace), and ours
        // sends its abort's reset after its CLOSE (tcp_disconnect's order).
        let mut t = tracker();
        t.observe(&noticed(0, vec![]), &ANY);
        let ours = aborted_connection(40000, 0x1000, Some(100));
        let theirs = aborted_connection(40000, 0x2000, Some(200));
        let mut events: Vec<Timed> = ours[..4].to_vec();
        events.extend_from_slice(&theirs[..4]);
        events.extend_from_slice(&ours[4..]);
        events.extend_from_slice(&theirs[4..]);
        t.apply_events(&events, &ANY);
        t.observe(&noticed(1000, aborted_notices()), &ANY);
        let c = totals(&t);
        assert_eq!(c.get(Counter::ActiveOpens), Some(1), "{c:?}");
        assert_eq!(c.get(Counter::OutRsts), Some(1), "{c:?}");
        assert_eq!(c.get(Counter::InRsts), Some(1), "{c:?}");
        t.apply_events(&[], &ANY);
        t.observe(&noticed(2000, vec![]), &ANY);
        t.apply_events(&[], &ANY);
        t.observe(&noticed(3000, vec![]), &ANY);
        let stats = t.event_stats().unwrap();
        assert_eq!(stats.elsewhere_sockets, 2, "{stats:?}");
        assert_eq!(stats.elsewhere.get(Counter::OutRsts), Some(1), "{stats:?}");
    }

    #[test]
    fn a_polled_request_socket_leaves_its_childs_events_and_notice_together() {
        let mut t = tracker();
        t.observe(&noticed(0, vec![]), &ANY);
        // A poll lists the server end as a request socket, with the cookie
        // its child will have.
        let server = tuple("10.0.0.2", 80, "10.0.0.1", 40000);
        let mut with_request = noticed(500, vec![]);
        with_request.sockets = vec![sample(101, server, TcpState::NewSynRecv, None)];
        t.observe(&with_request, &ANY);
        t.apply_events(&aborted_connection(40000, 0x1000, Some(100)), &ANY);
        t.observe(&noticed(1000, aborted_notices()), &ANY);
        t.apply_events(&[], &ANY);
        t.observe(&noticed(2000, vec![]), &ANY);
        let c = totals(&t);
        assert_eq!(c.get(Counter::PassiveOpens), Some(1), "{c:?}");
        assert_eq!(c.get(Counter::ActiveOpens), Some(1), "{c:?}");
        assert_eq!(c.get(Counter::InRsts), Some(1), "{c:?}");
        assert_eq!(c.get(Counter::EstabResets), Some(2), "{c:?}");
        assert_eq!(c.get(Counter::BytesSent), Some(500), "{c:?}");
        assert_eq!(t.event_stats().unwrap().elsewhere_sockets, 0);
    }

    /// Our aborted connection's totals, events and notices taken in, but
    /// the events `lost` picks (counted by the kernel, never delivered).
    fn aborted_totals_losing(lost: impl Fn(&TraceEvent) -> bool) -> Counters {
        let mut t = tracker();
        t.observe(&noticed(0, vec![]), &ANY);
        let events: Vec<Timed> = aborted_connection(40000, 0x1000, Some(100))
            .into_iter()
            .filter(|e| !lost(&e.event))
            .collect();
        t.apply_events(&events, &ANY);
        t.observe(&noticed(1000, aborted_notices()), &ANY);
        t.apply_events(&[], &ANY);
        t.observe(&noticed(2000, vec![]), &ANY);
        totals(&t)
    }

    #[test]
    fn a_notice_counts_the_open_whose_event_never_came() {
        // The client's first state change and the child's birth.
        for lose_opens in [true, false] {
            let c = aborted_totals_losing(|e| {
                lose_opens
                    && matches!(
                        e,
                        TraceEvent::StateChange {
                            old: TcpState::Close | TcpState::Listen,
                            ..
                        }
                    )
            });
            assert_eq!(c.get(Counter::ActiveOpens), Some(1), "{c:?}");
            assert_eq!(c.get(Counter::PassiveOpens), Some(1), "{c:?}");
        }
    }

    /// Both ends of a connection, as a poll lists them.
    fn polled_pair(port: u16, state: TcpState) -> Vec<SocketSample> {
        let client = tuple("10.0.0.1", port, "10.0.0.2", 80);
        let server = tuple("10.0.0.2", 80, "10.0.0.1", port);
        vec![
            listener(),
            sample(50, client, state, Some(info(0, 0))),
            sample(51, server, TcpState::Established, Some(info(0, 0))),
        ]
    }

    #[test]
    fn a_poll_counts_the_opens_no_event_counted_once() {
        use TcpState::*;
        let client = tuple("10.0.0.1", 40000, "10.0.0.2", 80);
        let server = tuple("10.0.0.2", 80, "10.0.0.1", 40000);
        let no_port = tuple("10.0.0.1", 0, "10.0.0.2", 80);
        let newborn = tuple("10.0.0.2", 80, "0.0.0.0", 40000);
        let opens = |t: &Tracker| {
            let c = totals(t);
            (
                c.value(Counter::ActiveOpens),
                c.value(Counter::PassiveOpens),
            )
        };
        // Their open events never came (counted, undelivered).
        let mut t = tracker();
        t.observe(&snap(0, vec![listener()]), &ANY);
        t.observe(&snap(1000, polled_pair(40000, Established)), &ANY);
        assert_eq!(opens(&t), (1, 1));
        // The connect still in SYN_SENT (its first change waits for its
        // port), and a dump that began before the child's birth: their
        // events come after the poll.
        let mut t = tracker();
        t.observe(&snap(0, vec![listener()]), &ANY);
        t.apply_events(&[at(1, change(0x10, no_port, Close, SynSent))], &ANY);
        t.observe(&snap(1000, polled_pair(40000, SynSent)), &ANY);
        assert_eq!(opens(&t), (1, 1));
        let later = [
            change(0x11, newborn, Listen, SynRecv),
            change(0x10, client, SynSent, Established),
            change(0x11, server, SynRecv, Established),
        ];
        let later: Vec<Timed> = later.into_iter().map(|e| at(2, e)).collect();
        t.apply_events(&later, &ANY);
        t.observe(&snap(2000, polled_pair(40000, Established)), &ANY);
        assert_eq!(opens(&t), (1, 1));
    }

    /// Each row's handshake (µs), by local port.
    fn handshakes(t: &Tracker) -> Vec<(u16, Option<u32>)> {
        let mut rows: Vec<_> = t
            .rows()
            .map(|r| (r.sample.key.local_port, r.rtt.handshake_us()))
            .collect();
        rows.sort();
        rows
    }

    #[test]
    fn a_connects_handshake_is_timed_from_its_syn_to_established_in_its_window() {
        use TcpState::*;
        let client = tuple("10.0.0.1", 40000, "10.0.0.2", 80);
        let server = tuple("10.0.0.2", 80, "10.0.0.1", 40000);
        let no_port = tuple("10.0.0.1", 0, "10.0.0.2", 80);
        let newborn = tuple("10.0.0.2", 80, "0.0.0.0", 40000);
        let ms = 1_000_000;
        // Polled in SYN_SENT in between: the handshake ends in the next
        // window, timed from the SYN the window before.
        let mut t = tracker();
        t.observe(&snap(0, vec![listener()]), &ANY);
        t.apply_events(&[at(3 * ms, change(0x10, no_port, Close, SynSent))], &ANY);
        t.observe(&snap(1000, polled_pair(40000, SynSent)), &ANY);
        assert_eq!(handshakes(&t), [(80, None), (80, None), (40000, None)]);
        let later = [
            at(23 * ms + 400_000, change(0x11, newborn, Listen, SynRecv)),
            at(
                23 * ms + 500_000,
                change(0x10, client, SynSent, Established),
            ),
            at(
                23 * ms + 600_000,
                change(0x11, server, SynRecv, Established),
            ),
        ];
        t.apply_events(&later, &ANY);
        t.observe(&snap(2000, polled_pair(40000, Established)), &ANY);
        // The client's 20.5 ms; the accepted end and the listener time
        // none (a child's birth is its handshake's end).
        assert_eq!(
            handshakes(&t),
            [(80, None), (80, None), (40000, Some(20_500))]
        );
        t.reset_window();
        t.observe(&snap(3000, polled_pair(40000, Established)), &ANY);
        assert_eq!(handshakes(&t), [(80, None), (80, None), (40000, None)]);

        // Between two polls, whole life included: its closed row has it.
        let mut t = tracker();
        t.observe(&snap(0, vec![listener()]), &ANY);
        let life: Vec<Timed> = short_connection(40001, 0x20)
            .into_iter()
            .map(|e| at(e.time_ns * 7 * ms, e.event))
            .collect();
        t.apply_events(&life, &ANY);
        t.observe(&snap(1000, vec![listener()]), &ANY);
        let client_row = handshakes(&t).into_iter().find(|(port, _)| *port == 40001);
        assert_eq!(client_row, Some((40001, Some(14_000))));

        // A connect refused or given up times nothing, and leaves nothing.
        let mut t = tracker();
        t.observe(&snap(0, vec![listener()]), &ANY);
        let refused = [
            at(ms, change(0x30, no_port, Close, SynSent)),
            at(
                2 * ms,
                change(
                    0x30,
                    tuple("10.0.0.1", 40002, "10.0.0.2", 80),
                    SynSent,
                    Close,
                ),
            ),
        ];
        t.apply_events(&refused, &ANY);
        t.observe(&snap(1000, vec![listener()]), &ANY);
        assert!(handshakes(&t).iter().all(|(_, h)| h.is_none()));
        assert!(t.events.as_ref().unwrap().connects_started.is_empty());
    }

    #[test]
    fn an_open_event_with_its_whole_tuple_after_the_poll_that_counted_it_counts_nothing() {
        use TcpState::*;
        let client = tuple("10.0.0.1", 40000, "10.0.0.2", 80);
        let server = tuple("10.0.0.2", 80, "10.0.0.1", 40000);
        let opens = |t: &Tracker| {
            let c = totals(t);
            (
                c.value(Counter::ActiveOpens),
                c.value(Counter::PassiveOpens),
            )
        };
        // A dump that listed both ends before the ring gave their opens'
        // events, which name the whole tuple: a client that bound its
        // port before connect(), a child born with its peer's address.
        let mut t = tracker();
        t.observe(&snap(0, vec![listener()]), &ANY);
        t.observe(&snap(1000, polled_pair(40000, Established)), &ANY);
        let late: Vec<Timed> = [
            change(0x10, client, Close, SynSent),
            change(0x11, server, Listen, SynRecv),
            change(0x10, client, SynSent, Established),
            change(0x11, server, SynRecv, Established),
        ]
        .into_iter()
        .map(|e| at(2, e))
        .collect();
        t.apply_events(&late, &ANY);
        t.observe(&snap(2000, polled_pair(40000, Established)), &ANY);
        assert_eq!(opens(&t), (1, 1));
    }

    /// A notice's tcp_info: `sent` bytes sent, `acked` acknowledged (the
    /// SYN and FIN in), `received` received (the peer's FIN in).
    fn final_info(sent: u64, acked: u64, received: u64) -> TcpInfo {
        let mut raw = vec![0u8; 232];
        raw[0] = 1;
        raw[120..128].copy_from_slice(&acked.to_ne_bytes());
        raw[128..136].copy_from_slice(&received.to_ne_bytes());
        raw[200..208].copy_from_slice(&sent.to_ne_bytes());
        raw[228..232].copy_from_slice(&65535u32.to_ne_bytes());
        TcpInfo::from_bytes(&raw).unwrap()
    }

    #[test]
    fn a_lifetime_from_an_orderly_notice_counts_the_peers_fin_as_no_byte() {
        let client = tuple("10.0.0.1", 40000, "10.0.0.2", 80);
        let server = tuple("10.0.0.2", 80, "10.0.0.1", 40000);
        let mut t = tracker();
        t.observe(&noticed(0, vec![listener()]), &ANY);
        t.apply_events(&short_connection(40000, 0x1000), &ANY);
        // 300 bytes up, 200 down, both FINs acknowledged and received;
        // the client, closed first, left the server's FIN unread.
        let mut client_end = sample(
            100,
            client,
            TcpState::Close,
            Some(final_info(300, 302, 201)),
        );
        client_end.recv_queue = 1;
        let notices = vec![
            client_end,
            sample(
                101,
                server,
                TcpState::Close,
                Some(final_info(200, 201, 301)),
            ),
        ];
        t.observe(&noticed(1000, notices), &ANY);
        // Without cookies in the events, the notices join after one more
        // batch.
        t.apply_events(&[], &ANY);
        t.observe(&noticed(2000, vec![]), &ANY);
        let received = |key: &EventTuple| {
            let closed = t.closed().iter().find(|c| c.sample.key == key.key(0));
            let closed = closed.unwrap_or_else(|| panic!("{key:?} closed: {:?}", t.closed()));
            (
                closed.window.get(Counter::BytesReceived),
                closed.lifetime_counters().get(Counter::BytesReceived),
            )
        };
        assert_eq!(received(&client), (Some(200), Some(200)));
        assert_eq!(received(&server), (Some(300), Some(300)));
    }

    #[test]
    fn a_close_event_after_the_notice_that_counted_its_ending_counts_no_second_reset() {
        let mut t = tracker();
        t.observe(&noticed(0, vec![]), &ANY);
        let events = aborted_connection(40000, 0x1000, None);
        let (opened, ended) = events.split_at(4);
        t.apply_events(opened, &ANY);
        // The notices come before the ring gives the ends' CLOSE events:
        // they join their sockets by tuple after one more batch, and count
        // the endings.
        t.observe(&noticed(1000, aborted_notices()), &ANY);
        t.apply_events(&[], &ANY);
        t.observe(&noticed(2000, vec![]), &ANY);
        t.apply_events(ended, &ANY);
        t.observe(&noticed(3000, vec![]), &ANY);
        let c = totals(&t);
        assert_eq!(c.get(Counter::EstabResets), Some(2), "{c:?}");
        assert_eq!(c.get(Counter::ActiveOpens), Some(1), "{c:?}");
        assert_eq!(c.get(Counter::OutRsts), Some(1), "{c:?}");
    }

    #[test]
    fn events_after_the_notice_that_ended_a_polled_socket_join_its_closed_life() {
        let mut t = tracker();
        t.observe(&noticed(0, vec![]), &ANY);
        let events = aborted_connection(40000, 0x1000, Some(100));
        let (opened, ended) = events.split_at(4);
        t.apply_events(opened, &ANY);
        // A dump lists both ends, and the notices read with it end them:
        // their CLOSE, reset and destruction events came after the dump
        // began, so they wait for the next poll.
        let client = tuple("10.0.0.1", 40000, "10.0.0.2", 80);
        let server = tuple("10.0.0.2", 80, "10.0.0.1", 40000);
        let mut poll = noticed(1000, aborted_notices());
        poll.sockets = vec![
            listener(),
            sample(100, client, TcpState::Established, Some(info(0, 0))),
            sample(101, server, TcpState::Established, Some(info(500, 0))),
        ];
        t.observe(&poll, &ANY);
        t.apply_events(ended, &ANY);
        t.observe(&noticed(2000, vec![]), &ANY);
        let c = totals(&t);
        assert_eq!(c.get(Counter::OutRsts), Some(1), "{c:?}");
        assert_eq!(c.get(Counter::InRsts), Some(1), "{c:?}");
        assert_eq!(c.get(Counter::EstabResets), Some(2), "{c:?}");
        assert_eq!(c.get(Counter::ActiveOpens), Some(1), "{c:?}");
        assert_eq!(c.get(Counter::PassiveOpens), Some(1), "{c:?}");
        let stats = t.event_stats().unwrap();
        assert_eq!(stats.awaiting_notice, 0, "{stats:?}");
        assert_eq!(stats.unplaced, Counters::default(), "{stats:?}");
        assert_eq!(t.rows().count(), 3, "the listener and both ends");
    }

    #[test]
    fn a_notice_read_before_its_sockets_last_events_has_its_peers_fin_read_again_when_they_come() {
        use TcpState::*;
        // The dump lists the socket, and the notice read with that dump
        // ends it: its last states, an end-of-stream read and its
        // destruction came after the dump began and wait for the next
        // batch. The FIN is judged from what came before the notice, and
        // judged again, exactly, when the rest comes.
        let client = tuple("10.0.0.1", 40000, "10.0.0.2", 80);
        let with_received = |state, received| orderly_closer(client, state, received);
        struct Case {
            what: &'static str,
            before_notice: &'static [(TcpState, TcpState)],
            after_notice: &'static [(TcpState, TcpState)],
            read_to_end: bool,
            /// The notice's bytes_received: 100 data bytes before the
            /// run, and the FIN where the full socket took it.
            final_received: u64,
        }
        let cases = [
            Case {
                what: "shut down first, then read the peer's FIN",
                before_notice: &[(Established, FinWait1)],
                after_notice: &[(FinWait1, FinWait2), (FinWait2, Close)],
                read_to_end: true,
                final_received: 101,
            },
            Case {
                what: "closed first, the FIN went to its timewait successor",
                before_notice: &[(Established, FinWait1)],
                after_notice: &[(FinWait1, FinWait2), (FinWait2, Close)],
                read_to_end: false,
                final_received: 100,
            },
            Case {
                what: "no state seen before the notice, closed second",
                before_notice: &[],
                after_notice: &[
                    (Established, CloseWait),
                    (CloseWait, LastAck),
                    (LastAck, Close),
                ],
                read_to_end: false,
                final_received: 101,
            },
            Case {
                what: "no state seen before the notice, closed first",
                before_notice: &[],
                after_notice: &[
                    (Established, FinWait1),
                    (FinWait1, FinWait2),
                    (FinWait2, Close),
                ],
                read_to_end: false,
                final_received: 100,
            },
        ];
        for case in cases {
            let what = case.what;
            let mut t = tracker();
            let mut first = noticed(0, vec![]);
            first.sockets = vec![with_received(Established, 100)];
            t.observe(&first, &ANY);
            let early: Vec<Timed> = case
                .before_notice
                .iter()
                .map(|(old, new)| at(1, change(0x10, client, *old, *new)))
                .collect();
            t.apply_events(&early, &ANY);
            let listed = case
                .before_notice
                .last()
                .map_or(Established, |(_, new)| *new);
            let mut racing = noticed(1000, vec![with_received(Close, case.final_received)]);
            racing.sockets = vec![with_received(listed, 100)];
            t.observe(&racing, &ANY);
            let mut late: Vec<Timed> = case
                .after_notice
                .iter()
                .map(|(old, new)| at(2, change(0x10, client, *old, *new)))
                .collect();
            if case.read_to_end {
                let eof = TraceEvent::Received {
                    sk: 0x10,
                    tuple: None,
                    bytes: 0,
                };
                late.push(at(3, eof));
            }
            let destroyed = TraceEvent::Destroyed {
                sk: 0x10,
                tuple: client,
                cookie: Some(9),
            };
            late.push(at(4, destroyed));
            // A lifetime report (--onclose) after this poll waits for the
            // life's last events: the life stays when the reported go.
            let waits = |t: &Tracker| t.closed().iter().any(|c| t.awaits_late_events(c));
            assert!(waits(&t), "{what}");
            let unseen = t.closed()[0].unseen_ms;
            t.clear_closed_reported();
            assert_eq!(t.closed().len(), 1, "{what}");
            t.apply_events(&late, &ANY);
            assert!(!waits(&t), "{what}: its destruction came");
            // Its lifetime's data: the 100 bytes, no FIN.
            let lifetime = t.closed()[0].lifetime_counters();
            assert_eq!(lifetime.get(Counter::BytesReceived), Some(100), "{what}");
            assert!(!lifetime.is_approx(Counter::BytesReceived), "{what}");
            t.observe(&noticed(2000, vec![]), &ANY);
            // Reported a poll later: it closed in a span a poll longer.
            assert_eq!(t.closed()[0].unseen_ms, unseen + 1000, "{what}");
            let c = totals(&t);
            assert_eq!(c.get(Counter::BytesReceived), Some(0), "{what}: {c:?}");
            assert!(!c.is_approx(Counter::BytesReceived), "{what}: {c:?}");
            assert_eq!(c.value(Counter::EstabResets), 0, "{what}: {c:?}");
        }
    }

    #[test]
    fn a_socket_that_closed_first_and_never_got_the_peers_fin_keeps_every_byte() {
        use TcpState::*;
        let server = tuple("10.0.0.2", 80, "10.0.0.1", 40000);
        let newborn = tuple("10.0.0.2", 80, "0.0.0.0", 40000);
        let closed_first = [
            change(0x11, newborn, Listen, SynRecv),
            change(0x11, server, SynRecv, Established),
            change(0x11, server, Established, FinWait1),
            change(0x11, server, FinWait1, FinWait2),
            change(0x11, server, FinWait2, Close),
        ];
        // 300 bytes received. Destroyed as its FIN was acknowledged, the
        // peer's FIN went to its timewait successor: bytes_received 300.
        // Held open by its application, which read the end of stream:
        // bytes_received 301.
        for (read_to_end, final_received) in [(false, 300), (true, 301)] {
            let mut events: Vec<Timed> = closed_first.iter().map(|e| at(1, e.clone())).collect();
            if read_to_end {
                let end = TraceEvent::Received {
                    sk: 0x11,
                    tuple: None,
                    bytes: 0,
                };
                events.insert(4, at(1, end));
            }
            let mut t = tracker();
            t.observe(&noticed(0, vec![listener()]), &ANY);
            t.apply_events(&events, &ANY);
            let last = sample(
                101,
                server,
                Close,
                Some(final_info(200, 201, final_received)),
            );
            t.observe(&noticed(1000, vec![last]), &ANY);
            t.apply_events(&[], &ANY);
            t.observe(&noticed(2000, vec![]), &ANY);
            let closed = t.closed().iter().find(|c| c.sample.key == server.key(0));
            let closed = closed.expect("closed");
            let received = (
                closed.window.get(Counter::BytesReceived),
                closed.lifetime_counters().get(Counter::BytesReceived),
            );
            assert_eq!(
                received,
                (Some(300), Some(300)),
                "read to end: {read_to_end}"
            );
        }
    }

    #[test]
    fn a_connect_that_sends_its_syn_again_counts_syn_retransmits() {
        use TcpState::*;
        let client = tuple("10.0.0.1", 40000, "10.0.0.2", 80);
        let no_port = tuple("10.0.0.1", 0, "10.0.0.2", 80);
        let mut t = tracker();
        t.set_sole_namespace(true);
        t.observe(&snap(0, vec![]), &ANY);
        let syn_again = |i| retransmit_of(0x10, client, true, i);
        t.apply_events(
            &[
                at(0, change(0x10, no_port, Close, SynSent)),
                syn_again(1),
                syn_again(2),
                at(3, change(0x10, client, SynSent, Close)),
            ],
            &ANY,
        );
        t.observe(&snap(1000, vec![]), &ANY);
        let c = totals(&t);
        assert_eq!(c.get(Counter::TCPSynRetrans), Some(2), "{c:?}");
        assert_eq!(c.get(Counter::RetransSegs), Some(2), "{c:?}");
        assert_eq!(c.get(Counter::ActiveOpens), Some(1), "{c:?}");
        assert_eq!(c.get(Counter::AttemptFails), Some(1), "{c:?}");
    }

    /// How a Fast Open child (born in SYN_RECV with its data, its request
    /// pending until the handshake's ACK) ends, in its events after birth:
    /// (events, AttemptFails as the kernel counts them).
    fn fast_open_child_ends() -> Vec<(&'static str, Vec<TraceEvent>, u64)> {
        use TcpState::*;
        let server = tuple("10.0.0.2", 80, "10.0.0.1", 40000);
        let listener = tuple("10.0.0.2", 80, "0.0.0.0", 0);
        let reset = TraceEvent::ReceiveReset {
            sk: 0x20,
            tuple: server,
            cookie: None,
        };
        let softirq = |old, new, kernel| TraceEvent::StateChange {
            sk: 0x20,
            tuple: server,
            old,
            new,
            in_softirq: Some(kernel),
        };
        vec![
            // tcp_check_req counts the reset, then tcp_done.
            (
                "reset in SYN_RECV",
                vec![reset.clone(), softirq(SynRecv, Close, true)],
                2,
            ),
            // Closed by its application before the ACK: tcp_check_req
            // only (tcp_done in FIN_WAIT1 counts none).
            (
                "reset in FIN_WAIT1",
                vec![
                    softirq(SynRecv, FinWait1, false),
                    reset,
                    softirq(FinWait1, Close, true),
                ],
                1,
            ),
            // Closed with unread data: tcp_close, no tcp_done.
            (
                "closed by its application",
                vec![softirq(SynRecv, Close, false)],
                0,
            ),
            // Its listener's close resets it (bottom halves off): no
            // tcp_done either.
            (
                "reset by its listener's close",
                vec![
                    TraceEvent::StateChange {
                        sk: 0x30,
                        tuple: listener,
                        old: Listen,
                        new: Close,
                        in_softirq: Some(false),
                    },
                    softirq(SynRecv, Close, true),
                ],
                0,
            ),
            // The SYN-ACK retransmits ran out: tcp_done.
            ("given up", vec![softirq(SynRecv, Close, true)], 1),
        ]
    }

    /// A connect a poll saw, given up by the kernel while its application
    /// holds it: the dumps lose it at once, its notice comes polls later.
    #[test]
    fn a_polled_socket_held_after_its_close_counts_once_when_its_notice_comes() {
        use TcpState::*;
        let client = tuple("10.0.0.1", 40000, "10.0.0.2", 80);
        let no_port = tuple("10.0.0.1", 0, "10.0.0.2", 80);
        let mut t = tracker();
        t.observe(&noticed(0, vec![]), &ANY);
        t.apply_events(&[at(0, change(0x10, no_port, Close, SynSent))], &ANY);
        let mut polled = noticed(1000, vec![]);
        polled.sockets = vec![sample(100, client, SynSent, Some(info(0, 1)))];
        t.observe(&polled, &ANY);
        let gave_up = TraceEvent::StateChange {
            sk: 0x10,
            tuple: client,
            old: SynSent,
            new: Close,
            in_softirq: Some(true),
        };
        t.apply_events(
            &[retransmit_of(0x10, client, true, 1), at(2, gave_up)],
            &ANY,
        );
        for poll in 2..6 {
            t.observe(&noticed(poll * 1000, vec![]), &ANY);
        }
        let destroyed = TraceEvent::Destroyed {
            sk: 0x10,
            tuple: client,
            cookie: Some(100),
        };
        t.apply_events(&[at(5, destroyed)], &ANY);
        let notice = sample(100, client, Close, Some(info(0, 2)));
        t.observe(&noticed(6000, vec![notice]), &ANY);
        let c = totals(&t);
        assert_eq!(c.get(Counter::ActiveOpens), Some(1), "{c:?}");
        assert_eq!(c.get(Counter::AttemptFails), Some(1), "{c:?}");
        assert_eq!(t.rows().filter(|r| r.closed).count(), 1);
    }

    #[test]
    fn a_fast_open_childs_end_fails_as_often_as_the_kernel_counts() {
        use TcpState::*;
        let newborn = tuple("10.0.0.2", 80, "0.0.0.0", 40000);
        for (case, ending, fails) in fast_open_child_ends() {
            let mut t = tracker();
            t.set_sole_namespace(true);
            t.observe(&snap(0, vec![listener()]), &ANY);
            let mut events = vec![at(0, change(0x20, newborn, Listen, SynRecv))];
            events.extend(
                ending
                    .into_iter()
                    .enumerate()
                    .map(|(i, e)| at(1 + i as u64, e)),
            );
            t.apply_events(&events, &ANY);
            t.observe(&snap(1000, vec![]), &ANY);
            let c = totals(&t);
            assert_eq!(c.get(Counter::PassiveOpens), Some(1), "{case}: {c:?}");
            assert_eq!(c.value(Counter::AttemptFails), fails, "{case}: {c:?}");
            assert!(!c.is_approx(Counter::AttemptFails), "{case}");
        }
    }

    /// Socket 0x10 connects from `client`, is reset (cookie 100) and
    /// closed, and its application holds it past the notice's grace.
    fn reset_and_held_past_the_grace(t: &mut Tracker, client: EventTuple) {
        use TcpState::*;
        let no_port = EventTuple {
            local_port: 0,
            ..client
        };
        let reset = TraceEvent::ReceiveReset {
            sk: 0x10,
            tuple: client,
            cookie: Some(100),
        };
        let events = [
            at(1, change(0x10, no_port, Close, SynSent)),
            at(2, change(0x10, client, SynSent, Established)),
            at(3, reset),
            at(4, change(0x10, client, Established, Close)),
        ];
        t.apply_events(&events, &ANY);
        for poll in 1..=(NOTICE_GRACE_POLLS + 3) {
            t.observe(&noticed(poll * 1000, vec![]), &ANY);
        }
    }

    /// A connection reset while its application holds it: no notice comes
    /// until it lets go, polls later.
    #[test]
    fn a_reset_socket_its_application_holds_counts_when_its_notice_comes() {
        use TcpState::*;
        let client = tuple("10.0.0.1", 40000, "10.0.0.2", 80);
        let mut t = tracker();
        t.observe(&noticed(0, vec![]), &ANY);
        // Another socket's destruction: this kernel tells them.
        let other = tuple("10.0.0.9", 5000, "10.0.0.8", 80);
        let destroyed = TraceEvent::Destroyed {
            sk: 0x99,
            tuple: other,
            cookie: Some(9),
        };
        t.apply_events(&[at(0, destroyed)], &ANY);
        reset_and_held_past_the_grace(&mut t, client);
        let mut notice = sample(100, client, Close, Some(info(0, 2)));
        notice.key.remote_port = 80;
        let end = (NOTICE_GRACE_POLLS + 4) * 1000;
        t.apply_events(
            &[at(
                end,
                TraceEvent::Destroyed {
                    sk: 0x10,
                    tuple: client,
                    cookie: Some(100),
                },
            )],
            &ANY,
        );
        t.observe(&noticed(end, vec![notice]), &ANY);
        let c = totals(&t);
        assert_eq!(c.get(Counter::ActiveOpens), Some(1), "{c:?}");
        assert_eq!(c.get(Counter::EstabResets), Some(1), "{c:?}");
        let elsewhere = &t.event_stats().unwrap().elsewhere;
        assert_eq!(elsewhere.value(Counter::EstabResets), 0, "{elsewhere:?}");
    }

    #[test]
    fn a_socket_held_after_its_close_waits_for_its_destruction_then_its_notice() {
        use TcpState::*;
        let client = tuple("10.0.0.1", 40000, "10.0.0.2", 80);
        let mut t = tracker();
        // The tracepoint names cookies: known before any destruction came.
        t.set_destructions_told(true);
        t.observe(&noticed(0, vec![]), &ANY);
        reset_and_held_past_the_grace(&mut t, client);
        // Destroyed at last; its notice is read a poll later.
        let destroyed_at = (NOTICE_GRACE_POLLS + 4) * 1000;
        let destroyed = TraceEvent::Destroyed {
            sk: 0x10,
            tuple: client,
            cookie: Some(100),
        };
        t.apply_events(&[at(destroyed_at, destroyed)], &ANY);
        t.observe(&noticed(destroyed_at, vec![]), &ANY);
        let mut notice = sample(100, client, Close, Some(info(0, 2)));
        notice.key.netns = 7;
        t.observe(&noticed(destroyed_at + 1000, vec![notice]), &ANY);
        let c = totals(&t);
        assert_eq!(c.get(Counter::ActiveOpens), Some(1), "{c:?}");
        assert_eq!(c.get(Counter::EstabResets), Some(1), "{c:?}");
        let stats = t.event_stats().unwrap();
        assert_eq!(stats.elsewhere_sockets, 0, "{stats:?}");
        let placed: Vec<u64> = t.rows().map(|r| r.sample.key.netns).collect();
        assert_eq!(placed, vec![7]);
    }

    #[test]
    fn a_notice_no_destruction_named_is_no_live_socket_with_its_tuple() {
        use TcpState::*;
        let client = tuple("10.0.0.1", 40000, "10.0.0.2", 80);
        let no_port = tuple("10.0.0.1", 0, "10.0.0.2", 80);
        let mut t = tracker();
        t.set_destructions_told(true);
        t.observe(&noticed(0, vec![]), &ANY);
        let events = [
            at(1, change(0x10, no_port, Close, SynSent)),
            at(2, change(0x10, client, SynSent, Established)),
        ];
        t.apply_events(&events, &ANY);
        // An earlier socket from the same port, which events never saw
        // (destroyed before the run's probes): its notice comes now.
        let earlier = sample(7, client, Close, Some(info(500, 0)));
        t.observe(&noticed(1000, vec![earlier]), &ANY);
        for poll in 2..=4 {
            t.observe(&noticed(poll * 1000, vec![]), &ANY);
        }
        // Counted on its own: the live connect's states are not its.
        let histories: Vec<usize> = t.rows().map(|r| r.history.iter().count()).collect();
        assert_eq!(histories, vec![0]);
        // The live connect ends later, with its own notice.
        let ends = [
            at(4500, change(0x10, client, Established, Close)),
            at(
                4501,
                TraceEvent::Destroyed {
                    sk: 0x10,
                    tuple: client,
                    cookie: Some(8),
                },
            ),
        ];
        t.apply_events(&ends, &ANY);
        let own = sample(8, client, Close, Some(info(300, 0)));
        t.observe(&noticed(5000, vec![own]), &ANY);
        t.observe(&noticed(6000, vec![]), &ANY);
        let rows: Vec<(bool, u64, u64)> = t
            .rows()
            .map(|r| {
                let c = &r.counters;
                let opens = c.value(Counter::ActiveOpens);
                (r.closed, c.value(Counter::BytesSent), opens)
            })
            .collect();
        // Each life on its own, with its own notice's bytes.
        assert_eq!(rows, vec![(true, 500, 1), (true, 300, 1)]);
    }

    #[test]
    fn a_notice_of_a_socket_destroyed_before_the_probes_opened_counts_nothing() {
        use TcpState::*;
        let client = tuple("10.0.0.1", 40000, "10.0.0.2", 80);
        for complete in [true, false] {
            let mut t = tracker();
            t.set_destructions_told(true);
            t.set_events_complete(complete);
            t.observe(&noticed(0, vec![]), &ANY);
            // Sent late (a loaded host's workqueue): read after the first
            // poll, though no event saw its socket end or be destroyed.
            let late = sample(7, client, Close, Some(info(500, 0)));
            t.observe(&noticed(1000, vec![late]), &ANY);
            t.observe(&noticed(2000, vec![]), &ANY);
            let c = totals(&t);
            let stats = t.event_stats().unwrap();
            if complete {
                assert_eq!(c.value(Counter::ActiveOpens), 0, "{c:?}");
                assert_eq!(c.value(Counter::BytesSent), 0, "{c:?}");
                assert_eq!(stats.notices_before_run, 1);
            } else {
                // An event lost may have been its: counted on its own.
                assert_eq!(c.value(Counter::ActiveOpens), 1, "{c:?}");
                assert_eq!(c.value(Counter::BytesSent), 500, "{c:?}");
                assert_eq!(stats.notices_before_run, 0);
            }
        }
    }

    #[test]
    fn an_unanswered_connect_fails_only_if_refused_or_given_up_by_the_kernel() {
        use TcpState::*;
        let client = tuple("10.0.0.1", 40000, "10.0.0.2", 80);
        let no_port = tuple("10.0.0.1", 0, "10.0.0.2", 80);
        // (SYNs sent again, a reset came, the close's context) →
        // AttemptFails (value, approximate)
        for (again, refused, in_softirq, fails) in [
            (0, true, None, (1, false)),
            (0, true, Some(false), (1, false)),
            // A timer gave up, or an ICMP error: the kernel's tcp_done.
            (0, false, Some(true), (1, false)),
            // The application closed it.
            (3, false, Some(false), (0, false)),
            // Unknown context: the kernel gave up if every retry was spent.
            (2, false, None, (0, true)),
            (3, false, None, (1, true)),
        ] {
            let mut t = tracker();
            t.set_sole_namespace(true);
            t.set_syn_retransmits_told(true);
            t.set_syn_retries(3);
            t.observe(&snap(0, vec![]), &ANY);
            let mut events = vec![at(0, change(0x10, no_port, Close, SynSent))];
            for i in 0..again {
                events.push(retransmit_of(0x10, client, true, 1 + i));
            }
            if refused {
                let reset = TraceEvent::ReceiveReset {
                    sk: 0x10,
                    tuple: client,
                    cookie: None,
                };
                events.push(at(10, reset));
            }
            let close = TraceEvent::StateChange {
                sk: 0x10,
                tuple: client,
                old: SynSent,
                new: Close,
                in_softirq,
            };
            events.push(at(11, close));
            t.apply_events(&events, &ANY);
            t.observe(&snap(1000, vec![]), &ANY);
            let c = totals(&t);
            let got = (
                c.value(Counter::AttemptFails),
                c.is_approx(Counter::AttemptFails),
            );
            assert_eq!(
                got, fails,
                "{again} again, refused {refused}, {in_softirq:?}"
            );
            assert_eq!(c.value(Counter::ActiveOpens), 1);
        }
    }

    #[test]
    fn a_close_whose_event_never_came_counts_from_its_notice() {
        // A connect polled in SYN_SENT that the kernel gave up on: the
        // timer's CLOSE event was never delivered, its notice came (the
        // failed connect's tcp_disconnect cleared it).
        let client = tuple("10.0.0.1", 40000, "10.0.0.2", 80);
        let cleared = tuple("10.0.0.1", 40000, "10.0.0.2", 0);
        let mut t = tracker();
        t.observe(&noticed(0, vec![]), &ANY);
        let mut connecting = noticed(1000, vec![]);
        connecting.sockets = vec![sample(50, client, TcpState::SynSent, Some(info(0, 0)))];
        t.observe(&connecting, &ANY);
        // Cleared, and no SYN-ACK ever set its peer window.
        let mut raw = vec![0u8; 232];
        raw[0] = TcpState::Close as u8;
        let notice = sample(50, cleared, TcpState::Close, TcpInfo::from_bytes(&raw));
        t.observe(&noticed(2000, vec![notice]), &ANY);
        let c = totals(&t);
        assert_eq!(c.get(Counter::AttemptFails), Some(1), "{c:?}");
        assert_eq!(c.get(Counter::ActiveOpens), Some(1), "{c:?}");
        assert_eq!(c.get(Counter::EstabResets), Some(0), "{c:?}");
    }

    #[test]
    fn a_notice_counts_the_ending_whose_close_event_never_came() {
        // The client's abort: its CLOSE never came; its notice says it was
        // cleared by an abort.
        let c = aborted_totals_losing(|e| {
            matches!(
                e,
                TraceEvent::StateChange {
                    sk: 0x1000,
                    new: TcpState::Close,
                    ..
                }
            )
        });
        assert_eq!(c.get(Counter::EstabResets), Some(2), "{c:?}");
        assert_eq!(c.get(Counter::ActiveOpens), Some(1), "{c:?}");
        assert_eq!(c.get(Counter::OutRsts), Some(1), "{c:?}");
    }

    #[test]
    fn without_cookies_a_notice_joins_its_tuple_after_one_more_batch() {
        let mut t = tracker();
        t.observe(&noticed(0, vec![]), &ANY);
        t.apply_events(&aborted_connection(40000, 0x1000, None), &ANY);
        t.observe(&noticed(1000, aborted_notices()), &ANY);
        // Held: the next batch might name the sockets' cookies.
        assert_eq!(totals(&t).value(Counter::ActiveOpens), 0);
        t.apply_events(&[], &ANY);
        t.observe(&noticed(2000, vec![]), &ANY);
        let c = totals(&t);
        assert_eq!(c.get(Counter::ActiveOpens), Some(1), "{c:?}");
        assert_eq!(c.get(Counter::PassiveOpens), Some(1));
        assert_eq!(c.get(Counter::OutRsts), Some(1));
        assert_eq!(c.get(Counter::EstabResets), Some(2));
        assert_eq!(t.event_stats().unwrap().elsewhere_sockets, 0);
    }

    #[test]
    fn connections_between_polls_are_counted_exactly_with_their_history() {
        let mut t = tracker();
        t.observe(&snap(0, vec![listener()]), &ANY);
        for i in 0..200u16 {
            t.apply_events(&short_connection(40000 + i, 0x1000 + 16 * i as u64), &ANY);
        }
        t.observe(&snap(1000, vec![]), &ANY);
        let c = totals(&t);
        assert_eq!(c.get(Counter::ActiveOpens), Some(200));
        assert_eq!(c.get(Counter::PassiveOpens), Some(200));
        assert_eq!(c.get(Counter::EstabResets), Some(0));
        assert_eq!(c.get(Counter::AttemptFails), Some(0));
        assert!(!c.is_approx(Counter::ActiveOpens));
        let rows: Vec<_> = t
            .rows()
            .filter(|r| r.closed && r.sample.state != TcpState::Listen)
            .collect();
        assert_eq!(rows.len(), 400);
        let client = rows
            .iter()
            .find(|r| r.sample.key.local_port == 40000)
            .unwrap();
        assert_eq!(
            client.history.render(),
            "SYN-SENT>ESTAB>FIN-WAIT-1>FIN-WAIT-2>CLOSE"
        );
        assert_eq!(t.unidentified(), Counters::default());
    }

    #[test]
    fn a_poll_takes_over_an_event_only_socket_without_counting_its_open_twice() {
        use TcpState::*;
        let mut t = tracker();
        t.observe(&snap(0, vec![listener()]), &ANY);
        let events = short_connection(40000, 0x10);
        // Up to both ends established.
        t.apply_events(&events[..4], &ANY);
        let client = tuple("10.0.0.1", 40000, "10.0.0.2", 80);
        t.observe(
            &snap(
                1000,
                vec![sample(7, client, Established, Some(info(500, 0)))],
            ),
            &ANY,
        );
        // The rest: the client's by address, after the poll.
        t.apply_events(&events[4..], &ANY);
        let c = totals(&t);
        assert_eq!(c.get(Counter::ActiveOpens), Some(1));
        assert_eq!(c.get(Counter::PassiveOpens), Some(1));
        assert_eq!(c.get(Counter::BytesSent), Some(500));
        let row = t.rows().find(|r| r.sample.key.local_port == 40000).unwrap();
        assert_eq!(row.sample.cookie, 7);
        assert_eq!(row.history.last(), Some(Close));
    }

    #[test]
    fn retransmits_seen_by_a_later_poll_are_not_counted_twice() {
        use TcpState::*;
        let mut t = tracker();
        let conn = tuple("10.0.0.1", 5000, "10.0.0.9", 443);
        t.observe(
            &snap(0, vec![sample(3, conn, Established, Some(info(0, 10)))]),
            &ANY,
        );
        let retransmit = || retransmit_of(0x99, conn, false, 1);
        t.apply_events(&[retransmit(), retransmit()], &ANY);
        t.observe(
            &snap(1000, vec![sample(3, conn, Established, Some(info(0, 12)))]),
            &ANY,
        );
        assert_eq!(totals(&t).get(Counter::RetransSegs), Some(2));
        // Three more, then it is gone before the next poll: they count.
        t.apply_events(&[retransmit(), retransmit(), retransmit()], &ANY);
        t.apply_events(&[at(2, change(0x99, conn, Established, Close))], &ANY);
        t.observe(&snap(2000, vec![]), &ANY);
        let c = totals(&t);
        assert_eq!(c.get(Counter::RetransSegs), Some(5));
        assert_eq!(c.get(Counter::EstabResets), Some(1));
    }

    #[test]
    fn retransmits_a_close_notice_covers_are_not_counted_twice() {
        use TcpState::*;
        let conn = tuple("10.0.0.1", 5000, "10.0.0.9", 443);
        let retransmit = || retransmit_of(0x99, conn, false, 1);
        // New to a poll with 10, three more after its last poll, then its
        // notice with 13: 13, not 16.
        let mut t = tracker();
        t.observe(&noticed(0, vec![]), &ANY);
        let mut polled = noticed(1000, vec![]);
        polled.sockets = vec![sample(3, conn, Established, Some(info(0, 10)))];
        t.observe(&polled, &ANY);
        t.apply_events(&[retransmit(), retransmit(), retransmit()], &ANY);
        t.apply_events(&[at(2, change(0x99, conn, Established, Close))], &ANY);
        let notice = sample(3, conn, Close, Some(info(0, 13)));
        t.observe(&noticed(2000, vec![notice]), &ANY);
        assert_eq!(totals(&t).get(Counter::RetransSegs), Some(13));
        // Known from events only: its notice's whole life, once.
        let mut t = tracker();
        t.set_sole_namespace(true);
        t.observe(&noticed(0, vec![]), &ANY);
        t.apply_events(&[at(0, change(0x99, conn, SynSent, Established))], &ANY);
        t.apply_events(&[retransmit(), retransmit()], &ANY);
        t.apply_events(&[at(2, change(0x99, conn, Established, Close))], &ANY);
        let notice = sample(3, conn, Close, Some(info(0, 2)));
        t.observe(&noticed(1000, vec![notice]), &ANY);
        t.apply_events(&[], &ANY);
        t.observe(&noticed(2000, vec![]), &ANY);
        assert_eq!(totals(&t).get(Counter::RetransSegs), Some(2));
    }

    #[test]
    fn retransmits_a_late_notice_covers_are_not_counted_twice() {
        use TcpState::*;
        let conn = tuple("10.0.0.1", 5000, "10.0.0.9", 443);
        let retransmit = || retransmit_of(0x99, conn, false, 1);
        let polled_with = |ms: u64, socket: SocketSample| {
            let mut s = noticed(ms, vec![]);
            s.sockets = vec![socket];
            s
        };
        // Polled with 10, three more after its last poll, gone from the
        // next dump before its notice (13) was read: 13, not 16.
        let mut t = tracker();
        t.observe(&noticed(0, vec![]), &ANY);
        let established = sample(3, conn, Established, Some(info(0, 10)));
        t.observe(&polled_with(1000, established.clone()), &ANY);
        t.apply_events(&[retransmit(), retransmit(), retransmit()], &ANY);
        t.apply_events(&[at(2, change(0x99, conn, Established, Close))], &ANY);
        t.observe(&noticed(2000, vec![]), &ANY);
        assert_eq!(totals(&t).get(Counter::RetransSegs), Some(13));
        let notice = sample(3, conn, Close, Some(info(0, 13)));
        t.apply_events(&[], &ANY);
        t.observe(&noticed(3000, vec![notice.clone()]), &ANY);
        assert_eq!(totals(&t).get(Counter::RetransSegs), Some(13));
        // Its successor (TIME_WAIT) listed in its place ended it; its
        // notice came a poll later.
        let mut t = tracker();
        t.observe(&noticed(0, vec![]), &ANY);
        t.observe(&polled_with(1000, established), &ANY);
        t.apply_events(&[retransmit(), retransmit(), retransmit()], &ANY);
        let successor = sample(4, conn, TimeWait, None);
        t.observe(&polled_with(2000, successor.clone()), &ANY);
        t.apply_events(&[], &ANY);
        t.observe(&noticed(3000, vec![notice.clone()]), &ANY);
        assert_eq!(totals(&t).get(Counter::RetransSegs), Some(13));
        // Its destruction told, as 4.x+ kernels tell it.
        let mut t = tracker();
        t.set_destructions_told(true);
        t.observe(&noticed(0, vec![]), &ANY);
        t.observe(
            &polled_with(1000, sample(3, conn, Established, Some(info(0, 10)))),
            &ANY,
        );
        let destroyed = TraceEvent::Destroyed {
            sk: 0x99,
            tuple: conn,
            cookie: Some(3),
        };
        t.apply_events(&[retransmit(), retransmit(), retransmit()], &ANY);
        t.apply_events(
            &[
                at(2, change(0x99, conn, Established, Close)),
                at(3, destroyed),
            ],
            &ANY,
        );
        t.observe(&noticed(2000, vec![]), &ANY);
        t.apply_events(&[], &ANY);
        t.observe(&noticed(3000, vec![notice]), &ANY);
        assert_eq!(totals(&t).get(Counter::RetransSegs), Some(13));
    }

    #[test]
    fn resets_count_on_both_ends() {
        use TcpState::*;
        let mut t = tracker();
        t.observe(&snap(0, vec![listener()]), &ANY);
        let mut events = short_connection(40001, 0x20);
        events.truncate(4);
        let client = tuple("10.0.0.1", 40001, "10.0.0.2", 80);
        let server = tuple("10.0.0.2", 80, "10.0.0.1", 40001);
        events.push(at(
            10,
            TraceEvent::SendReset {
                sk: 0x20,
                tuple: Some(client),
            },
        ));
        events.push(at(11, change(0x20, client, Established, Close)));
        events.push(at(
            12,
            TraceEvent::ReceiveReset {
                sk: 0x21,
                tuple: server,
                cookie: None,
            },
        ));
        events.push(at(13, change(0x21, server, Established, Close)));
        // A reset answering a segment for no socket has nowhere to go.
        events.push(at(14, TraceEvent::SendReset { sk: 0, tuple: None }));
        t.apply_events(&events, &ANY);
        t.observe(&snap(1000, vec![]), &ANY);
        let rows: Vec<_> = t.rows().collect();
        let of = |port: u16| {
            rows.iter()
                .find(|r| r.sample.key.local_port == port)
                .unwrap()
        };
        assert_eq!(of(40001).counters.get(Counter::OutRsts), Some(1));
        assert_eq!(of(40001).counters.get(Counter::InRsts), Some(0));
        assert_eq!(of(80).counters.get(Counter::InRsts), Some(1));
        assert_eq!(totals(&t).get(Counter::EstabResets), Some(2));
        assert_eq!(
            t.event_stats().unwrap().unplaced.get(Counter::OutRsts),
            Some(1)
        );
    }

    #[test]
    fn sends_wait_for_the_socket_address_to_be_named() {
        use TcpState::*;
        let mut t = tracker();
        let conn = tuple("10.0.0.1", 5000, "10.0.0.9", 443);
        t.observe(
            &snap(0, vec![sample(3, conn, Established, Some(info(0, 0)))]),
            &ANY,
        );
        let send = |bytes| {
            at(
                1,
                TraceEvent::Sent {
                    sk: 0x55,
                    tuple: None,
                    bytes,
                },
            )
        };
        t.apply_events(&[send(100), send(-11), send(50)], &ANY);
        assert_eq!(t.unidentified().get(Counter::MessagesSent), Some(2));
        t.apply_events(&[at(2, change(0x55, conn, Established, FinWait1))], &ANY);
        assert_eq!(t.unidentified(), Counters::default());
        let c = totals(&t);
        assert_eq!(c.get(Counter::MessagesSent), Some(2));
        assert_eq!(c.get(Counter::MessageBytesSent), Some(150));
    }

    #[test]
    fn unidentified_counts_are_per_window_and_earlier_ones_are_told_apart() {
        use TcpState::*;
        let mut t = tracker();
        let conn = tuple("10.0.0.1", 5000, "10.0.0.9", 443);
        t.observe(
            &snap(0, vec![sample(3, conn, Established, Some(info(0, 0)))]),
            &ANY,
        );
        let send = |bytes| {
            at(
                1,
                TraceEvent::Sent {
                    sk: 0x55,
                    tuple: None,
                    bytes,
                },
            )
        };
        t.apply_events(&[send(100)], &ANY);
        assert_eq!(t.unidentified().get(Counter::MessagesSent), Some(1));
        t.reset_window();
        // The next window counted none of it.
        assert_eq!(t.unidentified(), Counters::default());
        assert_eq!(t.unidentified_earlier().get(Counter::MessagesSent), Some(1));
        t.apply_events(&[send(20)], &ANY);
        assert_eq!(t.unidentified().get(Counter::MessageBytesSent), Some(20));
        assert_eq!(
            t.unidentified_earlier().get(Counter::MessageBytesSent),
            Some(100)
        );
        // Named: both go to the socket, in the window that names it.
        t.apply_events(&[at(2, change(0x55, conn, Established, FinWait1))], &ANY);
        assert_eq!(t.unidentified(), Counters::default());
        assert_eq!(t.unidentified_earlier(), Counters::default());
        assert_eq!(totals(&t).get(Counter::MessageBytesSent), Some(120));
    }

    #[test]
    fn a_last_moment_sample_counts_bytes_of_a_socket_no_poll_saw() {
        use TcpState::*;
        let mut t = tracker();
        t.observe(&snap(0, vec![listener()]), &ANY);
        let mut events = short_connection(40002, 0x30);
        let client = tuple("10.0.0.1", 40002, "10.0.0.2", 80);
        events.insert(
            5,
            at(
                4,
                TraceEvent::LastSample {
                    sk: 0x30,
                    sample: Box::new(sample(77, client, FinWait1, Some(info(4096, 0)))),
                },
            ),
        );
        t.apply_events(&events, &ANY);
        t.observe(&snap(1000, vec![]), &ANY);
        assert_eq!(totals(&t).get(Counter::BytesSent), Some(4096));
        assert_eq!(t.event_stats().unwrap().last_samples, 1);
    }

    #[test]
    fn a_last_moment_sample_after_the_peers_fin_leaves_the_fin_out_of_window_and_lifetime() {
        use TcpState::*;
        let mut t = tracker();
        t.observe(&noticed(0, vec![listener()]), &ANY);
        let server = tuple("10.0.0.2", 80, "10.0.0.1", 40003);
        let mut events = short_connection(40003, 0x40);
        // The server end, sampled in CLOSE_WAIT with 300 bytes and the
        // FIN received (bytes_received 301).
        events.insert(
            6,
            at(
                5,
                TraceEvent::LastSample {
                    sk: 0x41,
                    sample: Box::new(sample(0, server, CloseWait, Some(final_info(0, 0, 301)))),
                },
            ),
        );
        t.apply_events(&events, &ANY);
        let last = sample(101, server, Close, Some(final_info(200, 201, 301)));
        t.observe(&noticed(1000, vec![last]), &ANY);
        t.apply_events(&[], &ANY);
        t.observe(&noticed(2000, vec![]), &ANY);
        let closed = t.closed().iter().find(|c| c.sample.key == server.key(0));
        let closed = closed.expect("closed");
        let received = (
            closed.window.get(Counter::BytesReceived),
            closed.lifetime_counters().get(Counter::BytesReceived),
        );
        assert_eq!(received, (Some(300), Some(300)));
    }

    #[test]
    fn sockets_no_poll_or_listener_places_are_counted_apart() {
        let mut t = tracker();
        // No listener on :80 here: these connections are another
        // namespace's, as far as this one can tell.
        t.observe(&snap(0, vec![]), &ANY);
        t.apply_events(&short_connection(40005, 0x50), &ANY);
        t.observe(&snap(1000, vec![]), &ANY);
        assert_eq!(t.rows().count(), 0);
        let stats = t.event_stats().unwrap();
        assert_eq!(stats.elsewhere_sockets, 2);
        assert_eq!(stats.elsewhere.get(Counter::ActiveOpens), Some(1));
        // A TIME_WAIT seen by the next poll places a connection.
        let mut t = tracker();
        t.observe(&snap(0, vec![]), &ANY);
        t.apply_events(&short_connection(40006, 0x60), &ANY);
        let client = tuple("10.0.0.1", 40006, "10.0.0.2", 80);
        t.observe(
            &snap(1000, vec![sample(9, client, TcpState::TimeWait, None)]),
            &ANY,
        );
        let c = totals(&t);
        assert_eq!(c.get(Counter::ActiveOpens), Some(1));
        assert_eq!(c.get(Counter::PassiveOpens), Some(1));
    }

    #[test]
    fn filtered_out_sockets_take_no_events() {
        let mut t = tracker();
        let only_other = FilterSet::parse(&["10.9.9.9:*-*"]).unwrap();
        t.observe(&snap(0, vec![]), &only_other);
        t.apply_events(&short_connection(40003, 0x40), &only_other);
        t.observe(&snap(1000, vec![]), &only_other);
        assert_eq!(t.rows().count(), 0);
        assert_eq!(t.unidentified(), Counters::default());
    }

    #[test]
    fn tcp_drops_by_reason_and_by_socket() {
        use TcpState::*;
        let mut t = tracker();
        let conn = tuple("10.0.0.1", 5000, "10.0.0.9", 443);
        t.observe(
            &snap(0, vec![sample(3, conn, Established, Some(info(0, 0)))]),
            &ANY,
        );
        let reason = |code, name: &str| DropReason {
            code,
            name: Some(name.to_string()),
        };
        t.apply_events(
            &[
                at(
                    1,
                    TraceEvent::Identity {
                        sk: 0x77,
                        tuple: conn,
                        cookie: Some(3),
                    },
                ),
                at(
                    2,
                    TraceEvent::Drop {
                        reason: reason(10, "TCP_CSUM"),
                        sk: 0,
                    },
                ),
                at(
                    3,
                    TraceEvent::Drop {
                        reason: reason(6, "SOCKET_RCVBUFF"),
                        sk: 0x77,
                    },
                ),
                // Not TCP's, and no TCP socket: not counted.
                at(
                    4,
                    TraceEvent::Drop {
                        reason: reason(11, "UDP_CSUM"),
                        sk: 0,
                    },
                ),
            ],
            &ANY,
        );
        let stats = t.event_stats().unwrap();
        assert_eq!(stats.drops_by_reason.get("TCP_CSUM"), Some(&1));
        assert_eq!(stats.drops_by_reason.get("SOCKET_RCVBUFF"), Some(&1));
        assert_eq!(stats.drops_by_reason.len(), 2);
        assert_eq!(totals(&t).get(Counter::Drops), Some(1));
    }
}
