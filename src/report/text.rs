//! The seed's report blocks: a separator, the group's key, then `Socket:`,
//! `Ip:`, `Tcp:`, `TcpExt:` with one `Name = value` line per counter (`~`
//! before approximate values), gauges for single sockets; one line for the
//! groups summed past `--top` and one for those of TIME_WAIT sockets only;
//! the totals, and the `--system` section with the unattributed residual.

use crate::source::procfs::is_gauge;
use std::io::{self, Write};

use super::{
    visit_gauges, Gauge, PrecisionSection, RenderOptions, Report, ReportKind, Summed, Sums,
};
use crate::aggregate::Group;
use crate::counters::{Counter, Counters, Section};
use crate::diff::CountedFrom;

const RULE: &str = "-----------------------------------------";

/// The report's heading, and precision mode's account.
pub fn begin(report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    heading(report, out)?;
    if let Some(lost) = report.closes_lost {
        if report.kind == ReportKind::Window || lost.notices > 0 {
            writeln!(out, "close notices lost: {}", close_loss_text(report, lost))?;
        }
    }
    if report.notices_before_run > 0 {
        writeln!(
            out,
            "close notices of lives that ended before the first poll (counted nothing): {}",
            report.notices_before_run
        )?;
    }
    if let Some(precision) = &report.precision {
        write_precision(precision, report.kind, out)?;
    }
    Ok(())
}

/// `N in this window, M since the start (in K overflows of the kernel's
/// buffer)`, saying when the notices are only a lower bound.
fn close_loss_text(report: &Report<'_>, since_start: crate::model::CloseLoss) -> String {
    let none_in_window = report.closes_lost_window.is_none_or(|w| w.notices == 0);
    if since_start.notices == 0 && none_in_window {
        return "0".to_string();
    }
    let at_least = if since_start.exact { "" } else { "at least " };
    let overflows = |n: u64| match n {
        1 => "1 overflow".to_string(),
        n => format!("{n} overflows"),
    };
    match report.closes_lost_window {
        Some(window) if report.kind == ReportKind::Window => format!(
            "{at_least}{} in this window ({}), {at_least}{} since the start",
            window.notices,
            overflows(window.overflows),
            since_start.notices
        ),
        _ => format!(
            "{at_least}{} since the start ({})",
            since_start.notices,
            overflows(since_start.overflows)
        ),
    }
}

fn heading(report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    let polls = super::polls_text(report.polls);
    let seconds = (report.end_ms.saturating_sub(report.start_ms)) as f64 / 1000.0;
    let clock = report.clock_times();
    match (report.kind, clock) {
        (ReportKind::Window, Some((start, end))) => writeln!(
            out,
            "\n=== {start} to {end}: {seconds:.2} s window ({polls}), index={} ===",
            report.index.name(),
        ),
        (ReportKind::Window, None) => writeln!(
            out,
            "\n=== {seconds:.2} s window ({polls}), index={} ===",
            report.index.name(),
        ),
        (ReportKind::Snapshot, Some((_, at))) => writeln!(
            out,
            "\n=== snapshot at {at}: counters since each socket's creation, index={} ===",
            report.index.name(),
        ),
        (ReportKind::Snapshot, None) => writeln!(
            out,
            "\n=== snapshot: counters since each socket's creation, index={} ===",
            report.index.name(),
        ),
        (ReportKind::Close { .. } | ReportKind::UdpClose, _) => Ok(()),
    }
}

/// Which probe fills which counter, one line each (the rest: polls).
fn write_sources(precision: &PrecisionSection, out: &mut dyn Write) -> io::Result<()> {
    for (counters, source) in &precision.sources {
        let names: Vec<&str> = counters.iter().map(|c| c.name()).collect();
        writeln!(out, "\t{}: {source}", names.join(", "))?;
    }
    writeln!(out, "\tother counters: sock_diag polls")
}

/// `--onclose`: what fills which counter, said once before the closes.
pub fn write_precision_sources(
    precision: &PrecisionSection,
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(out, "precision: {}; counters from:", precision.probes)?;
    write_sources(precision, out)
}

