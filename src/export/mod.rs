//! The Prometheus exporter's state, pure: each window's report adds to
//! cumulative totals per group (so counters never go down), bounded by a
//! series limit (new groups past it are summed into one `other` series)
//! and aged out when idle. [`encode`] turns the state into the OpenMetrics
//! or Prometheus text format; the HTTP edge is [`http`].

pub mod encode;
mod groups;
pub mod http;
pub mod udp;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::aggregate::{GroupKey, Index, NO_OWNER, UNSEEN_OWNER};
use crate::counters::{Counter, Counters};
use crate::report::Report;

/// A series' labels: (name, value) in the index's order.
pub type Labels = Vec<(&'static str, String)>;

/// Limits of the exporter's memory (and of what a scrape returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Series kept one by one; new groups past it go to `other`.
    pub max_series: usize,
    /// A series no window touched for this long is forgotten.
    pub idle_expiry: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_series: 5000,
            idle_expiry: Duration::from_secs(15 * 60),
        }
    }
}

/// One group's totals since the exporter started.
#[derive(Debug, Clone, Default)]
struct Series {
    totals: Counters,
    /// Gauges of the last window that saw the group.
    sockets: u64,
    curr_estab: u64,
    rtt_seconds: Option<f64>,
    cwnd: Option<u32>,
    /// A tuple's connect's handshake time (--precision), once timed.
    handshake_seconds: Option<f64>,
    /// Its sockets' smoothed RTT samples since the exporter started (an
    /// index other than tuple, whose series have the gauge instead).
    rtt: crate::rtt::RttHistogram,
    /// Milliseconds (of the run) the group last moved or was seen.
    last_seen_ms: u64,
    /// Whether the latest window had this group (its gauges are current).
    current: bool,
}

impl Series {
    /// A window's group: its deltas added, its gauges taken.
    fn add(&mut self, group: &crate::aggregate::Group<'_>, now_ms: u64) {
        let mut deltas = group.counters;
        // A gauge is no total: kept as the group's current value.
        self.curr_estab = deltas.value(Counter::CurrEstab);
        deltas.replace(Counter::CurrEstab, 0, false);
        self.totals.add(&deltas);
        self.sockets = group.sockets as u64;
        self.rtt_seconds = group
            .sample
            .and_then(|s| s.tcp_info.as_ref()?.rtt())
            .map(|us| f64::from(us) / 1e6);
        self.cwnd = group.sample.and_then(|s| s.tcp_info.as_ref()?.snd_cwnd());
        if !matches!(group.key, GroupKey::Tuple(_)) {
            self.rtt.merge(&group.rtt);
        } else if let Some((_, us)) = group.rtt.handshake.min_max_us() {
            self.handshake_seconds = Some(f64::from(us) / 1e6);
        }
        self.last_seen_ms = now_ms;
        self.current = true;
    }
}

/// The HTTP edge's own counts, for the self-metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpStats {
    /// Scrapes answered, this one included.
    pub scrapes: u64,
    pub dropped: u64,
    pub rejected: u64,
    /// Accepts that failed for want of file descriptors (EMFILE, ENFILE)
    /// and made the server pause.
    pub accept_backoffs: u64,
    /// Expositions encoded: at most one per poll and format.
    pub encodings: u64,
}

/// What the run itself tells about its health.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SelfStats {
    pub polls: u64,
    pub poll_seconds: f64,
    pub sockets_tracked: u64,
    pub events_lost: u64,
    pub events_undelivered: u64,
    pub close_notices_lost: u64,
}

