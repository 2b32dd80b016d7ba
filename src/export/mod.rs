//! The Prometheus exporter's state, pure: each window's report adds to
//! cumulative totals per group (so counters never go down), bounded by a
//! series limit (new groups past it are summed into one `other` series)
//! and aged out when idle; [`Exporter::encode`] turns the state into the
//! OpenMetrics or Prometheus text format through the prometheus-client
//! crate. The HTTP edge is [`http`].

pub mod http;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter as PromCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

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
    /// Milliseconds (of the run) the group last moved or was seen.
    last_seen_ms: u64,
    /// Whether the latest window had this group (its gauges are current).
    current: bool,
}

/// The HTTP edge's own counts, for the self-metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpStats {
    /// Scrapes answered, this one included.
    pub scrapes: u64,
    pub dropped: u64,
    pub rejected: u64,
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

#[derive(Debug, Default)]
pub struct Exporter {
    limits: Limits,
    series: HashMap<Labels, Series>,
    /// Groups past the limit, summed, under the index's label names.
    other: Option<Series>,
    other_labels: Option<Labels>,
    /// Groups that went to `other`, and series forgotten idle.
    folded: u64,
    expired: u64,
    /// Sockets per state at the latest poll.
    states: BTreeMap<&'static str, u64>,
    /// --system: the namespace's counters summed over the windows, and
    /// the latest window's residuals (which can be negative).
    namespace: BTreeMap<String, u64>,
    unattributed: BTreeMap<&'static str, i64>,
    stats: SelfStats,
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
            let mut deltas = group.counters;
            // A gauge is no total: kept as the group's current value.
            series.curr_estab = deltas.value(Counter::CurrEstab);
            deltas.replace(Counter::CurrEstab, 0, false);
            series.totals.add(&deltas);
            series.sockets = group.sockets as u64;
            series.rtt_seconds = group
                .sample
                .and_then(|s| s.tcp_info.as_ref()?.rtt())
                .map(|us| f64::from(us) / 1e6);
            series.cwnd = group.sample.and_then(|s| s.tcp_info.as_ref()?.snd_cwnd());
            series.last_seen_ms = now_ms;
            series.current = true;
        }
        if let Some(like) = other_like {
            self.other_labels = Some(like);
        }
        let expiry = self.limits.idle_expiry.as_millis() as u64;
        let before = self.series.len();
        self.series
            .retain(|_, s| now_ms.saturating_sub(s.last_seen_ms) < expiry);
        self.expired += (before - self.series.len()) as u64;
        if let Some(system) = &report.system {
            for (key, value) in &system.deltas.values {
                if crate::source::procfs::is_gauge(key) || *value < 0 {
                    continue;
                }
                *self.namespace.entry(key.clone()).or_default() += *value as u64;
            }
            self.unattributed = system
                .residuals
                .iter()
                .map(|r| (r.counter.name(), r.unattributed()))
                .collect();
        }
    }

    pub fn set_states(&mut self, states: BTreeMap<&'static str, u64>) {
        self.states = states;
    }

    pub fn set_stats(&mut self, stats: SelfStats) {
        self.stats = stats;
    }

    pub fn series_count(&self) -> usize {
        self.series.len() + usize::from(self.other.is_some())
    }

    /// The exposition: OpenMetrics, or (`openmetrics` false) the
    /// Prometheus text format.
    pub fn encode(&self, openmetrics: bool, http: &HttpStats) -> String {
        let registry = self.registry(http);
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &registry);
        if openmetrics {
            text
        } else {
            to_prometheus_text(&text)
        }
    }

    fn registry(&self, http: &HttpStats) -> Registry {
        let mut registry = Registry::with_prefix("tcpipstat");
        let all_series = self.series.iter().chain(
            self.other
                .as_ref()
                .zip(self.other_labels.as_ref())
                .map(|(s, l)| (l, s)),
        );
        let all: Vec<(&Labels, &Series)> = all_series.collect();
        for counter in Counter::ALL.iter().copied() {
            if counter == Counter::CurrEstab {
                continue;
            }
            let family = Family::<Labels, PromCounter>::default();
            let mut any = false;
            for (labels, series) in &all {
                if let Some(value) = series.totals.get(counter).filter(|v| *v > 0) {
                    family.get_or_create(labels).inc_by(value);
                    any = true;
                }
            }
            if any {
                registry.register(
                    snake_case(counter.name()),
                    format!(
                        "{} since the exporter started (tcpipstat's {})",
                        counter.name(),
                        counter.section().name()
                    ),
                    family,
                );
            }
        }
        let gauge = |registry: &mut Registry,
                     name: &str,
                     help: &str,
                     value: &dyn Fn(&Series) -> Option<f64>| {
            let family = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
            let mut any = false;
            for (labels, series) in all.iter().filter(|(_, s)| s.current) {
                if let Some(v) = value(series) {
                    family.get_or_create(labels).set(v);
                    any = true;
                }
            }
            if any {
                registry.register(name, help, family);
            }
        };
        gauge(
            &mut registry,
            "sockets",
            "Sockets in the group at the latest poll",
            &|s| Some(s.sockets as f64),
        );
        gauge(
            &mut registry,
            "curr_estab",
            "ESTABLISHED and CLOSE_WAIT sockets in the group (Tcp CurrEstab)",
            &|s| Some(s.curr_estab as f64),
        );
        gauge(
            &mut registry,
            "rtt_seconds",
            "Smoothed round-trip time of the tuple's socket",
            &|s| s.rtt_seconds,
        );
        gauge(
            &mut registry,
            "cwnd_segments",
            "Congestion window of the tuple's socket",
            &|s| s.cwnd.map(f64::from),
        );
        let states = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
        for (state, count) in &self.states {
            states
                .get_or_create(&vec![("state", *state)])
                .set(*count as i64);
        }
        registry.register(
            "sockets_by_state",
            "Sockets tracked, by TCP state, at the latest poll",
            states,
        );
        if !self.namespace.is_empty() {
            let namespace = Family::<Vec<(&'static str, String)>, PromCounter>::default();
            for (key, value) in &self.namespace {
                namespace
                    .get_or_create(&vec![("counter", key.clone())])
                    .inc_by(*value);
            }
            registry.register(
                "namespace",
                "The namespace's /proc/net/snmp, netstat and snmp6 counters summed over the exporter's windows (--system)",
                namespace,
            );
            let residual = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
            for (name, value) in &self.unattributed {
                residual
                    .get_or_create(&vec![("counter", *name)])
                    .set(*value);
            }
            registry.register(
                "unattributed",
                "The latest window's namespace delta minus what the sockets account for (--system)",
                residual,
            );
        }
        let st = &self.stats;
        let plain_counter = |registry: &mut Registry, name: &str, help: &str, value: u64| {
            let c = PromCounter::<u64>::default();
            c.inc_by(value);
            registry.register(name, help, c);
        };
        let plain_gauge = |registry: &mut Registry, name: &str, help: &str, value: f64| {
            let g = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
            g.set(value);
            registry.register(name, help, g);
        };
        plain_counter(&mut registry, "polls", "Socket dumps taken", st.polls);
        plain_gauge(
            &mut registry,
            "poll_duration_seconds",
            "Wall time of the latest poll",
            st.poll_seconds,
        );
        plain_gauge(
            &mut registry,
            "sockets_tracked",
            "Sockets the run holds",
            st.sockets_tracked as f64,
        );
        plain_counter(
            &mut registry,
            "events_lost",
            "Kernel events lost for full rings (--precision)",
            st.events_lost,
        );
        plain_counter(
            &mut registry,
            "events_undelivered",
            "Kernel events counted by the kernel that never reached a ring (--precision)",
            st.events_undelivered,
        );
        plain_counter(
            &mut registry,
            "close_notices_lost",
            "Close notices the kernel could not deliver",
            st.close_notices_lost,
        );
        plain_counter(
            &mut registry,
            "scrapes",
            "Scrapes answered, this one included",
            http.scrapes,
        );
        plain_counter(
            &mut registry,
            "http_connections_dropped",
            "Connections closed unserved: the backlog was full, or they waited past the deadline",
            http.dropped,
        );
        plain_counter(
            &mut registry,
            "http_requests_rejected",
            "Requests refused: not GET /metrics or /healthz, malformed, or too slow",
            http.rejected,
        );
        plain_gauge(
            &mut registry,
            "series",
            "Group series held (the other series included)",
            self.series_count() as f64,
        );
        plain_counter(
            &mut registry,
            "series_folded",
            "Group windows summed into the other series (past --max-series)",
            self.folded,
        );
        plain_counter(
            &mut registry,
            "series_expired",
            "Group series forgotten after idling past --series-expiry",
            self.expired,
        );
        registry
    }
}

