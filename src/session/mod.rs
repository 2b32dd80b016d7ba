//! One run between the kernel and its reports: a [`Session`] owns a snapshot
//! source, an optional kernel event feed, the tracker and the socket
//! owners, takes polls in order with the events, and builds the reports a
//! window, a close or a one-shot snapshot calls for. It keeps no clock and
//! handles no signal: the loop in `run` decides when; a session built on a
//! replayed source and feed is tested without a kernel.

pub mod feed;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::aggregate::{self, Group, GroupKey, Grouper, Index, OwnerLookup};
use crate::config::{Config, Namespaces};
use crate::counters::{Counter, Counters};
use crate::diff::{self, lifetime_row, StateCounts, Tracker};
use crate::filter::{FilterSet, ServedEndpoint};
use crate::model::{CloseLoss, TcpState};
use crate::report::{self, PrecisionSection, RenderOptions, Report, ReportKind, ReportWriter};
use crate::source::processes::{ProcessMap, Unread};
use crate::source::procfs::SystemCounters;
use crate::source::SnapshotSource;
use feed::EventFeed;

/// Polls between two prunings of the socket-owner map (and checks for
/// other namespaces in precision mode).
const PRUNE_OWNERS_EVERY: u64 = 30;
/// The namespace counter that bounds the sockets' resets.
const ESTAB_RESETS: &str = "Tcp:EstabResets";
const ATTEMPT_FAILS: &str = "Tcp:AttemptFails";
const EMBRYONIC_RESETS: &str = "TcpExt:EmbryonicRsts";
/// Rows of request sockets a report makes, at most (the last carries the
/// rest of a window's).
const REQUEST_ROWS_LIMIT: u64 = 1024;
/// Notices kept for reports, at most; later ones are counted.
const NOTICE_LIMIT: usize = 64;

impl OwnerLookup for ProcessMap {
    fn pid_of(&self, inode: u64) -> Option<u32> {
        self.owner(inode).map(|o| o.pid)
    }

    fn label_of(&self, inode: u64) -> Option<String> {
        self.owner(inode).map(|o| o.to_string())
    }

    fn command_of(&self, pid: u32) -> Option<&str> {
        ProcessMap::command_of(self, pid)
    }
}

/// Notices for stderr (each once, as it comes) and for reports.
#[derive(Debug, Default)]
struct Notices {
    /// The latest notices said (each is said once while remembered), at
    /// most NOTICE_LIMIT.
    said: std::collections::VecDeque<String>,
    /// Those raised in the current window: what its report carries.
    window: Vec<String>,
    /// Not yet printed on stderr.
    fresh: Vec<String>,
    /// Notices past the bound, in this window.
    dropped: u64,
    /// Which one-time notices were given: why owners could not be read
    /// (each reason once).
    owners_unread_said: Vec<Unread>,
    system_missing_said: bool,
    /// Process names not kept (bounds), as last said.
    process_names_unkept_said: u64,
}

impl Notices {
    fn add(&mut self, notices: Vec<String>) {
        for note in notices {
            if self.said.contains(&note) {
                continue;
            }
            if self.window.len() >= NOTICE_LIMIT {
                self.dropped += 1;
                continue;
            }
            if self.said.len() >= NOTICE_LIMIT {
                self.said.pop_front();
            }
            self.fresh.push(note.clone());
            self.window.push(note.clone());
            self.said.push_back(note);
        }
    }

    /// Says `note` on stderr now, even if said before: for events that
    /// recur (a loss each time), not for a state that persists.
    fn say_now(&mut self, note: String) {
        self.fresh.push(note);
    }

    fn for_report(&self) -> Vec<String> {
        let mut notes = self.window.clone();
        if self.dropped > 0 {
            notes.push(format!("{} more notices left out", self.dropped));
        }
        notes
    }

    /// A new window: its report carries only what is raised in it.
    fn end_window(&mut self) {
        self.window.clear();
        self.dropped = 0;
    }
}

/// The current window's bounds and namespace counters.
#[derive(Debug, Default)]
struct Window {
    start_ms: u64,
    polls: u64,
    system_start: Option<SystemCounters>,
}

pub struct Session {
    config: Config,
    source: Box<dyn SnapshotSource>,
    feed: Option<Box<dyn EventFeed>>,
    owners: Option<ProcessMap>,
    tracker: Tracker,
    /// Closed sockets of this window past `closed_limit`, folded into the
    /// groups they belong to (what the filters let through).
    folded: aggregate::FoldedClosed,
    /// What every folded socket counted, filtered out or not (--system's
    /// residual is the namespace's less every socket's).
    folded_everywhere: crate::counters::Counters,
    folded_everywhere_sockets: u64,
    /// Closed sockets a window keeps one by one (`diff::CLOSED_LIMIT`
    /// unless a test asks for fewer).
    closed_limit: usize,
    /// What the tracker keeps: with --system every socket (the residual
    /// needs them all), the filters then apply when grouping.
    tracker_filter: FilterSet,
    notices: Notices,
    netns_labels: BTreeMap<u64, String>,
    container_labels: BTreeMap<u64, String>,
    /// index=pod: the kubelet's names, and the labels of the latest
    /// groups (behind a lock: groups are finished through `&self`).
    pods: std::sync::Mutex<Pods>,
    window: Window,
    /// The namespace counters read at the latest poll's start (--system).
    system_at_poll: Option<SystemCounters>,
    polls_taken: u64,
    events_lost_noted: u64,
    events_undelivered_noted: u64,
    /// Close notices lost as last said on stderr, and at the window's
    /// start.
    closes_lost_noted: CloseLoss,
    /// The last check found the sampled namespace to be the host's only one
    /// (host-wide events then belong to it).
    sole_namespace: bool,
    closes_lost_at_window_start: CloseLoss,
    /// The namespace counters when the window began (without --system,
    /// which keeps its own): for resets and listen overflows.
    namespace_at_window_start: Option<SystemCounters>,
    /// The live view's own filter, on top of the run's.
    view_filter: Option<FilterSet>,
    /// Sockets reports leave out whatever the filters say: the exporter's
    /// own (without --export-self). The tracker keeps them, so that
    /// --system's residuals still count their traffic as a socket's.
    left_out: Option<ServedEndpoint>,
    /// --once on a terminal: the busiest groups listed, unless --top says.
    once_limit: Option<usize>,
    render_width: Option<u16>,
    /// UDP sockets' windows (--udp).
    udp: crate::udp::UdpTracker,
    /// UDP close notices lost when the window began.
    udp_closes_lost_at_window_start: CloseLoss,
    /// UDP close notices lost, and UDP closes left unreported, as last
    /// said on stderr.
    udp_closes_lost_noted: CloseLoss,
    udp_unreported_noted: u64,
    /// Kernel events lost (and counted but undelivered) when the window
    /// began, for the Udp section's account.
    events_lost_at_window_start: u64,
    /// The window's request sockets counted on their listener, for its
    /// report (see [`Session::find_request_rows`]).
    request_rows: Vec<RequestRow>,
}

/// index=pod's names (see [`Session::finish_groups`]).
struct Pods {
    names: crate::source::pods::PodNames,
    /// `GroupKey::Pod(n)` of the latest groups is `labels[n]`.
    labels: Vec<crate::source::pods::PodLabel>,
}

