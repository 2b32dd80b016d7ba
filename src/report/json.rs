//! One JSON object per report, on one line. Written by hand with itoa into a
//! reused buffer because `--once --format json` over 100k sockets is on the
//! benchmark's path; serde_json is used in tests to check the output parses.
//!
//! Shape: `{"type","index","start_ms","end_ms","start_time","end_time"
//! (RFC 3339, when the run's start is known),"polls","closes_lost",
//! "close_notices_lost":{..},"notices_before_run" (where notices are read),
//! "precision","unplaced_by_filters":{"sockets","counters"} (a filtered
//! window's aborts its filters cannot place),"groups":[{"key",
//! "sockets","closed","counters":{"Socket":{..},"Tcp":{..}},"approx":[..],
//! "gauges":{..},"rtt":{..} (an index other than tuple: see `rtt_object`;
//! bucket bounds in `"rtt_bucket_bounds_us"` after `"polls"`)}],"others":{"groups","sockets","counters","approx"} (past
//! --top),"time_wait":{"groups","sockets","counters","approx"} (groups of
//! TIME_WAIT sockets only),"totals":{..},"totals_approx":[..],"system":{"deltas":{..},"gauges":{..},
//! "unattributed":{..}},"notices"}`. A close report says `"counters_from"`.

use crate::source::procfs::is_gauge;
use std::io::Write;

#[cfg(test)]
use super::render;
use super::{
    visit_gauges, Gauge, PrecisionSection, RenderOptions, Report, ReportKind, Summed, Sums,
};
use crate::aggregate::{Group, GroupKey};
use crate::counters::{Counters, Section};
use crate::diff::CountedFrom;

/// Everything before the first group.
pub fn begin(report: &Report<'_>, buf: &mut Vec<u8>) {
    let kind = match report.kind {
        ReportKind::Window => "window",
        ReportKind::Snapshot => "snapshot",
        ReportKind::Close { .. } => "close",
        ReportKind::UdpClose => "udp_close",
    };
    buf.extend_from_slice(b"{\"type\":\"");
    buf.extend_from_slice(kind.as_bytes());
    buf.extend_from_slice(b"\",\"index\":\"");
    buf.extend_from_slice(report.index.name().as_bytes());
    buf.push(b'"');
    field_u64(buf, "start_ms", report.start_ms);
    field_u64(buf, "end_ms", report.end_ms);
    if let Some((start, end)) = report.clock_times() {
        buf.extend_from_slice(b",\"start_time\":");
        string(buf, &start);
        buf.extend_from_slice(b",\"end_time\":");
        string(buf, &end);
    }
    field_u64(buf, "polls", report.polls);
    let timed = report.index != crate::aggregate::Index::Tuple
        || report.groups.iter().any(|g| !g.rtt.handshake.is_empty());
    if timed {
        // The groups' RTT and handshake buckets' upper bounds; a last one,
        // +Inf, follows.
        buf.extend_from_slice(b",\"rtt_bucket_bounds_us\":[");
        let mut first = true;
        for bound in crate::rtt::BOUNDS_US {
            comma(buf, &mut first);
            buf.extend_from_slice(itoa::Buffer::new().format(bound).as_bytes());
        }
        buf.push(b']');
    }
    if let ReportKind::Close { unseen_ms, from } = report.kind {
        field_u64(buf, "unseen_ms", unseen_ms);
        buf.extend_from_slice(b",\"counters_from\":");
        string(
            buf,
            match from {
                CountedFrom::LastPoll { cleared: false } => "last poll",
                CountedFrom::LastPoll { cleared: true } => {
                    "last poll (close notice cleared by an abort)"
                }
                CountedFrom::CloseNotice { polled: true } => "close notice",
                CountedFrom::CloseNotice { polled: false } => "close notice (never polled)",
                CountedFrom::ClearedNotice => "close notice, cleared by an abort (never polled)",
                CountedFrom::Events => "kernel events (never polled)",
            },
        );
    }
    if let Some(lost) = report.closes_lost {
        // Notices, since the run began (the field's meaning from the start).
        field_u64(buf, "closes_lost", lost.notices);
        let window = report.closes_lost_window.unwrap_or(lost);
        buf.extend_from_slice(b",\"close_notices_lost\":{\"unit\":\"notices\"");
        field_u64(buf, "window", window.notices);
        field_u64(buf, "since_start", lost.notices);
        field_u64(buf, "buffer_overflows_window", window.overflows);
        field_u64(buf, "buffer_overflows_since_start", lost.overflows);
        buf.extend_from_slice(if lost.exact {
            b",\"counted\":\"each notice\"}"
        } else {
            b",\"counted\":\"at least: one per overflow (this kernel does not count the notices)\"}"
        });
        field_u64(buf, "notices_before_run", report.notices_before_run);
    }
    if let Some(precision) = &report.precision {
        write_precision(buf, precision);
    }
    if let Some((sockets, counters)) = &report.unplaced_by_filters {
        buf.extend_from_slice(b",\"unplaced_by_filters\":{\"sockets\":");
        buf.extend_from_slice(itoa::Buffer::new().format(*sockets).as_bytes());
        buf.extend_from_slice(b",\"counters\":");
        counters_object(buf, counters, false);
        buf.push(b'}');
    }
    buf.extend_from_slice(b",\"approx_means\":");
    string(buf, super::APPROX_LEGEND);
    buf.extend_from_slice(b",\"groups\":[");
}

