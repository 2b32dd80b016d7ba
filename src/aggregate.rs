//! Per-socket rows into groups by the chosen index, sorted by activity, plus
//! the namespace-wide (`--system`) deltas and the unattributed residual.
//! Pure: everything here is built from rows and counters handed in.

use rustc_hash::FxHashMap;
use std::net::IpAddr;

use crate::counters::{Counter, Counters};
use crate::diff::SocketRow;
use crate::model::{unmap, EndpointDisplay, SocketKey, SocketSample, StateHistory};
use crate::source::procfs::SystemCounters;

/// What sockets are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Index {
    #[default]
    Tuple,
    Laddr,
    Raddr,
    Lport,
    Rport,
    Netns,
    Container,
    Process,
}

impl Index {
    pub const NAMES: [&'static str; 8] = [
        "tuple",
        "laddr",
        "raddr",
        "lport",
        "rport",
        "netns",
        "container",
        "process",
    ];

    pub fn name(self) -> &'static str {
        Index::NAMES[self as usize]
    }

    pub fn key_of(self, key: &SocketKey) -> GroupKey {
        match self {
            Index::Tuple => GroupKey::Tuple(*key),
            Index::Laddr => GroupKey::Laddr(unmap(key.local)),
            Index::Raddr => GroupKey::Raddr(unmap(key.remote)),
            Index::Lport => GroupKey::Lport(key.local_port),
            Index::Rport => GroupKey::Rport(key.remote_port),
            // Containers are namespaces merged by label afterwards
            // (merge_by_container).
            Index::Netns | Index::Container => GroupKey::Netns(key.netns),
            // Needs the socket's inode: see Grouper::key_for.
            Index::Process => GroupKey::Process(0),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupKey {
    Tuple(SocketKey),
    Laddr(IpAddr),
    Raddr(IpAddr),
    Lport(u16),
    Rport(u16),
    /// A namespace by inode; labels live in the report.
    Netns(u64),
    /// A container: the inode of one of its namespaces stands for it.
    Container(u64),
    /// A process by pid; 0 for sockets whose owner is unknown.
    Process(u32),
}

impl std::fmt::Display for GroupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupKey::Tuple(key) => write!(f, "{key}"),
            GroupKey::Laddr(a) => write!(f, "Local address: {a}"),
            GroupKey::Raddr(a) => write!(f, "Remote address: {a}"),
            GroupKey::Lport(p) => write!(f, "Local port: {p}"),
            GroupKey::Rport(p) => write!(f, "Remote port: {p}"),
            GroupKey::Netns(n) => write!(f, "Network namespace: netns:[{n}]"),
            GroupKey::Container(n) => write!(f, "Container of netns:[{n}]"),
            GroupKey::Process(0) => write!(f, "Process: ? (owner not readable or gone)"),
            GroupKey::Process(NO_OWNER) => write!(
                f,
                "Process: - (none holds them: TIME_WAIT, orphaned or half-open sockets)"
            ),
            GroupKey::Process(pid) => write!(f, "Process: {pid}"),
        }
    }
}

