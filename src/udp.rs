//! UDP and UDP-Lite sockets from polls to a report section: per-socket
//! drop deltas per window ([`UdpTracker`]), groups by the run's index and
//! filters, and with `--system` the sockets' sums set against the
//! namespace's Udp/Udp6 and UdpLite/UdpLite6 MIB. Pure: built from samples
//! and counters handed in.
//!
//! A socket's drop count is the kernel's sk_drops (SK_MEMINFO_DROPS, or
//! /proc/net/udp's `drops`): a datagram the kernel dropped after finding
//! this socket for it. Every such drop is also counted in the MIB's
//! InErrors, with RcvbufErrors when the receive buffer was full, MemErrors
//! when protocol memory ran out, InCsumErrors on a bad checksum, or with no
//! other counter for a socket filter or IPsec policy drop (net/ipv4/udp.c,
//! udp_queue_rcv_one_skb and __udp_queue_rcv_skb; ipv6/udp.c alike).
//!
//! UDP close notices (when read) end sockets as they close and bring in
//! those no poll saw; such a socket is known by its tuple only (a notice
//! carries no drop count), and each socket is counted once, whether a
//! poll, a notice or both told of it.

use rustc_hash::FxHashMap as HashMap;

use crate::aggregate::{GroupKey, Index, OwnerLookup};
use crate::filter::FilterSet;
use crate::model::event::{EventTuple, Timed, TraceEvent};
use crate::model::udp::{UdpProto, UdpSample};
use crate::model::CloseLoss;
use crate::source::procfs::SystemCounters;

/// The kernel's UDP MIB names, in /proc/net/snmp's order.
pub const MIB_NAMES: [&str; 9] = [
    "InDatagrams",
    "NoPorts",
    "InErrors",
    "OutDatagrams",
    "RcvbufErrors",
    "SndbufErrors",
    "InCsumErrors",
    "IgnoredMulti",
    "MemErrors",
];

type Identity = (u64, u64, u64);

/// Sockets known only from their close notice, tracked one by one per
/// window at most; past it they are counted in the section alone.
pub const NOTICE_ONLY_LIMIT: u64 = 100_000;
/// Polls a socket found gone waits for its close notice, at most: the
/// kernel sends it from a workqueue, a little after the socket left the
/// tables, so it may come a poll later (and a window later).
const NOTICE_WAIT_POLLS: u64 = 16;

/// One socket's counts from kernel events in a window (`--precision`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpEventCounts {
    /// Datagrams read (receive calls that took one: not MSG_PEEK, not an
    /// error) and their bytes (what the calls returned).
    pub in_datagrams: u64,
    pub in_bytes: u64,
    /// Send calls that succeeded, and their bytes.
    pub out_datagrams: u64,
    pub out_bytes: u64,
    /// Send calls that failed (an error code returned).
    pub send_errors: u64,
    /// Datagrams the receive queue refused: buffer full (-ENOMEM), or
    /// protocol memory (udp_mem).
    pub rcvbuf_errors: u64,
    pub mem_errors: u64,
    /// Datagrams dropped at this socket for a bad checksum, or by its
    /// socket filter (skb:kfree_skb with rx_sk).
    pub csum_errors: u64,
    pub filter_drops: u64,
}

impl UdpEventCounts {
    fn add(&mut self, other: &UdpEventCounts) {
        self.in_datagrams += other.in_datagrams;
        self.in_bytes += other.in_bytes;
        self.out_datagrams += other.out_datagrams;
        self.out_bytes += other.out_bytes;
        self.send_errors += other.send_errors;
        self.rcvbuf_errors += other.rcvbuf_errors;
        self.mem_errors += other.mem_errors;
        self.csum_errors += other.csum_errors;
        self.filter_drops += other.filter_drops;
    }

    fn is_zero(&self) -> bool {
        *self == UdpEventCounts::default()
    }
}

/// Socket addresses named at once, at most (forgotten all at once past
/// it: every send and receive names its socket again).
const UDP_NAMES_LIMIT: usize = 1 << 16;
/// Messages of one batch held for a name later in the batch, at most;
/// past this they count as not placed.
const UNNAMED_MESSAGES_LIMIT: usize = 1 << 16;

/// The messages that waited for address `sk`'s name, counted on the
/// socket it names.
fn name_waiting(
    unnamed: &mut HashMap<u64, Vec<(bool, i64)>>,
    sk: u64,
    tracked: Option<&mut Tracked>,
) {
    let Some(waiting) = unnamed.remove(&sk) else {
        return;
    };
    if let Some(tracked) = tracked {
        for (sent, bytes) in waiting {
            count_message(&mut tracked.events, sent, bytes);
        }
    }
}

/// One send or receive call's result on a socket's event counts.
fn count_message(c: &mut UdpEventCounts, sent: bool, bytes: i64) {
    match (sent, bytes) {
        (false, b) if b >= 0 => {
            c.in_datagrams += 1;
            c.in_bytes += b as u64;
        }
        (true, b) if b >= 0 => {
            c.out_datagrams += 1;
            c.out_bytes += b as u64;
        }
        (true, _) => c.send_errors += 1,
        // A receive that found nothing (EAGAIN) moved none.
        (false, _) => {}
    }
}
/// ICMP port unreachables waiting for the drop of the datagram they
/// answer (the drop follows at once, on the same CPU).
const ICMP_PENDING_LIMIT: usize = 4096;
/// Ports (with senders) NoPorts are told apart by per window, at most;
/// past it they are counted as `no_ports_unlisted`.
pub const NO_PORTS_LIMIT: usize = 1024;

/// Datagrams no socket took, by the port they were sent to and their
/// sender: how many the window saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoPortsRow {
    pub local: std::net::IpAddr,
    pub port: u16,
    pub sender: std::net::IpAddr,
    pub sender_port: u16,
    pub datagrams: u64,
}

/// What UDP's kernel events gave in a window, beyond the sockets' own
/// counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UdpEventStats {
    /// NoPorts (kfree_skb NO_SOCKET in a UDP function), by port and
    /// sender where the ICMP port unreachable told them.
    pub no_ports: Vec<NoPortsRow>,
    /// NoPorts with no port known: no ICMP error was sent (rate limit,
    /// broadcast, IPv6: icmp_send is IPv4's), or past [`NO_PORTS_LIMIT`].
    pub no_ports_unknown: u64,
    /// UDP drops by the kernel's reason (all of them, NO_SOCKET included).
    pub drops_by_reason: std::collections::BTreeMap<String, u64>,
    /// Events no tracked socket could be found for: a send or receive of
    /// a socket never named or named to no socket of the run (another
    /// namespace's, or a tuple two sockets share), a queue failure on a
    /// port no (or more than one) tracked socket has.
    pub unplaced_messages: u64,
    pub unplaced_queue_fails: u64,
}

/// Attribution of UDP's kernel events to the tracked sockets.
#[derive(Debug, Default)]
struct UdpEvents {
    /// Socket address → identity, learnt from the kprobes' names.
    names: HashMap<u64, Identity>,
    /// ICMP port unreachables by the datagram's buffer address.
    icmp: HashMap<u64, (std::net::IpAddr, u16, std::net::IpAddr, u16)>,
    no_ports: HashMap<(std::net::IpAddr, u16, std::net::IpAddr, u16), u64>,
    stats: UdpEventStats,
}

#[derive(Debug, Clone)]
struct Tracked {
    sample: UdpSample,
    /// Counts from kernel events in the current window (--precision).
    events: UdpEventCounts,
    /// Drops counted in the current window.
    drops: u64,
    /// Whether it closed: no later poll found it, or its notice came.
    closed: bool,
    seen_at: u64,
    /// No poll saw it: only its close notice, which has no drop count.
    notice_only: bool,
    /// When polls saw it first and last, and the poll before the first
    /// (it was created after it; None: it was there at the baseline, so
    /// before the run), ms since the run began. For a notice-only socket,
    /// `first_seen_ms` is None.
    first_seen_ms: Option<u64>,
    last_seen_ms: Option<u64>,
    born_after_ms: Option<u64>,
    /// When the run learnt it closed (the poll that missed it or read
    /// its notice).
    closed_by_ms: Option<u64>,
    /// Its close notice came (its final tuple is known).
    notice_seen: bool,
    /// The close notice carried its drop count (final, exact).
    drops_from_notice: bool,
}