impl Session {
    /// A session over `source`, with kernel events from `feed` when given
    /// and socket owners looked up when the config asks.
    pub fn new(
        config: &Config,
        mut source: Box<dyn SnapshotSource>,
        feed: Option<Box<dyn EventFeed>>,
    ) -> Session {
        let mut tracker = Tracker::new();
        let mut udp = crate::udp::UdpTracker::new();
        if let (true, Some(_)) = (config.udp, &feed) {
            udp.enable_events();
        }
        if let Some(feed) = &feed {
            let summary = feed.summary();
            let states = if summary.exact_states {
                StateCounts::FromEvents
            } else {
                StateCounts::Inferred
            };
            tracker.enable_events(states, &summary.covered, 0);
            tracker.set_syn_retransmits_told(summary.syn_retransmits_told);
            tracker.set_destructions_told(summary.destructions_told);
        }
        if let Some(retries) = source.syn_retries() {
            tracker.set_syn_retries(retries);
        }
        let mut feed = feed;
        if let (Some(feed), true) = (feed.as_mut(), config.processes) {
            feed.want_process_names(true);
        }
        let mut notices = Notices::default();
        notices.add(source.take_notices());
        if config.record.is_some() {
            source.start_recording();
        }
        Session {
            tracker_filter: if config.system {
                FilterSet::default()
            } else {
                config.filters.clone()
            },
            config: config.clone(),
            source,
            feed,
            owners: config.processes.then(ProcessMap::new),
            tracker,
            folded: aggregate::FoldedClosed::new(config.index),
            folded_everywhere: Default::default(),
            folded_everywhere_sockets: 0,
            closed_limit: config.closed_limit,
            notices,
            netns_labels: BTreeMap::new(),
            container_labels: BTreeMap::new(),
            pods: std::sync::Mutex::new(Pods {
                names: crate::source::pods::PodNames::new("/"),
                labels: Vec::new(),
            }),
            window: Window::default(),
            system_at_poll: None,
            polls_taken: 0,
            events_lost_noted: 0,
            events_undelivered_noted: 0,
            closes_lost_noted: CloseLoss::default(),
            sole_namespace: false,
            closes_lost_at_window_start: CloseLoss::default(),
            namespace_at_window_start: None,
            view_filter: None,
            left_out: None,
            once_limit: None,
            render_width: None,
            udp,
            udp_closes_lost_at_window_start: CloseLoss::default(),
            udp_closes_lost_noted: CloseLoss::default(),
            udp_unreported_noted: 0,
            events_lost_at_window_start: 0,
            request_rows: Vec::new(),
        }
    }

    /// --once lists only the `limit` busiest groups (the rest summed into
    /// one line) where --top does not say; None lists all, streamed as
    /// they are read.
    pub fn limit_once(&mut self, limit: Option<usize>) {
        self.once_limit = limit;
    }

    /// Tables fit this width (a terminal's), leaving out what does not.
    pub fn fit_width(&mut self, width: Option<u16>) {
        self.render_width = width;
    }

    /// Groups by `index` from the next report on (the live view's `i`);
    /// owners are looked up from the next poll when it is `process`.
    pub fn set_index(&mut self, index: Index) {
        self.config.index = index;
        if matches!(index, Index::Process | Index::Pod) {
            self.look_up_owners();
        }
    }

    /// Looks up the process holding each socket from the next poll on
    /// (as --processes does): the live view's process column.
    pub fn look_up_owners(&mut self) {
        if self.owners.is_none() {
            self.owners = Some(ProcessMap::new());
            if let Some(feed) = self.feed.as_mut() {
                feed.want_process_names(true);
            }
        }
    }

    pub fn index(&self) -> Index {
        self.config.index
    }

    /// Reports leave out the sockets of `endpoint` (the exporter's own).
    pub fn leave_out(&mut self, endpoint: ServedEndpoint) {
        self.left_out = Some(endpoint);
    }

    /// Whether reports leave this socket out as the run's own.
    fn is_left_out(&self, key: &crate::model::SocketKey) -> bool {
        self.left_out.is_some_and(|own| own.holds(key))
    }