/// `"precision":{"probes","events","events_lost","events_undelivered","last_samples","sources":
/// {counter: source},"elsewhere_sockets","awaiting_notice","notices_unheld",
/// "unplaced":{..},"unidentified":{..},"unidentified_earlier_windows":{..},
/// "elsewhere":{..},"drops_by_reason":{..}}`. `events_lost` and
/// `events_undelivered` count since the run began; everything else is
/// this window's (`unidentified_earlier_windows`: what earlier windows
/// counted that still waits for its socket).
fn write_precision(buf: &mut Vec<u8>, precision: &PrecisionSection) {
    buf.extend_from_slice(b",\"precision\":{\"probes\":");
    string(buf, &precision.probes);
    field_u64(buf, "events", precision.events);
    field_u64(buf, "events_lost", precision.events_lost);
    field_u64(buf, "events_undelivered", precision.events_undelivered);
    field_u64(buf, "last_samples", precision.last_samples);
    buf.extend_from_slice(b",\"sources\":{");
    let mut first = true;
    for (counters, source) in &precision.sources {
        for counter in counters {
            comma(buf, &mut first);
            string(buf, counter.name());
            buf.push(b':');
            string(buf, source);
        }
    }
    buf.push(b'}');
    field_u64(buf, "elsewhere_sockets", precision.elsewhere_sockets);
    field_u64(buf, "awaiting_notice", precision.awaiting_notice);
    field_u64(buf, "notices_unheld", precision.notices_unheld);
    for (name, counters) in [
        ("unplaced", &precision.unplaced),
        ("unidentified", &precision.unidentified),
        (
            "unidentified_earlier_windows",
            &precision.unidentified_earlier,
        ),
        ("elsewhere", &precision.elsewhere),
    ] {
        buf.extend_from_slice(b",\"");
        buf.extend_from_slice(name.as_bytes());
        buf.extend_from_slice(b"\":{");
        let mut first = true;
        for (counter, value) in counters.iter() {
            comma(buf, &mut first);
            string(buf, counter.name());
            buf.push(b':');
            buf.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        }
        buf.push(b'}');
    }
    buf.extend_from_slice(b",\"drops_by_reason\":{");
    let mut first = true;
    for (reason, n) in &precision.drops_by_reason {
        comma(buf, &mut first);
        string(buf, reason);
        buf.push(b':');
        buf.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes());
    }
    buf.extend_from_slice(b"}}");
}

/// One group; `index` is its position in the report.
pub fn group(
    buf: &mut Vec<u8>,
    report: &Report<'_>,
    index: usize,
    group: &Group<'_>,
    options: RenderOptions,
) {
    if index > 0 {
        buf.push(b',');
    }
    write_group(buf, report, group, options.zeros);
}