/// Where a closed socket's drop count comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropsFrom {
    /// Its close notice carried SK_MEMINFO: the final count, exact.
    CloseNotice,
    /// Its last poll: drops between that poll and the close are missed
    /// (shown with `~`).
    LastPoll,
    /// No poll saw it and its notice has no drop count (or the source
    /// counts none): unknown.
    Unknown,
}

/// One UDP socket that closed, with what is known of its life, for its
/// `--onclose` report. Pure data built by [`UdpTracker::closed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpClosed {
    /// Its last sample, with the tuple it ended with (from the notice
    /// where one came); its gauges as last polled.
    pub sample: UdpSample,
    /// Receive drops over its life (sk_drops), and where they come from.
    pub drops: Option<u64>,
    pub drops_from: DropsFrom,
    /// Counts from kernel events over the time the run tracked it
    /// (--precision; None for a notice-only socket, which no event could
    /// be placed on).
    pub events: Option<UdpEventCounts>,
    /// Ms since the run began: polls that saw it first and last, the
    /// poll before the first (None: it was there when the run began),
    /// and the poll by which it had closed.
    pub first_seen_ms: Option<u64>,
    pub last_seen_ms: Option<u64>,
    pub born_after_ms: Option<u64>,
    pub closed_by_ms: u64,
    /// Known only from its close notice (it lived between two polls).
    pub notice_only: bool,
    /// Its close notice came.
    pub notice_seen: bool,
}

impl UdpClosed {
    /// Its lifetime's bounds in ms, `(at least, at most)`: between its
    /// first and last sighting at least; between the poll before it was
    /// first seen and the one by which it had closed at most (None: it
    /// was open when the run began, so no upper bound is known).
    pub fn lifetime_ms(&self) -> (u64, Option<u64>) {
        let least = match (self.first_seen_ms, self.last_seen_ms) {
            (Some(first), Some(last)) => last.saturating_sub(first),
            _ => 0,
        };
        let most = self
            .born_after_ms
            .map(|born| self.closed_by_ms.saturating_sub(born));
        (least, most)
    }
}

/// One socket's account for the current window.
#[derive(Debug, Clone, Copy)]
pub struct UdpRow<'a> {
    pub sample: &'a UdpSample,
    /// Drops in the window (a row's lifetime drops in a snapshot); None
    /// when its source gives no drop count (a close notice, /proc without
    /// the column).
    pub drops: Option<u64>,
    /// Its counts from kernel events in the window; None without
    /// --precision.
    pub events: Option<UdpEventCounts>,
    pub closed: bool,
    /// Known from its close notice only.
    pub notice_only: bool,
}

/// Every UDP socket the run has seen, its drops taken per window.
#[derive(Debug, Default)]
pub struct UdpTracker {
    sockets: HashMap<Identity, Tracked>,
    polls: u64,
    /// Sockets a poll found gone whose close notice has not come yet, with
    /// the poll: their notice must not count them again.
    awaiting_notice: HashMap<Identity, u64>,
    /// Notice-only sockets tracked in this window, and those past
    /// [`NOTICE_ONLY_LIMIT`] (counted, in no group).
    notice_only: u64,
    unlisted: u64,
    /// Closed sockets forgotten unreported since the run began (past
    /// [`NOTICE_ONLY_LIMIT`] between two reports): `--onclose` says so.
    unreported: u64,
    /// Kernel events' attribution (--precision).
    events: Option<UdpEvents>,
    /// The time of the poll being observed and of the one before, ms
    /// since the run began (see [`UdpTracker::set_poll_time`]).
    poll_ms: u64,
    previous_poll_ms: u64,
}

impl UdpTracker {
    pub fn new() -> UdpTracker {
        UdpTracker::default()
    }

    /// The time of the poll about to be observed, ms since the run began
    /// (its lifetime bounds for `--onclose`); polls without one are at 0.
    pub fn set_poll_time(&mut self, ms: u64) {
        self.previous_poll_ms = self.poll_ms;
        self.poll_ms = ms;
    }

    /// Counts UDP's kernel events from now on (--precision).
    pub fn enable_events(&mut self) {
        self.events.get_or_insert_with(UdpEvents::default);
    }

    /// What the window's events gave beyond the sockets' own counts; None
    /// without --precision.
    pub fn event_stats(&self) -> Option<UdpEventStats> {
        let events = self.events.as_ref()?;
        let mut stats = events.stats.clone();
        stats.no_ports = events
            .no_ports
            .iter()
            .map(
                |(&(local, port, sender, sender_port), &datagrams)| NoPortsRow {
                    local,
                    port,
                    sender,
                    sender_port,
                    datagrams,
                },
            )
            .collect();
        stats
            .no_ports
            .sort_by(|a, b| b.datagrams.cmp(&a.datagrams).then(a.port.cmp(&b.port)));
        Some(stats)
    }