    /// Sockets the run holds by state (those closed in the window aside).
    pub fn sockets_by_state(&self) -> BTreeMap<&'static str, u64> {
        let mut states = BTreeMap::new();
        let rows = self.tracker.rows().filter(|r| !r.closed);
        for row in rows.filter(|r| !self.is_left_out(&r.sample.key)) {
            *states.entry(row.sample.state.name()).or_default() += 1;
        }
        states
    }

    /// Reports keep only the sockets `filter` also matches (the live
    /// view's `/`); None lifts it. The run's own filters still apply.
    pub fn set_view_filter(&mut self, filter: Option<FilterSet>) {
        self.view_filter = filter;
    }

    /// Adds notices for stderr and reports.
    pub fn note(&mut self, notices: Vec<String>) {
        self.notices.add(notices);
    }

    /// Notices raised since the last call, for stderr.
    pub fn take_fresh_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices.fresh)
    }

    pub fn render_options(&self) -> RenderOptions {
        RenderOptions {
            format: self.config.format,
            zeros: self.config.zeros,
            width: self.render_width,
            top: self.config.top.or(self.once_limit),
            sort: self.config.sort,
            list_time_wait: self.config.list_time_wait,
            ..Default::default()
        }
    }

    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// Waits up to `timeout` (at most a short step), reading the kernel's
    /// events and close notices so that its buffers do not fill.
    pub fn wait(&mut self, timeout: std::time::Duration) {
        self.source.read_closes();
        match &mut self.feed {
            Some(feed) => feed.wait(timeout.min(feed.wake_interval())),
            None => std::thread::sleep(timeout.min(std::time::Duration::from_millis(50))),
        }
    }

    /// [`Session::poll`] when a report follows (`true`) or not: polls no
    /// report follows leave out what only reports show.
    pub fn poll_before_report(&mut self, report_follows: bool) -> anyhow::Result<()> {
        self.source.want_gauges(report_follows);
        let polled = self.poll();
        self.source.want_gauges(true);
        polled
    }

    /// Takes one poll with the events that came before it. The baseline
    /// poll's failure is the run's; a later one is noted and skipped: the
    /// next poll diffs against the last good one.
    pub fn poll(&mut self) -> anyhow::Result<()> {
        let result = self.take_poll();
        self.notices.add(self.source.take_notices());
        self.note_owners_denied();
        self.note_owners_unkept();
        self.note_events_lost();
        self.note_closes_lost();
        match result {
            Ok(()) => Ok(()),
            Err(err) if self.polls_taken > 0 => {
                self.note(vec![format!("a poll failed and was skipped: {err:#}")]);
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    fn take_poll(&mut self) -> anyhow::Result<()> {
        if self.config.system {
            // Read at the dump's start, so the namespace's counters and the
            // sockets' (and the events') cover the same span.
            let read = self.source.system_counters();
            self.system_at_poll = Some(self.note_system(read));
        }
        let mark = self.feed.as_mut().map(|feed| feed.dump_mark());
        let snapshot = self.source.snapshot()?;
        let mut udp_events = Vec::new();
        if self.feed.is_some() && self.polls_taken % PRUNE_OWNERS_EVERY == 0 {
            // With no other namespace on the host, every socket events
            // tell of is this one's.
            let sole = self.source.only_namespace_on_host();
            self.sole_namespace = sole;
            self.tracker.set_sole_namespace(sole);
        }
        if let (Some(feed), Some(mark)) = (self.feed.as_mut(), mark) {
            // Events before the dump began are what the dump's sockets went
            // through; later ones wait for the next poll.
            feed.drain();
            let mut events = feed.take_before(mark);
            if self.config.udp {
                // UDP's events go to the UDP tracker, after the poll (which
                // brings the sockets they are about).
                let (udp, tcp): (Vec<_>, Vec<_>) =
                    events.into_iter().partition(|t| t.event.is_udp());
                events = tcp;
                udp_events = udp;
            }
            if self.tracker.polls() > 0 {
                self.tracker.apply_events(&events, &self.tracker_filter);
            }
            self.tracker
                .set_events_complete(feed.lost() == 0 && feed.undelivered() == 0);
            // Read as the events were: the processes may be gone now.
            if let Some(owners) = self.owners.as_mut() {
                owners.learn_commands(feed.take_process_names());
            }
        }
        self.tracker.observe(&snapshot, &self.tracker_filter);
        self.resolve_owners(&snapshot);
        if self.config.udp {
            self.udp.set_poll_time(snapshot.taken_at_ms);
            self.udp.observe_with_notices(
                &snapshot.udp,
                &snapshot.unsampled_netns,
                &snapshot.udp_closed,
                snapshot.udp_closes_watched,
            );
            // The baseline's events are before the first window.
            if self.udp.polls() > 1 {
                self.udp.apply_events(&udp_events);
            }
            self.resolve_udp_owners(&snapshot.udp);
        }
        self.fold_closed_past_limit();
        let taken_at_ms = snapshot.taken_at_ms;
        self.source.recycle(snapshot);
        self.record(self.polls_taken)?;
        self.polls_taken += 1;
        self.window.polls += 1;
        if self.polls_taken == 1 {
            self.window.start_ms = taken_at_ms;
            self.window.system_start = self.system_at_poll.take();
            if !self.config.system {
                self.namespace_at_window_start = Some(self.source.system_counters().0);
            }
        }
        Ok(())
    }

    /// Bounds the closed sockets the window keeps one by one: the oldest
    /// past the limit are folded into the groups they belong to, as this
    /// window's report will group them, and into the --system sum.
    fn fold_closed_past_limit(&mut self) {
        let owners = self.owners.as_ref().map(|o| o as &dyn OwnerLookup);
        let keys = Grouper::new(self.config.index, 0).with_owners(owners);
        let filters = &self.config.filters;
        let view = self.view_filter.as_ref();
        let left_out = self.left_out;
        // Rows a listing would leave out as idle (index=tuple) are left out
        // here too.
        let skip_idle = !self.config.zeros && self.config.index == Index::Tuple;
        let (folded, everywhere) = (&mut self.folded, &mut self.folded_everywhere);
        let everywhere_sockets = &mut self.folded_everywhere_sockets;
        self.tracker.fold_closed_past(self.closed_limit, |row| {
            everywhere.add(&row.counters);
            *everywhere_sockets += 1;
            let listed = filters.matches(&row.sample.key)
                && view.is_none_or(|v| v.matches(&row.sample.key))
                && !left_out.is_some_and(|own| own.holds(&row.sample.key))
                && !(skip_idle && row.counters.is_all_zero());
            if listed {
                folded.fold(keys.key_for(&row), &row);
            }
        });
    }

    /// Owners are looked up while the sockets are alive: a short-lived
    /// one's process may be gone by the report.
    fn resolve_owners(&mut self, snapshot: &crate::model::Snapshot) {
        let Some(owners) = self.owners.as_mut() else {
            return;
        };
        let filters = &self.config.filters;
        owners.resolve(
            snapshot
                .sockets
                .iter()
                .filter(|s| !s.is_mini_socket() && filters.matches(&s.key))
                .map(|s| (s.inode, s.uid)),
        );
        if self.polls_taken % PRUNE_OWNERS_EVERY == 0 {
            // Forget owners of sockets gone, so the map does not grow with
            // every socket ever seen (and a reused inode is not named after
            // its old owner). The tracker's sockets keep their owner's inode
            // when orphaned, and those that closed in this window wait for
            // its report.
            // UDP sockets' too: a closed one waits for its report.
            let alive = self
                .tracker
                .rows()
                .map(|r| r.sample.inode)
                .chain(self.udp.rows().map(|r| r.sample.inode))
                .collect();
            owners.retain_sockets(&alive);
            let named = self.tracker.rows().filter_map(|r| r.holder.pid).collect();
            owners.retain_event_commands(&named);
        }
    }

    /// Owners of the UDP sockets the filters accept, looked up while they
    /// are alive.
    fn resolve_udp_owners(&mut self, sockets: &[crate::model::udp::UdpSample]) {
        let (Some(owners), filters) = (self.owners.as_mut(), &self.config.filters) else {
            return;
        };
        owners.resolve(
            sockets
                .iter()
                .filter(|s| filters.matches(&s.key))
                .map(|s| (s.inode, s.uid)),
        );
    }

    /// The Udp section of a report from `rows`; with --system, the MIB
    /// deltas against the drops of every socket tracked (`everywhere`).
    fn udp_section<'a>(
        &self,
        rows: impl Iterator<Item = crate::udp::UdpRow<'a>>,
        everywhere: &[(
            crate::model::udp::UdpProto,
            u64,
            Option<crate::udp::EventSums>,
        )],
        deltas: Option<&SystemCounters>,
        closed: u64,
    ) -> crate::udp::UdpSection {
        let view = self.view_filter.clone().unwrap_or_default();
        let groups = crate::udp::group(
            rows.filter(|r| view.matches(&r.sample.key)),
            self.config.index,
            &self.config.filters,
            self.owner_lookup(),
        );
        let mut section = crate::udp::UdpSection::new(groups, self.config.zeros, closed);
        if let (true, Some(deltas)) = (self.config.system, deltas) {
            let folded = deltas.clone().fold_namespaces();
            section.system = everywhere
                .iter()
                .filter_map(|(proto, drops, events)| {
                    crate::udp::system_for(*proto, &folded, *drops, events.as_ref())
                })
                // UDP-Lite is rare: its block only when it counted something.
                .filter(|s| {
                    self.config.zeros
                        || s.proto == "Udp"
                        || s.rows
                            .iter()
                            .any(|r| r.system != 0 || r.sockets.unwrap_or(0) != 0)
                })
                .collect();
        }
        section
    }

    /// Adds the commands of the processes UDP groups are keyed by.
    fn name_udp_processes(&self, report: &mut Report<'_>) {
        let (Some(owners), Some(section)) = (self.owner_lookup(), report.udp.as_ref()) else {
            return;
        };
        let named: Vec<(u32, String)> = section
            .groups
            .iter()
            .filter_map(|g| match g.key {
                GroupKey::Process(pid) => Some((pid, owners.command_of(pid)?.to_string())),
                _ => None,
            })
            .collect();
        report.process_names.extend(named);
    }

    /// The namespace counters read at a poll, saying once what could not
    /// be read.
    fn note_system(
        &mut self,
        (counters, missing): (SystemCounters, Vec<String>),
    ) -> SystemCounters {
        if !missing.is_empty() && !self.notices.system_missing_said {
            self.notices.system_missing_said = true;
            self.note(vec![format!(
                "--system: not all of the MIB files could be read ({}); what could not be read is left out",
                missing.join("; ")
            )]);
        }
        counters
    }

    /// Says when bounds left processes that events ran in unnamed, sockets
    /// without the owner their events named, or connects untimed.
    fn note_owners_unkept(&mut self) {
        let Some(owners) = self.owners.as_ref() else {
            return;
        };
        let names = owners.event_commands_unkept()
            + self.feed.as_ref().map_or(0, |f| f.process_names_unkept());
        if names > self.notices.process_names_unkept_said {
            let new = names - self.notices.process_names_unkept_said;
            self.notices.process_names_unkept_said = names;
            self.note(vec![format!(
                "{new} process names were not kept (bound reached): their sockets show the pid alone"
            )]);
        }
        let sockets = self
            .tracker
            .event_stats()
            .map_or(0, |stats| stats.owners_unkept);
        if sockets > 0 {
            self.note(vec![format!(
                "precision: the owners of {sockets} sockets were not kept this window (bound reached): they show no owner from events"
            )]);
        }
        let untimed = self
            .tracker
            .event_stats()
            .map_or(0, |stats| stats.handshakes_untimed);
        if untimed > 0 {
            self.note(vec![format!(
                "precision: {untimed} connects' handshakes were not timed this window (65,536 connects under way at once): their groups' handshake times leave them out"
            )]);
        }
    }

    /// Says, once per reason, why owners could not be looked up.
    fn note_owners_denied(&mut self) {
        let Some(owners) = self.owners.as_ref() else {
            return;
        };
        let said = &mut self.notices.owners_unread_said;
        let mut lines = Vec::new();
        if let Some(why) = owners.unlisted().filter(|why| !said.contains(why)) {
            said.push(why);
            lines.push(format!(
                "/proc could not be listed ({}): no socket's process was looked up",
                unread_reason(why)
            ));
        }
        for (why, processes) in owners.unread() {
            if !said.contains(&why) {
                said.push(why);
                lines.push(format!(
                    "/proc/PID/fd could not be read for {processes} process(es) ({}): their sockets show process ?",
                    unread_reason(why)
                ));
            }
        }
        if !lines.is_empty() {
            self.note(lines);
        }
    }

    fn note_events_lost(&mut self) {
        let Some((lost, undelivered)) = self.feed.as_ref().map(|f| (f.lost(), f.undelivered()))
        else {
            return;
        };
        if lost > self.events_lost_noted {
            self.note(vec![format!(
                "precision: {} kernel events lost (rings full): counts from events are low by as much; raise --ring-pages",
                lost - self.events_lost_noted
            )]);
            self.events_lost_noted = lost;
        }
        if undelivered > self.events_undelivered_noted {
            self.note(vec![format!(
                "precision: {} kernel events were counted by the kernel but never delivered to the rings (this kernel's perf drops some events raised on idle CPUs): counts from events are low by as much",
                undelivered - self.events_undelivered_noted
            )]);
            self.events_undelivered_noted = undelivered;
        }
    }

    /// Says on stderr, as it happens, each poll's loss of close notices
    /// (every time: the same count twice is two losses). Each window's
    /// report says its own, see [`Session::closes_lost_notice`].
    fn note_closes_lost(&mut self) {
        if let Some(lost) = self.source.udp_closes_lost() {
            let new = lost.since(&self.udp_closes_lost_noted);
            if new.notices > 0 || new.overflows > 0 {
                self.notices
                    .say_now(format!("UDP {}", udp_close_loss_note(&new)));
                self.udp_closes_lost_noted = lost;
            }
        }
        let Some(lost) = self.source.closes_lost() else {
            return;
        };
        let new = lost.since(&self.closes_lost_noted);
        if new.notices > 0 || new.overflows > 0 {
            self.notices
                .say_now(close_loss_note(&new, "since the last poll"));
            self.closes_lost_noted = lost;
        }
    }

    /// Close notices lost in the current window.
    fn closes_lost_window(&self) -> Option<CloseLoss> {
        let lost = self.source.closes_lost()?;
        Some(lost.since(&self.closes_lost_at_window_start))
    }

    fn record(&mut self, poll: u64) -> anyhow::Result<()> {
        let Some(dir) = &self.config.record else {
            return Ok(());
        };
        if let Some(bytes) = self.source.take_recording() {
            write_recording(dir, poll, &bytes)?;
        }
        Ok(())
    }

    /// Names of the namespaces and containers sampled now.
    fn relabel(&mut self) {
        self.netns_labels = self.source.namespace_labels();
        self.container_labels = self.source.container_labels();
    }

    /// Groups by namespace become groups by container when asked for;
    /// groups by owner and namespace, groups by pod.
    fn finish_groups<'g>(&self, groups: Vec<Group<'g>>) -> Vec<Group<'g>> {
        match self.config.index {
            Index::Container => aggregate::merge_by_container(groups, &self.container_labels),
            Index::Pod => {
                let mut pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
                pods.names.refresh();
                let names = &pods.names;
                let (groups, labels) = aggregate::merge_by_pod(groups, |key| match *key {
                    GroupKey::Process(pid) => names.label_of_pid(pid),
                    GroupKey::Netns(inode) => names
                        .label_of_namespace(self.container_labels.get(&inode).map(String::as_str)),
                    _ => crate::source::pods::PodLabel::unnamed(crate::source::pods::NONE),
                });
                pods.labels = labels;
                groups
            }
            _ => groups,
        }
    }

    fn owner_lookup(&self) -> Option<&dyn OwnerLookup> {
        self.owners.as_ref().map(|o| o as &dyn OwnerLookup)
    }

    /// Fills what every report of this session carries: notices, labels,
    /// process names, whether filtered, precision mode's account.
    fn decorate(&self, report: &mut Report<'_>) {
        report.notices = self.notices.for_report();
        report.netns_labels = self.netns_labels.clone();
        report.container_labels = self.container_labels.clone();
        if self.config.index == Index::Pod {
            let pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
            report.pod_labels = pods.labels.clone();
        }
        if let Some(owners) = self.owner_lookup() {
            report.process_names = report
                .groups
                .iter()
                .filter_map(|g| match g.key {
                    GroupKey::Process(pid) => Some((pid, owners.command_of(pid)?.to_string())),
                    _ => None,
                })
                .collect();
        }
        report.filtered = !self.config.filters.matches_everything();
        report.precision = self.precision_section();
        report.closes_lost = self.source.closes_lost();
        report.closes_lost_window = self.closes_lost_window();
        report.notices_before_run = self.tracker.notices_before_run();
        report.run_started = self.source.opened_at();
        report.tcp = self.config.tcp;
    }

    /// With --precision and --udp: each UDP counter from events and its
    /// source, and what this kernel cannot give.
    pub fn udp_precision_sources(&self) -> Option<UdpSources> {
        let feed = self.feed.as_ref().filter(|_| self.config.udp)?;
        let summary = feed.summary();
        Some((summary.udp_sources.clone(), summary.udp_missing.clone()))
    }

    /// Precision mode's account for a report: the feed's sources and
    /// losses, the tracker's counts of what no row shows.
    pub fn precision_section(&self) -> Option<PrecisionSection> {
        let feed = self.feed.as_ref()?;
        let summary = feed.summary();
        let stats = self.tracker.event_stats().cloned().unwrap_or_default();
        Some(PrecisionSection {
            probes: summary.probes.clone(),
            sources: summary.sources.clone(),
            events: stats.events,
            events_lost: feed.lost(),
            events_undelivered: feed.undelivered(),
            unplaced: stats.unplaced,
            unidentified: self.tracker.unidentified(),
            unidentified_earlier: self.tracker.unidentified_earlier(),
            drops_by_reason: stats.drops_by_reason,
            last_samples: stats.last_samples,
            elsewhere_sockets: stats.elsewhere_sockets,
            elsewhere: stats.elsewhere,
            awaiting_notice: stats.awaiting_notice,
            notices_unheld: stats.notices_unheld,
        })
    }

    /// The report of the window since the last one (or the start). Call
    /// [`Session::end_window`] once it is written.
    pub fn window_report(&mut self) -> Report<'_> {
        self.relabel();
        let namespace_deltas = self.namespace_deltas();
        self.request_rows = self.find_request_rows(namespace_deltas.as_ref());
        let mut system = self.system_section(namespace_deltas.as_ref());
        let namespace_resets = namespace_deltas
            .as_ref()
            .and_then(|d| d.clone().fold_namespaces().get(ESTAB_RESETS));
        let shares = self.listener_shares(namespace_deltas.as_ref());
        // A window in which the namespace counted no reset has none in any
        // socket, whatever an ending looked like.
        let deny_resets = namespace_resets == Some(0);
        if let (true, Some(section)) = (deny_resets, system.as_mut()) {
            for residual in &mut section.residuals {
                if residual.counter == Counter::EstabResets {
                    residual.sockets = 0;
                }
            }
        }
        let end_ms = self.source.elapsed_ms();
        let this = &*self;
        let filters = &this.config.filters;
        let view = this.view_filter.as_ref();
        // One group per tuple: an idle socket's would be dropped below, so
        // it is not built (40,000 idle sockets would hold ~35 MiB of groups).
        let skip_idle = !this.config.zeros && this.config.index == Index::Tuple;
        let mut groups = this.finish_groups(aggregate::group_rows_and_folded(
            this.tracker
                .rows_but_idle(skip_idle)
                .chain(this.request_rows.iter().map(RequestRow::row))
                .map(|row| shares.apply(row))
                .filter(|r| !(skip_idle && r.counters.is_all_zero()))
                .filter(|r| filters.matches(&r.sample.key))
                .filter(|r| view.is_none_or(|v| v.matches(&r.sample.key)))
                .filter(|r| !this.is_left_out(&r.sample.key)),
            &this.folded,
            this.config.index,
            this.owner_lookup(),
        ));
        if deny_resets {
            for group in &mut groups {
                if group.counters.get(Counter::EstabResets).is_some() {
                    group.counters.set(Counter::EstabResets, 0, false);
                }
            }
        }
        if !this.config.zeros {
            aggregate::drop_idle(&mut groups);
        }
        let mut report = Report {
            system,
            ..Report::new(
                ReportKind::Window,
                this.config.index,
                (this.window.start_ms, end_ms),
                this.window.polls,
                groups,
            )
        };
        this.decorate(&mut report);
        if let Some(note) = this.folded_notice() {
            report.notices.push(note);
        }
        if let Some(lost) = report.closes_lost_window.filter(|l| l.notices > 0) {
            report
                .notices
                .push(close_loss_note(&lost, "in this window"));
            if this.feed.is_none() {
                // The connections whose notices were lost are missing from
                // every group, uncounted: no group's opens, fails or
                // resets can be taken as exact.
                for group in &mut report.groups {
                    for counter in Counter::STATE_EVENTS {
                        group.counters.mark_approx(counter);
                    }
                }
            }
        }
        // The tracker keeps these apart under the filters; with --system
        // it keeps every socket, and those the filters cannot place are
        // among the closed ones.
        if this.config.udp {
            let stats = this.udp.event_stats();
            let everywhere: Vec<_> = crate::model::udp::UdpProto::BOTH
                .iter()
                .map(|&p| {
                    let events = stats
                        .as_ref()
                        .map(|stats| crate::udp::event_sums(this.udp.rows(), p, stats));
                    (p, crate::udp::drops_of(this.udp.rows(), p), events)
                })
                .collect();
            let mut section = this.udp_section(
                this.udp.rows(),
                &everywhere,
                namespace_deltas.as_ref(),
                this.udp.closed_in_window(),
            );
            section.unlisted = this.udp.unlisted();
            if let (Some(stats), Some(feed)) = (stats, this.feed.as_ref()) {
                let lost = feed.lost() + feed.undelivered();
                let summary = feed.summary();
                section.precision = Some(crate::udp::UdpPrecision {
                    stats,
                    events_lost: lost.saturating_sub(this.events_lost_at_window_start),
                    events_lost_since_start: lost,
                    sources: summary.udp_sources.clone(),
                    missing: summary.udp_missing.clone(),
                });
            }
            section.closes_lost = this.source.udp_closes_lost().map(|since_start| {
                (
                    since_start.since(&this.udp_closes_lost_at_window_start),
                    since_start,
                )
            });
            report.udp = Some(section);
            this.name_udp_processes(&mut report);
        }
        let mut unplaced = this.tracker.unplaced_by_filters().clone();
        if report.filtered {
            let closed = this.tracker.closed().iter();
            for c in closed.filter(|c| filters.cannot_tell(&c.sample.key)) {
                unplaced.sockets += 1;
                unplaced.counters.add(&c.window_counts());
            }
            report.unplaced_by_filters = Some((unplaced.sockets, unplaced.counters));
        }
        if unplaced.sockets > 0 {
            report.notices.push(format!(
                "{} aborted connections that closed in this window are in no group: their close notices lost the peer port the filters test, and no poll or event saw it (ActiveOpens {}, PassiveOpens {}, EstabResets {})",
                unplaced.sockets,
                unplaced.counters.value(Counter::ActiveOpens),
                unplaced.counters.value(Counter::PassiveOpens),
                unplaced.counters.value(Counter::EstabResets),
            ));
        }
        report
    }

    /// Says how many closed sockets were folded past the bound, and where
    /// their counts are.
    fn folded_notice(&self) -> Option<String> {
        let folded = &self.folded;
        let total = self.folded_everywhere_sockets;
        if total == 0 {
            return None;
        }
        let limit = self.closed_limit;
        let unlisted = folded.unlisted();
        let grouped = folded.sockets() - unlisted;
        let mut note = format!(
            "{total} sockets that closed in this window are not listed one by one (more than {limit} closed)"
        );
        if folded.index() != self.config.index {
            note.push_str(&format!(
                ": the index changed in this window, so {} of them are counted in the group \"{}\" (and in the totals)",
                folded.sockets(),
                aggregate::UNLISTED_VALUE
            ));
        } else if folded.index() == Index::Tuple {
            note.push_str(&format!(
                ": {unlisted} of them are counted in the group \"{}\" (and in the totals)",
                aggregate::UNLISTED_VALUE
            ));
        } else {
            note.push_str(&format!(
                ": {grouped} of them are counted in their groups (and in the totals)"
            ));
            if unlisted > 0 {
                note.push_str(&format!(
                    ", {unlisted} in the group \"{}\" (more than {} groups of them)",
                    aggregate::UNLISTED_VALUE,
                    aggregate::FOLDED_GROUP_LIMIT
                ));
            }
        }
        let filtered_out = total - folded.sockets();
        if filtered_out > 0 {
            note.push_str(&format!(
                "; {filtered_out} that the filters leave out or that counted nothing are in no group"
            ));
        }
        Some(note)
    }

    /// Each sampled namespace's counter deltas over the window (keys
    /// prefixed by namespace where several are sampled): the --system
    /// readings, else the namespace counters read at the window's start
    /// and now.
    fn namespace_deltas(&mut self) -> Option<SystemCounters> {
        if self.config.system {
            let now = self.system_at_poll.take()?;
            let start = self.window.system_start.replace(now.clone())?;
            return Some(now.delta_since(&start));
        }
        let (now, _) = self.source.system_counters();
        let start = self.namespace_at_window_start.replace(now.clone())?;
        Some(now.delta_since(&start))
    }

    /// With --system: the namespace's deltas over the window against what
    /// the sockets account for.
    fn system_section(&self, deltas: Option<&SystemCounters>) -> Option<aggregate::SystemSection> {
        // Without TCP the Udp section sets the sockets against the Udp
        // MIB; the TCP one would set nothing against the rest.
        if !self.config.system || !self.config.tcp {
            return None;
        }
        let deltas = deltas?;
        let namespaces = deltas.namespace_count();
        // Closed sockets folded past the bound count in the totals.
        let shares = self.listener_shares(Some(deltas));
        let requests = self.request_rows.iter().map(RequestRow::row);
        let mut sockets = aggregate::total(
            self.tracker
                .rows()
                .chain(requests)
                .map(|row| shares.apply(row)),
        );
        sockets.add(&self.folded_everywhere);
        let requests_on_rows = self
            .request_rows
            .iter()
            .map(|r| r.counters.value(Counter::AttemptFails))
            .sum::<u64>();
        let mut section = aggregate::system_section(
            deltas.clone().fold_namespaces(),
            &sockets,
            i64::try_from(requests_on_rows).unwrap_or(i64::MAX),
        );
        section.namespaces = namespaces;
        // Events are host-wide: a reset for no socket is this run's only
        // where every namespace of the host is sampled.
        let host_whole = self.sole_namespace || self.config.namespaces == Namespaces::All;
        if let (true, Some(stats)) = (host_whole, self.tracker.event_stats()) {
            let no_socket = stats.unplaced.value(Counter::OutRsts) as i64;
            section.name_part(Counter::OutRsts, aggregate::RESETS_FOR_NO_SOCKET, no_socket);
        }
        Some(section)
    }

    /// The namespaces' ListenDrops and ListenOverflows shared among their
    /// listeners by the drops each had in the window (see
    /// `diff::share_among_listeners`).
    fn listener_shares(&self, deltas: Option<&SystemCounters>) -> ListenerShares {
        let Some(deltas) = deltas else {
            return ListenerShares::default();
        };
        let fail_causes = diff::fail_causes(|name| deltas.per_namespace(name));
        let mut shares = ListenerShares {
            settled: self.settled_by_namespace(deltas, &fail_causes),
            fail_causes,
            ..ListenerShares::default()
        };
        let listeners: Vec<diff::ListenerDrops> = self
            .tracker
            .rows()
            // Only listeners have drops counted (a closed one's last
            // sample says CLOSE).
            .filter_map(|r| {
                Some(diff::ListenerDrops {
                    key: r.sample.key,
                    drops: r.counters.get(Counter::ListenDrops)?,
                })
            })
            .collect();
        if listeners.is_empty() {
            return shares;
        }
        // A filtered dump hides listeners that may have dropped too.
        let every_listener_seen = self.config.system || self.config.filters.matches_everything();
        let share = |name| {
            diff::share_among_listeners(
                &listeners,
                &deltas.per_namespace(name),
                every_listener_seen,
            )
        };
        shares.drops = share("TcpExt:ListenDrops");
        shares.overflows = share("TcpExt:ListenOverflows");
        shares
    }

    /// Whether the window's rows are every socket of the sampled
    /// namespaces for `counter`: every socket dumped, no close notice or
    /// event lost, nothing folded, no event count left aside.
    fn rows_are_whole_namespace(&self, counter: Counter) -> bool {
        let no_event_count_aside = self.feed.as_ref().is_none_or(|_| {
            let stats = self.tracker.event_stats().cloned().unwrap_or_default();
            stats.awaiting_notice == 0
                && stats.elsewhere.value(counter) == 0
                && stats.unplaced.value(counter) == 0
        });
        self.listeners_are_whole_namespace() && no_event_count_aside
    }

    /// Whether the window knows every listener of the sampled namespaces
    /// and what polls, notices and events showed of them: every socket
    /// dumped, no close notice or event lost, nothing folded. Events
    /// counted "elsewhere" (most likely another namespace's: tracepoints
    /// see the whole host) do not matter to it.
    fn listeners_are_whole_namespace(&self) -> bool {
        let every_socket_seen = self.config.system || self.config.filters.matches_everything();
        let closes_complete = self
            .closes_lost_window()
            .is_some_and(|lost| lost.notices == 0 && lost.overflows == 0);
        let no_event_lost = self.feed.as_ref().is_none_or(|feed| {
            feed.lost() + feed.undelivered() == self.events_lost_at_window_start
        });
        every_socket_seen && closes_complete && no_event_lost && self.folded_everywhere_sockets == 0
    }

    /// Per namespace (None: the one sampled) and counter, what its count
    /// settles about the sockets whose fail or reset is uncertain (see
    /// `diff::settle`).
    fn settled_by_namespace(
        &self,
        deltas: &SystemCounters,
        causes: &diff::FailCausesByNamespace,
    ) -> Settled {
        let mut settled = Settled::default();
        let counters = [
            (Counter::AttemptFails, ATTEMPT_FAILS),
            (Counter::EstabResets, ESTAB_RESETS),
        ];
        let counters: Vec<_> = counters
            .into_iter()
            .filter(|(counter, _)| self.rows_are_whole_namespace(*counter))
            .collect();
        if counters.is_empty() {
            return settled;
        }
        let mut tallies: rustc_hash::FxHashMap<(Option<u64>, Counter), diff::Tally> =
            Default::default();
        let several = deltas.namespace_count() > 1;
        for row in self.tracker.rows() {
            let netns = several.then_some(row.sample.key.netns);
            for (counter, _) in &counters {
                if let Some(value) = row.counters.get(*counter) {
                    let ruled_out =
                        *counter == Counter::AttemptFails && fail_ruled_out(&row, causes);
                    tallies.entry((netns, *counter)).or_default().add_leaning(
                        value,
                        row.counters.is_approx(*counter) && !ruled_out,
                        lean_of_row(&row, *counter),
                    );
                }
            }
        }
        // A request socket's fail is in the namespace's count and on no
        // row unless its listener's (below).
        let requests: rustc_hash::FxHashMap<Option<u64>, i64> =
            deltas.per_namespace(EMBRYONIC_RESETS).into_iter().collect();
        for (counter, name) in counters {
            for (netns, count) in deltas.per_namespace(name) {
                let count = match counter {
                    Counter::AttemptFails => count - requests.get(&netns).copied().unwrap_or(0),
                    _ => count,
                };
                let tally = tallies.get(&(netns, counter)).copied().unwrap_or_default();
                if let Some(settlement) = diff::settle(count, tally) {
                    settled.insert((netns, counter), settlement);
                }
            }
        }
        settled
    }

    /// The window's request sockets that a reset or a new SYN ended
    /// (TcpExt:EmbryonicRsts; each counted an AttemptFail no socket shows),
    /// as rows of their listener where the namespace had only one, or only
    /// one whose drops moved (`diff::request_listener`): one row
    /// a request socket, up to [`REQUEST_ROWS_LIMIT`] (the last carries
    /// the rest).
    fn find_request_rows(&self, deltas: Option<&SystemCounters>) -> Vec<RequestRow> {
        let Some(deltas) = deltas else {
            return Vec::new();
        };
        // The namespace counts these resets itself: what must be whole is
        // what names their listener, not every socket's AttemptFails (the
        // same script in another namespace fails sockets there too).
        if !self.listeners_are_whole_namespace() {
            return Vec::new();
        }
        let Some(listeners) = self.tracker.window_listeners() else {
            return Vec::new();
        };
        let several = deltas.namespace_count() > 1;
        let mut evidence = diff::ListenerEvidence::default();
        for row in self.tracker.rows() {
            let key = &row.sample.key;
            match (row.sample.state, row.counters.get(Counter::ListenDrops)) {
                // Each polled listener's sk_drops moves over the window.
                (TcpState::Listen, Some(drops)) => {
                    let listener = (key.netns, crate::model::unmap(key.local), key.local_port);
                    *evidence.drops_moved.entry(listener).or_default() += drops;
                }
                (TcpState::NewSynRecv, _) => evidence.saw_handshake(&listeners, key),
                _ if row.counters.value(Counter::PassiveOpens) > 0 => {
                    evidence.saw_handshake(&listeners, key)
                }
                _ => {}
            }
        }
        let mut rows = Vec::new();
        for (netns, count) in deltas.per_namespace(EMBRYONIC_RESETS) {
            let Ok(count @ 1..) = u64::try_from(count) else {
                continue;
            };
            let Some(diff::RequestListener {
                id: (ns, address, port),
                sure,
            }) = diff::request_listener(&listeners, netns.filter(|_| several), &evidence)
            else {
                continue;
            };
            let key = crate::model::SocketKey {
                netns: ns,
                ..crate::model::SocketKey::new(address, port, unspecified_like(address), 0)
            };
            // Its owner is the listener's, where a poll read its inode.
            let inode = self
                .tracker
                .rows()
                .find(|r| r.sample.key == key && r.sample.state == TcpState::Listen)
                .map_or(0, |r| r.sample.inode);
            let each = count.min(REQUEST_ROWS_LIMIT);
            for i in 0..each {
                let fails = if i + 1 == each { count - (each - 1) } else { 1 };
                rows.push(RequestRow::new(key, inode, fails, sure));
            }
        }
        rows
    }

    /// Starts the next window: counts so far are forgotten.
    pub fn end_window(&mut self) {
        self.notices.end_window();
        self.tracker.reset_window();
        self.udp.reset_window();
        if let Some(feed) = self.feed.as_ref() {
            self.events_lost_at_window_start = feed.lost() + feed.undelivered();
        }
        if let Some(lost) = self.source.udp_closes_lost() {
            self.udp_closes_lost_at_window_start = lost;
        }
        if let Some(lost) = self.source.closes_lost() {
            self.closes_lost_at_window_start = lost;
        }
        self.folded.reset(self.config.index);
        self.folded_everywhere = Default::default();
        self.folded_everywhere_sockets = 0;
        self.window.start_ms = self.source.elapsed_ms();
        self.window.polls = 0;
    }

    /// One lifetime report per connection that closed since the last call
    /// (--onclose). Call [`Session::forget_closes`] once they are written.
    /// A life whose last events are still to come (precision: its notice
    /// came first) waits for the next call, unless `everything` (the run
    /// ends).
    pub fn close_reports(&mut self, everything: bool) -> Vec<Report<'_>> {
        self.relabel();
        let now_ms = self.source.elapsed_ms();
        let this = &*self;
        let filters = &this.config.filters;
        let udp = if this.config.udp {
            this.udp_close_reports()
        } else {
            Vec::new()
        };
        let mut reports: Vec<Report<'_>> = this
            .tracker
            .closed()
            .iter()
            .filter(|closed| closed.is_connection() && filters.matches(&closed.sample.key))
            .filter(|closed| everything || !this.tracker.awaits_late_events(closed))
            .map(|closed| {
                let group = Group {
                    counters: closed.lifetime_counters(),
                    sockets: 1,
                    closed: 1,
                    sample: Some(&closed.sample),
                    history: closed.history,
                    sample_closed: true,
                    ..Group::empty(Index::Tuple.key_of(&closed.sample.key))
                };
                let kind = ReportKind::Close {
                    unseen_ms: closed.unseen_ms,
                    from: closed.counted_from,
                };
                // Between its last sighting and the poll that missed it.
                let window = (now_ms.saturating_sub(closed.unseen_ms), now_ms);
                let mut report = Report::new(
                    kind,
                    Index::Tuple,
                    window,
                    this.tracker.polls(),
                    vec![group],
                );
                this.decorate(&mut report);
                report
            })
            .collect();
        reports.extend(udp);
        reports
    }

    /// One lifetime report per UDP socket that closed since the last
    /// call (--onclose with --udp), those the filters accept.
    fn udp_close_reports(&self) -> Vec<Report<'static>> {
        let owners = self.owner_lookup();
        let closes_lost = self.source.udp_closes_lost();
        let unreported = self.udp.unreported();
        self.udp
            .closed()
            .into_iter()
            .filter(|c| self.config.filters.matches(&c.sample.key))
            .map(|closed| {
                let owner = owners
                    .filter(|_| closed.sample.inode != 0)
                    .and_then(|o| o.label_of(closed.sample.inode));
                let start = closed
                    .first_seen_ms
                    .or(closed.born_after_ms)
                    .unwrap_or(0)
                    .min(closed.closed_by_ms);
                let mut report = Report::new(
                    ReportKind::UdpClose,
                    Index::Tuple,
                    (start, closed.closed_by_ms),
                    self.udp.polls(),
                    Vec::new(),
                );
                report.netns_labels = self.netns_labels.clone();
                report.notices = self.notices.for_report();
                report.run_started = self.source.opened_at();
                report.filtered = !self.config.filters.matches_everything();
                report.udp_close = Some(crate::report::udp::UdpCloseReport {
                    closed,
                    owner,
                    closes_lost,
                    unreported,
                });
                report
            })
            .collect()
    }

    /// Forgets the closes reported. Sockets' windows run on: a lifetime
    /// report needs all its socket's events, not only the last loop's.
    pub fn forget_closes(&mut self) {
        self.tracker.clear_closed_reported();
        if self.config.udp {
            self.udp.forget_closed();
            let unreported = self.udp.unreported();
            if unreported > self.udp_unreported_noted {
                self.notices.say_now(format!(
                    "{} UDP sockets that closed were not reported one by one (more than {} known only from close notices between two reports): {unreported} since the start",
                    unreported - self.udp_unreported_noted,
                    crate::udp::NOTICE_ONLY_LIMIT
                ));
                self.udp_unreported_noted = unreported;
            }
        }
    }

    /// `--once`: every socket's counters since its creation. Sockets are
    /// printed (index=tuple) or summed into groups as the dump delivers
    /// them, so no snapshot is held whole.
    pub fn write_once(&mut self, out: &mut dyn Write) -> anyhow::Result<()> {
        if let Some(owners) = self.owners.as_mut() {
            owners.scan_all();
        }
        self.note_owners_denied();
        // Ranking (the terminal's top 20 too) needs every group before
        // the first is written; UDP sockets come only in a whole snapshot;
        // everything else streams, in any namespace.
        let options = self.render_options();
        let ranked = options.top.is_some() || options.sort != aggregate::SortBy::Activity;
        if ranked || self.config.udp {
            return self.write_once_whole(out);
        }
        if self.config.index != Index::Tuple {
            return self.write_once_grouped(out);
        }
        self.write_once_streamed(out)
    }

    fn once_report<'g>(&self) -> Report<'g> {
        let at = self.source.elapsed_ms();
        Report::new(
            ReportKind::Snapshot,
            self.config.index,
            (at, at),
            1,
            Vec::new(),
        )
    }

    /// The busiest groups (a terminal's `--once`) are known only once
    /// every socket is in: poll whole, then label, sort and print.
    fn write_once_whole(&mut self, out: &mut dyn Write) -> anyhow::Result<()> {
        let mut report = self.once_report();
        let snapshot = self.source.snapshot()?;
        self.notices.add(self.source.take_notices());
        self.relabel();
        report.groups = self.finish_groups(aggregate::group_snapshot_rows(
            diff::lifetime_rows(&snapshot, &self.config.filters),
            self.config.index,
            self.owner_lookup(),
        ));
        self.decorate(&mut report);
        if self.config.udp {
            // Drops since each socket's creation; no MIB window to set
            // them against.
            report.udp =
                Some(self.udp_section(crate::udp::lifetime_rows(&snapshot.udp), &[], None, 0));
            self.name_udp_processes(&mut report);
        }
        report::render(&report, self.render_options(), out)?;
        Ok(())
    }

    fn write_once_grouped(&mut self, out: &mut dyn Write) -> anyhow::Result<()> {
        let mut report = self.once_report();
        let owners = self.owners.as_ref().map(|o| o as &dyn OwnerLookup);
        let mut grouper = Grouper::new(self.config.index, 64)
            .with_owners(owners)
            .for_snapshot();
        let filters = &self.config.filters;
        self.source.stream(&mut |sample| {
            if filters.matches(&sample.key) {
                grouper.add_counts(&lifetime_row(sample));
            }
            true
        })?;
        let groups = grouper.finish();
        self.record(0)?;
        self.notices.add(self.source.take_notices());
        self.relabel();
        report.groups = self.finish_groups(groups);
        self.decorate(&mut report);
        report::render(&report, self.render_options(), out)?;
        Ok(())
    }

    fn write_once_streamed(&mut self, out: &mut dyn Write) -> anyhow::Result<()> {
        let mut report = self.once_report();
        self.relabel();
        self.decorate(&mut report);
        let options = self.render_options();
        let owners = self.owners.as_ref().map(|o| o as &dyn OwnerLookup);
        let filters = &self.config.filters;
        let mut writer = ReportWriter::begin(&report, options, &mut *out)?;
        let mut failure = None;
        self.source.stream(&mut |sample| {
            if !filters.matches(&sample.key) {
                return true;
            }
            let mut group = aggregate::single_socket_group(lifetime_row(sample));
            group.owner =
                owners.map(|o| aggregate::owner_label(o, sample.inode, Default::default()));
            match writer.group(&report, &group) {
                Ok(()) => true,
                Err(err) => {
                    failure = Some(err);
                    false
                }
            }
        })?;
        if let Some(err) = failure {
            return Err(err.into());
        }
        self.record(0)?;
        self.notices.add(self.source.take_notices());
        report.notices = self.notices.for_report();
        writer.end(&report)?;
        Ok(())
    }
}