impl GroupKey {
    /// The bare value (`10.0.0.1`, `80`, or the tuple), for tables and JSON.
    pub fn value(&self) -> String {
        match self {
            GroupKey::Tuple(k) => format!(
                "{} {}",
                EndpointDisplay(k.local, k.local_port),
                EndpointDisplay(k.remote, k.remote_port)
            ),
            GroupKey::Laddr(a) | GroupKey::Raddr(a) => a.to_string(),
            GroupKey::Lport(p) | GroupKey::Rport(p) => p.to_string(),
            GroupKey::Netns(n) | GroupKey::Container(n) => n.to_string(),
            GroupKey::Process(0) => "?".to_string(),
            GroupKey::Process(NO_OWNER) => "-".to_string(),
            GroupKey::Process(pid) => pid.to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Group<'a> {
    pub key: GroupKey,
    pub counters: Counters,
    pub sockets: usize,
    pub closed: usize,
    /// With index=tuple: the newest socket of the tuple, for its gauges.
    pub sample: Option<&'a SocketSample>,
    /// With --processes and index=tuple: the process holding the socket
    /// (`command[pid]`, `?` when it cannot be read).
    pub owner: Option<String>,
    /// With index=tuple and precision mode: the states kernel events saw.
    pub history: StateHistory,
}

/// Accumulates rows into groups. Groups live in a Vec and the map holds
/// positions, so a growing map moves small entries, not groups.
pub struct Grouper<'a, 'o> {
    index: Index,
    positions: FxHashMap<GroupKey, usize>,
    groups: Vec<Group<'a>>,
    owners: Option<&'o dyn OwnerLookup>,
}

impl<'a, 'o> Grouper<'a, 'o> {
    pub fn new(index: Index, expected: usize) -> Grouper<'a, 'o> {
        Grouper {
            index,
            positions: FxHashMap::with_capacity_and_hasher(expected, Default::default()),
            groups: Vec::with_capacity(expected),
            owners: None,
        }
    }

    /// Who owns which socket, for index=process and tuple owners.
    pub fn with_owners(mut self, owners: Option<&'o dyn OwnerLookup>) -> Grouper<'a, 'o> {
        self.owners = owners;
        self
    }

    fn key_for(&self, sample: &SocketSample) -> GroupKey {
        match self.index {
            Index::Process if sample.inode == 0 => GroupKey::Process(NO_OWNER),
            Index::Process => GroupKey::Process(
                self.owners
                    .and_then(|o| o.pid_of(sample.inode))
                    .unwrap_or(0),
            ),
            index => index.key_of(&sample.key),
        }
    }

    fn group_of(&mut self, sample: &SocketSample) -> &mut Group<'a> {
        let key = self.key_for(sample);
        let groups = &mut self.groups;
        let position = *self.positions.entry(key).or_insert_with(|| {
            groups.push(Group {
                key,
                counters: Counters::default(),
                sockets: 0,
                closed: 0,
                sample: None,
                owner: None,
                history: StateHistory::default(),
            });
            groups.len() - 1
        });
        &mut self.groups[position]
    }

    /// Adds a row's counts only: for rows whose sample does not outlive the
    /// call (streamed dumps); such groups carry no sample for gauges.
    pub fn add_counts(&mut self, row: &SocketRow<'_>) {
        let group = self.group_of(row.sample);
        group.counters.add(&row.counters);
        group.counters.mark_present(Counter::CurrEstab);
        if !row.closed && row.sample.state.counts_as_established() {
            group.counters.bump(Counter::CurrEstab, 1);
        }
        // A TIME_WAIT that follows a socket is that connection's tail, not
        // another socket: only one that counted something is one.
        let tail = row.sample.is_mini_socket() && !row.closed && row.counters.is_all_zero();
        if !tail {
            group.sockets += 1;
        }
        if row.closed {
            group.closed += 1;
        }
    }

    /// Adds a row; with index=tuple its sample is kept for the gauges.
    pub fn add(&mut self, row: SocketRow<'a>) {
        self.add_counts(&row);
        if self.index == Index::Tuple {
            let group = self.group_of(row.sample);
            // Prefer a present full socket, then a closed one (which has
            // counters and an owner), then a mini socket.
            let rank = |full: bool, present: bool| u8::from(full) * 2 + u8::from(full && present);
            let better = match &group.sample {
                None => true,
                Some(kept) => {
                    rank(row.sample.tcp_info.is_some(), !row.closed)
                        > rank(kept.tcp_info.is_some(), false)
                }
            };
            if better {
                group.sample = Some(row.sample);
            }
            if !row.history.is_empty() {
                group.history = row.history;
            }
        }
    }

    /// The groups, busiest first.
    pub fn finish(mut self) -> Vec<Group<'a>> {
        if let (Some(owners), Index::Tuple) = (self.owners, self.index) {
            for group in &mut self.groups {
                group.owner = group.sample.map(|s| owner_label(owners, s.inode));
            }
        }
        sort_by_activity(&mut self.groups);
        self.groups
    }
}