    /// Takes the kernel events that came before the poll just observed
    /// (call after [`UdpTracker::observe_with_notices`], so that sockets
    /// that poll or its notices brought are known). Events of the
    /// baseline's past are the caller's to leave out.
    pub fn apply_events(&mut self, events: &[Timed]) {
        let Some(part) = self.events.as_mut() else {
            return;
        };
        // A closed socket's events all came before the mark of the poll
        // after the last that saw it: past it, its address (and even its
        // descriptor number, which the collector names it by) may be a new
        // socket's, whose events must not count on it.
        let (polls, sockets) = (self.polls, &self.sockets);
        part.names.retain(|_, id| {
            sockets
                .get(id)
                .is_some_and(|t| !t.closed || t.seen_at + 1 >= polls)
        });
        // Tuples of the tracked sockets, by their ports.
        let mut by_ports: HashMap<(u16, u16), Vec<Identity>> = HashMap::default();
        let mut by_local_port: HashMap<u16, Vec<Identity>> = HashMap::default();
        let mut by_inode: HashMap<u64, Identity> = HashMap::default();
        let wants_index = events.iter().any(|t| {
            matches!(
                t.event,
                TraceEvent::UdpName { .. } | TraceEvent::UdpQueueFail { .. }
            )
        });
        if events
            .iter()
            .any(|t| matches!(t.event, TraceEvent::UdpInode { .. }))
        {
            for (id, t) in &self.sockets {
                if t.sample.inode != 0 {
                    by_inode.insert(t.sample.inode, *id);
                }
            }
        }
        if wants_index {
            for (id, t) in &self.sockets {
                let k = &t.sample.key;
                by_ports
                    .entry((k.local_port, k.remote_port))
                    .or_default()
                    .push(*id);
                by_local_port.entry(k.local_port).or_default().push(*id);
            }
        }
        // Messages of addresses no name leads to yet: address → (sent, bytes).
        let mut unnamed: HashMap<u64, Vec<(bool, i64)>> = HashMap::default();
        let mut unnamed_count = 0usize;
        for timed in events {
            match &timed.event {
                // Unbound yet (its first send binds it): names nothing.
                TraceEvent::UdpName { tuple, .. } if tuple.local_port == 0 => {}
                TraceEvent::UdpName { sk, tuple } => {
                    let candidates = by_ports
                        .get(&(tuple.local_port, tuple.remote_port))
                        .map_or(&[][..], Vec::as_slice);
                    let found = one_of(candidates, |id| {
                        self.sockets
                            .get(id)
                            .is_some_and(|t| tuple_matches(tuple, &t.sample))
                    });
                    match found {
                        Some(id) => {
                            if part.names.len() >= UDP_NAMES_LIMIT {
                                part.names.clear();
                            }
                            part.names.insert(*sk, id);
                            name_waiting(&mut unnamed, *sk, self.sockets.get_mut(&id));
                        }
                        // The address is another socket's now.
                        None => {
                            part.names.remove(sk);
                        }
                    }
                }
                // Inode 0: the address is a socket no one could name now.
                TraceEvent::UdpInode { sk, inode } => match by_inode.get(inode) {
                    Some(id) => {
                        if part.names.len() >= UDP_NAMES_LIMIT {
                            part.names.clear();
                        }
                        part.names.insert(*sk, *id);
                        name_waiting(&mut unnamed, *sk, self.sockets.get_mut(id));
                    }
                    None => {
                        part.names.remove(sk);
                    }
                },
                TraceEvent::UdpMessage {
                    sk,
                    sent,
                    bytes,
                    peek,
                } => {
                    if *peek && !*sent {
                        continue;
                    }
                    let tracked = part.names.get(sk).and_then(|id| self.sockets.get_mut(id));
                    match tracked {
                        Some(tracked) => count_message(&mut tracked.events, *sent, *bytes),
                        // Its name may come later in the batch: a kprobe
                        // on an unbound socket's first send sees no port
                        // yet, its next call's sees it.
                        None if unnamed_count < UNNAMED_MESSAGES_LIMIT => {
                            unnamed_count += 1;
                            unnamed.entry(*sk).or_default().push((*sent, *bytes));
                        }
                        None => part.stats.unplaced_messages += 1,
                    }
                }
                TraceEvent::UdpQueueFail {
                    rc,
                    local_port,
                    local,
                    remote,
                } => {
                    let candidates = by_local_port.get(local_port).map_or(&[][..], Vec::as_slice);
                    let found = one_of(candidates, |id| {
                        self.sockets.get(id).is_some_and(|t| {
                            queue_fail_matches(*local, *remote, &t.sample) && !t.notice_only
                        })
                    });
                    let tracked = found.and_then(|id| self.sockets.get_mut(&id));
                    let Some(tracked) = tracked else {
                        part.stats.unplaced_queue_fails += 1;
                        continue;
                    };
                    // -ENOMEM: the receive buffer; -ENOBUFS: udp_mem.
                    if *rc == -12 {
                        tracked.events.rcvbuf_errors += 1;
                    } else {
                        tracked.events.mem_errors += 1;
                    }
                }
                TraceEvent::IcmpUnreachable {
                    skb,
                    port_unreachable: true,
                    local,
                    port,
                    sender,
                    sender_port,
                } => {
                    if part.icmp.len() >= ICMP_PENDING_LIMIT {
                        part.icmp.clear();
                    }
                    part.icmp
                        .insert(*skb, (*local, *port, *sender, *sender_port));
                }
                TraceEvent::UdpDrop { reason, sk, skb } => {
                    *part
                        .stats
                        .drops_by_reason
                        .entry(reason.label())
                        .or_default() += 1;
                    match reason.name.as_deref() {
                        Some("NO_SOCKET") => {
                            let told = part.icmp.remove(skb);
                            match told {
                                Some(key)
                                    if part.no_ports.len() < NO_PORTS_LIMIT
                                        || part.no_ports.contains_key(&key) =>
                                {
                                    *part.no_ports.entry(key).or_default() += 1;
                                }
                                _ => part.stats.no_ports_unknown += 1,
                            }
                        }
                        Some(name @ ("UDP_CSUM" | "SOCKET_FILTER")) if *sk != 0 => {
                            let tracked =
                                part.names.get(sk).and_then(|id| self.sockets.get_mut(id));
                            if let Some(tracked) = tracked {
                                if name == "UDP_CSUM" {
                                    tracked.events.csum_errors += 1;
                                } else {
                                    tracked.events.filter_drops += 1;
                                }
                            }
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        let never_named: usize = unnamed.values().map(Vec::len).sum();
        part.stats.unplaced_messages += never_named as u64;
    }

    /// Takes one poll's sockets. A socket first seen after the baseline
    /// poll was created since the last one: all its drops are this
    /// window's. One missing is closed, unless its namespace could not be
    /// read this time (`unsampled_netns`).
    pub fn observe(&mut self, samples: &[UdpSample], unsampled_netns: &[u64]) {
        self.observe_with_notices(samples, unsampled_netns, &[], false);
    }

    /// [`UdpTracker::observe`], then the close notices read after the
    /// poll's dump (`notices`; `watched`: notices are read, so a socket
    /// found gone waits for its own).
    pub fn observe_with_notices(
        &mut self,
        samples: &[UdpSample],
        unsampled_netns: &[u64],
        notices: &[UdpSample],
        watched: bool,
    ) {
        self.polls += 1;
        let baseline = self.polls == 1;
        let (now, before) = (self.poll_ms, self.previous_poll_ms);
        for sample in samples {
            let poll = self.polls;
            self.sockets
                .entry(sample.identity())
                .and_modify(|t| {
                    if let (Some(old), Some(new)) = (t.sample.drops, sample.drops) {
                        // sk_drops is 32 bits and may wrap.
                        t.drops += u64::from(new.wrapping_sub(old));
                    }
                    t.sample = *sample;
                    t.seen_at = poll;
                    t.closed = false;
                    t.last_seen_ms = Some(now);
                })
                .or_insert_with(|| Tracked {
                    sample: *sample,
                    events: UdpEventCounts::default(),
                    drops: if baseline {
                        0
                    } else {
                        u64::from(sample.drops.unwrap_or(0))
                    },
                    closed: false,
                    seen_at: poll,
                    notice_only: false,
                    first_seen_ms: Some(now),
                    last_seen_ms: Some(now),
                    born_after_ms: (!baseline).then_some(before),
                    closed_by_ms: None,
                    notice_seen: false,
                    drops_from_notice: false,
                });
        }
        for (id, tracked) in self.sockets.iter_mut() {
            let unseen = tracked.seen_at != self.polls && !tracked.closed;
            if unseen && !unsampled_netns.contains(&tracked.sample.key.netns) {
                tracked.closed = true;
                tracked.closed_by_ms = Some(now);
                if watched && tracked.sample.cookie != 0 {
                    self.awaiting_notice.insert(*id, self.polls);
                }
            }
        }
        // Sockets destroyed before the baseline poll are not the window's.
        if !baseline {
            for notice in notices {
                self.take_notice(notice);
            }
        }
        let polls = self.polls;
        self.awaiting_notice
            .retain(|_, at| polls - *at < NOTICE_WAIT_POLLS);
    }

    /// One close notice: it ends a socket a poll saw, or is the only word
    /// of one no poll saw. Each socket is counted once.
    fn take_notice(&mut self, notice: &UdpSample) {
        let id = notice.identity();
        let awaited = self.awaiting_notice.remove(&id).is_some();
        let now = self.poll_ms;
        if let Some(tracked) = self.sockets.get_mut(&id) {
            tracked.closed = true;
            tracked.closed_by_ms.get_or_insert(now);
            tracked.notice_seen = true;
            // The tuple it ended with: a poll may have seen it bound but
            // not yet connect()ed.
            tracked.sample.key = notice.key;
            tracked.sample.connected |= notice.connected;
            if let Some(drops) = notice.drops {
                // A notice with the final count (none does today).
                if let Some(old) = tracked.sample.drops {
                    tracked.drops += u64::from(drops.wrapping_sub(old));
                }
                tracked.sample.drops = Some(drops);
                tracked.drops_from_notice = true;
            }
            return;
        }
        if awaited {
            return;
        }
        if self.notice_only >= NOTICE_ONLY_LIMIT {
            self.unlisted += 1;
            return;
        }
        self.notice_only += 1;
        self.sockets.insert(
            id,
            Tracked {
                sample: *notice,
                events: UdpEventCounts::default(),
                drops: u64::from(notice.drops.unwrap_or(0)),
                closed: true,
                seen_at: self.polls,
                notice_only: true,
                first_seen_ms: None,
                last_seen_ms: None,
                born_after_ms: Some(self.previous_poll_ms),
                closed_by_ms: Some(now),
                notice_seen: true,
                drops_from_notice: notice.drops.is_some(),
            },
        );
    }

    /// The sockets that closed since the last [`UdpTracker::forget_closed`]
    /// (or window), each with what is known of its life (`--onclose`),
    /// in the order they closed.
    pub fn closed(&self) -> Vec<UdpClosed> {
        let precision = self.events.is_some();
        let mut closed: Vec<UdpClosed> = self
            .sockets
            .values()
            .filter(|t| t.closed)
            .map(|t| {
                let drops_from = match (t.sample.drops, t.drops_from_notice) {
                    (Some(_), true) => DropsFrom::CloseNotice,
                    (Some(_), false) => DropsFrom::LastPoll,
                    (None, _) => DropsFrom::Unknown,
                };
                UdpClosed {
                    sample: t.sample,
                    drops: t.sample.drops.map(u64::from),
                    drops_from,
                    // A notice-only socket was never named: its events
                    // were counted as not placed.
                    events: (precision && !t.notice_only).then_some(t.events),
                    first_seen_ms: t.first_seen_ms,
                    last_seen_ms: t.last_seen_ms,
                    born_after_ms: t.born_after_ms,
                    closed_by_ms: t.closed_by_ms.unwrap_or(self.poll_ms),
                    notice_only: t.notice_only,
                    notice_seen: t.notice_seen,
                }
            })
            .collect();
        closed.sort_by_key(|c| {
            (
                c.closed_by_ms,
                c.sample.key.netns,
                c.sample.cookie,
                c.sample.inode,
            )
        });
        closed
    }

    /// Forgets the closed sockets once reported (`--onclose`, where no
    /// window ends): the open ones keep their counts, which a lifetime
    /// report needs. Those past the notice-only bound are counted as
    /// unreported (see [`UdpTracker::unreported`]).
    pub fn forget_closed(&mut self) {
        self.sockets.retain(|_, t| !t.closed);
        if let Some(part) = self.events.as_mut() {
            let sockets = &self.sockets;
            part.names.retain(|_, id| sockets.contains_key(id));
        }
        self.unreported += self.unlisted;
        self.notice_only = 0;
        self.unlisted = 0;
    }

    /// Closed sockets never reported one by one since the run began:
    /// known from close notices past [`NOTICE_ONLY_LIMIT`] between two
    /// reports.
    pub fn unreported(&self) -> u64 {
        self.unreported + self.unlisted
    }

    /// Every socket's account for the window, closed ones included.
    pub fn rows(&self) -> impl Iterator<Item = UdpRow<'_>> {
        let precision = self.events.is_some();
        self.sockets.values().map(move |t| UdpRow {
            sample: &t.sample,
            events: precision.then_some(t.events),
            drops: t.sample.drops.map(|_| t.drops),
            closed: t.closed,
            notice_only: t.notice_only,
        })
    }

    /// Sockets that closed in the window, those past the notice-only
    /// limit included.
    pub fn closed_in_window(&self) -> u64 {
        self.sockets.values().filter(|t| t.closed).count() as u64 + self.unlisted
    }

    /// Notice-only sockets past [`NOTICE_ONLY_LIMIT`] in this window.
    pub fn unlisted(&self) -> u64 {
        self.unlisted
    }

    /// Starts the next window: closed sockets are forgotten, counts zeroed.
    pub fn reset_window(&mut self) {
        self.sockets.retain(|_, t| !t.closed);
        for tracked in self.sockets.values_mut() {
            tracked.drops = 0;
            tracked.events = UdpEventCounts::default();
        }
        if let Some(part) = self.events.as_mut() {
            part.stats = UdpEventStats::default();
            part.no_ports.clear();
            // Names of closed sockets go with them.
            let sockets = &self.sockets;
            part.names.retain(|_, id| sockets.contains_key(id));
        }
        self.notice_only = 0;
        self.unlisted = 0;
    }

    pub fn polls(&self) -> u64 {
        self.polls
    }
}

/// A snapshot's sockets with their drops since creation (`--once`).
pub fn lifetime_rows(samples: &[UdpSample]) -> impl Iterator<Item = UdpRow<'_>> {
    samples.iter().map(|sample| UdpRow {
        sample,
        events: None,
        drops: sample.drops.map(u64::from),
        closed: false,
        notice_only: false,
    })
}

/// The one candidate `matches` accepts; None for none or several.
fn one_of(candidates: &[Identity], matches: impl Fn(&Identity) -> bool) -> Option<Identity> {
    let mut found = None;
    for id in candidates.iter().filter(|id| matches(id)) {
        if found.is_some() {
            return None;
        }
        found = Some(*id);
    }
    found
}

/// Whether a kprobe's tuple is this socket's: ports (already matched) and
/// the addresses, except an IPv6 socket's, which the kprobe cannot read
/// (`::`).
fn tuple_matches(tuple: &EventTuple, sample: &UdpSample) -> bool {
    let unread = |a: std::net::IpAddr| a.is_ipv6() && a.is_unspecified();
    let same = |event: std::net::IpAddr, polled: std::net::IpAddr| {
        unread(event) || crate::model::unmap(event) == crate::model::unmap(polled)
    };
    same(tuple.local, sample.key.local) && same(tuple.remote, sample.key.remote)
}

/// Whether a datagram refused on `local`'s port was this socket's: a
/// socket bound to one address takes only datagrams to it; a connected
/// one only its peer's.
fn queue_fail_matches(
    local: Option<std::net::IpAddr>,
    remote: Option<(std::net::IpAddr, u16)>,
    sample: &UdpSample,
) -> bool {
    let unmap = crate::model::unmap;
    let key = &sample.key;
    let address_ok = match local {
        Some(local) => key.local.is_unspecified() || unmap(key.local) == unmap(local),
        None => true,
    };
    let peer_ok = match (remote, sample.connected) {
        (Some((addr, port)), true) => unmap(key.remote) == unmap(addr) && key.remote_port == port,
        _ => true,
    };
    address_ok && peer_ok
}

/// UDP sockets grouped by the run's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpGroup {
    pub key: GroupKey,
    pub sockets: u64,
    pub closed: u64,
    /// Sockets known only from their close notice: their drops unknown.
    pub notice_only: u64,
    /// Receive drops (sk_drops); None when no socket's source counts them.
    pub drops: Option<u64>,
    /// Bytes waiting to be read, summed.
    pub recv_queue: u64,
    /// Bytes waiting to be sent, summed.
    pub send_queue: u64,
    /// The largest SO_RCVBUF and SO_SNDBUF among the group's sockets.
    pub rcvbuf: Option<u32>,
    pub sndbuf: Option<u32>,
    /// Socket memory (both queues), summed.
    pub memory: u64,
    /// With index=tuple: the socket's protocol and state.
    pub proto: Option<&'static str>,
    pub state: Option<&'static str>,
    /// Counts from kernel events, summed (--precision).
    pub events: Option<UdpEventCounts>,
}

impl UdpGroup {
    fn new(key: GroupKey) -> UdpGroup {
        UdpGroup {
            key,
            sockets: 0,
            closed: 0,
            notice_only: 0,
            drops: None,
            recv_queue: 0,
            send_queue: 0,
            rcvbuf: None,
            sndbuf: None,
            memory: 0,
            proto: None,
            state: None,
            events: None,
        }
    }

    fn add(&mut self, row: &UdpRow<'_>, tuple: bool) {
        let s = row.sample;
        self.sockets += 1;
        self.closed += u64::from(row.closed);
        self.notice_only += u64::from(row.notice_only);
        if let Some(drops) = row.drops {
            *self.drops.get_or_insert(0) += drops;
        }
        if let Some(events) = &row.events {
            self.events
                .get_or_insert_with(UdpEventCounts::default)
                .add(events);
        }
        // Gauges are levels at the report: a closed socket holds nothing.
        if row.closed {
            return;
        }
        self.recv_queue += u64::from(s.recv_queue);
        self.send_queue += u64::from(s.send_queue);
        self.memory += s.memory();
        self.rcvbuf = self.rcvbuf.max(s.rcvbuf);
        self.sndbuf = self.sndbuf.max(s.sndbuf);
        if tuple {
            self.proto = Some(s.proto.mib());
            self.state = Some(s.state_name());
        }
    }

    /// Whether it dropped nothing, holds nothing unread and lost no
    /// socket in the window (short-lived sockets are activity).
    pub fn is_quiet(&self) -> bool {
        self.drops.unwrap_or(0) == 0
            && self.recv_queue == 0
            && self.closed == 0
            && self.events.is_none_or(|e| e.is_zero())
    }
}

/// Groups `rows` the filters accept by `index`, busiest (most drops, then
/// fullest receive queue) first. Sockets whose owner is unknown go to
/// process `0` (`?`); containers are grouped by namespace.
pub fn group<'a>(
    rows: impl Iterator<Item = UdpRow<'a>>,
    index: Index,
    filters: &FilterSet,
    owners: Option<&dyn OwnerLookup>,
) -> Vec<UdpGroup> {
    let mut positions: HashMap<GroupKey, usize> = HashMap::default();
    let mut groups: Vec<UdpGroup> = Vec::new();
    for row in rows.filter(|r| filters.matches(&r.sample.key)) {
        let key = match index {
            Index::Process => {
                GroupKey::Process(owners.and_then(|o| o.pid_of(row.sample.inode)).unwrap_or(0))
            }
            index => index.key_of(&row.sample.key),
        };
        let at = *positions.entry(key).or_insert_with(|| {
            groups.push(UdpGroup::new(key));
            groups.len() - 1
        });
        groups[at].add(&row, index == Index::Tuple);
    }
    groups.sort_by(|a, b| {
        (b.drops, b.recv_queue)
            .cmp(&(a.drops, a.recv_queue))
            .then(a.key.cmp(&b.key))
    });
    groups
}

/// One MIB counter of one protocol, namespace-wide (v4 and v6 summed),
/// and where sockets account for it, their sum and what is left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MibRow {
    pub name: &'static str,
    pub system: i64,
    /// The sockets' drops, for the counters they are part of.
    pub sockets: Option<u64>,
    /// `system - sockets`.
    pub residual: Option<i64>,
    /// What `sockets` sums: the sockets' RcvDrops (polls), or kernel
    /// events (--precision).
    pub source: &'static str,
    /// Whether sockets' drops only approximate this counter (they also
    /// count other causes): the residual may then be below zero.
    pub approx: bool,
}