/// Each UDP counter from events with its source, and what this kernel
/// cannot give (--precision).
pub type UdpSources = (Vec<(String, String)>, Vec<String>);

/// A notice of UDP close notices lost since the last poll.
fn udp_close_loss_note(lost: &CloseLoss) -> String {
    let count = if lost.exact {
        format!("{}", lost.notices)
    } else {
        format!("at least {}", lost.notices)
    };
    format!(
        "close notices lost since the last poll: {count} (the kernel's buffer was full {} times): UDP sockets that were bound and closed between two polls then are in no count and no --onclose report; raise --close-buffer",
        lost.overflows
    )
}

/// A notice of close notices lost `when`, in the unit counted.
fn close_loss_note(lost: &CloseLoss, when: &str) -> String {
    let overflows = match lost.overflows {
        1 => "once".to_string(),
        n => format!("{n} times"),
    };
    let what = if lost.exact {
        format!(
            "{} close notices lost {when} (the kernel's buffer was full {overflows}: each time it drops every notice until the buffer is read empty)",
            lost.notices
        )
    } else {
        format!(
            "close notices lost {when}: the kernel's buffer was full {overflows}, each time dropping an unknown number of notices (this kernel does not count them; at least {})",
            lost.notices
        )
    };
    format!(
        "{what}: connections that opened and closed between two polls then are missing from every count, and opens, fails and resets are marked ~; raise --close-buffer"
    )
}