/// `{"Socket":{..},"Tcp":{..},"TcpExt":{..}}`.
fn counters_object(buf: &mut Vec<u8>, counters: &Counters, zeros: bool) {
    buf.push(b'{');
    // Counter::ALL lists each section's counters together and in
    // Section::ALL's order (a test holds it to that): one pass opens each
    // section once.
    let mut open: Option<Section> = None;
    for (counter, value) in counters.iter() {
        if value == 0 && !zeros {
            continue;
        }
        let section = counter.section();
        if open == Some(section) {
            buf.push(b',');
        } else {
            if open.is_some() {
                buf.extend_from_slice(b"},");
            }
            string(buf, section.name());
            buf.extend_from_slice(b":{");
            open = Some(section);
        }
        key(buf, counter.name());
        buf.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }
    if open.is_some() {
        buf.push(b'}');
    }
    buf.push(b'}');
}

/// Everything after the last group.
pub fn end(report: &Report<'_>, sums: &Sums, options: RenderOptions, buf: &mut Vec<u8>) {
    buf.push(b']');
    for (name, summed) in [("others", &sums.others), ("time_wait", &sums.time_wait)] {
        if !summed.is_empty() {
            summed_object(buf, report, name, summed, options.zeros);
        }
    }
    buf.extend_from_slice(b",\"totals\":");
    counters_object(buf, &sums.totals, options.zeros);
    // A group's `~` carries into the totals it adds to.
    named_approx_list(buf, "totals_approx", &sums.totals, options.zeros);
    if let Some(system) = &report.system {
        buf.extend_from_slice(b",\"system\":{\"namespaces\":");
        buf.extend_from_slice(itoa::Buffer::new().format(system.namespaces).as_bytes());
        // Gauges (CurrEstab) are levels at the window's end, not deltas.
        for (name, gauges) in [("deltas", false), ("gauges", true)] {
            buf.extend_from_slice(b",\"");
            buf.extend_from_slice(name.as_bytes());
            buf.extend_from_slice(b"\":{");
            let mut first = true;
            for (key, value) in &system.deltas.values {
                if is_gauge(key) != gauges || (*value == 0 && !options.zeros) {
                    continue;
                }
                comma(buf, &mut first);
                string(buf, key);
                buf.push(b':');
                buf.extend_from_slice(itoa::Buffer::new().format(*value).as_bytes());
            }
            buf.push(b'}');
        }
        buf.extend_from_slice(b",\"unattributed\":{");
        let mut first = true;
        for r in &system.residuals {
            comma(buf, &mut first);
            string(buf, r.counter.name());
            buf.extend_from_slice(b":{\"system\":");
            buf.extend_from_slice(itoa::Buffer::new().format(r.system).as_bytes());
            buf.extend_from_slice(b",\"sockets\":");
            buf.extend_from_slice(itoa::Buffer::new().format(r.sockets).as_bytes());
            buf.extend_from_slice(b",\"unattributed\":");
            buf.extend_from_slice(itoa::Buffer::new().format(r.unattributed()).as_bytes());
            if !r.named.is_empty() {
                buf.extend_from_slice(b",\"named\":{");
                let mut first = true;
                for (class, amount) in &r.named {
                    comma(buf, &mut first);
                    string(buf, class);
                    buf.push(b':');
                    buf.extend_from_slice(itoa::Buffer::new().format(*amount).as_bytes());
                }
                buf.extend_from_slice(b"},\"unknown\":");
                buf.extend_from_slice(itoa::Buffer::new().format(r.unknown()).as_bytes());
            }
            if let Some(why) = r.why_below_zero() {
                buf.extend_from_slice(b",\"why_below_zero\":");
                string(buf, why);
            }
            buf.push(b'}');
        }
        buf.extend_from_slice(b"}}");
    }
    buf.extend_from_slice(b",\"notices\":[");
    let mut first = true;
    for note in &report.notices {
        comma(buf, &mut first);
        string(buf, note);
    }
    buf.extend_from_slice(b"]}\n");
}

