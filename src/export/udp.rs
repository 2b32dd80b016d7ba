//! The exporter's UDP series (`--udp`): per group, receive drops and
//! sockets closed (short-lived ones known from close notices included)
//! as totals since the start, open sockets as a gauge; with `--system` the
//! namespace's Udp and UdpLite MIB (v4 and v6 summed) as totals; and the
//! UDP close notices lost. Bounded like the TCP series: past the limit new
//! groups are summed into `other`, idle ones forgotten, both counted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::{labels_of, other_labels, Exporter, Labels, Limits};
use crate::report::Report;

#[derive(Debug, Clone, Default)]
struct UdpSeries {
    drops: u64,
    closed: u64,
    /// Sockets open at the end of the latest window that listed the group.
    open: u64,
    last_seen_ms: u64,
    current: bool,
}

/// UDP's part of the exporter's state.
#[derive(Debug, Clone, Default)]
pub struct UdpState {
    series: HashMap<Labels, UdpSeries>,
    other: Option<UdpSeries>,
    other_labels: Option<Labels>,
    folded: u64,
    expired: u64,
    /// (protocol, MIB counter) → total of its deltas, once it moved.
    namespace: BTreeMap<(&'static str, &'static str), u64>,
    /// UDP close notices lost since the start; None when not read.
    closes_lost: Option<u64>,
    /// Whether any report had a Udp section (then the run's families are
    /// served, at zero if need be).
    seen: bool,
}

impl UdpState {
    /// Adds one window's Udp section, if the report has one.
    pub fn add(&mut self, report: &Report<'_>, now_ms: u64, limits: Limits) {
        let Some(section) = &report.udp else {
            return;
        };
        self.seen = true;
        for series in self.series.values_mut().chain(self.other.as_mut()) {
            series.current = false;
        }
        for group in &section.groups {
            let labels = labels_of(report, &group.key);
            let known = self.series.contains_key(&labels);
            let series = if known || self.series.len() < limits.max_series {
                self.series.entry(labels).or_default()
            } else {
                self.folded += 1;
                if self.other_labels.is_none() {
                    self.other_labels = Some(other_labels(&labels));
                }
                self.other.get_or_insert_with(UdpSeries::default)
            };
            series.drops += group.drops.unwrap_or(0);
            series.closed += group.closed;
            series.open = group.sockets - group.closed;
            series.last_seen_ms = now_ms;
            series.current = true;
        }
        let expiry = u64::try_from(limits.idle_expiry.as_millis()).unwrap_or(u64::MAX);
        let before = self.series.len();
        self.series
            .retain(|_, s| now_ms.saturating_sub(s.last_seen_ms) < expiry);
        self.expired += (before - self.series.len()) as u64;
        for system in &section.system {
            for row in system.rows.iter().filter(|r| r.system > 0) {
                *self.namespace.entry((system.proto, row.name)).or_default() += row.system as u64;
            }
        }
        self.closes_lost = section
            .closes_lost
            .map(|(_, since_start)| since_start.notices);
    }

    fn all_series(&self) -> impl Iterator<Item = (&Labels, &UdpSeries)> {
        let other = self.other.as_ref().zip(self.other_labels.as_ref());
        self.series.iter().chain(other.map(|(s, l)| (l, s)))
    }
}

/// A per-group total: name, help, value.
type GroupTotal = (&'static str, &'static str, fn(&UdpSeries) -> u64);

const GROUP_TOTALS: [GroupTotal; 2] = [
    (
        "udp_rcv_drops",
        "Datagrams the kernel dropped after finding one of the group's UDP sockets (sk_drops: SK_MEMINFO_DROPS per window), since the exporter started; a socket known only from its close notice adds none",
        |s| s.drops,
    ),
    (
        "udp_sockets_closed",
        "UDP sockets of the group that closed, each once, since the exporter started: those no poll saw counted from their close notice",
        |s| s.closed,
    ),
];

/// The UDP families of the exporter's state.
#[derive(Debug)]
pub struct UdpMetrics(pub Arc<Exporter>);

impl Collector for UdpMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let state = &self.0.udp;
        if !state.seen {
            return Ok(());
        }
        for (name, help, value) in GROUP_TOTALS {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (labels, series) in state.all_series() {
                family
                    .encode_family(labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&value(series), None)?;
            }
        }
        let mut open = encoder.encode_descriptor(
            "udp_sockets",
            "UDP sockets of the group open at the end of the latest window that listed it",
            None,
            MetricType::Gauge,
        )?;
        for (labels, series) in state.all_series().filter(|(_, s)| s.current) {
            open.encode_family(labels)?
                .encode_gauge(&(series.open as i64))?;
        }
        if !state.namespace.is_empty() {
            let mut family = encoder.encode_descriptor(
                "udp_namespace",
                "The namespace's Udp and UdpLite MIB counters (IPv4 and IPv6 summed) over the exporter's windows, those that moved since it started (--system)",
                None,
                MetricType::Counter,
            )?;
            for ((proto, counter), value) in &state.namespace {
                let labels: Vec<(&str, &str)> = vec![("proto", proto), ("counter", counter)];
                family
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(value, None)?;
            }
        }
        let run = [
            (
                "udp_close_notices_lost",
                "UDP close notices the kernel could not deliver: sockets no poll saw that are counted nowhere",
                state.closes_lost,
            ),
            (
                "udp_series_folded",
                "UDP group windows summed into the other series (past --max-series)",
                Some(state.folded),
            ),
            (
                "udp_series_expired",
                "UDP group series forgotten after idling past --series-expiry",
                Some(state.expired),
            ),
        ];
        for (name, help, value) in run {
            let Some(value) = value else { continue };
            encoder
                .encode_descriptor(name, help, None, MetricType::Counter)?
                .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
        }
        Ok(())
    }
}