/// Errors name --record and its directory (cut when long), and are not
/// `io::Error`s: main would take those for stdout failing.
fn write_recording(dir: &Path, poll: u64, bytes: &[u8]) -> anyhow::Result<()> {
    let shown = || crate::filter::quoted(&dir.to_string_lossy());
    std::fs::create_dir_all(dir)
        .map_err(|err| anyhow::anyhow!("--record {}: cannot create it: {err}", shown()))?;
    let name = format!("poll-{poll:04}.nl");
    std::fs::write(dir.join(&name), bytes)
        .map_err(|err| anyhow::anyhow!("--record {}: cannot write {name}: {err}", shown()))
}

/// Why owners could not be read, for a notice.
fn unread_reason(why: Unread) -> String {
    match why {
        Unread::Permission if is_root() => "permission denied".to_string(),
        Unread::Permission => "other users' processes; root can read them".to_string(),
        Unread::TooManyOpenFiles => "too many open files; raise ulimit -n".to_string(),
        Unread::NoProcfs => {
            "it is no procfs: not mounted, or hidden under another mount".to_string()
        }
        Unread::Other(errno) => std::io::Error::from_raw_os_error(errno).to_string(),
    }
}

/// The effective user is root (asked of the kernel: /proc may be hidden).
fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Per listener, its share of the namespace's ListenDrops and
/// ListenOverflows over the window.
#[derive(Default)]
struct ListenerShares {
    drops: rustc_hash::FxHashMap<crate::model::SocketKey, diff::ListenerShare>,
    overflows: rustc_hash::FxHashMap<crate::model::SocketKey, diff::ListenerShare>,
    settled: Settled,
    fail_causes: diff::FailCausesByNamespace,
}

