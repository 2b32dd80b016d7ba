//! The `Udp` section of a report in each format: UDP and UDP-Lite groups
//! (receive drops, queues, buffers, memory) and, with `--system`, the
//! namespace's Udp/Udp6 and UdpLite/UdpLite6 MIB against the sockets.
//! Written after the TCP part, by [`super::ReportWriter::end`].

use std::io::{self, Write};

use super::Report;
use crate::aggregate::GroupKey;
use crate::udp::{UdpEventCounts, UdpGroup, UdpPrecision, UdpSection, UdpSystem};

const RULE: &str = "============================================================";

/// What the per-socket drop count is, said where it is shown.
const DROPS_MEANING: &str = "receive drops: datagrams the kernel dropped after finding the socket (sk_drops; each also in InErrors, most often as RcvbufErrors)";

pub fn write_text(
    report: &Report<'_>,
    section: &UdpSection,
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(out, "\n{RULE}")?;
    writeln!(out, "Udp: {}", summary(section))?;
    writeln!(out, "{RULE}")?;
    if let Some(line) = closes_lost_text(section) {
        writeln!(out, "UDP close notices lost: {line}")?;
    }
    for group in &section.groups {
        writeln!(out, "{}", heading(report, group))?;
        let mut line = format!("  sockets {}", group.sockets);
        match (group.closed, group.notice_only) {
            (0, _) => {}
            (closed, 0) => line.push_str(&format!(" ({closed} closed)")),
            (closed, only) => line.push_str(&format!(
                " ({closed} closed, {only} known only from their close notice: drops unknown)"
            )),
        }
        if let Some(drops) = group.drops {
            line.push_str(&format!(", RcvDrops {drops}"));
        }
        writeln!(out, "{line}")?;
        if let Some(events) = &group.events {
            writeln!(out, "  {}", events_text(events))?;
        }
        writeln!(out, "  {}", gauges_text(group))?;
    }
    if section.drops.is_some() {
        writeln!(out, "(RcvDrops = {DROPS_MEANING})")?;
    }
    if let Some(precision) = &section.precision {
        write_precision_text(precision, out)?;
    }
    for system in &section.system {
        writeln!(
            out,
            "\nSystem: {} ({} + {}6), namespace-wide deltas",
            system.proto, system.proto, system.proto
        )?;
        for row in &system.rows {
            let mut line = format!("  {:<14}{:>12}", row.name, row.system);
            if let (Some(sockets), Some(residual)) = (row.sockets, row.residual) {
                let mark = if row.approx { "~" } else { "" };
                line.push_str(&format!(
                    "   {}{mark} {sockets}   unattributed{mark} {residual}",
                    row.source
                ));
            }
            writeln!(out, "{line}")?;
            if let (Some(precision), "NoPorts", "Udp") =
                (&section.precision, row.name, system.proto)
            {
                for line in no_ports_lines(precision) {
                    writeln!(out, "    {line}")?;
                }
            }
        }
    }
    Ok(())
}

/// One group's counts from kernel events.
fn events_text(e: &UdpEventCounts) -> String {
    let mut text = format!(
        "InDatagrams {} ({} bytes)  OutDatagrams {} ({} bytes)  RcvbufErrors {}  MemErrors {}",
        e.in_datagrams, e.in_bytes, e.out_datagrams, e.out_bytes, e.rcvbuf_errors, e.mem_errors
    );
    for (name, value) in [
        ("SendErrors", e.send_errors),
        ("InCsumErrors", e.csum_errors),
        ("FilterDrops", e.filter_drops),
    ] {
        if value > 0 {
            text.push_str(&format!("  {name} {value}"));
        }
    }
    text
}