/// `--system` for one protocol: its MIB deltas against its sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpSystem {
    /// `Udp` or `UdpLite` (with `6`: the IPv6 MIB, summed in).
    pub proto: &'static str,
    pub rows: Vec<MibRow>,
}

/// What kernel events counted for one protocol's MIB (--precision): the
/// sockets' event counts summed (unfiltered), and the drops no socket
/// took (NoPorts, all of them; UDP's checksum drops).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventSums {
    pub sockets: UdpEventCounts,
    pub no_ports: u64,
    pub csum_errors: u64,
}

/// One protocol's namespace deltas set against the drops of every
/// socket the run tracked (unfiltered: the MIB is not filtered either),
/// and with --precision against what events counted. None when the
/// namespace has no such MIB section.
pub fn system_for(
    proto: UdpProto,
    deltas: &SystemCounters,
    socket_drops: u64,
    events: Option<&EventSums>,
) -> Option<UdpSystem> {
    let mut any = false;
    let rows = MIB_NAMES
        .iter()
        .map(|&name| {
            let v4 = deltas.get(&format!("{}:{name}", proto.mib()));
            let v6 = deltas.get(&format!("{}6:{name}", proto.mib()));
            any |= v4.is_some() || v6.is_some();
            let system = v4.unwrap_or(0).wrapping_add(v6.unwrap_or(0));
            // Every sk_drops increment is an InErrors one; RcvbufErrors
            // is the usual cause but not the only one.
            let from_events = events.and_then(|e| match name {
                "InDatagrams" => Some(e.sockets.in_datagrams),
                "OutDatagrams" => Some(e.sockets.out_datagrams),
                "RcvbufErrors" => Some(e.sockets.rcvbuf_errors),
                "MemErrors" => Some(e.sockets.mem_errors),
                "NoPorts" => Some(e.no_ports),
                "InCsumErrors" => Some(e.csum_errors),
                _ => None,
            });
            let (sockets, approx, source) = match (name, from_events) {
                (_, Some(counted)) => (Some(counted), false, "events"),
                ("InErrors", None) => (Some(socket_drops), false, "sockets' RcvDrops"),
                ("RcvbufErrors", None) => (Some(socket_drops), true, "sockets' RcvDrops"),
                _ => (None, false, ""),
            };
            MibRow {
                name,
                system,
                sockets,
                residual: sockets.map(|s| system.wrapping_sub(s as i64)),
                approx,
                source,
            }
        })
        .collect();
    any.then_some(UdpSystem {
        proto: proto.mib(),
        rows,
    })
}