/// Which probe filled which counter, events in and lost, and what events
/// counted outside the groups. A close report gets the one loss line.
pub fn write_precision(
    precision: &PrecisionSection,
    kind: ReportKind,
    out: &mut dyn Write,
) -> io::Result<()> {
    if let ReportKind::Close { .. } = kind {
        // One close after another: the sources are said once, at the
        // start; a close says only that events were lost, when they were.
        if precision.events_lost == 0 && precision.events_undelivered == 0 {
            return Ok(());
        }
        return writeln!(
            out,
            "precision: {}; events lost: {}, counted but undelivered: {}",
            precision.probes, precision.events_lost, precision.events_undelivered
        );
    }
    write!(
        out,
        "precision: {}; {} events, events lost: {}",
        precision.probes, precision.events, precision.events_lost
    )?;
    if precision.events_undelivered > 0 {
        write!(
            out,
            ", counted but undelivered: {}",
            precision.events_undelivered
        )?;
    }
    writeln!(out, "; {} last-moment samples", precision.last_samples)?;
    write_sources(precision, out)?;
    let listed = |counters: &Counters| {
        counters
            .iter()
            .filter(|(_, v)| *v != 0)
            .map(|(c, v)| format!("{} = {v}", c.name()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let unplaced = listed(&precision.unplaced);
    if !unplaced.is_empty() {
        writeln!(out, "\tunplaced (no socket to tie them to): {unplaced}")?;
    }
    let waiting = listed(&precision.unidentified);
    if !waiting.is_empty() {
        writeln!(out, "\twaiting for their socket to be named: {waiting}")?;
    }
    let waiting = listed(&precision.unidentified_earlier);
    if !waiting.is_empty() {
        writeln!(
            out,
            "\tfrom earlier windows, still waiting for their socket to be named: {waiting}"
        )?;
    }
    if precision.elsewhere_sockets > 0 {
        writeln!(
            out,
            "\tleft out: {} sockets only events saw, in no sampled namespace (another's?): {}",
            precision.elsewhere_sockets,
            listed(&precision.elsewhere)
        )?;
    }
    if precision.awaiting_notice > 0 {
        writeln!(
            out,
            "\tawaiting their close notice to place them: {} sockets (counted when it comes)",
            precision.awaiting_notice
        )?;
    }
    if precision.notices_unheld > 0 {
        writeln!(
            out,
            "\tclose notices counted without their events (too many waiting): {}",
            precision.notices_unheld
        )?;
    }
    if !precision.drops_by_reason.is_empty() {
        let drops: Vec<String> = precision
            .drops_by_reason
            .iter()
            .map(|(reason, n)| format!("{reason} = {n}"))
            .collect();
        writeln!(out, "\tTCP drops by reason: {}", drops.join(", "))?;
    }
    Ok(())
}

pub fn group(
    report: &Report<'_>,
    group: &Group<'_>,
    options: RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(out, "\n{RULE}")?;
    writeln!(out, "{}", report.key_text(&group.key))?;
    if let Some(owner) = &group.owner {
        writeln!(out, "process: {owner}")?;
    }
    if let ReportKind::Close { unseen_ms, from } = report.kind {
        writeln!(out, "closed: {}", counted_from_text(from, unseen_ms))?;
    } else if group.sockets > 1 || group.closed > 0 {
        writeln!(out, "sockets: {} ({} closed)", group.sockets, group.closed)?;
    }
    writeln!(out, "{RULE}")?;
    if !group.history.is_empty() {
        writeln!(out, "states: {}", group.history.render())?;
    }
    write_counters(out, &group.counters, options.zeros, report.window_seconds())?;
    write_rtt(report, &group.rtt, out)?;
    if let Some(sample) = group.sample {
        let closed = group.sample_closed || matches!(report.kind, ReportKind::Close { .. });
        let mut line = String::new();
        visit_gauges(sample, closed, |name, value| {
            if !line.is_empty() {
                line.push_str("  ");
            }
            match value {
                Gauge::Int(v) => line.push_str(&format!("{name}={v}")),
                Gauge::Text(t) => line.push_str(&format!("{name}={t}")),
            }
        });
        if !line.is_empty() {
            let heading = if closed {
                "Gauges (last measured)"
            } else {
                "Gauges"
            };
            writeln!(out, "{heading}:\n\t{line}")?;
        }
    }
    Ok(())
}

/// The smoothed RTT's percentiles of a group's (or a sum's) samples, and
/// its connects' handshake times.
fn write_rtt(
    report: &Report<'_>,
    rtt: &crate::rtt::RttHistogram,
    out: &mut dyn Write,
) -> io::Result<()> {
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    if let Some(text) = super::rtt_text(report, rtt) {
        let n = rtt.count();
        writeln!(
            out,
            "RTT p50/p90/p99: {text} ({n} sample{} of smoothed RTT; interpolated within buckets)",
            plural(n)
        )?;
    }
    if let Some(text) = super::handshake_text(&rtt.handshake) {
        let n = rtt.handshake.count();
        if n == 1 {
            writeln!(
                out,
                "Handshake: {text} (a connect's SYN to ESTABLISHED, kernel events)"
            )?;
        } else {
            writeln!(
                out,
                "Handshake p50/p90/p99: {text} ({n} connect{} timed from SYN to ESTABLISHED by kernel events; interpolated within buckets)",
                plural(n)
            )?;
        }
    }
    Ok(())
}

/// Where a closed socket's lifetime counters come from, as its report
/// says it.
pub fn counted_from_text(from: CountedFrom, unseen_ms: u64) -> String {
    match from {
        CountedFrom::LastPoll { cleared: false } => {
            format!("lifetime counters as last polled, {unseen_ms} ms or less before the close")
        }
        CountedFrom::LastPoll { cleared: true } => {
            "lifetime counters as last polled: its close notice came with them cleared (an abort)"
                .to_string()
        }
        CountedFrom::CloseNotice { polled: true } => {
            "final lifetime counters, from the kernel's close notice".to_string()
        }
        CountedFrom::CloseNotice { polled: false } => {
            "lifetime counters from the kernel's close notice (no poll saw it open)".to_string()
        }
        CountedFrom::ClearedNotice => "no poll saw it open, and its close notice came with the counters cleared (an abort): only how it ended is known".to_string(),
        CountedFrom::Events => {
            "lifetime counters from kernel events (no poll saw it open, no close notice gave them)"
                .to_string()
        }
    }
}

/// After the groups: the empty-report line, the summed lines, the totals,
/// the `~` legend when `legend`, and the `--system` section.
/// Notices are not repeated here: they went to stderr when raised.
pub fn end(
    report: &Report<'_>,
    sums: &Sums,
    legend: bool,
    options: RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let tcp_empty = sums.groups() == 0 && report.tcp;
    if tcp_empty && !matches!(report.kind, ReportKind::Close { .. }) {
        if report.filtered {
            writeln!(out, "\nNo sockets were accepted by the filters.")?;
        } else {
            writeln!(out, "\nNo TCP socket activity.")?;
        }
    }
    if !sums.others.is_empty() {
        let text = super::others_text(&sums.others, "line");
        write_summed(out, "Others", &text, &sums.others, options.zeros)?;
        write_rtt(report, &sums.others.rtt, out)?;
    }
    if !sums.time_wait.is_empty() {
        let text = super::time_wait_text(&sums.time_wait, report.index, "line");
        write_summed(out, "TIME_WAIT", &text, &sums.time_wait, options.zeros)?;
    }
    if sums.entries() > 1 {
        writeln!(out, "\n{RULE}\n{}\n{RULE}", totals_heading(sums))?;
        write_counters(out, &sums.totals, options.zeros, report.window_seconds())?;
        write_rtt(report, &sums.rtt, out)?;
    }
    if legend {
        writeln!(out, "\n({})", super::APPROX_LEGEND)?;
    }
    let Some(system) = &report.system else {
        return Ok(());
    };
    writeln!(out, "\n{RULE}")?;
    match system.namespaces {
        0 | 1 => writeln!(
            out,
            "System: namespace-wide deltas (/proc/net/snmp, netstat, snmp6)"
        )?,
        n => writeln!(
            out,
            "System: deltas summed over {n} namespaces, each taken on its own (/proc/net/snmp, netstat, snmp6)"
        )?,
    }
    writeln!(out, "{RULE}")?;
    let mut section = "";
    for (key, value) in &system.deltas.values {
        if is_gauge(key) || (*value == 0 && !options.zeros) {
            continue;
        }
        let (name_section, name) = key.split_once(':').unwrap_or(("", key));
        if name_section != section {
            writeln!(out, "{name_section}:")?;
            section = name_section;
        }
        writeln!(out, "\t{name} = {value}")?;
    }
    // Gauges are levels at the window's end, not deltas.
    let gauges: Vec<String> = system
        .deltas
        .values
        .iter()
        .filter(|(key, value)| is_gauge(key) && (**value != 0 || options.zeros))
        .map(|(key, value)| format!("{key} = {value}"))
        .collect();
    if !gauges.is_empty() {
        writeln!(out, "Gauges (at the window's end): {}", gauges.join(", "))?;
    }
    writeln!(
        out,
        "Unattributed (system delta minus the sockets' deltas):"
    )?;
    for r in &system.residuals {
        writeln!(
            out,
            "\t{} = {} (system {}, sockets {})",
            r.counter.name(),
            r.unattributed(),
            r.system,
            r.sockets
        )?;
        for (class, amount) in &r.named {
            writeln!(out, "\t\t{class}: {amount}")?;
        }
        if !r.named.is_empty() {
            writeln!(out, "\t\tunknown: {}", r.unknown())?;
        }
        if let Some(why) = r.why_below_zero() {
            writeln!(out, "\t\t(below zero: {why})")?;
        }
    }
    Ok(())
}

/// `Total of the 3 groups above`, saying which were summed into a line.
fn totals_heading(sums: &Sums) -> String {
    if sums.others.is_empty() && sums.time_wait.is_empty() {
        return format!("Total of the {} groups above", sums.listed);
    }
    let mut parts = vec![format!("{} listed", sums.listed)];
    if !sums.others.is_empty() {
        parts.push(format!("{} in Others", sums.others.groups));
    }
    if !sums.time_wait.is_empty() {
        parts.push(format!("{} in TIME_WAIT", sums.time_wait.groups));
    }
    format!(
        "Total of all {} groups ({})",
        sums.groups(),
        parts.join(", ")
    )
}

/// A sum of groups on one line: `Others: 5 quieter groups (7 sockets)
/// summed here: ...: BytesSent = 100, InSegs = ~6`.
fn write_summed(
    out: &mut dyn Write,
    label: &str,
    text: &str,
    summed: &Summed,
    zeros: bool,
) -> io::Result<()> {
    let counters = &summed.counters;
    let values: Vec<String> = counters
        .iter()
        .filter(|(_, value)| *value != 0 || zeros)
        .map(|(counter, value)| {
            let approx = if counters.is_approx(counter) && value != 0 {
                "~"
            } else {
                ""
            };
            format!("{} = {approx}{value}", counter.name())
        })
        .collect();
    if values.is_empty() {
        writeln!(out, "\n{label}: {text}")
    } else {
        writeln!(out, "\n{label}: {text}; {}", values.join(", "))
    }
}

/// `  (1.2 kB/s)` for byte counters, `  (35.0/s)` for the others.
fn rate_text(counter: Counter, per_second: f64) -> String {
    if counter.name().contains("Bytes") {
        format!("  ({})", super::human_rate(per_second))
    } else {
        format!("  ({per_second:.1}/s)")
    }
}

/// Counters by section; in a window, each with its rate per second.
fn write_counters(
    out: &mut dyn Write,
    counters: &Counters,
    zeros: bool,
    seconds: Option<f64>,
) -> io::Result<()> {
    for section in Section::ALL {
        let mut wrote_header = false;
        for (counter, value) in counters.iter().filter(|(c, _)| c.section() == section) {
            if value == 0 && !zeros {
                continue;
            }
            if !wrote_header {
                writeln!(out, "{}:", section.name())?;
                wrote_header = true;
            }
            let approx = if counters.is_approx(counter) && value != 0 {
                "~"
            } else {
                ""
            };
            let rate = match seconds {
                Some(s) if value != 0 && counter != Counter::CurrEstab => {
                    rate_text(counter, value as f64 / s)
                }
                _ => String::new(),
            };
            writeln!(out, "\t{} = {approx}{value}{rate}", counter.name())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::report::test_fixtures::{self as fixtures, render_to_string};
    use crate::report::{Format, Report};

    fn text(report: &Report<'_>, zeros: bool) -> String {
        render_to_string(report, Format::Text, zeros)
    }

    #[test]
    fn window_tuple_ipv4_and_ipv6_with_gauges_and_owners() {
        insta::assert_snapshot!("window_tuple", text(&fixtures::window_tuple(), false));
    }

    #[test]
    fn window_tuple_with_zeros() {
        insta::assert_snapshot!("window_tuple_zeros", text(&fixtures::window_tuple(), true));
    }

    #[test]
    fn zero_counters_show_only_with_zeros() {
        let report = fixtures::window_tuple();
        let (hidden, shown) = (text(&report, false), text(&report, true));
        for line in [
            "\tBytesSent = 0\n",
            "\tTCPTimeouts = 0\n",
            // A zero is 0, approximate or not.
            "\tTCPDSACKRecv = 0\n",
        ] {
            assert!(!hidden.contains(line), "{line:?} without --zeros");
            assert!(shown.contains(line), "{line:?} with --zeros");
        }
    }

    #[test]
    fn notices_of_lives_before_the_run_are_said_in_text_and_json() {
        let mut report = fixtures::window_tuple();
        let line = "close notices of lives that ended before the first poll (counted nothing)";
        assert!(!text(&report, false).contains(line));
        report.notices_before_run = 2;
        report.closes_lost = Some(crate::model::CloseLoss::default());
        assert!(text(&report, false).contains(&format!("{line}: 2\n")));
        let json = render_to_string(&report, Format::Json, false);
        assert!(json.contains("\"notices_before_run\":2"), "{json}");
    }

    #[test]
    fn notices_are_not_repeated_in_text() {
        // They went to stderr when raised.
        let out = text(&fixtures::window_tuple(), true);
        assert!(!out.contains("not sampled") && !out.contains("record-trace"));
    }

    #[test]
    fn lport_groups_with_closed_sockets() {
        insta::assert_snapshot!("lport_groups", text(&fixtures::lport_groups(), false));
    }

    #[test]
    fn close_report() {
        insta::assert_snapshot!("close", text(&fixtures::close(), false));
    }

    #[test]
    fn close_report_with_precision() {
        insta::assert_snapshot!(
            "close_with_precision",
            text(&fixtures::close_with_precision(), false)
        );
    }

    #[test]
    fn system_section_and_residuals() {
        insta::assert_snapshot!("system", text(&fixtures::system(), false));
    }

    #[test]
    fn system_section_with_zeros() {
        insta::assert_snapshot!("system_zeros", text(&fixtures::system(), true));
    }

    #[test]
    fn precision_window() {
        insta::assert_snapshot!(
            "precision_window",
            text(&fixtures::precision_window(), false)
        );
    }

    #[test]
    fn namespaces_tuple() {
        insta::assert_snapshot!(
            "namespaces_tuple",
            text(&fixtures::namespaces_tuple(), false)
        );
    }

    #[test]
    fn by_netns() {
        insta::assert_snapshot!("by_netns", text(&fixtures::by_netns(), false));
    }

    #[test]
    fn by_container() {
        insta::assert_snapshot!("by_container", text(&fixtures::by_container(), false));
    }

    #[test]
    fn by_process() {
        insta::assert_snapshot!("by_process", text(&fixtures::by_process(), false));
    }

    #[test]
    fn snapshot_with_listener() {
        insta::assert_snapshot!(
            "snapshot_listener",
            text(&fixtures::snapshot_listener(), false)
        );
    }

    #[test]
    fn snapshot_filtered_empty() {
        insta::assert_snapshot!(
            "snapshot_filtered_empty",
            text(&fixtures::snapshot_filtered_empty(), false)
        );
    }

    #[test]
    fn window_empty() {
        insta::assert_snapshot!("window_empty", text(&fixtures::window_empty(), false));
    }

    #[test]
    fn time_wait_sockets_fold_into_one_line() {
        insta::assert_snapshot!(
            "snapshot_time_wait",
            text(&fixtures::snapshot_time_wait(), false)
        );
    }

    #[test]
    fn time_wait_sockets_listed_with_time_wait() {
        insta::assert_snapshot!(
            "snapshot_time_wait_listed",
            fixtures::render_with(
                &fixtures::snapshot_time_wait(),
                fixtures::time_wait_listed(Format::Text)
            )
        );
    }

    #[test]
    fn top_lists_the_busiest_and_sums_the_others_into_one_line() {
        insta::assert_snapshot!(
            "lport_groups_top_1",
            fixtures::render_with(&fixtures::lport_groups(), fixtures::top(Format::Text, 1))
        );
    }

    #[test]
    fn closed_sockets_show_only_what_they_last_measured() {
        insta::assert_snapshot!(
            "window_closed_sockets",
            text(&fixtures::window_closed_sockets(), false)
        );
    }
}
