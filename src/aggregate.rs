//! Per-socket rows into groups by the chosen index, sorted by activity, plus
//! the namespace-wide (`--system`) deltas and the unattributed residual.
//! Pure: everything here is built from rows and counters handed in.

use rustc_hash::FxHashMap;
use std::net::IpAddr;

use crate::counters::{Counter, Counters};
use crate::diff::{Holder, SocketRow};
use crate::model::{unmap, EndpointDisplay, SocketKey, SocketSample, StateHistory, TcpState};
use crate::rtt::RttHistogram;
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
    /// Kubernetes pods and their containers, by the socket's owner.
    Pod,
}

impl Index {
    pub const NAMES: [&'static str; 9] = [
        "tuple",
        "laddr",
        "raddr",
        "lport",
        "rport",
        "netns",
        "container",
        "process",
        "pod",
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
            // By owner (Grouper::key_for), else by namespace.
            Index::Pod => GroupKey::Netns(key.netns),
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
    /// A process by pid; 0 for sockets whose owner is unknown,
    /// [`NO_OWNER`] for those no process holds, [`UNSEEN_OWNER`] for those
    /// that closed before any poll saw them.
    Process(u32),
    /// A pod's container (or what names a socket no pod holds): the
    /// position of its label in the report's `pod_labels`.
    Pod(u32),
    /// Closed sockets of a window past the bound of those kept one by one,
    /// whose own group cannot be kept (index=tuple, or past the bound of
    /// folded groups): counted here so that totals stay whole.
    Unlisted,
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
            GroupKey::Process(UNSEEN_OWNER) => write!(f, "Process: {UNSEEN_OWNER_VALUE}"),
            GroupKey::Process(pid) => write!(f, "Process: {pid}"),
            GroupKey::Pod(n) => write!(f, "Pod #{n}"),
            GroupKey::Unlisted => write!(
                f,
                "Closed sockets not listed one by one (past this window's bound): counted here"
            ),
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
            GroupKey::Process(UNSEEN_OWNER) => UNSEEN_OWNER_VALUE.to_string(),
            GroupKey::Process(pid) => pid.to_string(),
            GroupKey::Pod(n) => format!("#{n}"),
            GroupKey::Unlisted => UNLISTED_VALUE.to_string(),
        }
    }
}

/// The unlisted group's key in tables and exporter labels.
pub const UNLISTED_VALUE: &str = "(closed, unlisted)";

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
    /// Its sockets present in TIME_WAIT.
    pub time_wait: usize,
    /// Every socket of it is present in TIME_WAIT: reports fold such
    /// groups into one line unless asked to list them.
    pub only_time_wait: bool,
    /// `sample` is a closed socket's: only what stays meaningful after a
    /// close is shown of it.
    pub sample_closed: bool,
    /// Its sockets' smoothed RTT, sampled at each poll and close notice.
    pub rtt: RttHistogram,
}

impl Group<'_> {
    /// A group of no socket yet, as fixtures and folds start one.
    pub fn empty(key: GroupKey) -> Group<'static> {
        Group {
            key,
            counters: Counters::default(),
            sockets: 0,
            closed: 0,
            sample: None,
            owner: None,
            history: StateHistory::default(),
            time_wait: 0,
            only_time_wait: false,
            sample_closed: false,
            rtt: RttHistogram::default(),
        }
    }

    /// Adds another group's sockets and counts to this one's (merging
    /// groups by label).
    pub fn absorb(&mut self, other: &Group<'_>) {
        self.counters.add(&other.counters);
        self.sockets += other.sockets;
        self.closed += other.closed;
        self.time_wait += other.time_wait;
        self.only_time_wait &= other.only_time_wait;
        self.rtt.merge(&other.rtt);
    }
}

/// What a report's groups are ordered by: `activity` (bytes and segments
/// both ways, an open counting as 1,000) or one counter's value, largest
/// first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    #[default]
    Activity,
    Counter(Counter),
}

impl SortBy {
    /// `activity` or a counter's name as reports print it, in any case.
    pub fn parse(text: &str) -> Option<SortBy> {
        if text.eq_ignore_ascii_case("activity") {
            return Some(SortBy::Activity);
        }
        Counter::ALL
            .iter()
            .find(|c| c.name().eq_ignore_ascii_case(text))
            .map(|c| SortBy::Counter(*c))
    }

    pub fn name(self) -> &'static str {
        match self {
            SortBy::Activity => "activity",
            SortBy::Counter(c) => c.name(),
        }
    }

    /// The value a group is ranked by.
    pub fn value(self, counters: &Counters) -> u64 {
        match self {
            SortBy::Activity => counters.activity(),
            SortBy::Counter(c) => counters.value(c),
        }
    }
}