#[derive(Debug, Default, Clone)]
pub struct Exporter {
    limits: Limits,
    /// Moves on with every change: an exposition encoded from this
    /// generation is still the state's.
    generation: u64,
    series: HashMap<Labels, Series>,
    /// Groups past the limit, summed, under the index's label names.
    other: Option<Series>,
    other_labels: Option<Labels>,
    /// Groups that went to `other`, and series forgotten idle.
    folded: u64,
    expired: u64,
    /// Sockets per state at the latest poll.
    states: BTreeMap<&'static str, u64>,
    /// --system: the namespace's counters summed over the windows (only
    /// those that moved: most of the ~400 never do, and a counter once
    /// served stays, so no series comes and goes), and the latest
    /// window's residuals (which can be negative).
    namespace: BTreeMap<String, u64>,
    unattributed: BTreeMap<&'static str, i64>,
    stats: SelfStats,
    /// --udp: UDP groups, the Udp MIB, UDP close notices lost.
    udp: udp::UdpState,
}

/// `BytesSent` → `bytes_sent`, `TCPDSACKRecv` → `tcp_dsack_recv`,
/// `DelayedACKs` → `delayed_acks`.
pub fn snake_case(name: &str) -> String {
    let (prefix, rest) = match name.strip_prefix("TCP") {
        Some(rest) => ("tcp_", rest),
        None => ("", name),
    };
    let chars: Vec<char> = rest.chars().collect();
    let mut out = String::from(prefix);
    for (i, c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1);
        // An acronym's plural `s` (ACKs) starts no word.
        let plural = next == Some(&'s') && i + 2 == chars.len();
        let word_after_acronym = next.is_some_and(|n| n.is_lowercase()) && !plural;
        let boundary = c.is_uppercase()
            && prev.is_some_and(|p| p.is_lowercase() || (p.is_uppercase() && word_after_acronym));
        if boundary {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// The labels of a group: the index's keys, named as in the reports.
fn labels_of(report: &Report<'_>, key: &GroupKey) -> Labels {
    match *key {
        GroupKey::Tuple(k) => {
            let mut labels = vec![
                ("laddr", k.local.to_string()),
                ("lport", k.local_port.to_string()),
                ("raddr", k.remote.to_string()),
                ("rport", k.remote_port.to_string()),
            ];
            if k.netns != 0 {
                labels.push(("netns", report.netns_label(k.netns)));
            }
            labels
        }
        GroupKey::Laddr(a) => vec![("laddr", a.to_string())],
        GroupKey::Raddr(a) => vec![("raddr", a.to_string())],
        GroupKey::Lport(p) => vec![("lport", p.to_string())],
        GroupKey::Rport(p) => vec![("rport", p.to_string())],
        GroupKey::Netns(_) => vec![("netns", report.key_value(key))],
        GroupKey::Container(_) => vec![("container", report.key_value(key))],
        GroupKey::Pod(n) => {
            let label = report.pod_label(n);
            let part = |f: fn(&crate::source::pods::PodLabel) -> &String| {
                label.map(f).cloned().unwrap_or_default()
            };
            vec![
                ("namespace", part(|l| &l.namespace)),
                ("pod", part(|l| &l.pod)),
                ("container", part(|l| &l.container)),
            ]
        }
        GroupKey::Process(NO_OWNER) => vec![("process", "none".to_string())],
        GroupKey::Process(UNSEEN_OWNER) => vec![("process", "unseen".to_string())],
        GroupKey::Process(_) => vec![("process", report.key_value(key))],
        GroupKey::Unlisted => label_names(report.index)
            .iter()
            .map(|name| (*name, crate::aggregate::UNLISTED_VALUE.to_string()))
            .collect(),
    }
}

/// The label names of an index's series.
fn label_names(index: Index) -> &'static [&'static str] {
    match index {
        Index::Tuple => &["laddr", "lport", "raddr", "rport"],
        Index::Laddr => &["laddr"],
        Index::Raddr => &["raddr"],
        Index::Lport => &["lport"],
        Index::Rport => &["rport"],
        Index::Netns => &["netns"],
        Index::Container => &["container"],
        Index::Process => &["process"],
        Index::Pod => &["namespace", "pod", "container"],
    }
}

/// The `other` series' labels: the index's label names, each `other`.
fn other_labels(like: &Labels) -> Labels {
    like.iter()
        .map(|(name, _)| (*name, "other".to_string()))
        .collect()
}

impl Exporter {
    pub fn new(limits: Limits) -> Exporter {
        Exporter {
            limits,
            ..Exporter::default()
        }
    }

    /// Adds one window's report (taken at `now_ms` of the run).
    pub fn add_window(&mut self, report: &Report<'_>, now_ms: u64) {
        self.generation += 1;
        for series in self.series.values_mut() {
            series.current = false;
        }
        if let Some(other) = self.other.as_mut() {
            other.current = false;
        }
        let mut other_like = None;
        for group in &report.groups {
            let labels = labels_of(report, &group.key);
            let known = self.series.contains_key(&labels);
            let series = if known || self.series.len() < self.limits.max_series {
                self.series.entry(labels).or_default()
            } else {
                self.folded += 1;
                other_like.get_or_insert_with(|| other_labels(&labels));
                self.other.get_or_insert_with(Series::default)
            };
            series.add(group, now_ms);
        }
        if let Some(like) = other_like {
            self.other_labels = Some(like);
        }
        self.expire(now_ms);
        if let Some(system) = &report.system {
            self.add_system(system);
        }
        self.udp.add(report, now_ms, self.limits);
    }

    /// Forgets the series no window touched for the idle expiry.
    fn expire(&mut self, now_ms: u64) {
        let expiry = u64::try_from(self.limits.idle_expiry.as_millis()).unwrap_or(u64::MAX);
        let before = self.series.len();
        self.series
            .retain(|_, s| now_ms.saturating_sub(s.last_seen_ms) < expiry);
        self.expired += (before - self.series.len()) as u64;
    }

    /// --system: the namespace's counters that moved, and the residuals.
    fn add_system(&mut self, system: &crate::aggregate::SystemSection) {
        for (key, value) in &system.deltas.values {
            if crate::source::procfs::is_gauge(key) || *value <= 0 {
                continue;
            }
            match self.namespace.get_mut(key) {
                Some(total) => *total += *value as u64,
                None => {
                    self.namespace.insert(key.clone(), *value as u64);
                }
            }
        }
        self.unattributed = system
            .residuals
            .iter()
            .map(|r| (r.counter.name(), r.unattributed()))
            .collect();
    }

    pub fn set_states(&mut self, states: BTreeMap<&'static str, u64>) {
        self.generation += 1;
        self.states = states;
    }

    pub fn set_stats(&mut self, stats: SelfStats) {
        self.generation += 1;
        self.stats = stats;
    }

    /// Which state an exposition was encoded from.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn series_count(&self) -> usize {
        self.series.len() + usize::from(self.other.is_some())
    }

    /// Every group series, `other` last.
    fn all_series(&self) -> impl Iterator<Item = (&Labels, &Series)> {
        let other = self.other.as_ref().zip(self.other_labels.as_ref());
        self.series.iter().chain(other.map(|(s, l)| (l, s)))
    }
}

