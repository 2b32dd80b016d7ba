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

#[derive(Debug, Clone)]
struct Tracked {
    sample: UdpSample,
    /// Drops counted in the current window.
    drops: u64,
    /// Whether it closed: no later poll found it, or its notice came.
    closed: bool,
    seen_at: u64,
    /// No poll saw it: only its close notice, which has no drop count.
    notice_only: bool,
}

/// One socket's account for the current window.
#[derive(Debug, Clone, Copy)]
pub struct UdpRow<'a> {
    pub sample: &'a UdpSample,
    /// Drops in the window (a row's lifetime drops in a snapshot); None
    /// when its source gives no drop count (a close notice, /proc without
    /// the column).
    pub drops: Option<u64>,
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
}

impl UdpTracker {
    pub fn new() -> UdpTracker {
        UdpTracker::default()
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
                })
                .or_insert_with(|| Tracked {
                    sample: *sample,
                    drops: if baseline {
                        0
                    } else {
                        u64::from(sample.drops.unwrap_or(0))
                    },
                    closed: false,
                    seen_at: poll,
                    notice_only: false,
                });
        }
        for (id, tracked) in self.sockets.iter_mut() {
            let unseen = tracked.seen_at != self.polls && !tracked.closed;
            if unseen && !unsampled_netns.contains(&tracked.sample.key.netns) {
                tracked.closed = true;
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
        if let Some(tracked) = self.sockets.get_mut(&id) {
            tracked.closed = true;
            // The tuple it ended with: a poll may have seen it bound but
            // not yet connect()ed.
            tracked.sample.key = notice.key;
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
                drops: 0,
                closed: true,
                seen_at: self.polls,
                notice_only: true,
            },
        );
    }

    /// Every socket's account for the window, closed ones included.
    pub fn rows(&self) -> impl Iterator<Item = UdpRow<'_>> {
        self.sockets.values().map(|t| UdpRow {
            sample: &t.sample,
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
        drops: sample.drops.map(u64::from),
        closed: false,
        notice_only: false,
    })
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
        self.drops.unwrap_or(0) == 0 && self.recv_queue == 0 && self.closed == 0
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

/// One protocol's namespace deltas set against the drops of every
/// socket the run tracked (unfiltered: the MIB is not filtered either).
/// None when the namespace has no such MIB section.
pub fn system_for(
    proto: UdpProto,
    deltas: &SystemCounters,
    socket_drops: u64,
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
            let (sockets, approx) = match name {
                "InErrors" => (Some(socket_drops), false),
                "RcvbufErrors" => (Some(socket_drops), true),
                _ => (None, false),
            };
            MibRow {
                name,
                system,
                sockets,
                residual: sockets.map(|s| system.wrapping_sub(s as i64)),
                approx,
            }
        })
        .collect();
    any.then_some(UdpSystem {
        proto: proto.mib(),
        rows,
    })
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
        let udp = system_for(UdpProto::Udp, &deltas, 15).unwrap();
        let row = |n: &str| udp.rows.iter().find(|r| r.name == n).unwrap().clone();
        assert_eq!(row("RcvbufErrors").system, 15);
        assert_eq!(row("RcvbufErrors").residual, Some(0));
        assert!(row("RcvbufErrors").approx);
        assert_eq!(row("InErrors").residual, Some(2));
        assert!(!row("InErrors").approx);
        assert_eq!((row("NoPorts").system, row("NoPorts").sockets), (3, None));
        assert!(system_for(UdpProto::UdpLite, &deltas, 0).is_none());
    }
}