/// Positions of `groups` in the order `by` ranks them, largest first; ties
/// by activity, then by key, so the order is the same run after run.
pub fn ranked(groups: &[Group<'_>], positions: &mut [usize], by: SortBy) {
    positions.sort_by_cached_key(|&i| {
        let g = &groups[i];
        (
            std::cmp::Reverse(by.value(&g.counters)),
            std::cmp::Reverse(g.counters.activity()),
            g.key,
        )
    });
}

/// Accumulates rows into groups. Groups live in a Vec and the map holds
/// positions, so a growing map moves small entries, not groups.
pub struct Grouper<'a, 'o> {
    index: Index,
    positions: FxHashMap<GroupKey, usize>,
    groups: Vec<Group<'a>>,
    owners: Option<&'o dyn OwnerLookup>,
    /// A snapshot's rows: no TIME_WAIT socket follows its connection's
    /// full socket in them, so each is a socket of its own.
    snapshot: bool,
}

impl<'a, 'o> Grouper<'a, 'o> {
    pub fn new(index: Index, expected: usize) -> Grouper<'a, 'o> {
        Grouper {
            index,
            positions: FxHashMap::with_capacity_and_hasher(expected, Default::default()),
            groups: Vec::with_capacity(expected),
            owners: None,
            snapshot: false,
        }
    }

    /// Groups a snapshot's rows (`--once`), where every TIME_WAIT socket
    /// counts as a socket.
    pub fn for_snapshot(mut self) -> Grouper<'a, 'o> {
        self.snapshot = true;
        self
    }

    /// Who owns which socket, for index=process and tuple owners.
    pub fn with_owners(mut self, owners: Option<&'o dyn OwnerLookup>) -> Grouper<'a, 'o> {
        self.owners = owners;
        self
    }

    /// The group a socket belongs to.
    pub fn key_for(&self, row: &SocketRow<'_>) -> GroupKey {
        match self.index {
            Index::Process => {
                GroupKey::Process(owner_pid(self.owners, row.sample.inode, row.holder))
            }
            // A socket's pod is its owner's; one no process holds is its
            // namespace's (merge_by_pod names both).
            Index::Pod => match owner_pid(self.owners, row.sample.inode, row.holder) {
                pid if is_pid(pid) => GroupKey::Process(pid),
                _ => GroupKey::Netns(row.sample.key.netns),
            },
            index => index.key_of(&row.sample.key),
        }
    }

    fn group_of(&mut self, row: &SocketRow<'_>) -> &mut Group<'a> {
        let key = self.key_for(row);
        self.group_at(key)
    }

    fn group_at(&mut self, key: GroupKey) -> &mut Group<'a> {
        let groups = &mut self.groups;
        let position = *self.positions.entry(key).or_insert_with(|| {
            groups.push(Group {
                // Until a socket of another kind joins it.
                only_time_wait: true,
                ..Group::empty(key)
            });
            groups.len() - 1
        });
        &mut self.groups[position]
    }

    /// Adds a row's counts only: for rows whose sample does not outlive the
    /// call (streamed dumps); such groups carry no sample for gauges.
    pub fn add_counts(&mut self, row: &SocketRow<'_>) {
        let snapshot = self.snapshot;
        let group = self.group_of(row);
        group.counters.add(&row.counters);
        group.rtt.add_samples(&row.rtt);
        group.counters.mark_present(Counter::CurrEstab);
        if !row.closed && row.sample.state.counts_as_established() {
            group.counters.bump(Counter::CurrEstab, 1);
        }
        // A TIME_WAIT that follows a socket is that connection's tail, not
        // another socket: only one that counted something is one.
        let tail =
            !snapshot && row.sample.is_mini_socket() && !row.closed && row.counters.is_all_zero();
        if !tail {
            group.sockets += 1;
        }
        if row.closed {
            group.closed += 1;
        }
        let time_wait = is_time_wait(row);
        group.time_wait += usize::from(time_wait);
        group.only_time_wait &= time_wait;
    }

    /// Adds a row; with index=tuple its sample is kept for the gauges.
    pub fn add(&mut self, row: SocketRow<'a>) {
        self.add_counts(&row);
        if self.index == Index::Tuple {
            let owners = self.owners;
            let group = self.group_of(&row);
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
                group.sample_closed = row.closed;
                group.owner = owners.map(|o| owner_label(o, row.sample.inode, row.holder));
            }
            if !row.history.is_empty() {
                group.history = row.history;
            }
        }
    }

    /// Adds the closed sockets folded past the bound into the groups they
    /// belong to (all of them into [`GroupKey::Unlisted`] when they were
    /// folded by another index than this grouper's).
    pub fn add_folded(&mut self, folded: &FoldedClosed) {
        let same_index = folded.index == self.index;
        for (key, counts) in folded.groups.iter() {
            let key = if same_index { *key } else { GroupKey::Unlisted };
            let group = self.group_at(key);
            group.counters.add(&counts.counters);
            group.rtt.merge(&counts.rtt);
            group.counters.mark_present(Counter::CurrEstab);
            group.sockets += counts.sockets;
            group.closed += counts.sockets;
            group.only_time_wait = false;
        }
    }

    /// The groups, busiest first.
    pub fn finish(mut self) -> Vec<Group<'a>> {
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

/// The pid a socket's group is keyed by: the process a poll found holding
/// its inode; else the one its system calls' events ran in; else 0 (`?`)
/// for an inode whose holder could not be read, [`UNSEEN_OWNER`] for a
/// socket no poll saw alive, [`NO_OWNER`] for one a poll saw held by no
/// process (inode 0: TIME_WAIT, orphaned and half-open sockets).
pub fn owner_pid(owners: Option<&dyn OwnerLookup>, inode: u64, holder: Holder) -> u32 {
    let polled = (inode != 0).then(|| owners.and_then(|o| o.pid_of(inode)));
    match (polled, holder.pid) {
        (Some(Some(pid)), _) | (_, Some(pid)) => pid,
        (Some(None), None) => 0,
        (None, None) if holder.unpolled => UNSEEN_OWNER,
        (None, None) => NO_OWNER,
    }
}

/// `command[pid]` of a socket's owner (found as [`owner_pid`] finds it),
/// the bare pid when its name was not read, `?` when unknown, `-` when no
/// process holds it, and
/// [`UNSEEN_OWNER_VALUE`] when it closed before any poll saw it.
pub fn owner_label(owners: &dyn OwnerLookup, inode: u64, holder: Holder) -> String {
    match owner_pid(Some(owners), inode, holder) {
        0 => "?".to_string(),
        NO_OWNER => "-".to_string(),
        UNSEEN_OWNER => UNSEEN_OWNER_VALUE.to_string(),
        pid => owners
            .label_of(inode)
            .or_else(|| Some(format!("{}[{pid}]", owners.command_of(pid)?)))
            .unwrap_or_else(|| pid.to_string()),
    }
}

/// A socket present in TIME_WAIT (not one that closed in the window).
fn is_time_wait(row: &SocketRow<'_>) -> bool {
    !row.closed && row.sample.state == TcpState::TimeWait
}

/// The process key of sockets no process holds (no pid is this large).
pub const NO_OWNER: u32 = u32::MAX;
/// The process key of sockets that opened and closed between two polls
/// and whose events (if any) named no process: no poll read their owner,
/// which is not to say that none held them.
pub const UNSEEN_OWNER: u32 = u32::MAX - 1;
/// Whether a process key is a real pid (not `?`, `-` or unseen).
pub fn is_pid(pid: u32) -> bool {
    pid != 0 && pid != NO_OWNER && pid != UNSEEN_OWNER
}

/// How [`UNSEEN_OWNER`] is shown.
pub const UNSEEN_OWNER_VALUE: &str = "- (closed before any poll saw its owner)";

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

/// [`group_rows_owned`] for a snapshot's rows (`--once`): every TIME_WAIT
/// socket is a socket of its own.
pub fn group_snapshot_rows<'a>(
    rows: impl Iterator<Item = SocketRow<'a>>,
    index: Index,
    owners: Option<&dyn OwnerLookup>,
) -> Vec<Group<'a>> {
    let mut grouper = Grouper::new(index, rows.size_hint().0)
        .with_owners(owners)
        .for_snapshot();
    for row in rows {
        grouper.add(row);
    }
    grouper.finish()
}