#[cfg(test)]
mod tests {
    use super::encode::{exposition, Format};
    use super::*;
    use crate::aggregate::{Group, Index};
    use crate::report::ReportKind;
    use std::sync::Arc;

    fn expose(exporter: &Exporter, format: Format) -> String {
        exposition(&Arc::new(exporter.clone()), format, &HttpStats::default())
    }

    #[test]
    fn counter_names_become_prometheus_names() {
        let cases = [
            ("BytesSent", "bytes_sent"),
            ("RetransSegs", "retrans_segs"),
            ("TCPDSACKRecv", "tcp_dsack_recv"),
            ("TCPOFOQueue", "tcp_ofo_queue"),
            ("TCPDeliveredCE", "tcp_delivered_ce"),
            ("DelayedACKs", "delayed_acks"),
            ("InRsts", "in_rsts"),
            ("MessageBytesReceived", "message_bytes_received"),
        ];
        for (name, want) in cases {
            assert_eq!(snake_case(name), want);
        }
        // Every counter's name is a valid, distinct metric name.
        let names: std::collections::BTreeSet<String> =
            Counter::ALL.iter().map(|c| snake_case(c.name())).collect();
        assert_eq!(names.len(), Counter::ALL.len());
        assert!(names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
    }

    fn window(ports: &[(u16, u64)], end_ms: u64) -> Report<'static> {
        let groups = ports
            .iter()
            .map(|&(port, bytes)| {
                let mut counters = Counters::default();
                counters.set(Counter::BytesReceived, bytes, false);
                counters.set(Counter::CurrEstab, 1, false);
                Group {
                    counters,
                    sockets: 1,
                    ..Group::empty(GroupKey::Lport(port))
                }
            })
            .collect();
        Report::new(ReportKind::Window, Index::Lport, (0, end_ms), 1, groups)
    }