/// NoPorts named: by port and sender, then those with no port known.
fn no_ports_lines(precision: &UdpPrecision) -> Vec<String> {
    let stats = &precision.stats;
    let mut lines: Vec<String> = stats
        .no_ports
        .iter()
        .map(|r| {
            format!(
                "NoPorts for port {} (to {}) from sender {}: {}",
                r.port,
                endpoint(r.local, None),
                endpoint(r.sender, Some(r.sender_port)),
                r.datagrams
            )
        })
        .collect();
    if stats.no_ports_unknown > 0 {
        lines.push(format!(
            "NoPorts with no port known (no ICMP port unreachable was sent: rate limit, broadcast, IPv6; or past {} ports): {}",
            crate::udp::NO_PORTS_LIMIT,
            stats.no_ports_unknown
        ));
    }
    lines
}

fn endpoint(address: std::net::IpAddr, port: Option<u16>) -> String {
    let address = crate::model::unmap(address);
    match (address, port) {
        (std::net::IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
        (a, Some(p)) => format!("{a}:{p}"),
        (a, None) => a.to_string(),
    }
}

/// Where the events came from, what was lost and what could not be placed.
fn write_precision_text(precision: &UdpPrecision, out: &mut dyn Write) -> io::Result<()> {
    let stats = &precision.stats;
    writeln!(
        out,
        "Udp events: {} lost in this window, {} since the start (counts from events are low by at most as much)",
        precision.events_lost, precision.events_lost_since_start
    )?;
    for (counters, source) in &precision.sources {
        writeln!(out, "  {counters}: {source}")?;
    }
    for missing in &precision.missing {
        writeln!(out, "  not on this kernel: {missing}")?;
    }
    if stats.unplaced_messages + stats.unplaced_queue_fails > 0 {
        writeln!(
            out,
            "  not placed on a socket of this run: {} sends/receives, {} receive-queue failures (another namespace's sockets, a socket no event named, or a port several sockets share)",
            stats.unplaced_messages, stats.unplaced_queue_fails
        )?;
    }
    if !stats.drops_by_reason.is_empty() {
        let reasons: Vec<String> = stats
            .drops_by_reason
            .iter()
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect();
        writeln!(out, "  UDP drops by reason: {}", reasons.join(", "))?;
    }
    Ok(())
}

fn summary(section: &UdpSection) -> String {
    let mut text = format!("{} UDP/UDP-Lite sockets", section.sockets);
    if let Some(drops) = section.drops {
        text.push_str(&format!(", RcvDrops {drops}"));
    }
    if section.quiet_groups > 0 {
        text.push_str(&format!(
            "; {} quiet group(s) not shown (no drop, nothing unread; --zeros shows them)",
            section.quiet_groups
        ));
    }
    if section.closed > 0 {
        text.push_str(&format!(
            "; {} closed in this window (drops after their last poll are not counted)",
            section.closed
        ));
    }
    if section.notice_only > 0 {
        text.push_str(&format!(
            "; {} of them known only from their close notice (no poll saw them; a notice carries no drop count, so their drops are in no RcvDrops, only in --system's residual)",
            section.notice_only
        ));
    }
    if section.unlisted > 0 {
        text.push_str(&format!(
            "; {} more known only from close notices, past the {} tracked per window: counted here, in no group",
            section.unlisted,
            crate::udp::NOTICE_ONLY_LIMIT
        ));
    }
    text
}

/// `W in this window, S since the start` (`at least` where the kernel's
/// drop count of the notice socket cannot be read).
fn closes_lost_text(section: &UdpSection) -> Option<String> {
    let (window, since_start) = section.closes_lost?;
    let at_least = if since_start.exact { "" } else { "at least " };
    Some(format!(
        "{at_least}{} in this window, {at_least}{} since the start",
        window.notices, since_start.notices
    ))
}

fn heading(report: &Report<'_>, group: &UdpGroup) -> String {
    let key = report.key_text(&group.key);
    match (group.proto, group.state) {
        (Some(proto), Some(state)) => format!("{key} ({proto} {state})"),
        _ => key,
    }
}

fn gauges_text(group: &UdpGroup) -> String {
    let opt = |v: Option<u32>| v.map_or("-".to_string(), |v| v.to_string());
    format!(
        "RecvQ {}  SendQ {}  Rcvbuf {}  Sndbuf {}  Mem {}",
        group.recv_queue,
        group.send_queue,
        opt(group.rcvbuf),
        opt(group.sndbuf),
        group.memory
    )
}

pub fn write_table(
    report: &Report<'_>,
    section: &UdpSection,
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(out, "\nUdp: {}", summary(section))?;
    if let Some(line) = closes_lost_text(section) {
        writeln!(out, "UDP close notices lost: {line}")?;
    }
    let header = [
        "Key",
        "Sockets",
        "RcvDrops",
        "RecvQ",
        "SendQ",
        "Rcvbuf",
        "Sndbuf",
        "Mem",
        "Closed",
        "NoticeOnly",
    ];
    let opt = |v: Option<u32>| v.map_or("-".to_string(), |v| v.to_string());
    let rows: Vec<[String; 10]> = section
        .groups
        .iter()
        .map(|g| {
            [
                heading(report, g),
                g.sockets.to_string(),
                g.drops.map_or("-".to_string(), |d| d.to_string()),
                g.recv_queue.to_string(),
                g.send_queue.to_string(),
                opt(g.rcvbuf),
                opt(g.sndbuf),
                g.memory.to_string(),
                g.closed.to_string(),
                g.notice_only.to_string(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        write_aligned(out, &header, &rows)?;
    }
    if let Some(precision) = &section.precision {
        let header = [
            "Key",
            "InDatagrams",
            "InBytes",
            "OutDatagrams",
            "OutBytes",
            "RcvbufErrors",
            "MemErrors",
        ];
        let rows: Vec<[String; 7]> = section
            .groups
            .iter()
            .filter_map(|g| Some((g, g.events?)))
            .map(|(g, e)| {
                [
                    heading(report, g),
                    e.in_datagrams.to_string(),
                    e.in_bytes.to_string(),
                    e.out_datagrams.to_string(),
                    e.out_bytes.to_string(),
                    e.rcvbuf_errors.to_string(),
                    e.mem_errors.to_string(),
                ]
            })
            .collect();
        if !rows.is_empty() {
            writeln!(out)?;
            write_aligned(out, &header, &rows)?;
        }
        write_precision_text(precision, out)?;
    }
    for system in &section.system {
        writeln!(
            out,
            "\n{} + {}6 (namespace-wide deltas)",
            system.proto, system.proto
        )?;
        let header = ["Counter", "System", "Sockets", "Unattributed"];
        let rows: Vec<[String; 4]> = system
            .rows
            .iter()
            .map(|r| {
                let mark = if r.approx { "~" } else { "" };
                [
                    r.name.to_string(),
                    r.system.to_string(),
                    r.sockets.map_or(String::new(), |s| format!("{s}{mark}")),
                    r.residual.map_or(String::new(), |s| format!("{s}{mark}")),
                ]
            })
            .collect();
        write_aligned(out, &header, &rows)?;
        if let (Some(precision), "Udp") = (&section.precision, system.proto) {
            for line in no_ports_lines(precision) {
                writeln!(out, "{line}")?;
            }
        }
    }
    Ok(())
}

/// A plain table: the first column left-aligned, the rest right-aligned.
fn write_aligned<const N: usize>(
    out: &mut dyn Write,
    header: &[&str; N],
    rows: &[[String; N]],
) -> io::Result<()> {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i == 0 {
                text.push_str(&format!("{cell:<w$}"));
            } else {
                text.push_str(&format!("  {cell:>w$}"));
            }
        }
        text.trim_end().to_string()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// The section as a JSON object (the report's `udp` member).
pub fn write_json(report: &Report<'_>, section: &UdpSection, buf: &mut String) {
    buf.push('{');
    field(buf, "sockets", &section.sockets.to_string());
    field(buf, "RcvDrops", &opt_num(section.drops));
    field(buf, "closed", &section.closed.to_string());
    field(buf, "notice_only", &section.notice_only.to_string());
    field(buf, "unlisted", &section.unlisted.to_string());
    let lost = section
        .closes_lost
        .map_or("null".to_string(), |(window, start)| {
            format!(
                "{{\"window\":{},\"since_start\":{},\"exact\":{}}}",
                window.notices, start.notices, start.exact
            )
        });
    field(buf, "close_notices_lost", &lost);
    field(buf, "quiet_groups", &section.quiet_groups.to_string());
    buf.push_str("\"groups\":[");
    for (i, g) in section.groups.iter().enumerate() {
        if i > 0 {
            buf.push(',');
        }
        buf.push_str("{\"key\":");
        key_json(report, &g.key, buf);
        buf.push(',');
        field(buf, "proto", &g.proto.map_or("null".into(), quoted));
        field(buf, "state", &g.state.map_or("null".into(), quoted));
        field(buf, "sockets", &g.sockets.to_string());
        field(buf, "closed", &g.closed.to_string());
        field(buf, "notice_only", &g.notice_only.to_string());
        field(buf, "RcvDrops", &opt_num(g.drops));
        field(buf, "recv_q", &g.recv_queue.to_string());
        field(buf, "send_q", &g.send_queue.to_string());
        field(buf, "rcvbuf", &opt_num(g.rcvbuf));
        field(buf, "sndbuf", &opt_num(g.sndbuf));
        field(
            buf,
            "events",
            &g.events.map_or("null".into(), |e| events_json(&e)),
        );
        buf.push_str(&format!("\"mem\":{}}}", g.memory));
    }
    buf.push_str("],\"precision\":");
    buf.push_str(
        &section
            .precision
            .as_ref()
            .map_or("null".to_string(), precision_json),
    );
    buf.push_str(",\"system\":{");
    for (i, s) in section.system.iter().enumerate() {
        if i > 0 {
            buf.push(',');
        }
        buf.push_str(&quoted(s.proto));
        buf.push(':');
        system_json(s, buf);
    }
    buf.push_str("}}");
}

fn events_json(e: &UdpEventCounts) -> String {
    format!(
        "{{\"InDatagrams\":{},\"InBytes\":{},\"OutDatagrams\":{},\"OutBytes\":{},\"SendErrors\":{},\"RcvbufErrors\":{},\"MemErrors\":{},\"InCsumErrors\":{},\"FilterDrops\":{}}}",
        e.in_datagrams,
        e.in_bytes,
        e.out_datagrams,
        e.out_bytes,
        e.send_errors,
        e.rcvbuf_errors,
        e.mem_errors,
        e.csum_errors,
        e.filter_drops
    )
}

fn precision_json(p: &UdpPrecision) -> String {
    let stats = &p.stats;
    let no_ports: Vec<String> = stats
        .no_ports
        .iter()
        .map(|r| {
            format!(
                "{{\"laddr\":{},\"lport\":{},\"sender\":{},\"sender_port\":{},\"datagrams\":{}}}",
                quoted(&crate::model::unmap(r.local).to_string()),
                r.port,
                quoted(&crate::model::unmap(r.sender).to_string()),
                r.sender_port,
                r.datagrams
            )
        })
        .collect();
    let reasons: Vec<String> = stats
        .drops_by_reason
        .iter()
        .map(|(reason, n)| format!("{}:{n}", quoted(reason)))
        .collect();
    let sources: Vec<String> = p
        .sources
        .iter()
        .map(|(counters, source)| format!("{}:{}", quoted(counters), quoted(source)))
        .collect();
    let missing: Vec<String> = p.missing.iter().map(|m| quoted(m)).collect();
    format!(
        "{{\"events_lost\":{},\"events_lost_since_start\":{},\"no_ports\":[{}],\"no_ports_unknown\":{},\"drops_by_reason\":{{{}}},\"unplaced_messages\":{},\"unplaced_queue_fails\":{},\"sources\":{{{}}},\"missing\":[{}]}}",
        p.events_lost,
        p.events_lost_since_start,
        no_ports.join(","),
        stats.no_ports_unknown,
        reasons.join(","),
        stats.unplaced_messages,
        stats.unplaced_queue_fails,
        sources.join(","),
        missing.join(",")
    )
}

fn field(buf: &mut String, name: &str, value: &str) {
    buf.push_str(&quoted(name));
    buf.push(':');
    buf.push_str(value);
    buf.push(',');
}

fn opt_num<T: ToString>(value: Option<T>) -> String {
    value.map_or("null".to_string(), |v| v.to_string())
}

/// A JSON string: quotes, backslashes and control characters escaped.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn system_json(system: &UdpSystem, buf: &mut String) {
    buf.push('{');
    for (i, r) in system.rows.iter().enumerate() {
        if i > 0 {
            buf.push(',');
        }
        buf.push_str(&format!("{}:{{\"system\":{}", quoted(r.name), r.system));
        if let (Some(sockets), Some(residual)) = (r.sockets, r.residual) {
            buf.push_str(&format!(
                ",\"sockets\":{sockets},\"unattributed\":{residual},\"exact\":{},\"source\":{}",
                !r.approx,
                quoted(r.source)
            ));
        }
        buf.push('}');
    }
    buf.push('}');
}

fn key_json(report: &Report<'_>, key: &GroupKey, buf: &mut String) {
    let text = match *key {
        GroupKey::Tuple(k) => {
            let mut text = format!(
                "{{\"laddr\":{},\"lport\":{},\"raddr\":{},\"rport\":{}",
                quoted(&crate::model::unmap(k.local).to_string()),
                k.local_port,
                quoted(&crate::model::unmap(k.remote).to_string()),
                k.remote_port
            );
            if k.netns != 0 {
                text.push_str(&format!(
                    ",\"netns\":{},\"netns_name\":{}",
                    k.netns,
                    quoted(&report.netns_label(k.netns))
                ));
            }
            text + "}"
        }
        GroupKey::Laddr(a) => format!("{{\"laddr\":{}}}", quoted(&a.to_string())),
        GroupKey::Raddr(a) => format!("{{\"raddr\":{}}}", quoted(&a.to_string())),
        GroupKey::Lport(p) => format!("{{\"lport\":{p}}}"),
        GroupKey::Rport(p) => format!("{{\"rport\":{p}}}"),
        GroupKey::Netns(n) | GroupKey::Container(n) => format!(
            "{{\"netns\":{n},\"netns_name\":{}}}",
            quoted(&report.netns_label(n))
        ),
        GroupKey::Process(pid) => format!(
            "{{\"pid\":{pid},\"command\":{}}}",
            report
                .process_names
                .get(&pid)
                .map_or("null".to_string(), |c| quoted(c))
        ),
        GroupKey::Unlisted => "{\"unlisted\":true}".to_string(),
        // --udp refuses --index pod; a key of another index, told as such.
        GroupKey::Pod(n) => format!("{{\"pod\":{n}}}"),
    };
    buf.push_str(&text);
}

/// Adds `"udp": …` as the last member of a report's JSON object, which
/// `buf` ends with (`…}` and a newline).
pub fn append_json(report: &Report<'_>, section: &UdpSection, buf: &mut Vec<u8>) {
    if !buf.ends_with(b"}\n") {
        return;
    }
    buf.truncate(buf.len() - 2);
    let mut text = String::from(",\"udp\":");
    write_json(report, section, &mut text);
    buf.extend_from_slice(text.as_bytes());
    buf.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Index;
    use crate::report::{render, Format, RenderOptions, ReportKind};
    use crate::udp::{system_for, UdpSection};

    fn report_with_udp() -> Report<'static> {
        let mut g = crate::udp::UdpGroup {
            key: GroupKey::Lport(5353),
            sockets: 2,
            closed: 1,
            notice_only: 0,
            drops: Some(42),
            recv_queue: 768,
            send_queue: 0,
            rcvbuf: Some(4608),
            sndbuf: Some(212992),
            memory: 768,
            proto: None,
            state: None,
            events: None,
        };
        let mut quiet = g.clone();
        quiet.key = GroupKey::Lport(53);
        quiet.drops = Some(0);
        quiet.recv_queue = 0;
        quiet.closed = 0;
        g.proto = None;
        let mut section = UdpSection::new(vec![g, quiet], false, 1);
        let mut deltas = crate::source::procfs::SystemCounters::default();
        deltas.values.insert("Udp:RcvbufErrors".into(), 40);
        deltas.values.insert("Udp6:RcvbufErrors".into(), 2);
        deltas.values.insert("Udp:InErrors".into(), 45);
        section.system = system_for(crate::model::udp::UdpProto::Udp, &deltas, 42, None)
            .into_iter()
            .collect();
        let mut report = Report::new(ReportKind::Window, Index::Lport, (0, 1000), 2, Vec::new());
        report.udp = Some(section);
        report
    }

    fn rendered(format: Format) -> String {
        let mut out = Vec::new();
        let options = RenderOptions {
            format,
            ..Default::default()
        };
        render(&report_with_udp(), options, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_report_has_a_udp_section_with_drops_and_system_residuals() {
        let text = rendered(Format::Text);
        assert!(
            text.contains("Udp: 4 UDP/UDP-Lite sockets, RcvDrops 42"),
            "{text}"
        );
        assert!(text.contains("Local port: 5353"), "{text}");
        assert!(!text.contains("Local port: 53\n"), "{text}");
        assert!(text.contains("RecvQ 768  SendQ 0  Rcvbuf 4608"), "{text}");
        assert!(text.contains("RcvbufErrors"), "{text}");
        assert!(
            text.contains("sockets' RcvDrops~ 42   unattributed~ 0"),
            "{text}"
        );
        assert!(
            text.contains("sockets' RcvDrops 42   unattributed 3"),
            "{text}"
        );
    }

    #[test]
    fn table_report_lists_udp_groups_and_the_mib() {
        let text = rendered(Format::Table);
        let row = text
            .lines()
            .find(|l| l.starts_with("Local port: 5353"))
            .unwrap();
        let cells: Vec<&str> = row.split("  ").filter(|c| !c.is_empty()).collect();
        assert_eq!(cells[1..4], ["2", "42", "768"], "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("RcvbufErrors") && l.ends_with("0~")),
            "{text}"
        );
    }

    #[test]
    fn a_udp_only_report_says_nothing_of_tcp() {
        let mut report = report_with_udp();
        report.tcp = false;
        for format in [Format::Text, Format::Table] {
            let mut out = Vec::new();
            let options = RenderOptions {
                format,
                ..Default::default()
            };
            render(&report, options, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(!text.to_lowercase().contains("tcp"), "{text}");
            assert!(text.contains("Udp: 4 UDP/UDP-Lite sockets"), "{text}");
        }
        // Asked for both, an empty TCP side is still said.
        report.tcp = true;
        assert!(rendered(Format::Text).contains("No TCP socket activity."));
        assert!(rendered(Format::Table).contains("(no TCP socket activity)"));
    }

    #[test]
    fn json_report_carries_udp_as_a_member() {
        let text = rendered(Format::Json);
        assert!(text.ends_with("}}\n"), "{text}");
        assert!(
            text.contains(",\"udp\":{\"sockets\":4,\"RcvDrops\":42,"),
            "{text}"
        );
        assert!(text.contains("\"key\":{\"lport\":5353}"), "{text}");
        assert!(
            text.contains("\"RcvbufErrors\":{\"system\":42,\"sockets\":42,\"unattributed\":0,\"exact\":false,\"source\":\"sockets' RcvDrops\"}"),
            "{text}"
        );
        assert_eq!(quoted("a\"b\\\u{1}"), "\"a\\\"b\\\\\\u0001\"");
    }
}