/// `,"others":{"groups","sockets","time_wait_sockets","counters","approx"}`.
fn summed_object(buf: &mut Vec<u8>, report: &Report<'_>, name: &str, summed: &Summed, zeros: bool) {
    buf.extend_from_slice(b",\"");
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"\":{");
    key(buf, "groups");
    buf.extend_from_slice(itoa::Buffer::new().format(summed.groups).as_bytes());
    field_u64(buf, "sockets", summed.sockets as u64);
    field_u64(buf, "time_wait_sockets", summed.time_wait as u64);
    buf.extend_from_slice(b",\"counters\":");
    counters_object(buf, &summed.counters, zeros);
    approx_list(buf, &summed.counters, zeros);
    rtt_object(buf, report, &summed.rtt);
    buf.push(b'}');
}

/// `,"rtt":{"samples","sum_us","min_us","max_us","p50_us","p90_us",
/// "p99_us","buckets":[..]}`: a group's smoothed-RTT samples (index other
/// than tuple), their counts per bucket (not cumulative; bounds in the
/// report's `rtt_bucket_bounds_us`, the last bucket +Inf), and the
/// percentiles estimated from them (interpolated within a bucket); then
/// `,"handshake":{..}` of the same shape (any index): its connects'
/// handshake times, SYN to ESTABLISHED, from kernel events.
fn rtt_object(buf: &mut Vec<u8>, report: &Report<'_>, rtt: &crate::rtt::RttHistogram) {
    if report.index != crate::aggregate::Index::Tuple {
        timing_object(buf, "rtt", rtt);
    }
    timing_object(buf, "handshake", &rtt.handshake);
}

fn timing_object(buf: &mut Vec<u8>, name: &str, histogram: &crate::rtt::Histogram) {
    let (Some((min, max)), Some(percentiles)) =
        (histogram.min_max_us(), histogram.percentiles_us())
    else {
        return;
    };
    buf.push(b',');
    key(buf, name);
    buf.push(b'{');
    key(buf, "samples");
    buf.extend_from_slice(itoa::Buffer::new().format(histogram.count()).as_bytes());
    field_u64(
        buf,
        "sum_us",
        (histogram.sum_seconds() * 1e6).round() as u64,
    );
    field_u64(buf, "min_us", min.into());
    field_u64(buf, "max_us", max.into());
    for (name, value) in ["p50_us", "p90_us", "p99_us"].iter().zip(percentiles) {
        buf.push(b',');
        key(buf, name);
        buf.extend_from_slice(format!("{value:.1}").as_bytes());
    }
    buf.extend_from_slice(b",\"buckets\":[");
    let mut first = true;
    for n in histogram.counts() {
        comma(buf, &mut first);
        buf.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes());
    }
    buf.extend_from_slice(b"]}");
}

/// `,"approx":[..]`: the counters shown that are approximate.
fn approx_list(buf: &mut Vec<u8>, counters: &Counters, zeros: bool) {
    named_approx_list(buf, "approx", counters, zeros);
}

/// `,"<name>":[..]`: the counters shown that are approximate.
fn named_approx_list(buf: &mut Vec<u8>, name: &str, counters: &Counters, zeros: bool) {
    buf.extend_from_slice(b",\"");
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"\":[");
    let mut first = true;
    for (counter, value) in counters.iter() {
        if counters.is_approx(counter) && (value != 0 || zeros) {
            comma(buf, &mut first);
            string(buf, counter.name());
        }
    }
    buf.push(b']');
}

