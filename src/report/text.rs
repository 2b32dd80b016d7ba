//! The seed's report blocks: a separator, the group's key, then `Socket:`,
//! `Ip:`, `Tcp:`, `TcpExt:` with one `Name = value` line per counter (`~`
//! before approximate values), gauges for single sockets, and the `--system`
//! section with the unattributed residual.

use std::io::{self, Write};

use super::{visit_gauges, Gauge, PrecisionSection, RenderOptions, Report, ReportKind};
use crate::aggregate::Group;
use crate::counters::{Counters, Section};

const RULE: &str = "-----------------------------------------";

/// The report's heading, and precision mode's account.
pub fn begin(report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    heading(report, out)?;
    if let Some(precision) = &report.precision {
        write_precision(precision, report.kind, out)?;
    }
    Ok(())
}

fn heading(report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    match report.kind {
        ReportKind::Window => writeln!(
            out,
            "\n=== {:.2} s window ({} polls), index={} ===",
            (report.end_ms.saturating_sub(report.start_ms)) as f64 / 1000.0,
            report.polls,
            report.index.name(),
        ),
        ReportKind::Snapshot => writeln!(
            out,
            "\n=== snapshot: counters since each socket's creation, index={} ===",
            report.index.name(),
        ),
        ReportKind::Close { .. } => Ok(()),
    }
}