/// The Prometheus text format (0.0.4) of an OpenMetrics exposition: a
/// counter's HELP and TYPE name its samples' `_total` name, and the
/// OpenMetrics-only lines (`# EOF`, `# UNIT`) go.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut counters = std::collections::HashSet::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some(name) = rest.strip_suffix(" counter") {
                counters.insert(name.to_string());
            }
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        let _ = writeln!(out, "{}", renamed.as_deref().unwrap_or(line));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{Group, Index};
    use crate::report::ReportKind;

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

    fn value(text: &str, series: &str) -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
            .map(|v| v as u64)
    }

    #[test]
    fn totals_add_up_over_windows_and_never_go_down() {
        let mut exporter = Exporter::new(Limits::default());
        exporter.add_window(&window(&[(443, 100)], 1000), 1000);
        exporter.add_window(&window(&[(443, 50), (80, 7)], 2000), 2000);
        // A window without the group: its total stays.
        exporter.add_window(&window(&[(80, 1)], 3000), 3000);
        let text = exporter.encode(false, &HttpStats::default());
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
        let open = exporter.encode(true, &HttpStats::default());
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
        let text = exporter.encode(false, &HttpStats::default());
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
        let text = exporter.encode(false, &HttpStats::default());
        assert_eq!(
            value(&text, "tcpipstat_bytes_received_total{lport=\"1\"}"),
            None
        );
        assert_eq!(value(&text, "tcpipstat_series_expired_total"), Some(1));
    }

    #[test]
    fn the_prometheus_text_names_counter_families_by_their_samples() {
        let open = "# HELP x_total_bytes help.\n# TYPE a counter\n# HELP a Help.\n# UNIT a bytes\na_total 1\n# TYPE g gauge\ng 2\n# EOF\n";
        let text = to_prometheus_text(open);
        assert_eq!(
            text,
            "# HELP x_total_bytes help.\n# TYPE a_total counter\n# HELP a_total Help.\na_total 1\n# TYPE g gauge\ng 2\n"
        );
    }
}