fn write_group(buf: &mut Vec<u8>, report: &Report<'_>, group: &Group<'_>, zeros: bool) {
    buf.extend_from_slice(b"{\"key\":{");
    match group.key {
        GroupKey::Tuple(k) => {
            buf.extend_from_slice(b"\"laddr\":");
            address(buf, k.local);
            field_u64(buf, "lport", k.local_port.into());
            buf.extend_from_slice(b",\"raddr\":");
            address(buf, k.remote);
            field_u64(buf, "rport", k.remote_port.into());
            if k.netns != 0 {
                netns_fields(buf, report, k.netns);
            }
        }
        GroupKey::Netns(inode) => {
            buf.extend_from_slice(b"\"netns\":");
            buf.extend_from_slice(itoa::Buffer::new().format(inode).as_bytes());
            buf.extend_from_slice(b",\"netns_name\":");
            string(buf, &report.netns_label(inode));
        }
        GroupKey::Process(crate::aggregate::NO_OWNER) => {
            // No process holds these sockets (TIME_WAIT, orphans).
            buf.extend_from_slice(b"\"pid\":null,\"command\":\"-\"");
        }
        GroupKey::Process(crate::aggregate::UNSEEN_OWNER) => {
            // Closed between two polls, and no event named a process.
            buf.extend_from_slice(b"\"pid\":null,\"command\":\"-\",\"owner\":");
            string(buf, "closed before any poll saw it");
        }
        GroupKey::Process(pid) => {
            buf.extend_from_slice(b"\"pid\":");
            buf.extend_from_slice(itoa::Buffer::new().format(pid).as_bytes());
            buf.extend_from_slice(b",\"command\":");
            match report.process_names.get(&pid) {
                Some(command) => string(buf, command),
                None => buf.extend_from_slice(b"null"),
            }
        }
        GroupKey::Pod(n) => match report.pod_label(n) {
            Some(label) => {
                let or_null = |buf: &mut Vec<u8>, text: &str| match text {
                    "" => buf.extend_from_slice(b"null"),
                    text => string(buf, text),
                };
                buf.extend_from_slice(b"\"namespace\":");
                or_null(buf, &label.namespace);
                buf.extend_from_slice(b",\"pod\":");
                or_null(buf, &label.pod);
                buf.extend_from_slice(b",\"container\":");
                or_null(buf, &label.container);
            }
            None => buf.extend_from_slice(b"\"namespace\":null,\"pod\":null,\"container\":null"),
        },
        GroupKey::Container(inode) => {
            buf.extend_from_slice(b"\"container\":");
            match report.container_labels.get(&inode) {
                Some(label) => string(buf, label),
                None => buf.extend_from_slice(b"null"),
            }
        }
        GroupKey::Laddr(a) => {
            buf.extend_from_slice(b"\"laddr\":");
            address(buf, a);
        }
        GroupKey::Raddr(a) => {
            buf.extend_from_slice(b"\"raddr\":");
            address(buf, a);
        }
        GroupKey::Lport(p) => {
            buf.extend_from_slice(b"\"lport\":");
            buf.extend_from_slice(itoa::Buffer::new().format(p).as_bytes());
        }
        GroupKey::Rport(p) => {
            buf.extend_from_slice(b"\"rport\":");
            buf.extend_from_slice(itoa::Buffer::new().format(p).as_bytes());
        }
        GroupKey::Unlisted => {
            // Closed sockets past the listing bound, counted but not keyed.
            buf.extend_from_slice(b"\"unlisted\":true");
        }
    }
    buf.push(b'}');
    if let Some(owner) = &group.owner {
        buf.extend_from_slice(b",\"process\":");
        string(buf, owner);
    }
    field_u64(buf, "sockets", group.sockets as u64);
    field_u64(buf, "closed", group.closed as u64);
    if !group.history.is_empty() {
        buf.extend_from_slice(b",\"states\":[");
        let mut first = true;
        for state in group.history.iter() {
            comma(buf, &mut first);
            string(buf, state.history_name());
        }
        buf.push(b']');
    }
    buf.extend_from_slice(b",\"counters\":");
    counters_object(buf, &group.counters, zeros);
    approx_list(buf, &group.counters, zeros);
    rtt_object(buf, report, &group.rtt);
    if let Some(sample) = &group.sample {
        let closed = group.sample_closed || matches!(report.kind, ReportKind::Close { .. });
        if closed {
            // Of a closed socket, what it last measured.
            buf.extend_from_slice(b",\"gauges_closed\":true");
        }
        buf.extend_from_slice(b",\"gauges\":{");
        let mut first = true;
        visit_gauges(sample, closed, |name, value| {
            comma(buf, &mut first);
            key(buf, name);
            match value {
                Gauge::Int(v) => buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
                Gauge::Text(t) => string(buf, t),
            }
        });
        buf.push(b'}');
    }
    buf.push(b'}');
}