/// (namespace, None where one is sampled; counter) → the count each
/// socket uncertain of it takes, by the way it leans.
type Settled = rustc_hash::FxHashMap<(Option<u64>, Counter), diff::Settlement>;

/// The way `row`'s own segments lean on its uncertain `counter`: only an
/// EstabReset's has a tell (see `diff::reset_lean`).
fn lean_of_row(row: &diff::SocketRow<'_>, counter: Counter) -> diff::Lean {
    if counter != Counter::EstabResets || !row.closed {
        return diff::Lean::Neither;
    }
    let active = row.counters.value(Counter::ActiveOpens) == 1;
    diff::reset_lean(row.sample, active)
}

/// Whether `row`'s uncertain AttemptFail is ruled out by its namespace's
/// counts: a connect no answer reached, opened and ended (its notice, state
/// CLOSE) within the window, in a namespace that counted none of the ways
/// such a connect fails.
fn fail_ruled_out(row: &diff::SocketRow<'_>, causes: &diff::FailCausesByNamespace) -> bool {
    let counters = &row.counters;
    let uncertain =
        counters.is_approx(Counter::AttemptFails) && counters.value(Counter::AttemptFails) <= 1;
    let whole_life = counters.value(Counter::ActiveOpens) >= 1
        && row.closed
        && row.sample.state == TcpState::Close;
    if !uncertain || !whole_life {
        return false;
    }
    let Some(kind) = diff::unanswered_connect(row.sample) else {
        return false;
    };
    causes
        .get(&Some(row.sample.key.netns))
        .or_else(|| causes.get(&None))
        .is_some_and(|c| c.rule_out(kind))
}