/// What --precision adds to a window's Udp section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpPrecision {
    pub stats: UdpEventStats,
    /// Kernel events lost in the window and since the start (every
    /// event, TCP's too: a ring holds both), lost ones and those the
    /// kernel counted but never delivered.
    pub events_lost: u64,
    pub events_lost_since_start: u64,
    /// Each UDP counter from events and its source; what this kernel
    /// cannot give.
    pub sources: Vec<(String, String)>,
    pub missing: Vec<String>,
}

/// The event counts of every tracked socket of `proto` (filtered or
/// not), with the drops no socket took (NoPorts, UDP's checksum drops),
/// which are put on UDP: a kfree_skb does not tell UDP-Lite's apart.
pub fn event_sums<'a>(
    rows: impl Iterator<Item = UdpRow<'a>>,
    proto: UdpProto,
    stats: &UdpEventStats,
) -> EventSums {
    let mut sums = EventSums::default();
    for events in rows
        .filter(|r| r.sample.proto == proto)
        .filter_map(|r| r.events)
    {
        sums.sockets.add(&events);
    }
    if proto == UdpProto::Udp {
        sums.no_ports =
            stats.no_ports.iter().map(|r| r.datagrams).sum::<u64>() + stats.no_ports_unknown;
        sums.csum_errors = stats.drops_by_reason.get("UDP_CSUM").copied().unwrap_or(0);
    }
    sums
}

/// What a report says about UDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpSection {
    /// Groups shown (busy ones, or all with --zeros).
    pub groups: Vec<UdpGroup>,
    /// Groups left out as quiet: no drop, nothing unread.
    pub quiet_groups: u64,
    /// Every socket the filters accept, shown or not.
    pub sockets: u64,
    /// Their drops summed.
    pub drops: Option<u64>,
    /// Sockets that closed in the window: drops after their last poll are
    /// not counted.
    pub closed: u64,
    /// Of the sockets, those known only from their close notice (no drop
    /// count), and those past the tracking limit (in no group).
    pub notice_only: u64,
    pub unlisted: u64,
    /// UDP close notices lost in the window and since the start; None
    /// when they are not read.
    pub closes_lost: Option<(CloseLoss, CloseLoss)>,
    pub system: Vec<UdpSystem>,
    /// --precision's part, in a window.
    pub precision: Option<UdpPrecision>,
}

impl UdpSection {
    /// The section from all groups: quiet ones are left out unless
    /// `zeros`.
    pub fn new(all: Vec<UdpGroup>, zeros: bool, closed: u64) -> UdpSection {
        let sockets = all.iter().map(|g| g.sockets).sum();
        let notice_only = all.iter().map(|g| g.notice_only).sum();
        let drops = all.iter().filter_map(|g| g.drops).reduce(|a, b| a + b);
        let total = all.len() as u64;
        let groups: Vec<UdpGroup> = all.into_iter().filter(|g| zeros || !g.is_quiet()).collect();
        UdpSection {
            quiet_groups: total - groups.len() as u64,
            groups,
            sockets,
            drops,
            closed,
            notice_only,
            unlisted: 0,
            closes_lost: None,
            system: Vec::new(),
            precision: None,
        }
    }
}