/// Which probe filled which counter, events in and lost, and what events
/// counted outside the groups. A close report gets the one loss line.
pub fn write_precision(
    precision: &PrecisionSection,
    kind: ReportKind,
    out: &mut dyn Write,
) -> io::Result<()> {
    if let ReportKind::Close { .. } = kind {
        return writeln!(
            out,
            "precision: {}; events lost: {}",
            precision.probes, precision.events_lost
        );
    }
    writeln!(
        out,
        "precision: {}; {} events, events lost: {}; {} last-moment samples",
        precision.probes, precision.events, precision.events_lost, precision.last_samples
    )?;
    for (counters, source) in &precision.sources {
        let names: Vec<&str> = counters.iter().map(|c| c.name()).collect();
        writeln!(out, "\t{}: {source}", names.join(", "))?;
    }
    writeln!(out, "\tother counters: sock_diag polls")?;
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
    if precision.elsewhere_sockets > 0 {
        writeln!(
            out,
            "\tleft out: {} sockets only events saw, in no sampled namespace (another's?): {}",
            precision.elsewhere_sockets,
            listed(&precision.elsewhere)
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
    if let ReportKind::Close { unseen_ms } = report.kind {
        writeln!(
            out,
            "closed: lifetime counters as last polled, {unseen_ms} ms or less before the close"
        )?;
    } else if group.sockets > 1 || group.closed > 0 {
        writeln!(out, "sockets: {} ({} closed)", group.sockets, group.closed)?;
    }
    writeln!(out, "{RULE}")?;
    if !group.history.is_empty() {
        writeln!(out, "states: {}", group.history.render())?;
    }
    write_counters(out, &group.counters, options.zeros)?;
    if let Some(sample) = group.sample {
        let mut line = String::new();
        visit_gauges(sample, |name, value| {
            if !line.is_empty() {
                line.push_str("  ");
            }
            match value {
                Gauge::Int(v) => line.push_str(&format!("{name}={v}")),
                Gauge::Text(t) => line.push_str(&format!("{name}={t}")),
            }
        });
        writeln!(out, "Gauges:\n\t{line}")?;
    }
    Ok(())
}

/// After the groups: the empty-report line and the `--system` section.
/// Notices are not repeated here: they went to stderr when raised.
pub fn end(
    report: &Report<'_>,
    groups: usize,
    options: RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    if groups == 0 && !matches!(report.kind, ReportKind::Close { .. }) {
        if report.filtered {
            writeln!(out, "\nNo sockets were accepted by the filters.")?;
        } else {
            writeln!(out, "\nNo TCP socket activity.")?;
        }
    }
    let Some(system) = &report.system else {
        return Ok(());
    };
    writeln!(out, "\n{RULE}")?;
    writeln!(
        out,
        "System: namespace-wide deltas (/proc/net/snmp, netstat, snmp6)"
    )?;
    writeln!(out, "{RULE}")?;
    let mut section = "";
    for (key, value) in &system.deltas.values {
        if *value == 0 && !options.zeros {
            continue;
        }
        let (name_section, name) = key.split_once(':').unwrap_or(("", key));
        if name_section != section {
            writeln!(out, "{name_section}:")?;
            section = name_section;
        }
        writeln!(out, "\t{name} = {value}")?;
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
    }
    Ok(())
}

fn write_counters(out: &mut dyn Write, counters: &Counters, zeros: bool) -> io::Result<()> {
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
            let approx = if counters.is_approx(counter) { "~" } else { "" };
            writeln!(out, "\t{} = {approx}{value}", counter.name())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{GroupKey, Index, Residual, SystemSection};
    use crate::counters::Counter;
    use crate::model::{SocketKey, SocketSample, TcpState};
    use crate::report::{render, Format};

    fn report<'a>(groups: Vec<Group<'a>>, system: Option<SystemSection>) -> Report<'a> {
        Report {
            system,
            notices: vec!["not printed in text".into()],
            ..Report::new(ReportKind::Window, Index::Tuple, (0, 2000), 3, groups)
        }
    }

    fn text(report: &Report<'_>, zeros: bool) -> String {
        let mut out = Vec::new();
        render(
            report,
            RenderOptions {
                format: Format::Text,
                zeros,
            },
            &mut out,
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn seed_blocks_with_approximate_marks_and_gauges() {
        let key = SocketKey::new(
            "9.47.66.34".parse().unwrap(),
            22,
            "9.47.67.150".parse().unwrap(),
            36570,
        );
        let mut counters = Counters::default();
        counters.set(Counter::BytesSent, 208, false);
        counters.set(Counter::BytesReceived, 0, false);
        counters.set(Counter::InSegs, 3, false);
        counters.set(Counter::OutSegs, 2, false);
        counters.set(Counter::PassiveOpens, 1, true);
        let sample = SocketSample::bare(key, 1, TcpState::Established);
        let group = Group {
            key: GroupKey::Tuple(key),
            counters,
            sockets: 1,
            closed: 0,
            sample: Some(&sample),
            owner: None,
            history: Default::default(),
        };
        let expected = "\n=== 2.00 s window (3 polls), index=tuple ===\n\n\
-----------------------------------------\n\
9.47.66.34:22 <-> 9.47.67.150:36570\n\
-----------------------------------------\n\
Socket:\n\tBytesSent = 208\n\
Tcp:\n\tPassiveOpens = ~1\n\tInSegs = ~3\n\tOutSegs = 2\n\
Gauges:\n\tstate=ESTAB  recv_q=0  send_q=0\n";
        assert_eq!(text(&report(vec![group.clone()], None), false), expected);
        // --zeros prints the zero counter too.
        assert!(text(&report(vec![group], None), true).contains("\tBytesReceived = 0\n"));
    }

    #[test]
    fn empty_report_and_system_section() {
        let mut system = SystemSection::default();
        system.deltas.values.insert("Tcp:OutSegs".into(), 12);
        system.deltas.values.insert("Tcp:InErrs".into(), 0);
        system.residuals.push(Residual {
            counter: Counter::OutSegs,
            system: 12,
            sockets: 10,
        });
        let out = text(&report(Vec::new(), Some(system)), false);
        assert!(out.contains("No TCP socket activity."));
        assert!(out.contains("Tcp:\n\tOutSegs = 12\n"));
        assert!(!out.contains("InErrs"));
        assert!(out.contains("\tOutSegs = 2 (system 12, sockets 10)\n"));
        assert!(!out.contains("not printed"));
    }
}