    #[test]
    fn process_series_tell_sockets_closed_before_any_poll_from_those_none_holds() {
        let mut report = window(&[], 1000);
        report.index = Index::Process;
        report.process_names.insert(812, "nginx".to_string());
        let label = |pid| labels_of(&report, &GroupKey::Process(pid));
        assert_eq!(label(812), vec![("process", "nginx[812]".to_string())]);
        assert_eq!(label(NO_OWNER), vec![("process", "none".to_string())]);
        assert_eq!(label(UNSEEN_OWNER), vec![("process", "unseen".to_string())]);
    }

    #[test]
    fn pod_series_carry_namespace_pod_and_container_labels() {
        let report = crate::report::test_fixtures::by_pod();
        let label = |n| labels_of(&report, &GroupKey::Pod(n));
        let owned = |a: &str, b: &str, c: &str| {
            vec![
                ("namespace", a.to_string()),
                ("pod", b.to_string()),
                ("container", c.to_string()),
            ]
        };
        assert_eq!(label(0), owned("shop", "web-0", "nginx"));
        assert_eq!(label(2), owned("", "", "docker:3f4e5a6b7c8d"));
        // A position the report has no label for: empty labels, no panic.
        assert_eq!(label(9), owned("", "", ""));
        let mut exporter = Exporter::new(Limits::default());
        exporter.add_window(&report, 1000);
        let text = expose(&exporter, Format::Prometheus);
        assert!(
            text.contains(r#"namespace="shop",pod="web-0",container="nginx""#),
            "{text}"
        );
    }

    fn value(text: &str, series: &str) -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
            .map(|v| v as u64)
    }

