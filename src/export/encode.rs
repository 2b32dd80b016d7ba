//! The exporter's state as an exposition, in OpenMetrics or the Prometheus
//! text format, through the prometheus-client crate. The group series are
//! streamed from the state by collectors (no label or value is copied into
//! a registry of its own); the rest are small registered metrics. What
//! changes with every scrape (the HTTP edge's counts, see [`tail`]) is
//! encoded apart, so that one poll's [`body`] can serve every scrape of it.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{prometheus_text, text, DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::{Exporter, HttpStats, Series};

/// The exposition formats a scraper may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    OpenMetrics,
    /// The Prometheus text format 0.0.4, what scrapers get by default.
    Prometheus,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Prometheus => prometheus_text::CONTENT_TYPE,
        }
    }
}

/// Every metric of `state` but the HTTP edge's counts, without
/// OpenMetrics' closing `# EOF` (the [`tail`] ends the exposition).
/// `capacity` is reserved up front (the previous body's length avoids
/// growing a large buffer by doubling).
pub fn body(state: &Arc<Exporter>, format: Format, capacity: usize) -> String {
    let mut out = String::with_capacity(capacity);
    super::groups::write_group_families(&mut out, state, format);
    let registry = registry_after_groups(state);
    // Writing to a String cannot fail.
    let _ = match format {
        Format::OpenMetrics => text::encode_registry(&mut out, &registry),
        Format::Prometheus => prometheus_text::encode(&mut out, &registry),
    };
    out
}

/// Every family the crate encodes, in the exposition's order after the
/// group counters and gauges (which [`super::groups`] writes).
fn registry_after_groups(state: &Arc<Exporter>) -> Registry {
    let mut registry = Registry::with_prefix("tcpipstat");
    registry.register_collector(Box::new(GroupRtt(Arc::clone(state))));
    registry.register_collector(Box::new(super::udp::UdpMetrics(Arc::clone(state))));
    register_states(&mut registry, state);
    register_namespace(&mut registry, state);
    register_run(&mut registry, state);
    registry
}

/// The HTTP edge's counts as of one scrape, and the end of the exposition.
pub fn tail(http: &HttpStats, format: Format) -> String {
    let mut registry = Registry::with_prefix("tcpipstat");
    let counters = [
        (
            "scrapes",
            "Scrapes answered, this one included",
            http.scrapes,
        ),
        (
            "http_connections_dropped",
            "Connections closed unserved: the backlog was full, they waited past the deadline, or file descriptors ran out",
            http.dropped,
        ),
        (
            "http_requests_rejected",
            "Requests refused: not GET or HEAD of /metrics or /healthz, malformed, or too slow",
            http.rejected,
        ),
        (
            "http_accept_backoffs",
            "Accepts that failed for want of file descriptors (EMFILE, ENFILE), each followed by a pause",
            http.accept_backoffs,
        ),
        (
            "expositions_encoded",
            "Expositions encoded: at most one per poll and format, whatever the number of scrapes",
            http.encodings,
        ),
    ];
    for (name, help, value) in counters {
        registry.register(name, help, ConstCounter::new(value));
    }
    let mut out = String::new();
    let _ = match format {
        Format::OpenMetrics => text::encode(&mut out, &registry),
        Format::Prometheus => prometheus_text::encode(&mut out, &registry),
    };
    out
}

/// A whole exposition, as one scrape gets it.
pub fn exposition(state: &Arc<Exporter>, format: Format, http: &HttpStats) -> String {
    let mut out = body(state, format, 0);
    out.push_str(&tail(http, format));
    out
}

/// A group gauge: name, help, and its value in a series (None: no sample).
type GroupGauge = (&'static str, &'static str, fn(&Series) -> Option<f64>);

pub(super) const GROUP_GAUGES: [GroupGauge; 4] = [
    ("sockets", "Sockets in the group at the latest poll.", |s| {
        Some(s.sockets as f64)
    }),
    (
        "curr_estab",
        "ESTABLISHED and CLOSE_WAIT sockets in the group (Tcp CurrEstab).",
        |s| Some(s.curr_estab as f64),
    ),
    (
        "rtt_seconds",
        "Smoothed round-trip time of the tuple's socket.",
        |s| s.rtt_seconds,
    ),
    (
        "cwnd_segments",
        "Congestion window of the tuple's socket.",
        |s| s.cwnd.map(f64::from),
    ),
];

/// `rtt_seconds` as a histogram of the groups' smoothed-RTT samples (an
/// index other than tuple: a tuple's series has the `rtt_seconds` gauge,
/// so one exposition never has both).
#[derive(Debug)]
struct GroupRtt(Arc<Exporter>);

impl Collector for GroupRtt {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sampled = || self.0.all_series().filter(|(_, s)| !s.rtt.is_empty());
        if sampled().next().is_none() {
            return Ok(());
        }
        let mut family = encoder.encode_descriptor(
            "rtt_seconds",
            "Smoothed round-trip time (tcp_info's tcpi_rtt) of the group's sockets, sampled at each poll and from each close notice, since the exporter started.",
            None,
            MetricType::Histogram,
        )?;
        let mut buckets = [(0.0, 0u64); crate::rtt::BUCKETS];
        for (labels, series) in sampled() {
            for (i, (slot, n)) in buckets.iter_mut().zip(series.rtt.counts()).enumerate() {
                *slot = (crate::rtt::bound_seconds(i).unwrap_or(f64::INFINITY), *n);
            }
            family
                .encode_family(labels)?
                .encode_histogram::<NoLabelSet>(
                    series.rtt.sum_seconds(),
                    series.rtt.count(),
                    &buckets,
                    None,
                )?;
        }
        Ok(())
    }
}