/// Who holds which socket, as the groups ask it; where the answer comes
/// from (/proc/PID/fd, a test's table) is not their business.
pub trait OwnerLookup {
    /// The pid of the process holding socket `inode`.
    fn pid_of(&self, inode: u64) -> Option<u32>;
    /// `command[pid]` of the process holding socket `inode`.
    fn label_of(&self, inode: u64) -> Option<String>;
    /// The command of process `pid`.
    fn command_of(&self, pid: u32) -> Option<&str>;
}

/// `command[pid]` of a socket's owner, `?` when unknown, `-` when no
/// process holds it (inode 0: TIME_WAIT, orphaned and half-open sockets).
pub fn owner_label(owners: &dyn OwnerLookup, inode: u64) -> String {
    if inode == 0 {
        return "-".to_string();
    }
    owners.label_of(inode).unwrap_or_else(|| "?".to_string())
}

/// The process key of sockets no process holds (no pid is this large).
pub const NO_OWNER: u32 = u32::MAX;

/// Groups rows by `index`. Sockets still present count toward CurrEstab.
pub fn group_rows<'a>(rows: impl Iterator<Item = SocketRow<'a>>, index: Index) -> Vec<Group<'a>> {
    group_rows_owned(rows, index, None)
}

/// [`group_rows`], knowing who owns which socket (index=process, owners of
/// tuples).
pub fn group_rows_owned<'a>(
    rows: impl Iterator<Item = SocketRow<'a>>,
    index: Index,
    owners: Option<&dyn OwnerLookup>,
) -> Vec<Group<'a>> {
    let mut grouper = Grouper::new(index, rows.size_hint().0).with_owners(owners);
    for row in rows {
        grouper.add(row);
    }
    grouper.finish()
}

/// One socket as its own group (index=tuple), as a streamed snapshot
/// prints it.
pub fn single_socket_group<'a>(row: SocketRow<'a>) -> Group<'a> {
    let mut counters = row.counters;
    counters.mark_present(Counter::CurrEstab);
    if !row.closed && row.sample.state.counts_as_established() {
        counters.bump(Counter::CurrEstab, 1);
    }
    Group {
        key: GroupKey::Tuple(row.sample.key),
        counters,
        sockets: 1,
        closed: usize::from(row.closed),
        sample: Some(row.sample),
        owner: None,
        history: row.history,
    }
}

/// Merges namespace groups whose namespaces carry the same container label
/// into one group per container; namespaces without one keep their own.
pub fn merge_by_container<'a>(
    groups: Vec<Group<'a>>,
    containers: &std::collections::BTreeMap<u64, String>,
) -> Vec<Group<'a>> {
    let mut by_label: std::collections::BTreeMap<String, Group<'a>> = Default::default();
    for group in groups {
        let GroupKey::Netns(inode) = group.key else {
            continue;
        };
        let label = containers
            .get(&inode)
            .cloned()
            .unwrap_or_else(|| format!("netns:[{inode}]"));
        match by_label.get_mut(&label) {
            Some(merged) => {
                merged.counters.add(&group.counters);
                merged.sockets += group.sockets;
                merged.closed += group.closed;
            }
            None => {
                by_label.insert(
                    label,
                    Group {
                        key: GroupKey::Container(inode),
                        ..group
                    },
                );
            }
        }
    }
    let mut merged: Vec<Group<'a>> = by_label.into_values().collect();
    sort_by_activity(&mut merged);
    merged
}

pub fn sort_by_activity(groups: &mut [Group<'_>]) {
    // Groups are a few hundred bytes: sort keys, then move each group once.
    groups.sort_by_cached_key(|g| (std::cmp::Reverse(g.counters.activity()), g.key));
}

/// Drops groups in which nothing happened (for `--nozeros` window reports).
pub fn drop_idle(groups: &mut Vec<Group<'_>>) {
    groups.retain(|g| {
        g.counters
            .iter()
            .any(|(c, v)| v != 0 && c != Counter::CurrEstab)
    });
}

/// Sum of every row, for the unattributed residual.
pub fn total<'a>(rows: impl Iterator<Item = SocketRow<'a>>) -> Counters {
    let mut sum = Counters::default();
    for row in rows {
        sum.add(&row.counters);
    }
    sum
}