/// [`group_rows_owned`], with the closed sockets folded past the bound
/// added to their groups.
pub fn group_rows_and_folded<'a>(
    rows: impl Iterator<Item = SocketRow<'a>>,
    folded: &FoldedClosed,
    index: Index,
    owners: Option<&dyn OwnerLookup>,
) -> Vec<Group<'a>> {
    let mut grouper = Grouper::new(index, rows.size_hint().0).with_owners(owners);
    for row in rows {
        grouper.add(row);
    }
    grouper.add_folded(folded);
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
    let time_wait = is_time_wait(&row);
    Group {
        key: GroupKey::Tuple(row.sample.key),
        counters,
        sockets: 1,
        closed: usize::from(row.closed),
        sample: Some(row.sample),
        owner: None,
        history: row.history,
        time_wait: usize::from(time_wait),
        only_time_wait: time_wait,
        sample_closed: row.closed,
        rtt: {
            let mut rtt = RttHistogram::default();
            rtt.add_samples(&row.rtt);
            rtt
        },
    }
}

/// Folded groups a window keeps, at most (~0.3 KiB each): past this,
/// closed sockets fold into [`GroupKey::Unlisted`].
pub const FOLDED_GROUP_LIMIT: usize = 1 << 16;

/// What one folded group's closed sockets counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoldedCounts {
    pub counters: Counters,
    pub sockets: usize,
    pub rtt: RttHistogram,
}

/// Closed sockets past the bound of those a window keeps one by one,
/// summed into the group each belongs to, so that a bound on *listing*
/// never changes a group's count or the totals. With index=tuple every
/// group is one socket, so they all go to [`GroupKey::Unlisted`]; with
/// another index, so do those past [`FOLDED_GROUP_LIMIT`] groups. Memory
/// stays bounded either way.
#[derive(Debug, Clone)]
pub struct FoldedClosed {
    index: Index,
    group_limit: usize,
    groups: FxHashMap<GroupKey, FoldedCounts>,
    sockets: u64,
    unlisted: u64,
    counters: Counters,
}