fn register_states(registry: &mut Registry, state: &Exporter) {
    let states = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
    for (name, count) in &state.states {
        states
            .get_or_create(&vec![("state", *name)])
            .set(i64::try_from(*count).unwrap_or(i64::MAX));
    }
    registry.register(
        "sockets_by_state",
        "Sockets tracked, by TCP state, at the latest poll (the exporter's own left out unless --export-self)",
        states,
    );
}

/// --system: the namespace's counters that moved, and the residuals.
fn register_namespace(registry: &mut Registry, state: &Exporter) {
    if state.namespace.is_empty() && state.unattributed.is_empty() {
        return;
    }
    let namespace = Family::<Vec<(&'static str, String)>, ConstCounterU64>::default();
    for (key, value) in &state.namespace {
        namespace
            .get_or_create(&vec![("counter", key.clone())])
            .inc_by(*value);
    }
    registry.register(
        "namespace",
        "The namespace's /proc/net/snmp, netstat and snmp6 counters summed over the exporter's windows, those that moved since it started (--system)",
        namespace,
    );
    let residual = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
    for (name, value) in &state.unattributed {
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

/// A family's counter (a Family needs a metric it can create empty).
type ConstCounterU64 = prometheus_client::metrics::counter::Counter<u64, AtomicU64>;

/// The run's own health, as of the latest poll.
fn register_run(registry: &mut Registry, state: &Exporter) {
    let st = &state.stats;
    let counters = [
        ("polls", "Socket dumps taken", st.polls),
        (
            "events_lost",
            "Kernel events lost for full rings (--precision)",
            st.events_lost,
        ),
        (
            "events_undelivered",
            "Kernel events counted by the kernel that never reached a ring (--precision)",
            st.events_undelivered,
        ),
        (
            "close_notices_lost",
            "Close notices the kernel could not deliver",
            st.close_notices_lost,
        ),
        (
            "series_folded",
            "Group windows summed into the other series (past --max-series)",
            state.folded,
        ),
        (
            "series_expired",
            "Group series forgotten after idling past --series-expiry",
            state.expired,
        ),
    ];
    for (name, help, value) in counters {
        registry.register(name, help, ConstCounter::new(value));
    }
    let gauges = [
        (
            "poll_duration_seconds",
            "Wall time of the latest poll",
            st.poll_seconds,
        ),
        (
            "sockets_tracked",
            "Sockets the run holds (the exporter's own included)",
            st.sockets_tracked as f64,
        ),
        (
            "series",
            "Group series held (the other series included)",
            state.series_count() as f64,
        ),
    ];
    for (name, help, value) in gauges {
        registry.register(name, help, ConstGauge::new(value));
    }
}

/// The crate's own encoding of the families [`super::groups`] writes by
/// hand: the reference the hand-written text must equal byte for byte.
#[cfg(test)]
pub(super) mod reference {
    use std::fmt::Write as _;
    use std::sync::Arc;

    use prometheus_client::collector::Collector;
    use prometheus_client::encoding::{prometheus_text, text, DescriptorEncoder, NoLabelSet};
    use prometheus_client::metrics::MetricType;
    use prometheus_client::registry::Registry;

    use super::super::{snake_case, Exporter, Series};
    use super::{Format, GROUP_GAUGES};
    use crate::counters::Counter;

    /// The group counter and gauge families as the crate encodes them.
    pub fn group_families(state: &Arc<Exporter>, format: Format) -> String {
        let mut registry = Registry::with_prefix("tcpipstat");
        registry.register_collector(Box::new(GroupCounters(Arc::clone(state))));
        registry.register_collector(Box::new(GroupGauges(Arc::clone(state))));
        let mut out = String::new();
        let _ = match format {
            Format::OpenMetrics => text::encode_registry(&mut out, &registry),
            Format::Prometheus => prometheus_text::encode(&mut out, &registry),
        };
        out
    }

    /// One family per tcpipstat counter, with the series in which it moved.
    #[derive(Debug)]
    struct GroupCounters(Arc<Exporter>);

    impl Collector for GroupCounters {
        fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            for counter in Counter::ALL.iter().copied() {
                if counter == Counter::CurrEstab {
                    // A gauge, among the group gauges.
                    continue;
                }
                let moved = |s: &Series| s.totals.get(counter).filter(|v| *v > 0);
                if !self.0.all_series().any(|(_, s)| moved(s).is_some()) {
                    continue;
                }
                let name = snake_case(counter.name());
                let mut help = String::new();
                let _ = write!(
                    help,
                    "{} since the exporter started (tcpipstat's {}).",
                    counter.name(),
                    counter.section().name()
                );
                let mut family =
                    encoder.encode_descriptor(&name, &help, None, MetricType::Counter)?;
                for (labels, series) in self.0.all_series() {
                    if let Some(value) = moved(series) {
                        family
                            .encode_family(labels)?
                            .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
                    }
                }
            }
            Ok(())
        }
    }

    /// The gauges of the groups the latest window had.
    #[derive(Debug)]
    struct GroupGauges(Arc<Exporter>);

    impl Collector for GroupGauges {
        fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            for (name, help, value) in GROUP_GAUGES {
                let current = || self.0.all_series().filter(|(_, s)| s.current);
                if !current().any(|(_, s)| value(s).is_some()) {
                    continue;
                }
                let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
                for (labels, series) in current() {
                    if let Some(v) = value(series) {
                        family.encode_family(labels)?.encode_gauge(&v)?;
                    }
                }
            }
            Ok(())
        }
    }
}