/// The drops of every tracked socket of `proto`, filtered or not.
pub fn drops_of<'a>(rows: impl Iterator<Item = UdpRow<'a>>, proto: UdpProto) -> u64 {
    rows.filter(|r| r.sample.proto == proto)
        .filter_map(|r| r.drops)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SocketKey;
    use std::net::{IpAddr, Ipv4Addr};

    fn sample(cookie: u64, port: u16, drops: u32) -> UdpSample {
        UdpSample {
            key: SocketKey::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                port,
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                0,
            ),
            proto: UdpProto::Udp,
            cookie,
            connected: false,
            inode: cookie + 1000,
            uid: 0,
            recv_queue: 0,
            send_queue: 0,
            rcvbuf: Some(4608),
            sndbuf: Some(9216),
            drops: Some(drops),
        }
    }

    fn window_drops(t: &UdpTracker) -> Vec<(u16, Option<u64>, bool)> {
        let mut rows: Vec<_> = t
            .rows()
            .map(|r| (r.sample.key.local_port, r.drops, r.closed))
            .collect();
        rows.sort();
        rows
    }

    #[test]
    fn drops_before_the_baseline_poll_are_not_the_windows() {
        let mut t = UdpTracker::new();
        t.observe(&[sample(1, 53, 100)], &[]);
        assert_eq!(window_drops(&t), vec![(53, Some(0), false)]);
        t.observe(&[sample(1, 53, 130)], &[]);
        assert_eq!(window_drops(&t), vec![(53, Some(30), false)]);
    }

    #[test]
    fn a_socket_born_in_the_window_counts_all_its_drops() {
        let mut t = UdpTracker::new();
        t.observe(&[], &[]);
        t.observe(&[sample(2, 514, 7)], &[]);
        assert_eq!(window_drops(&t), vec![(514, Some(7), false)]);
    }

    #[test]
    fn drop_counter_wrapping_at_32_bits_still_gives_the_delta() {
        let mut t = UdpTracker::new();
        t.observe(&[sample(1, 53, u32::MAX - 1)], &[]);
        t.observe(&[sample(1, 53, 3)], &[]);
        assert_eq!(window_drops(&t), vec![(53, Some(5), false)]);
    }

    #[test]
    fn a_socket_gone_is_closed_and_kept_until_the_window_ends() {
        let mut t = UdpTracker::new();
        t.observe(&[sample(1, 53, 0), sample(2, 54, 0)], &[]);
        t.observe(&[sample(1, 53, 4), sample(2, 54, 9)], &[]);
        t.observe(&[sample(1, 53, 4)], &[]);
        assert_eq!(
            window_drops(&t),
            vec![(53, Some(4), false), (54, Some(9), true)]
        );
        assert_eq!(t.closed_in_window(), 1);
        t.reset_window();
        assert_eq!(window_drops(&t), vec![(53, Some(0), false)]);
        assert_eq!(t.closed_in_window(), 0);
    }

    fn notice(cookie: u64, port: u16) -> UdpSample {
        UdpSample {
            inode: 0,
            rcvbuf: None,
            sndbuf: None,
            drops: None,
            ..sample(cookie, port, 0)
        }
    }

    fn counts(t: &UdpTracker) -> (usize, u64, usize) {
        let notice_only = t.rows().filter(|r| r.notice_only).count();
        (t.rows().count(), t.closed_in_window(), notice_only)
    }

    #[test]
    fn a_polled_sockets_close_notice_closes_it_without_counting_it_again() {
        let mut t = UdpTracker::new();
        t.observe_with_notices(&[], &[], &[], true);
        t.observe_with_notices(&[sample(5, 53, 2)], &[], &[], true);
        // The notice comes with the poll that no longer finds it, with
        // the tuple it ended with (connect()ed since the poll).
        let mut ended = notice(5, 53);
        ended.key.remote_port = 5353;
        t.observe_with_notices(&[], &[], &[ended], true);
        assert_eq!(counts(&t), (1, 1, 0));
        assert_eq!(window_drops(&t), vec![(53, Some(2), true)]);
        let groups = group(t.rows(), Index::Rport, &FilterSet::default(), None);
        assert_eq!(groups[0].key, GroupKey::Rport(5353));
        assert_eq!((groups[0].recv_queue, groups[0].rcvbuf), (0, None));
    }

    #[test]
    fn a_close_notice_coming_a_window_late_is_not_a_new_socket() {
        let mut t = UdpTracker::new();
        t.observe_with_notices(&[sample(5, 53, 0)], &[], &[], true);
        t.observe_with_notices(&[], &[], &[], true);
        assert_eq!(counts(&t), (1, 1, 0));
        t.reset_window();
        t.observe_with_notices(&[], &[], &[notice(5, 53)], true);
        assert_eq!(counts(&t), (0, 0, 0));
    }

    #[test]
    fn a_socket_known_only_from_its_notice_is_counted_once_without_drops() {
        let mut t = UdpTracker::new();
        t.observe_with_notices(&[], &[], &[], true);
        t.observe_with_notices(&[], &[], &[notice(7, 40000), notice(8, 40001)], true);
        t.observe_with_notices(&[], &[], &[notice(7, 40000)], true);
        assert_eq!(counts(&t), (2, 2, 2));
        assert!(t.rows().all(|r| r.drops.is_none() && r.closed));
        let groups = group(t.rows(), Index::Rport, &FilterSet::default(), None);
        assert_eq!(groups.len(), 1);
        assert_eq!((groups[0].sockets, groups[0].closed), (2, 2));
        assert_eq!((groups[0].notice_only, groups[0].drops), (2, None));
        assert!(!groups[0].is_quiet(), "short-lived sockets are activity");
        t.reset_window();
        assert_eq!(counts(&t), (0, 0, 0));
    }

    fn poll_at(t: &mut UdpTracker, ms: u64, samples: &[UdpSample], notices: &[UdpSample]) {
        t.set_poll_time(ms);
        t.observe_with_notices(samples, &[], notices, true);
    }

    #[test]
    fn a_closed_socket_is_kept_with_its_life_until_forgotten() {
        let mut t = UdpTracker::new();
        t.enable_events();
        poll_at(&mut t, 0, &[sample(1, 53, 10)], &[]);
        let three = [sample(1, 53, 10), sample(2, 40000, 0), sample(3, 40001, 0)];
        poll_at(&mut t, 1000, &three, &[]);
        t.apply_events(&[
            timed(TraceEvent::UdpInode {
                sk: 0xa0,
                inode: 1002,
            }),
            message(0xa0, true, 30),
        ]);
        let three = [sample(1, 53, 14), sample(2, 40000, 3), sample(3, 40001, 0)];
        poll_at(&mut t, 2000, &three, &[]);
        // Both clients end: 40000's notice comes with the poll that misses
        // it, 40001's later.
        let mut ended = notice(2, 40000);
        ended.key.remote_port = 53;
        ended.connected = true;
        poll_at(&mut t, 3000, &[sample(1, 53, 15)], &[ended]);
        let closed = t.closed();
        assert_eq!(closed.len(), 2);
        let c = &closed[0];
        assert_eq!(
            (c.sample.key.local_port, c.sample.key.remote_port),
            (40000, 53)
        );
        assert!(c.sample.connected && c.notice_seen && !c.notice_only);
        // Its lifetime drops as last polled: not the final count.
        assert_eq!((c.drops, c.drops_from), (Some(3), DropsFrom::LastPoll));
        assert_eq!((c.first_seen_ms, c.last_seen_ms), (Some(1000), Some(2000)));
        assert_eq!(c.lifetime_ms(), (1000, Some(3000)));
        assert_eq!(c.events.unwrap().out_bytes, 30);
        assert!(!closed[1].notice_seen);
        t.forget_closed();
        assert!(t.closed().is_empty());
        // The open socket keeps its counts (no window ended).
        assert_eq!(window_drops(&t), vec![(53, Some(5), false)]);
        // 40001's notice, coming after its report, is not a new socket.
        poll_at(&mut t, 4000, &[sample(1, 53, 15)], &[notice(3, 40001)]);
        assert!(t.closed().is_empty());
        // One open when the run began has no upper bound on its life.
        poll_at(&mut t, 5000, &[], &[]);
        let c = &t.closed()[0];
        assert_eq!((c.born_after_ms, c.lifetime_ms()), (None, (4000, None)));
        assert_eq!((c.drops, c.closed_by_ms), (Some(15), 5000));
    }

    #[test]
    fn a_socket_known_only_from_its_notice_is_reported_with_drops_unknown() {
        let mut t = UdpTracker::new();
        poll_at(&mut t, 0, &[], &[]);
        poll_at(&mut t, 1000, &[], &[notice(7, 40000)]);
        let mut counted = notice(8, 40001);
        counted.drops = Some(4);
        poll_at(&mut t, 2000, &[], &[counted]);
        let closed = t.closed();
        assert_eq!(closed.len(), 2);
        assert!(closed[0].notice_only && closed[0].first_seen_ms.is_none());
        assert_eq!(
            (closed[0].drops, closed[0].drops_from),
            (None, DropsFrom::Unknown)
        );
        assert_eq!(closed[0].lifetime_ms(), (0, Some(1000)));
        // A notice that carried the count gives it exactly.
        assert_eq!(
            (closed[1].drops, closed[1].drops_from),
            (Some(4), DropsFrom::CloseNotice)
        );
        t.forget_closed();
        assert!(t.closed().is_empty());
        assert_eq!(t.rows().count(), 0);
    }

    #[test]
    fn closes_past_the_bound_between_two_reports_are_counted_unreported() {
        let mut t = UdpTracker::new();
        poll_at(&mut t, 0, &[], &[]);
        let many: Vec<UdpSample> = (1..=NOTICE_ONLY_LIMIT + 2)
            .map(|c| notice(c, 40000))
            .collect();
        poll_at(&mut t, 1000, &[], &many);
        assert_eq!(t.closed().len() as u64, NOTICE_ONLY_LIMIT);
        assert_eq!(t.unreported(), 2);
        t.forget_closed();
        // The bound is per report: the next ones are kept again.
        poll_at(&mut t, 2000, &[], &[notice(NOTICE_ONLY_LIMIT + 9, 40000)]);
        assert_eq!(t.closed().len(), 1);
        t.forget_closed();
        assert_eq!(t.unreported(), 2);
    }

    #[test]
    fn notices_read_with_the_baseline_poll_are_before_the_window() {
        let mut t = UdpTracker::new();
        t.observe_with_notices(&[], &[], &[notice(7, 40000)], true);
        assert_eq!(counts(&t), (0, 0, 0));
    }

    #[test]
    fn notice_only_sockets_past_the_limit_are_counted_in_no_group() {
        let mut t = UdpTracker::new();
        t.observe_with_notices(&[], &[], &[], true);
        let many: Vec<UdpSample> = (1..=NOTICE_ONLY_LIMIT + 3)
            .map(|c| notice(c, 40000))
            .collect();
        t.observe_with_notices(&[], &[], &many, true);
        assert_eq!(t.rows().count() as u64, NOTICE_ONLY_LIMIT);
        assert_eq!(t.unlisted(), 3);
        assert_eq!(t.closed_in_window(), NOTICE_ONLY_LIMIT + 3);
        t.reset_window();
        assert_eq!((t.unlisted(), t.closed_in_window()), (0, 0));
    }

    fn timed(event: TraceEvent) -> Timed {
        Timed {
            time_ns: 0,
            probe: crate::model::event::Probe::Tracepoint,
            event,
            pid: None,
        }
    }

    fn message(sk: u64, sent: bool, bytes: i64) -> Timed {
        timed(TraceEvent::UdpMessage {
            sk,
            sent,
            bytes,
            peek: false,
        })
    }

    fn events_of(t: &UdpTracker, port: u16) -> UdpEventCounts {
        t.rows()
            .find(|r| r.sample.key.local_port == port)
            .and_then(|r| r.events)
            .unwrap()
    }

    #[test]
    fn sends_and_receives_count_on_the_socket_their_inode_names() {
        let mut t = UdpTracker::new();
        t.enable_events();
        t.observe(&[sample(1, 53, 0), sample(2, 40000, 0)], &[]);
        t.observe(&[sample(1, 53, 0), sample(2, 40000, 0)], &[]);
        // Inodes are cookie + 1000 in these samples.
        t.apply_events(&[
            message(0xa0, true, 5),
            timed(TraceEvent::UdpInode {
                sk: 0xa0,
                inode: 1002,
            }),
            message(0xa0, true, 100),
            message(0xa0, true, -11),
            timed(TraceEvent::UdpInode {
                sk: 0xb0,
                inode: 1001,
            }),
            message(0xb0, false, 100),
            message(0xb0, false, 0),
            message(0xb0, false, -11),
            timed(TraceEvent::UdpMessage {
                sk: 0xb0,
                sent: false,
                bytes: 100,
                peek: true,
            }),
            timed(TraceEvent::UdpInode {
                sk: 0xc0,
                inode: 99,
            }),
            message(0xc0, true, 1),
        ]);
        let sender = events_of(&t, 40000);
        // The first send came before its name, which the batch then gave.
        assert_eq!(
            (sender.out_datagrams, sender.out_bytes, sender.send_errors),
            (2, 105, 1)
        );
        let receiver = events_of(&t, 53);
        // An empty datagram is a datagram; a peek and EAGAIN are none.
        assert_eq!((receiver.in_datagrams, receiver.in_bytes), (2, 100));
        let stats = t.event_stats().unwrap();
        // 0xc0 is no socket of ours.
        assert_eq!(stats.unplaced_messages, 1);
        t.reset_window();
        assert_eq!(events_of(&t, 53), UdpEventCounts::default());
        assert_eq!(t.event_stats().unwrap().unplaced_messages, 0);
    }

    #[test]
    fn an_unbound_senders_first_datagram_waits_for_the_name_its_next_call_gives() {
        let mut t = UdpTracker::new();
        t.enable_events();
        t.observe(&[sample(2, 40000, 0)], &[]);
        t.observe(&[sample(2, 40000, 0)], &[]);
        let name = |port| {
            timed(TraceEvent::UdpName {
                sk: 0xa0,
                tuple: EventTuple {
                    local: "127.0.0.1".parse().unwrap(),
                    local_port: port,
                    remote: "0.0.0.0".parse().unwrap(),
                    remote_port: 0,
                },
            })
        };
        // Unconnected: the socket's peer is unset. A kprobe's entry names
        // it with no port yet (it binds in the call), then its receive's
        // entry with the port.
        t.apply_events(&[
            name(0),
            message(0xa0, true, 40),
            name(40000),
            message(0xa0, false, 120),
            message(0xb0, true, 7),
        ]);
        let counts = events_of(&t, 40000);
        assert_eq!(
            (counts.out_datagrams, counts.out_bytes, counts.in_datagrams),
            (1, 40, 1)
        );
        // 0xb0 was never named in the batch.
        assert_eq!(t.event_stats().unwrap().unplaced_messages, 1);
    }

    #[test]
    fn an_address_no_one_could_name_again_no_longer_counts_on_its_old_socket() {
        let mut t = UdpTracker::new();
        t.enable_events();
        t.observe(&[sample(1, 53, 0)], &[]);
        t.observe(&[sample(1, 53, 0)], &[]);
        t.apply_events(&[
            timed(TraceEvent::UdpInode {
                sk: 0xa0,
                inode: 1001,
            }),
            message(0xa0, false, 10),
            // Socket 53 closed; its address is another's, unreadable.
            timed(TraceEvent::UdpInode { sk: 0xa0, inode: 0 }),
            message(0xa0, true, 5),
            message(0xa0, false, 5),
        ]);
        let on_53 = events_of(&t, 53);
        assert_eq!((on_53.in_datagrams, on_53.out_datagrams), (1, 0));
        assert_eq!(t.event_stats().unwrap().unplaced_messages, 2);
    }

    #[test]
    fn a_closed_sockets_address_counts_nothing_on_it_after_the_poll_that_ended_it() {
        let mut t = UdpTracker::new();
        t.enable_events();
        t.observe(&[sample(1, 53, 0)], &[]);
        t.observe(&[sample(1, 53, 0)], &[]);
        let named = timed(TraceEvent::UdpInode {
            sk: 0xa0,
            inode: 1001,
        });
        t.apply_events(&[named, message(0xa0, false, 10)]);
        // Gone at the next poll: what it did before it is its own.
        t.observe(&[], &[]);
        t.apply_events(&[message(0xa0, false, 10)]);
        // Not yet reported; the address (same descriptor, so named by
        // nothing new) is another socket's now.
        t.observe(&[], &[]);
        t.apply_events(&[message(0xa0, true, 5)]);
        let c = &t.closed()[0];
        assert_eq!(
            (
                c.events.unwrap().in_datagrams,
                c.events.unwrap().out_datagrams
            ),
            (2, 0)
        );
        assert_eq!(t.event_stats().unwrap().unplaced_messages, 1);
    }

    #[test]
    fn queue_failures_go_to_the_one_socket_on_their_port() {
        let mut t = UdpTracker::new();
        t.enable_events();
        let mut other = sample(3, 54, 0);
        other.key.local = "127.0.0.2".parse().unwrap();
        let samples = [sample(1, 53, 0), sample(2, 54, 0), other];
        t.observe(&samples, &[]);
        t.observe(&samples, &[]);
        let fail = |rc, port, local: &str| {
            timed(TraceEvent::UdpQueueFail {
                rc,
                local_port: port,
                local: Some(local.parse().unwrap()),
                remote: None,
            })
        };
        t.apply_events(&[
            fail(-12, 53, "127.0.0.1"),
            fail(-105, 53, "127.0.0.1"),
            // Port 54 has two sockets: the address tells them apart.
            fail(-12, 54, "127.0.0.2"),
            timed(TraceEvent::UdpQueueFail {
                rc: -12,
                local_port: 54,
                local: None,
                remote: None,
            }),
            fail(-12, 55, "127.0.0.1"),
        ]);
        let on_53 = events_of(&t, 53);
        assert_eq!((on_53.rcvbuf_errors, on_53.mem_errors), (1, 1));
        let rcvbuf: u64 = t
            .rows()
            .filter(|r| r.sample.key.local_port == 54)
            .map(|r| r.events.unwrap().rcvbuf_errors)
            .sum();
        assert_eq!(rcvbuf, 1);
        assert_eq!(t.event_stats().unwrap().unplaced_queue_fails, 2);
    }

    #[test]
    fn no_ports_are_named_by_the_port_unreachable_of_their_datagram() {
        let mut t = UdpTracker::new();
        t.enable_events();
        t.observe(&[], &[]);
        t.observe(&[], &[]);
        let drop = |skb, name: &str| {
            timed(TraceEvent::UdpDrop {
                reason: crate::model::event::DropReason {
                    code: 3,
                    name: Some(name.to_string()),
                },
                sk: 0,
                skb,
            })
        };
        let icmp = |skb, port| {
            timed(TraceEvent::IcmpUnreachable {
                skb,
                port_unreachable: true,
                local: "10.0.0.1".parse().unwrap(),
                port,
                sender: "10.0.0.2".parse().unwrap(),
                sender_port: 4000,
            })
        };
        t.apply_events(&[
            icmp(0x10, 5999),
            drop(0x10, "NO_SOCKET"),
            icmp(0x10, 5999),
            drop(0x10, "NO_SOCKET"),
            icmp(0x20, 6000),
            drop(0x20, "NO_SOCKET"),
            // No ICMP error (rate-limited): the port is unknown.
            drop(0x30, "NO_SOCKET"),
            drop(0x40, "SOCKET_RCVBUFF"),
        ]);
        let stats = t.event_stats().unwrap();
        let ports: Vec<(u16, u64)> = stats
            .no_ports
            .iter()
            .map(|r| (r.port, r.datagrams))
            .collect();
        assert_eq!(ports, vec![(5999, 2), (6000, 1)]);
        assert_eq!(stats.no_ports_unknown, 1);
        assert_eq!(stats.drops_by_reason.get("NO_SOCKET"), Some(&4));
        let sums = event_sums(t.rows(), UdpProto::Udp, &stats);
        assert_eq!(sums.no_ports, 4);
    }

    #[test]
    fn an_unsampled_namespaces_sockets_are_not_closed() {
        let mut t = UdpTracker::new();
        let mut s = sample(1, 53, 0);
        s.key.netns = 77;
        t.observe(&[s], &[]);
        t.observe(&[], &[77]);
        assert_eq!(t.closed_in_window(), 0);
    }

    #[test]
    fn grouping_by_lport_puts_drops_on_their_port_and_filters_apply() {
        let mut t = UdpTracker::new();
        t.observe(&[sample(1, 53, 0), sample(2, 54, 0), sample(3, 54, 0)], &[]);
        t.observe(&[sample(1, 53, 0), sample(2, 54, 5), sample(3, 54, 6)], &[]);
        let all = FilterSet::default();
        let groups = group(t.rows(), Index::Lport, &all, None);
        assert_eq!(groups[0].key, GroupKey::Lport(54));
        assert_eq!((groups[0].sockets, groups[0].drops), (2, Some(11)));
        assert_eq!(groups[1].drops, Some(0));
        let only_53: FilterSet = crate::filter::FilterSet::parse(&["*:53-*".to_string()]).unwrap();
        let groups = group(t.rows(), Index::Lport, &only_53, None);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].key, GroupKey::Lport(53));
    }

    #[test]
    fn section_leaves_quiet_groups_out_unless_zeros() {
        let mut busy = UdpGroup::new(GroupKey::Lport(1));
        busy.drops = Some(3);
        busy.sockets = 1;
        let mut quiet = UdpGroup::new(GroupKey::Lport(2));
        quiet.drops = Some(0);
        quiet.sockets = 2;
        let section = UdpSection::new(vec![busy.clone(), quiet.clone()], false, 0);
        assert_eq!((section.groups.len(), section.quiet_groups), (1, 1));
        assert_eq!((section.sockets, section.drops), (3, Some(3)));
        let section = UdpSection::new(vec![busy, quiet], true, 0);
        assert_eq!(section.groups.len(), 2);
    }

    #[test]
    fn system_sums_v4_and_v6_and_sets_drops_against_in_and_rcvbuf_errors() {
        let mut deltas = SystemCounters::default();
        deltas.values.insert("Udp:RcvbufErrors".into(), 10);
        deltas.values.insert("Udp6:RcvbufErrors".into(), 5);
        deltas.values.insert("Udp:InErrors".into(), 12);
        deltas.values.insert("Udp6:InErrors".into(), 5);
        deltas.values.insert("Udp:NoPorts".into(), 3);
        let udp = system_for(UdpProto::Udp, &deltas, 15, None).unwrap();
        let row = |n: &str| udp.rows.iter().find(|r| r.name == n).unwrap().clone();
        assert_eq!(row("RcvbufErrors").system, 15);
        assert_eq!(row("RcvbufErrors").residual, Some(0));
        assert!(row("RcvbufErrors").approx);
        assert_eq!(row("InErrors").residual, Some(2));
        assert!(!row("InErrors").approx);
        assert_eq!((row("NoPorts").system, row("NoPorts").sockets), (3, None));
        assert!(system_for(UdpProto::UdpLite, &deltas, 0, None).is_none());
        // With events: the counters they fill are set against them, exactly.
        let events = EventSums {
            sockets: UdpEventCounts {
                rcvbuf_errors: 14,
                in_datagrams: 2,
                ..UdpEventCounts::default()
            },
            no_ports: 3,
            csum_errors: 0,
        };
        let udp = system_for(UdpProto::Udp, &deltas, 15, Some(&events)).unwrap();
        let row = |n: &str| udp.rows.iter().find(|r| r.name == n).unwrap().clone();
        assert_eq!(row("RcvbufErrors").residual, Some(1));
        assert!(!row("RcvbufErrors").approx);
        assert_eq!(row("RcvbufErrors").source, "events");
        assert_eq!(
            (row("NoPorts").sockets, row("NoPorts").residual),
            (Some(3), Some(0))
        );
        assert_eq!(row("InErrors").source, "sockets' RcvDrops");
    }
}