impl FoldedClosed {
    pub fn new(index: Index) -> FoldedClosed {
        FoldedClosed::with_group_limit(index, FOLDED_GROUP_LIMIT)
    }

    /// Keeps at most `group_limit` groups (tests use a small one).
    pub fn with_group_limit(index: Index, group_limit: usize) -> FoldedClosed {
        FoldedClosed {
            index,
            group_limit,
            groups: FxHashMap::default(),
            sockets: 0,
            unlisted: 0,
            counters: Counters::default(),
        }
    }

    /// Folds one closed socket's row into the group `key` (as a
    /// [`Grouper`] of the same index would key it).
    pub fn fold(&mut self, key: GroupKey, row: &SocketRow<'_>) {
        let kept = self.index != Index::Tuple
            && (self.groups.contains_key(&key) || self.groups.len() < self.group_limit);
        let key = if kept { key } else { GroupKey::Unlisted };
        if key == GroupKey::Unlisted {
            self.unlisted += 1;
        }
        let counts = self.groups.entry(key).or_default();
        counts.counters.add(&row.counters);
        counts.rtt.add_samples(&row.rtt);
        counts.sockets += 1;
        self.counters.add(&row.counters);
        self.sockets += 1;
    }

    /// The index the sockets were folded by.
    pub fn index(&self) -> Index {
        self.index
    }

    /// Closed sockets folded, in all.
    pub fn sockets(&self) -> u64 {
        self.sockets
    }

    /// Of those, the ones in [`GroupKey::Unlisted`] rather than in their
    /// own group.
    pub fn unlisted(&self) -> u64 {
        self.unlisted
    }

    /// What every folded socket counted.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Empties it for a new window grouped by `index`.
    pub fn reset(&mut self, index: Index) {
        self.index = index;
        self.groups.clear();
        self.sockets = 0;
        self.unlisted = 0;
        self.counters = Counters::default();
    }
}