    /// A window of one lport group with these RTT samples, µs.
    fn rtt_window(port: u16, samples: &[u32], end_ms: u64) -> Report<'static> {
        let mut report = window(&[(port, 1)], end_ms);
        let mut s = crate::rtt::RttSamples::default();
        for &us in samples {
            s.record(us);
        }
        report.groups[0].rtt.add_samples(&s);
        report
    }

    #[test]
    fn handshakes_are_a_histogram_per_group_and_a_gauge_per_tuple() {
        let handshake = |us: u32| {
            let mut s = crate::rtt::RttSamples::default();
            s.set_handshake(us);
            let mut h = crate::rtt::RttHistogram::default();
            h.add_samples(&s);
            h
        };
        let mut exporter = Exporter::new(Limits::default());
        for (i, us) in [20_000, 30_000, 400].into_iter().enumerate() {
            let end = 1000 * (i as u64 + 1);
            let mut report = window(&[(443, 1)], end);
            report.groups[0].rtt = handshake(us);
            exporter.add_window(&report, end);
        }
        let text = expose(&exporter, Format::Prometheus);
        assert!(
            text.contains("# TYPE tcpipstat_handshake_seconds histogram"),
            "{text}"
        );
        assert_eq!(
            value(&text, "tcpipstat_handshake_seconds_count{lport=\"443\"}"),
            Some(3),
            "{text}"
        );
        assert!(
            text.contains("tcpipstat_handshake_seconds_bucket{lport=\"443\",le=\"0.025\"} 2"),
            "{text}"
        );
        // No smoothed-RTT sample came: no rtt histogram.
        assert!(!text.contains("tcpipstat_rtt_seconds"), "{text}");

        let mut tuples = Exporter::new(Limits::default());
        let mut report = crate::report::test_fixtures::window_tuple();
        report.groups[0].rtt = handshake(20_500);
        tuples.add_window(&report, 1000);
        let text = expose(&tuples, Format::Prometheus);
        assert!(
            text.contains("# TYPE tcpipstat_handshake_seconds gauge"),
            "{text}"
        );
        assert!(
            !text.contains("tcpipstat_handshake_seconds_bucket"),
            "{text}"
        );
        let gauge = text
            .lines()
            .find(|l| l.starts_with("tcpipstat_handshake_seconds{"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
        assert_eq!(gauge, Some(0.0205), "{text}");
    }

    #[test]
    fn rtt_histograms_add_up_over_windows_as_cumulative_buckets() {
        let mut exporter = Exporter::new(Limits::default());
        exporter.add_window(&rtt_window(443, &[800, 4_000], 1000), 1000);
        exporter.add_window(&rtt_window(443, &[4_500, 70_000], 2000), 2000);
        // A group past the series limit sums into `other`, RTT too.
        let mut small = Exporter::new(Limits {
            max_series: 0,
            ..Limits::default()
        });
        small.add_window(&rtt_window(22, &[300], 1000), 1000);
        for format in [Format::Prometheus, Format::OpenMetrics] {
            let text = expose(&exporter, format);
            // The encoder puts `le` first (Prometheus) or last.
            let at = |le: &str| {
                let le = format!("le=\"{le}\"");
                text.lines().find_map(|l| {
                    let rest = l.strip_prefix("tcpipstat_rtt_seconds_bucket{")?;
                    let (labels, v) = rest.split_once("} ")?;
                    let mut names: Vec<&str> = labels.split(',').collect();
                    names.sort_unstable();
                    (names == [le.as_str(), "lport=\"443\""]).then(|| v.parse::<u64>().ok())?
                })
            };
            assert_eq!(at("0.0005"), Some(0), "{text}");
            assert_eq!(at("0.001"), Some(1));
            assert_eq!(at("0.005"), Some(3));
            assert_eq!(at("0.05"), Some(3));
            assert_eq!(at("0.1"), Some(4));
            assert_eq!(at("+Inf"), Some(4));
            assert_eq!(
                value(&text, "tcpipstat_rtt_seconds_count{lport=\"443\"}"),
                Some(4)
            );
            let sum = text
                .lines()
                .find_map(|l| l.strip_prefix("tcpipstat_rtt_seconds_sum{lport=\"443\"}"))
                .map(|v| v.trim().parse::<f64>().unwrap());
            assert!((sum.unwrap() - 0.0793).abs() < 1e-9, "{text}");
            assert!(text.contains("# TYPE tcpipstat_rtt_seconds histogram"));
            let other = expose(&small, format);
            assert_eq!(
                value(&other, "tcpipstat_rtt_seconds_count{lport=\"other\"}"),
                Some(1),
                "{other}"
            );
        }
        // A tuple's series have the gauge: never both under one name.
        let mut tuples = Exporter::new(Limits::default());
        let mut report = crate::report::test_fixtures::window_tuple();
        for g in &mut report.groups {
            g.rtt = exporter.series.values().next().unwrap().rtt;
        }
        tuples.add_window(&report, 1000);
        let text = expose(&tuples, Format::Prometheus);
        assert!(!text.contains("tcpipstat_rtt_seconds_bucket"), "{text}");
    }

    #[test]
    fn totals_add_up_over_windows_and_never_go_down() {
        let mut exporter = Exporter::new(Limits::default());
        exporter.add_window(&window(&[(443, 100)], 1000), 1000);
        exporter.add_window(&window(&[(443, 50), (80, 7)], 2000), 2000);
        // A window without the group: its total stays.
        exporter.add_window(&window(&[(80, 1)], 3000), 3000);
        let text = expose(&exporter, Format::Prometheus);
        assert_eq!(
            value(&text, "tcpipstat_bytes_received_total{lport=\"443\"}"),
            Some(150)
        );
        assert_eq!(
            value(&text, "tcpipstat_bytes_received_total{lport=\"80\"}"),
            Some(8)
        );
        // CurrEstab is a gauge of the groups the last window had.
        assert_eq!(value(&text, "tcpipstat_curr_estab{lport=\"80\"}"), Some(1));
        assert_eq!(value(&text, "tcpipstat_curr_estab{lport=\"443\"}"), None);
        assert!(!text.contains("curr_estab_total"));
        assert!(text.contains("# TYPE tcpipstat_bytes_received_total counter"));
        assert!(!text.contains("# EOF"));
        let open = expose(&exporter, Format::OpenMetrics);
        assert!(open.contains("# TYPE tcpipstat_bytes_received counter"));
        assert!(open.trim_end().ends_with("# EOF"));
    }

    #[test]
    fn past_the_series_limit_new_groups_are_summed_into_other_and_counted() {
        let mut exporter = Exporter::new(Limits {
            max_series: 2,
            idle_expiry: Duration::from_secs(60),
        });
        exporter.add_window(&window(&[(1, 10), (2, 20), (3, 30), (4, 40)], 1000), 1000);
        let text = expose(&exporter, Format::Prometheus);
        assert_eq!(
            value(&text, "tcpipstat_bytes_received_total{lport=\"other\"}"),
            Some(70)
        );
        assert_eq!(value(&text, "tcpipstat_series_folded_total"), Some(2));
        assert_eq!(value(&text, "tcpipstat_series"), Some(3));
        assert_eq!(exporter.series_count(), 3);
    }

    #[test]
    fn idle_series_are_forgotten_and_counted() {
        let mut exporter = Exporter::new(Limits {
            max_series: 10,
            idle_expiry: Duration::from_secs(5),
        });
        exporter.add_window(&window(&[(1, 10)], 1000), 1000);
        exporter.add_window(&window(&[(2, 10)], 7000), 7000);
        let text = expose(&exporter, Format::Prometheus);
        assert_eq!(
            value(&text, "tcpipstat_bytes_received_total{lport=\"1\"}"),
            None
        );
        assert_eq!(value(&text, "tcpipstat_series_expired_total"), Some(1));
    }

    fn system_window(values: &[(&str, i64)], end_ms: u64) -> Report<'static> {
        let mut deltas = crate::source::procfs::SystemCounters::default();
        for (key, value) in values {
            deltas.values.insert(key.to_string(), *value);
        }
        let mut report = window(&[], end_ms);
        report.system = Some(crate::aggregate::system_section(
            deltas,
            &Counters::default(),
            0,
        ));
        report
    }

    #[test]
    fn namespace_counters_are_served_once_they_move_and_kept_after() {
        let mut exporter = Exporter::new(Limits::default());
        let series = |name: &str| format!("tcpipstat_namespace_total{{counter=\"{name}\"}}");
        exporter.add_window(
            &system_window(&[("Tcp:InSegs", 5), ("TcpExt:TCPOFOQueue", 0)], 1000),
            1000,
        );
        let text = expose(&exporter, Format::Prometheus);
        assert_eq!(value(&text, &series("Tcp:InSegs")), Some(5));
        assert_eq!(value(&text, &series("TcpExt:TCPOFOQueue")), None, "{text}");
        // Moved once: served from then on, still when it stands still.
        exporter.add_window(
            &system_window(&[("Tcp:InSegs", 0), ("TcpExt:TCPOFOQueue", 2)], 2000),
            2000,
        );
        exporter.add_window(
            &system_window(&[("Tcp:InSegs", 0), ("TcpExt:TCPOFOQueue", 0)], 3000),
            3000,
        );
        let text = expose(&exporter, Format::Prometheus);
        assert_eq!(value(&text, &series("Tcp:InSegs")), Some(5));
        assert_eq!(value(&text, &series("TcpExt:TCPOFOQueue")), Some(2));
        assert_eq!(text.matches("tcpipstat_namespace_total{").count(), 2);
    }
}