/// `,"netns":N,"netns_name":"..."` for a socket of a labelled namespace.
fn netns_fields(buf: &mut Vec<u8>, report: &Report<'_>, inode: u64) {
    field_u64(buf, "netns", inode);
    buf.extend_from_slice(b",\"netns_name\":");
    string(buf, &report.netns_label(inode));
}

/// An IP address as a JSON string, formatted without a temporary String.
fn address(buf: &mut Vec<u8>, addr: std::net::IpAddr) {
    buf.push(b'"');
    match addr {
        // Without fmt: a snapshot of 100k sockets writes 200k of them.
        std::net::IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf.push(b'.');
                }
                buf.extend_from_slice(itoa::Buffer::new().format(octet).as_bytes());
            }
        }
        std::net::IpAddr::V6(_) => {
            let _ = write!(buf, "{addr}");
        }
    }
    buf.push(b'"');
}

fn comma(buf: &mut Vec<u8>, first: &mut bool) {
    if !*first {
        buf.push(b',');
    }
    *first = false;
}

/// `"name":` for the static ASCII names of counters and gauges.
fn key(buf: &mut Vec<u8>, name: &str) {
    buf.push(b'"');
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"\":");
}

fn field_u64(buf: &mut Vec<u8>, name: &str, value: u64) {
    buf.push(b',');
    key(buf, name);
    buf.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

fn string(buf: &mut Vec<u8>, text: &str) {
    buf.push(b'"');
    if !text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        buf.extend_from_slice(text.as_bytes());
        buf.push(b'"');
        return;
    }
    for ch in text.chars() {
        match ch {
            '"' => buf.extend_from_slice(b"\\\""),
            '\\' => buf.extend_from_slice(b"\\\\"),
            c if (c as u32) < 0x20 => {
                buf.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut tmp = [0u8; 4];
                buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
        }
    }
    buf.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_fixtures::{self as fixtures, indent_json};
    use crate::report::Format;

    /// The renderer's line.
    fn raw(report: &Report<'_>, zeros: bool) -> String {
        let mut out = Vec::new();
        let options = RenderOptions {
            format: Format::Json,
            zeros,
            ..Default::default()
        };
        render(report, options, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The report as JSON, checked to be one line that parses, and indented
    /// for its snapshot.
    fn json(report: &Report<'_>, zeros: bool) -> String {
        let line = raw(report, zeros);
        assert!(line.ends_with("}\n"), "{line}");
        assert_eq!(line.matches('\n').count(), 1, "one line per report");
        let parsed: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        let indented = indent_json(&line);
        // Indenting adds whitespace only.
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&indented).unwrap(),
            parsed
        );
        indented
    }

    fn value(report: &Report<'_>, zeros: bool) -> serde_json::Value {
        serde_json::from_str(&raw(report, zeros)).unwrap()
    }

    #[test]
    fn window_tuple_ipv4_and_ipv6_with_gauges_owners_and_notices() {
        insta::assert_snapshot!("window_tuple", json(&fixtures::window_tuple(), false));
    }

    #[test]
    fn window_tuple_with_zeros() {
        insta::assert_snapshot!("window_tuple_zeros", json(&fixtures::window_tuple(), true));
    }

    #[test]
    fn notices_with_quotes_and_control_characters_round_trip() {
        let report = fixtures::window_tuple();
        let v = value(&report, false);
        let notices: Vec<&str> = v["notices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert_eq!(notices, report.notices);
    }

    #[test]
    fn zero_counters_and_their_approx_marks_show_only_with_zeros() {
        let report = fixtures::window_tuple();
        let (hidden, shown) = (value(&report, false), value(&report, true));
        let v4 = |v: &serde_json::Value| v["groups"][0].clone();
        assert!(v4(&hidden)["counters"]["TcpExt"]
            .get("TCPDSACKRecv")
            .is_none());
        assert!(!v4(&hidden)["approx"]
            .as_array()
            .unwrap()
            .contains(&"TCPDSACKRecv".into()));
        assert_eq!(v4(&shown)["counters"]["TcpExt"]["TCPDSACKRecv"], 0);
        assert!(v4(&shown)["approx"]
            .as_array()
            .unwrap()
            .contains(&"TCPDSACKRecv".into()));
    }

    #[test]
    fn totals_say_which_of_their_counters_a_group_made_approximate() {
        let report = fixtures::window_tuple();
        let v = value(&report, false);
        let groups = v["groups"].as_array().unwrap();
        let marked: Vec<&serde_json::Value> = groups
            .iter()
            .flat_map(|g| g["approx"].as_array().unwrap())
            .collect();
        assert!(!marked.is_empty(), "the fixture has approximate counts");
        let totals_approx = v["totals_approx"].as_array().unwrap();
        for name in marked {
            assert!(
                totals_approx.contains(name),
                "{name} not in {totals_approx:?}"
            );
        }
        for name in totals_approx {
            assert!(
                v["totals"]
                    .as_object()
                    .unwrap()
                    .values()
                    .any(|section| section.get(name.as_str().unwrap()).is_some()),
                "{name} marked but not shown"
            );
        }
    }

    #[test]
    fn lport_groups_with_closed_sockets() {
        insta::assert_snapshot!("lport_groups", json(&fixtures::lport_groups(), false));
    }

    #[test]
    fn close_report() {
        insta::assert_snapshot!("close", json(&fixtures::close(), false));
    }

    #[test]
    fn close_report_with_precision() {
        insta::assert_snapshot!(
            "close_with_precision",
            json(&fixtures::close_with_precision(), false)
        );
    }

    #[test]
    fn system_section_and_residuals() {
        insta::assert_snapshot!("system", json(&fixtures::system(), false));
    }

    #[test]
    fn system_section_with_zeros() {
        insta::assert_snapshot!("system_zeros", json(&fixtures::system(), true));
    }

    #[test]
    fn precision_window() {
        insta::assert_snapshot!(
            "precision_window",
            json(&fixtures::precision_window(), false)
        );
    }

    #[test]
    fn namespaces_tuple() {
        insta::assert_snapshot!(
            "namespaces_tuple",
            json(&fixtures::namespaces_tuple(), false)
        );
    }

    #[test]
    fn by_netns() {
        insta::assert_snapshot!("by_netns", json(&fixtures::by_netns(), false));
    }

    #[test]
    fn by_container() {
        insta::assert_snapshot!("by_container", json(&fixtures::by_container(), false));
    }

    #[test]
    fn by_process() {
        insta::assert_snapshot!("by_process", json(&fixtures::by_process(), false));
    }

    #[test]
    fn snapshot_with_listener() {
        insta::assert_snapshot!(
            "snapshot_listener",
            json(&fixtures::snapshot_listener(), false)
        );
    }

    #[test]
    fn snapshot_filtered_empty() {
        insta::assert_snapshot!(
            "snapshot_filtered_empty",
            json(&fixtures::snapshot_filtered_empty(), false)
        );
    }

    #[test]
    fn window_empty() {
        insta::assert_snapshot!("window_empty", json(&fixtures::window_empty(), false));
    }

    /// The report as JSON with these options, indented for its snapshot.
    fn json_with(report: &Report<'_>, options: RenderOptions) -> String {
        indent_json(&fixtures::render_with(report, options))
    }

    #[test]
    fn time_wait_sockets_fold_into_one_object() {
        insta::assert_snapshot!(
            "snapshot_time_wait",
            json(&fixtures::snapshot_time_wait(), false)
        );
    }

    #[test]
    fn top_lists_the_busiest_and_sums_the_others_into_one_object() {
        insta::assert_snapshot!(
            "lport_groups_top_1",
            json_with(&fixtures::lport_groups(), fixtures::top(Format::Json, 1))
        );
    }

    #[test]
    fn closed_sockets_gauges_are_what_they_last_measured() {
        insta::assert_snapshot!(
            "window_closed_sockets",
            json(&fixtures::window_closed_sockets(), false)
        );
    }
}