/// The counters both a socket and the namespace MIBs have, with the MIB key.
pub const SHARED_WITH_MIB: [(Counter, &str); 12] = [
    (Counter::InSegs, "Tcp:InSegs"),
    (Counter::OutSegs, "Tcp:OutSegs"),
    (Counter::RetransSegs, "Tcp:RetransSegs"),
    (Counter::ActiveOpens, "Tcp:ActiveOpens"),
    (Counter::PassiveOpens, "Tcp:PassiveOpens"),
    (Counter::AttemptFails, "Tcp:AttemptFails"),
    (Counter::EstabResets, "Tcp:EstabResets"),
    (Counter::OutRsts, "Tcp:OutRsts"),
    (Counter::TCPSynRetrans, "TcpExt:TCPSynRetrans"),
    (Counter::ListenDrops, "TcpExt:ListenDrops"),
    (Counter::ListenOverflows, "TcpExt:ListenOverflows"),
    (Counter::DelayedACKs, "TcpExt:DelayedACKs"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Residual {
    pub counter: Counter,
    pub system: i64,
    pub sockets: i64,
}

impl Residual {
    /// What the namespace counted that no socket seen accounts for.
    pub fn unattributed(&self) -> i64 {
        self.system - self.sockets
    }

    /// Why the sockets can count more than the namespace, where the two
    /// count differently: said when the residual is below zero.
    pub fn why_below_zero(&self) -> Option<&'static str> {
        if self.unattributed() >= 0 {
            return None;
        }
        match self.counter {
            Counter::InSegs => Some(
                "the namespace counts a GRO-merged packet once, a socket each segment it carried",
            ),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SystemSection {
    pub deltas: SystemCounters,
    pub residuals: Vec<Residual>,
    /// Namespaces whose deltas are summed here (--all-netns).
    pub namespaces: usize,
}

pub fn system_section(deltas: SystemCounters, sockets_total: &Counters) -> SystemSection {
    let residuals = SHARED_WITH_MIB
        .iter()
        .filter_map(|(counter, key)| {
            Some(Residual {
                counter: *counter,
                system: deltas.get(key)?,
                sockets: sockets_total.get(*counter)? as i64,
            })
        })
        .collect();
    SystemSection {
        deltas,
        residuals,
        namespaces: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TcpState;

    /// Socket 7 is nginx's (pid 812); every other is unreadable.
    struct OneOwner;

    impl OwnerLookup for OneOwner {
        fn pid_of(&self, inode: u64) -> Option<u32> {
            (inode == 7).then_some(812)
        }
        fn label_of(&self, inode: u64) -> Option<String> {
            (inode == 7).then(|| "nginx[812]".to_string())
        }
        fn command_of(&self, pid: u32) -> Option<&str> {
            (pid == 812).then_some("nginx")
        }
    }

    #[test]
    fn sockets_no_process_holds_are_told_from_unreadable_owners() {
        assert_eq!(owner_label(&OneOwner, 7), "nginx[812]");
        assert_eq!(owner_label(&OneOwner, 9), "?");
        // TIME_WAIT and orphaned sockets have inode 0: no holder at all.
        assert_eq!(owner_label(&OneOwner, 0), "-");
        let mut held = sample("10.0.0.1", 80, "10.0.0.2", 1000);
        held.inode = 7;
        let mut time_wait = sample("10.0.0.1", 80, "10.0.0.2", 1001);
        time_wait.inode = 0;
        let mut unreadable = sample("10.0.0.1", 80, "10.0.0.2", 1002);
        unreadable.inode = 9;
        let grouper = Grouper::new(Index::Process, 4).with_owners(Some(&OneOwner));
        assert_eq!(grouper.key_for(&held), GroupKey::Process(812));
        assert_eq!(grouper.key_for(&time_wait), GroupKey::Process(NO_OWNER));
        assert_eq!(grouper.key_for(&unreadable), GroupKey::Process(0));
        assert_eq!(GroupKey::Process(NO_OWNER).value(), "-");
    }

    fn sample(l: &str, lp: u16, r: &str, rp: u16) -> SocketSample {
        SocketSample::bare(
            SocketKey::new(l.parse().unwrap(), lp, r.parse().unwrap(), rp),
            1,
            TcpState::Established,
        )
    }

    fn counters(bytes: u64) -> Counters {
        let mut c = Counters::default();
        c.set(Counter::BytesSent, bytes, false);
        c
    }

    #[test]
    fn lport_and_raddr_group_and_sum() {
        let samples = [
            sample("10.0.0.1", 80, "10.0.0.2", 1000),
            sample("10.0.0.1", 80, "10.0.0.3", 1001),
            sample("10.0.0.1", 22, "10.0.0.2", 1002),
            sample("::ffff:10.0.0.1", 80, "::ffff:10.0.0.2", 1003),
        ];
        let rows = || {
            samples.iter().enumerate().map(|(i, s)| SocketRow {
                sample: s,
                counters: counters(10 * (i as u64 + 1)),
                closed: false,
                history: Default::default(),
            })
        };
        let by_port = group_rows(rows(), Index::Lport);
        assert_eq!(by_port.len(), 2);
        assert_eq!(by_port[0].key, GroupKey::Lport(80));
        assert_eq!(
            by_port[0].counters.get(Counter::BytesSent),
            Some(10 + 20 + 40)
        );
        assert_eq!(by_port[0].counters.get(Counter::CurrEstab), Some(3));
        let by_raddr = group_rows(rows(), Index::Raddr);
        let two = by_raddr
            .iter()
            .find(|g| g.key == GroupKey::Raddr("10.0.0.2".parse().unwrap()))
            .unwrap();
        // The mapped IPv6 peer joins its IPv4 address.
        assert_eq!(two.counters.get(Counter::BytesSent), Some(10 + 30 + 40));
        assert_eq!(two.sockets, 3);
    }

    #[test]
    fn closed_sockets_do_not_count_as_established() {
        let s = sample("10.0.0.1", 80, "10.0.0.2", 1000);
        let rows = [SocketRow {
            sample: &s,
            counters: counters(1),
            closed: true,
            history: Default::default(),
        }];
        let groups = group_rows(rows.into_iter(), Index::Tuple);
        assert_eq!(groups[0].counters.get(Counter::CurrEstab), Some(0));
        assert_eq!(groups[0].closed, 1);
    }

    #[test]
    fn residual_is_system_minus_sockets() {
        let mut deltas = SystemCounters::default();
        deltas.values.insert("Tcp:OutSegs".into(), 120);
        let mut sockets = Counters::default();
        sockets.set(Counter::OutSegs, 100, false);
        let section = system_section(deltas, &sockets);
        assert_eq!(section.residuals.len(), 1);
        assert_eq!(section.residuals[0].unattributed(), 20);
    }

    #[test]
    fn a_residual_below_zero_says_why_where_the_counts_differ() {
        let gro = Residual {
            counter: Counter::InSegs,
            system: 88,
            sockets: 751,
        };
        assert!(gro.why_below_zero().unwrap().contains("GRO"));
        let exact = Residual {
            counter: Counter::InSegs,
            system: 751,
            sockets: 751,
        };
        assert_eq!(exact.why_below_zero(), None);
    }

    #[test]
    fn a_time_wait_after_its_connection_is_not_another_socket() {
        let mut full = sample("10.0.0.1", 5000, "10.0.0.2", 80);
        full.tcp_info = crate::model::tcp_info::TcpInfo::from_bytes(&[0u8; 232]);
        full.inode = 77;
        let mut tail = sample("10.0.0.1", 5000, "10.0.0.2", 80);
        tail.state = TcpState::TimeWait;
        let rows = [
            SocketRow {
                sample: &tail,
                counters: Counters::default(),
                closed: false,
                history: Default::default(),
            },
            SocketRow {
                sample: &full,
                counters: counters(100),
                closed: true,
                history: Default::default(),
            },
        ];
        let groups = group_rows(rows.into_iter(), Index::Tuple);
        assert_eq!(groups.len(), 1);
        assert_eq!((groups[0].sockets, groups[0].closed), (1, 1));
        // The closed full socket is the one shown (it has an owner).
        assert_eq!(groups[0].sample.map(|s| s.inode), Some(77));
    }
}