/// Merges namespace groups whose namespaces carry the same container label
/// into one group per container; namespaces without one keep their own.
pub fn merge_by_container<'a>(
    groups: Vec<Group<'a>>,
    containers: &std::collections::BTreeMap<u64, String>,
) -> Vec<Group<'a>> {
    let mut by_label: std::collections::BTreeMap<String, Group<'a>> = Default::default();
    // Groups of no namespace (the unlisted closed sockets) stay as they are.
    let mut others = Vec::new();
    for group in groups {
        let GroupKey::Netns(inode) = group.key else {
            others.push(group);
            continue;
        };
        let label = containers
            .get(&inode)
            .cloned()
            .unwrap_or_else(|| format!("netns:[{inode}]"));
        match by_label.get_mut(&label) {
            Some(merged) => merged.absorb(&group),
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
    merged.append(&mut others);
    sort_by_activity(&mut merged);
    merged
}

/// Merges groups by process and by namespace (as [`Grouper`] keys them for
/// index=pod) into one group per label `label_of` gives each key; returns
/// the groups, keyed `GroupKey::Pod(position)`, and the labels by position.
pub fn merge_by_pod<'a, L: Ord + Clone>(
    groups: Vec<Group<'a>>,
    mut label_of: impl FnMut(&GroupKey) -> L,
) -> (Vec<Group<'a>>, Vec<L>) {
    let mut by_label: std::collections::BTreeMap<L, Group<'a>> = Default::default();
    let mut others = Vec::new();
    for group in groups {
        if !matches!(group.key, GroupKey::Process(_) | GroupKey::Netns(_)) {
            others.push(group);
            continue;
        }
        let label = label_of(&group.key);
        match by_label.get_mut(&label) {
            Some(merged) => merged.absorb(&group),
            None => {
                by_label.insert(label, group);
            }
        }
    }
    let mut labels = Vec::with_capacity(by_label.len());
    let mut merged: Vec<Group<'a>> = Vec::with_capacity(by_label.len() + others.len());
    for (label, group) in by_label {
        let at = u32::try_from(labels.len()).unwrap_or(u32::MAX);
        labels.push(label);
        merged.push(Group {
            key: GroupKey::Pod(at),
            ..group
        });
    }
    merged.append(&mut others);
    sort_by_activity(&mut merged);
    (merged, labels)
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
    /// Parts of the unattributed count a source could name, by class (e.g.
    /// resets sent for no socket, from precision mode's events): what is
    /// left is unknown.
    pub named: Vec<(&'static str, i64)>,
}

impl Residual {
    /// What the namespace counted that no socket seen accounts for.
    pub fn unattributed(&self) -> i64 {
        self.system - self.sockets
    }

    /// The unattributed count no class names.
    pub fn unknown(&self) -> i64 {
        self.unattributed() - self.named.iter().map(|(_, n)| n).sum::<i64>()
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
            Counter::DelayedACKs => Some(
                "a socket counts each delayed-ACK timer that sent a packet, a compressed SACK (TcpExt:TCPAckCompressed) too; through perf, every expiry",
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

/// Resets sent for no socket (tcp:tcp_send_reset without one): events are
/// host-wide, so the class is named only where the sampled namespaces are
/// all the host has.
pub const RESETS_FOR_NO_SOCKET: &str = "resets sent for no socket";
/// AttemptFails a listener's request socket counted (`tcp_check_req`: a
/// reset or a new SYN before the handshake's ACK), which no dump, notice or
/// tracepoint shows: the namespace counts each in TcpExt:EmbryonicRsts too.
pub const REQUEST_SOCKETS_RESET: &str = "request sockets reset before their handshake completed";

impl SystemSection {
    /// Names `amount` of `counter`'s unattributed part as `class`.
    pub fn name_part(&mut self, counter: Counter, class: &'static str, amount: i64) {
        if let Some(r) = self.residuals.iter_mut().find(|r| r.counter == counter) {
            r.named.push((class, amount));
        }
    }
}

/// `requests_on_rows`: request sockets' fails the sockets' total already
/// has (on their listener's rows), which leaves them unnamed here.
pub fn system_section(
    deltas: SystemCounters,
    sockets_total: &Counters,
    requests_on_rows: i64,
) -> SystemSection {
    // Fast Open children are full sockets (their fails are theirs); every
    // other request socket reset counts one AttemptFail and one
    // EmbryonicRst (tcp_abort_on_overflow's resets count the latter alone).
    let request_resets = deltas
        .get("TcpExt:EmbryonicRsts")
        .map(|n| n - requests_on_rows)
        .filter(|&n| n > 0);
    let residuals = SHARED_WITH_MIB
        .iter()
        .filter_map(|(counter, key)| {
            Some(Residual {
                counter: *counter,
                system: deltas.get(key)?,
                sockets: sockets_total.get(*counter)? as i64,
                named: Vec::new(),
            })
        })
        .collect();
    let mut section = SystemSection {
        deltas,
        residuals,
        namespaces: 1,
    };
    if let Some(resets) = request_resets {
        section.name_part(Counter::AttemptFails, REQUEST_SOCKETS_RESET, resets);
    }
    section
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_named_part_of_the_residual_leaves_the_rest_unknown() {
        let mut deltas = SystemCounters::default();
        deltas.values.insert("Tcp:OutRsts".to_string(), 5);
        let mut sockets = Counters::default();
        sockets.set(Counter::OutRsts, 1, false);
        let mut section = system_section(deltas, &sockets, 0);
        section.name_part(Counter::OutRsts, RESETS_FOR_NO_SOCKET, 3);
        let resets = &section.residuals[0];
        assert_eq!(resets.unattributed(), 4);
        assert_eq!(resets.unknown(), 1);
        assert_eq!(resets.named, vec![(RESETS_FOR_NO_SOCKET, 3)]);
    }

    #[test]
    fn attempt_fails_of_request_sockets_are_named_from_embryonic_resets() {
        let mut deltas = SystemCounters::default();
        deltas.values.insert("Tcp:AttemptFails".to_string(), 3);
        deltas.values.insert("TcpExt:EmbryonicRsts".to_string(), 2);
        let mut sockets = Counters::default();
        sockets.set(Counter::AttemptFails, 1, false);
        let section = system_section(deltas, &sockets, 0);
        let fails = &section.residuals[0];
        assert_eq!(fails.counter, Counter::AttemptFails);
        assert_eq!(fails.unattributed(), 2);
        assert_eq!(fails.named, vec![(REQUEST_SOCKETS_RESET, 2)]);
        assert_eq!(fails.unknown(), 0);
    }

    #[test]
    fn no_embryonic_reset_names_nothing() {
        let mut deltas = SystemCounters::default();
        deltas.values.insert("Tcp:AttemptFails".to_string(), 1);
        deltas.values.insert("TcpExt:EmbryonicRsts".to_string(), 0);
        let mut sockets = Counters::default();
        sockets.set(Counter::AttemptFails, 0, false);
        let section = system_section(deltas, &sockets, 0);
        assert!(section.residuals[0].named.is_empty());
        assert_eq!(section.residuals[0].unknown(), 1);
    }

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
        let polled = Holder::default();
        assert_eq!(owner_label(&OneOwner, 7, polled), "nginx[812]");
        assert_eq!(owner_label(&OneOwner, 9, polled), "?");
        // TIME_WAIT and orphaned sockets have inode 0: no holder at all.
        assert_eq!(owner_label(&OneOwner, 0, polled), "-");
        let mut held = sample("10.0.0.1", 80, "10.0.0.2", 1000);
        held.inode = 7;
        let mut time_wait = sample("10.0.0.1", 80, "10.0.0.2", 1001);
        time_wait.inode = 0;
        let mut unreadable = sample("10.0.0.1", 80, "10.0.0.2", 1002);
        unreadable.inode = 9;
        let grouper = Grouper::new(Index::Process, 4).with_owners(Some(&OneOwner));
        let key = |s| grouper.key_for(&row_of(s, polled));
        assert_eq!(key(&held), GroupKey::Process(812));
        assert_eq!(key(&time_wait), GroupKey::Process(NO_OWNER));
        assert_eq!(key(&unreadable), GroupKey::Process(0));
        assert_eq!(GroupKey::Process(NO_OWNER).value(), "-");
    }

    #[test]
    fn index_pod_groups_by_owner_then_namespace_and_merges_by_label() {
        let mut held = sample("10.0.0.1", 80, "10.0.0.2", 1000);
        held.inode = 7;
        held.key.netns = 4;
        let mut time_wait = sample("10.0.0.1", 80, "10.0.0.2", 1001);
        time_wait.inode = 0;
        time_wait.key.netns = 4;
        let mut unreadable = sample("10.0.0.1", 80, "10.0.0.2", 1002);
        unreadable.inode = 9;
        unreadable.key.netns = 5;
        let rows = [&held, &time_wait, &unreadable].map(|s| row_of(s, Holder::default()));
        let grouper = Grouper::new(Index::Pod, 4).with_owners(Some(&OneOwner));
        let keys: Vec<GroupKey> = rows.iter().map(|r| grouper.key_for(r)).collect();
        assert_eq!(
            keys,
            [
                GroupKey::Process(812),
                GroupKey::Netns(4),
                GroupKey::Netns(5)
            ]
        );
        let groups = group_rows_owned(rows.into_iter(), Index::Pod, Some(&OneOwner));
        // nginx and namespace 4 are one pod; namespace 5 another.
        let (merged, labels) = merge_by_pod(groups, |key| match key {
            GroupKey::Process(812) | GroupKey::Netns(4) => "shop/web-0",
            _ => "none",
        });
        assert_eq!(labels, ["none", "shop/web-0"]);
        let web = merged.iter().find(|g| g.key == GroupKey::Pod(1)).unwrap();
        assert_eq!(web.sockets, 2);
        assert_eq!(web.counters.value(Counter::BytesSent), 2);
        let none = merged.iter().find(|g| g.key == GroupKey::Pod(0)).unwrap();
        assert_eq!(none.sockets, 1);
    }

    fn row_of(sample: &SocketSample, holder: Holder) -> SocketRow<'_> {
        SocketRow {
            sample,
            counters: counters(1),
            closed: true,
            history: Default::default(),
            holder,
            rtt: Default::default(),
        }
    }

    #[test]
    fn a_socket_closed_before_any_poll_is_not_told_as_time_wait() {
        let mut notice_only = sample("10.0.0.1", 80, "10.0.0.2", 1000);
        notice_only.inode = 0;
        let time_wait = notice_only.clone();
        let grouper = Grouper::new(Index::Process, 4).with_owners(Some(&OneOwner));
        let unseen = grouper.key_for(&row_of(&notice_only, Holder::unpolled(None)));
        assert_eq!(unseen, GroupKey::Process(UNSEEN_OWNER));
        assert_eq!(
            unseen.to_string(),
            "Process: - (closed before any poll saw its owner)"
        );
        assert!(!unseen.to_string().contains("TIME_WAIT"));
        assert_eq!(unseen.value(), UNSEEN_OWNER_VALUE);
        // A socket a poll saw with no holder keeps the TIME_WAIT reason.
        let held_by_none = grouper.key_for(&row_of(&time_wait, Holder::default()));
        assert_eq!(held_by_none, GroupKey::Process(NO_OWNER));
        assert!(held_by_none.to_string().contains("TIME_WAIT"));
        assert_eq!(
            owner_label(&OneOwner, 0, Holder::unpolled(None)),
            UNSEEN_OWNER_VALUE
        );
        assert_eq!(owner_label(&OneOwner, 0, Holder::default()), "-");
        assert!(!is_pid(UNSEEN_OWNER) && !is_pid(NO_OWNER) && !is_pid(0) && is_pid(812));
    }

    #[test]
    fn a_socket_whose_events_named_its_process_is_that_process() {
        let mut unseen = sample("10.0.0.1", 80, "10.0.0.2", 1000);
        unseen.inode = 0;
        let mut unreadable = sample("10.0.0.1", 80, "10.0.0.2", 1001);
        unreadable.inode = 9;
        let mut held = sample("10.0.0.1", 80, "10.0.0.2", 1002);
        held.inode = 7;
        let by_events = |pid| Holder {
            pid: Some(pid),
            unpolled: false,
        };
        let grouper = Grouper::new(Index::Process, 4).with_owners(Some(&OneOwner));
        // Closed between polls, or its fd closed: its calls' process.
        let key = grouper.key_for(&row_of(&unseen, Holder::unpolled(Some(812))));
        assert_eq!(key, GroupKey::Process(812));
        assert_eq!(
            grouper.key_for(&row_of(&unreadable, by_events(4242))),
            GroupKey::Process(4242)
        );
        // The holder a poll found comes first.
        assert_eq!(
            grouper.key_for(&row_of(&held, by_events(4242))),
            GroupKey::Process(812)
        );
        // Tuples' owners say the same, named when the name was read.
        assert_eq!(
            owner_label(&OneOwner, 0, Holder::unpolled(Some(812))),
            "nginx[812]"
        );
        assert_eq!(owner_label(&OneOwner, 9, by_events(4242)), "4242");
        let rows = [row_of(&unseen, Holder::unpolled(Some(812)))];
        let groups = group_rows_owned(rows.into_iter(), Index::Tuple, Some(&OneOwner));
        assert_eq!(groups[0].owner.as_deref(), Some("nginx[812]"));
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
                holder: Default::default(),
                rtt: Default::default(),
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
            holder: Default::default(),
            rtt: Default::default(),
        }];
        let groups = group_rows(rows.into_iter(), Index::Tuple);
        assert_eq!(groups[0].counters.get(Counter::CurrEstab), Some(0));
        assert_eq!(groups[0].closed, 1);
    }

    /// Ten closed sockets to ports 80 and 22, and what each sent.
    fn closed_to_two_ports() -> Vec<(SocketSample, u64)> {
        (0..10u16)
            .map(|i| {
                let port = if i % 3 == 0 { 22 } else { 80 };
                let s = sample("10.0.0.1", port, "10.0.0.2", 40000 + i);
                (s, 100 + u64::from(i))
            })
            .collect()
    }

    fn closed_row(s: &(SocketSample, u64)) -> SocketRow<'_> {
        SocketRow {
            sample: &s.0,
            counters: counters(s.1),
            closed: true,
            history: Default::default(),
            holder: Default::default(),
            rtt: Default::default(),
        }
    }

    /// Groups `closed` with all but the newest `kept` folded, as a window
    /// past its bound does.
    fn grouped_past_a_bound(
        closed: &[(SocketSample, u64)],
        kept: usize,
        folded: &mut FoldedClosed,
    ) -> Vec<Group<'static>> {
        let (past, listed) = closed.split_at(closed.len() - kept);
        let keys = Grouper::new(folded.index(), 0);
        for s in past {
            folded.fold(keys.key_for(&closed_row(s)), &closed_row(s));
        }
        let groups =
            group_rows_and_folded(listed.iter().map(closed_row), folded, folded.index(), None);
        // Owned copies: the test compares counts, not samples.
        groups
            .into_iter()
            .map(|g| Group { sample: None, ..g })
            .collect()
    }

    fn sent_and_sockets(groups: &[Group<'_>], key: GroupKey) -> (u64, usize, usize) {
        let g = groups.iter().find(|g| g.key == key).expect("group");
        (g.counters.value(Counter::BytesSent), g.sockets, g.closed)
    }

    #[test]
    fn closed_sockets_folded_past_the_bound_still_count_in_their_port_group() {
        let closed = closed_to_two_ports();
        let whole = group_rows(closed.iter().map(closed_row), Index::Lport);
        let mut folded = FoldedClosed::new(Index::Lport);
        let bounded = grouped_past_a_bound(&closed, 3, &mut folded);
        assert_eq!(folded.sockets(), 7);
        assert_eq!(folded.unlisted(), 0);
        assert_eq!(bounded.len(), 2, "no unlisted group: each went to its port");
        for port in [80, 22] {
            let key = GroupKey::Lport(port);
            assert_eq!(
                sent_and_sockets(&bounded, key),
                sent_and_sockets(&whole, key)
            );
        }
        let total = |gs: &[Group<'_>]| {
            let mut t = Counters::default();
            gs.iter().for_each(|g| t.add(&g.counters));
            t.value(Counter::BytesSent)
        };
        assert_eq!(total(&bounded), total(&whole));
        assert_eq!(total(&whole), (100..110).sum::<u64>());
    }

    #[test]
    fn closed_tuples_past_the_bound_count_in_one_unlisted_group() {
        let closed = closed_to_two_ports();
        let mut folded = FoldedClosed::new(Index::Tuple);
        let bounded = grouped_past_a_bound(&closed, 4, &mut folded);
        assert_eq!((folded.sockets(), folded.unlisted()), (6, 6));
        // Four listed one by one, and the unlisted six in one group.
        assert_eq!(bounded.len(), 5);
        let sent: u64 = closed[..6].iter().map(|s| s.1).sum();
        assert_eq!(sent_and_sockets(&bounded, GroupKey::Unlisted), (sent, 6, 6));
        assert_eq!(folded.counters().value(Counter::BytesSent), sent);
    }

    #[test]
    fn folded_groups_past_their_own_bound_go_to_the_unlisted_group() {
        let closed = closed_to_two_ports();
        // Room for one folded group: port 22's sockets (the first) keep
        // theirs, port 80's go to the unlisted group; totals stay whole.
        let mut folded = FoldedClosed::with_group_limit(Index::Lport, 1);
        let bounded = grouped_past_a_bound(&closed, 0, &mut folded);
        assert_eq!(folded.unlisted(), 6);
        let (sent_22, sockets_22, _) = sent_and_sockets(&bounded, GroupKey::Lport(22));
        let (sent_unlisted, sockets_unlisted, _) = sent_and_sockets(&bounded, GroupKey::Unlisted);
        assert_eq!((sockets_22, sockets_unlisted), (4, 6));
        assert_eq!(sent_22 + sent_unlisted, (100..110).sum::<u64>());
        // Folded by another index than the report's: all in the unlisted group.
        let regrouped = group_rows_and_folded(std::iter::empty(), &folded, Index::Rport, None);
        assert_eq!(regrouped.len(), 1);
        assert_eq!(regrouped[0].key, GroupKey::Unlisted);
        assert_eq!(regrouped[0].sockets, 10);
        folded.reset(Index::Rport);
        assert_eq!((folded.sockets(), folded.unlisted()), (0, 0));
    }

    #[test]
    fn the_unlisted_group_survives_merging_by_container() {
        let mut folded = FoldedClosed::new(Index::Container);
        let s = sample("10.0.0.1", 80, "10.0.0.2", 1000);
        folded.fold(GroupKey::Unlisted, &closed_row(&(s, 5)));
        let groups = group_rows_and_folded(std::iter::empty(), &folded, Index::Container, None);
        let merged = merge_by_container(groups, &Default::default());
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].key, GroupKey::Unlisted);
    }

    #[test]
    fn residual_is_system_minus_sockets() {
        let mut deltas = SystemCounters::default();
        deltas.values.insert("Tcp:OutSegs".into(), 120);
        let mut sockets = Counters::default();
        sockets.set(Counter::OutSegs, 100, false);
        let section = system_section(deltas, &sockets, 0);
        assert_eq!(section.residuals.len(), 1);
        assert_eq!(section.residuals[0].unattributed(), 20);
    }

    #[test]
    fn a_residual_below_zero_says_why_where_the_counts_differ() {
        let gro = Residual {
            counter: Counter::InSegs,
            system: 88,
            sockets: 751,
            named: Vec::new(),
        };
        assert!(gro.why_below_zero().unwrap().contains("GRO"));
        let compressed = Residual {
            counter: Counter::DelayedACKs,
            system: 3,
            sockets: 4,
            named: Vec::new(),
        };
        assert!(compressed
            .why_below_zero()
            .unwrap()
            .contains("TCPAckCompressed"));
        let exact = Residual {
            counter: Counter::InSegs,
            system: 751,
            sockets: 751,
            named: Vec::new(),
        };
        assert_eq!(exact.why_below_zero(), None);
    }

    #[test]
    fn a_snapshot_counts_each_time_wait_socket_and_marks_groups_of_nothing_else() {
        let mut tw = sample("10.0.0.1", 5000, "10.0.0.2", 80);
        tw.state = TcpState::TimeWait;
        let mut tw2 = sample("10.0.0.1", 5001, "10.0.0.2", 80);
        tw2.state = TcpState::TimeWait;
        let live = sample("10.0.0.1", 80, "10.0.0.2", 6000);
        let rows = || {
            [&tw, &tw2, &live].into_iter().map(|s| SocketRow {
                sample: s,
                counters: Counters::default(),
                closed: false,
                history: Default::default(),
                holder: Default::default(),
                rtt: Default::default(),
            })
        };
        let by_port = group_snapshot_rows(rows(), Index::Lport, None);
        let port = |p| {
            by_port
                .iter()
                .find(|g| g.key == GroupKey::Lport(p))
                .unwrap()
        };
        assert_eq!((port(5000).sockets, port(5000).time_wait), (1, 1));
        assert!(port(5000).only_time_wait);
        assert!(!port(80).only_time_wait);
        let by_raddr = group_snapshot_rows(rows(), Index::Raddr, None);
        assert_eq!(by_raddr.len(), 1);
        assert_eq!((by_raddr[0].sockets, by_raddr[0].time_wait), (3, 2));
        assert!(!by_raddr[0].only_time_wait, "a live socket is in it too");
        // In a window, a TIME_WAIT that did nothing is its connection's
        // tail: no socket of its own, but still a TIME_WAIT one.
        let windowed = group_rows(rows(), Index::Lport);
        let tail = windowed
            .iter()
            .find(|g| g.key == GroupKey::Lport(5000))
            .unwrap();
        assert_eq!((tail.sockets, tail.time_wait), (0, 1));
        assert!(tail.only_time_wait);
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
                holder: Default::default(),
                rtt: Default::default(),
            },
            SocketRow {
                sample: &full,
                counters: counters(100),
                closed: true,
                history: Default::default(),
                holder: Default::default(),
                rtt: Default::default(),
            },
        ];
        let groups = group_rows(rows.into_iter(), Index::Tuple);
        assert_eq!(groups.len(), 1);
        assert_eq!((groups[0].sockets, groups[0].closed), (1, 1));
        // The closed full socket is the one shown (it has an owner).
        assert_eq!(groups[0].sample.map(|s| s.inode), Some(77));
    }
}