impl ListenerShares {
    /// The row with its listener counters taken from the namespace's, and
    /// its uncertain fail or reset as the namespace's count settles it.
    fn apply<'a>(&self, mut row: diff::SocketRow<'a>) -> diff::SocketRow<'a> {
        if fail_ruled_out(&row, &self.fail_causes) {
            row.counters.replace(Counter::AttemptFails, 0, false);
        }
        if self.drops.is_empty() && self.overflows.is_empty() && self.settled.is_empty() {
            return row;
        }
        for (counter, shares) in [
            (Counter::ListenDrops, &self.drops),
            (Counter::ListenOverflows, &self.overflows),
        ] {
            if let Some(share) = shares.get(&row.sample.key) {
                row.counters.replace(counter, share.count, share.approx);
            }
        }
        for counter in [Counter::AttemptFails, Counter::EstabResets] {
            if !row.counters.is_approx(counter) || row.counters.value(counter) > 1 {
                continue;
            }
            let settled = self
                .settled
                .get(&(Some(row.sample.key.netns), counter))
                .or_else(|| self.settled.get(&(None, counter)));
            if let Some(settlement) = settled {
                let each = settlement.value(lean_of_row(&row, counter));
                row.counters.replace(counter, each, false);
            }
        }
        row
    }
}

/// A request socket of a listener that a reset or a new SYN ended: the
/// listener's tuple (its peer is not known), its AttemptFail.
#[derive(Debug, Clone)]
struct RequestRow {
    sample: crate::model::SocketSample,
    counters: Counters,
}

impl RequestRow {
    fn new(key: crate::model::SocketKey, inode: u64, fails: u64, sure: bool) -> RequestRow {
        let mut counters = Counters::default();
        counters.set(Counter::AttemptFails, fails, !sure);
        let mut sample = crate::model::SocketSample::bare(key, 0, TcpState::SynRecv);
        sample.inode = inode;
        RequestRow { sample, counters }
    }

    fn row(&self) -> diff::SocketRow<'_> {
        diff::SocketRow {
            sample: &self.sample,
            counters: self.counters,
            closed: true,
            history: Default::default(),
            holder: diff::Holder {
                pid: None,
                unpolled: self.sample.inode == 0,
            },
            rtt: Default::default(),
        }
    }
}

fn unspecified_like(address: std::net::IpAddr) -> std::net::IpAddr {
    match address {
        std::net::IpAddr::V4(_) => crate::model::UNSPECIFIED_V4,
        std::net::IpAddr::V6(_) => crate::model::UNSPECIFIED_V6,
    }
}

/// The first `start + k·period` after `now` (k ≥ 1 when `start <= now`).
pub fn next_boundary(
    start: std::time::Instant,
    period: std::time::Duration,
    now: std::time::Instant,
) -> std::time::Instant {
    if start > now {
        return start;
    }
    let behind = (now - start).as_nanos();
    let period_ns = period.as_nanos().max(1);
    let ahead_ns = (behind / period_ns + 1) * period_ns;
    let ahead = std::time::Duration::from_nanos(u64::try_from(ahead_ns).unwrap_or(u64::MAX));
    start.checked_add(ahead).unwrap_or(now + period)
}
