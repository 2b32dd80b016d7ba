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

/// One UDP socket's close (`--onclose`), the whole of its report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpCloseReport {
    pub closed: crate::udp::UdpClosed,
    /// `command[pid]` of the process that held it, where owners were
    /// looked up (--processes) while it was open.
    pub owner: Option<String>,
    /// UDP close notices the kernel could not deliver since the run
    /// began; None when they are not read.
    pub closes_lost: Option<crate::model::CloseLoss>,
    /// Closed sockets not reported one by one since the run began
    /// (known from close notices past the bound between two reports).
    pub unreported: u64,
}

const CLOSE_RULE: &str = "-----------------------------------------";

/// How the socket is known, and its lifetime's bounds.
fn life_text(c: &crate::udp::UdpClosed) -> String {
    let (least, most) = c.lifetime_ms();
    let known = if c.notice_only {
        "known only from its close notice: it was bound and closed between two polls"
    } else if c.notice_seen {
        "seen by polls, ended by its close notice"
    } else {
        "seen by polls, gone at the next (no close notice)"
    };
    let life = match most {
        Some(most) if c.notice_only => format!("lived at most about {most} ms"),
        Some(most) => format!("lived {least} to about {most} ms"),
        None => format!("open when the run began, lived at least {least} ms in it"),
    };
    format!(
        "{life}, gone by {} ms into the run ({known})",
        c.closed_by_ms
    )
}

/// The drop count as printed: `~` when it is the last poll's, `-` when
/// unknown.
fn drops_text(c: &crate::udp::UdpClosed) -> String {
    match (c.drops, c.drops_from) {
        (Some(d), crate::udp::DropsFrom::CloseNotice) => d.to_string(),
        (Some(d), _) => format!("~{d}"),
        (None, _) => "-".to_string(),
    }
}

fn drops_from_text(from: crate::udp::DropsFrom) -> &'static str {
    match from {
        crate::udp::DropsFrom::CloseNotice => "final, from its close notice",
        crate::udp::DropsFrom::LastPoll => {
            "~: as last polled; a UDP close notice carries no drop count, so drops after that poll are not counted"
        }
        crate::udp::DropsFrom::Unknown => {
            "unknown: no poll saw it, and its close notice carries no drop count"
        }
    }
}

fn close_key(report: &Report<'_>, c: &crate::udp::UdpClosed) -> String {
    format!(
        "{} ({} {})",
        report.key_text(&GroupKey::Tuple(c.sample.key)),
        c.sample.proto.mib(),
        c.sample.state_name()
    )
}

fn lost_text(close: &UdpCloseReport) -> Option<String> {
    let lost = close.closes_lost.filter(|l| l.notices > 0)?;
    let at_least = if lost.exact { "" } else { "at least " };
    Some(format!(
        "UDP close notices lost: {at_least}{} since the start (sockets that opened and closed between two polls then are in no report)",
        lost.notices
    ))
}

fn unreported_text(close: &UdpCloseReport) -> Option<String> {
    (close.unreported > 0).then(|| {
        format!(
            "UDP closes not reported: {} since the start (more than {} known only from close notices between two reports)",
            close.unreported,
            crate::udp::NOTICE_ONLY_LIMIT
        )
    })
}

/// `--onclose --udp --precision`, said once before the closes: where
/// each UDP counter of a close comes from.
pub fn write_close_sources(
    sources: &[(String, String)],
    missing: &[String],
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(out, "precision: UDP counters from:")?;
    for (counters, source) in sources {
        writeln!(out, "\t{counters}: {source}")?;
    }
    for missing in missing {
        writeln!(out, "\tnot on this kernel: {missing}")?;
    }
    writeln!(out, "\tRcvDrops: sock_diag polls (SK_MEMINFO_DROPS)")
}

/// A UDP close in the seed's block form.
pub fn write_close_text(
    report: &Report<'_>,
    close: &UdpCloseReport,
    zeros: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let c = &close.closed;
    writeln!(out, "\n{CLOSE_RULE}")?;
    writeln!(out, "{}", close_key(report, c))?;
    if let Some(owner) = &close.owner {
        writeln!(out, "process: {owner}")?;
    }
    writeln!(out, "closed: {}", life_text(c))?;
    writeln!(out, "{CLOSE_RULE}")?;
    writeln!(out, "Udp:")?;
    writeln!(
        out,
        "\tRcvDrops = {}\t({})",
        drops_text(c),
        drops_from_text(c.drops_from)
    )?;
    if let Some(e) = &c.events {
        for (name, value) in event_fields(e) {
            if value != 0 || zeros || name.ends_with("Datagrams") {
                writeln!(out, "\t{name} = {value}")?;
            }
        }
    }
    if !c.notice_only {
        let opt = |v: Option<u32>| v.map_or("-".to_string(), |v| v.to_string());
        writeln!(
            out,
            "Gauges (last measured):\n\tRecvQ={}  SendQ={}  Rcvbuf={}  Sndbuf={}  Mem={}",
            c.sample.recv_queue,
            c.sample.send_queue,
            opt(c.sample.rcvbuf),
            opt(c.sample.sndbuf),
            c.sample.memory()
        )?;
    }
    for line in [lost_text(close), unreported_text(close)]
        .into_iter()
        .flatten()
    {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// A UDP close as one table row under its header.
pub fn write_close_table(
    report: &Report<'_>,
    close: &UdpCloseReport,
    out: &mut dyn Write,
) -> io::Result<()> {
    let c = &close.closed;
    let (least, most) = c.lifetime_ms();
    let lifetime = match most {
        Some(most) => format!("{least}-{most}ms"),
        None => format!(">={least}ms"),
    };
    let mut header = vec!["UDP closed", "Process", "Lifetime", "RcvDrops"];
    let mut row = vec![
        close_key(report, c),
        close.owner.clone().unwrap_or_else(|| "-".to_string()),
        lifetime,
        drops_text(c),
    ];
    if let Some(e) = &c.events {
        for (name, value) in event_fields(e) {
            header.push(name);
            row.push(value.to_string());
        }
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for (w, cell) in widths.iter_mut().zip(&row) {
        *w = (*w).max(cell.chars().count());
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == 0 {
                text.push_str(&format!("{cell:<w$}"));
            } else {
                text.push_str(&format!("  {cell:>w$}"));
            }
        }
        text.trim_end().to_string()
    };
    writeln!(out, "{}", line(header))?;
    writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    if c.drops_from != crate::udp::DropsFrom::CloseNotice {
        writeln!(out, "(RcvDrops {})", drops_from_text(c.drops_from))?;
    }
    for line in [lost_text(close), unreported_text(close)]
        .into_iter()
        .flatten()
    {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// A socket's event counts by name, in the order reports list them.
fn event_fields(e: &UdpEventCounts) -> [(&'static str, u64); 9] {
    [
        ("InDatagrams", e.in_datagrams),
        ("InBytes", e.in_bytes),
        ("OutDatagrams", e.out_datagrams),
        ("OutBytes", e.out_bytes),
        ("SendErrors", e.send_errors),
        ("RcvbufErrors", e.rcvbuf_errors),
        ("MemErrors", e.mem_errors),
        ("InCsumErrors", e.csum_errors),
        ("FilterDrops", e.filter_drops),
    ]
}

/// A UDP close as one JSON object on one line: `{"type":"udp_close",
/// "index":"tuple","start_ms","end_ms","start_time","end_time","polls",
/// "key":{laddr,lport,raddr,rport[,netns,netns_name]},"proto","state",
/// "process","known_from","first_seen_ms","last_seen_ms","born_after_ms",
/// "closed_by_ms","lifetime_ms":{"at_least","at_most"},"RcvDrops",
/// "RcvDrops_exact","RcvDrops_from","events","gauges","close_notices_lost",
/// "unreported_since_start","notices"}`.
pub fn write_close_json(
    report: &Report<'_>,
    close: &UdpCloseReport,
    out: &mut dyn Write,
) -> io::Result<()> {
    let c = &close.closed;
    let mut buf = String::from("{\"type\":\"udp_close\",\"index\":\"tuple\",");
    field(&mut buf, "start_ms", &report.start_ms.to_string());
    field(&mut buf, "end_ms", &report.end_ms.to_string());
    if let Some((start, end)) = report.clock_times() {
        field(&mut buf, "start_time", &quoted(&start));
        field(&mut buf, "end_time", &quoted(&end));
    }
    field(&mut buf, "polls", &report.polls.to_string());
    buf.push_str("\"key\":");
    key_json(report, &GroupKey::Tuple(c.sample.key), &mut buf);
    buf.push(',');
    field(&mut buf, "proto", &quoted(c.sample.proto.mib()));
    field(&mut buf, "state", &quoted(c.sample.state_name()));
    field(
        &mut buf,
        "process",
        &close.owner.as_deref().map_or("null".to_string(), quoted),
    );
    let known = if c.notice_only {
        "close notice"
    } else if c.notice_seen {
        "polls and close notice"
    } else {
        "polls"
    };
    field(&mut buf, "known_from", &quoted(known));
    field(&mut buf, "first_seen_ms", &opt_num(c.first_seen_ms));
    field(&mut buf, "last_seen_ms", &opt_num(c.last_seen_ms));
    field(&mut buf, "born_after_ms", &opt_num(c.born_after_ms));
    field(&mut buf, "closed_by_ms", &c.closed_by_ms.to_string());
    let (least, most) = c.lifetime_ms();
    field(
        &mut buf,
        "lifetime_ms",
        &format!("{{\"at_least\":{least},\"at_most\":{}}}", opt_num(most)),
    );
    field(&mut buf, "RcvDrops", &opt_num(c.drops));
    field(
        &mut buf,
        "RcvDrops_exact",
        &(c.drops_from == crate::udp::DropsFrom::CloseNotice).to_string(),
    );
    let from = match c.drops_from {
        crate::udp::DropsFrom::CloseNotice => "close notice",
        crate::udp::DropsFrom::LastPoll => "last poll",
        crate::udp::DropsFrom::Unknown => "unknown",
    };
    field(&mut buf, "RcvDrops_from", &quoted(from));
    field(
        &mut buf,
        "events",
        &c.events.map_or("null".into(), |e| events_json(&e)),
    );
    let gauges = if c.notice_only {
        "null".to_string()
    } else {
        format!(
            "{{\"recv_q\":{},\"send_q\":{},\"rcvbuf\":{},\"sndbuf\":{},\"mem\":{}}}",
            c.sample.recv_queue,
            c.sample.send_queue,
            opt_num(c.sample.rcvbuf),
            opt_num(c.sample.sndbuf),
            c.sample.memory()
        )
    };
    field(&mut buf, "gauges", &gauges);
    let lost = close.closes_lost.map_or("null".to_string(), |l| {
        format!(
            "{{\"since_start\":{},\"buffer_overflows_since_start\":{},\"exact\":{}}}",
            l.notices, l.overflows, l.exact
        )
    });
    field(&mut buf, "close_notices_lost", &lost);
    field(
        &mut buf,
        "unreported_since_start",
        &close.unreported.to_string(),
    );
    let notices: Vec<String> = report.notices.iter().map(|n| quoted(n)).collect();
    buf.push_str(&format!("\"notices\":[{}]}}\n", notices.join(",")));
    out.write_all(buf.as_bytes())
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

    fn udp_close_report(notice_only: bool) -> Report<'static> {
        let key = crate::model::SocketKey::new(
            "10.0.0.1".parse().unwrap(),
            40000,
            "10.0.0.53".parse().unwrap(),
            53,
        );
        let closed = crate::udp::UdpClosed {
            sample: crate::model::udp::UdpSample {
                key,
                proto: crate::model::udp::UdpProto::Udp,
                cookie: 9,
                connected: true,
                inode: 77,
                uid: 0,
                recv_queue: 0,
                send_queue: 0,
                rcvbuf: Some(4608),
                sndbuf: Some(9216),
                drops: (!notice_only).then_some(12),
            },
            drops: (!notice_only).then_some(12),
            drops_from: if notice_only {
                crate::udp::DropsFrom::Unknown
            } else {
                crate::udp::DropsFrom::LastPoll
            },
            events: Some(UdpEventCounts {
                in_datagrams: 1,
                in_bytes: 48,
                out_datagrams: 1,
                out_bytes: 20,
                rcvbuf_errors: 12,
                ..UdpEventCounts::default()
            }),
            first_seen_ms: (!notice_only).then_some(1000),
            last_seen_ms: (!notice_only).then_some(2000),
            born_after_ms: Some(0),
            closed_by_ms: 3000,
            notice_only,
            notice_seen: true,
        };
        let mut report = Report::new(
            ReportKind::UdpClose,
            Index::Tuple,
            (1000, 3000),
            4,
            Vec::new(),
        );
        report.udp_close = Some(UdpCloseReport {
            closed,
            owner: (!notice_only).then(|| "dig[812]".to_string()),
            closes_lost: Some(crate::model::CloseLoss {
                notices: 3,
                overflows: 1,
                exact: true,
            }),
            unreported: 0,
        });
        report
    }

    fn rendered_close(report: &Report<'_>, format: Format) -> String {
        let mut out = Vec::new();
        let options = RenderOptions {
            format,
            ..Default::default()
        };
        render(report, options, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_udp_close_says_its_tuple_owner_life_drops_and_events_in_each_format() {
        let report = udp_close_report(false);
        let text = rendered_close(&report, Format::Text);
        assert!(
            text.contains("10.0.0.1:40000 <-> 10.0.0.53:53 (Udp ESTAB)"),
            "{text}"
        );
        assert!(text.contains("process: dig[812]"), "{text}");
        assert!(text.contains("lived 1000 to about 3000 ms"), "{text}");
        assert!(text.contains("RcvDrops = ~12"), "{text}");
        assert!(text.contains("\tInBytes = 48\n"), "{text}");
        assert!(text.contains("\tRcvbufErrors = 12\n"), "{text}");
        assert!(!text.contains("MemErrors"), "zeros are left out: {text}");
        assert!(
            text.contains("UDP close notices lost: 3 since the start"),
            "{text}"
        );
        assert!(!text.to_lowercase().contains("tcp"), "{text}");
        let table = rendered_close(&report, Format::Table);
        let mut lines = table.lines();
        let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(header[..3], ["UDP", "closed", "Process"], "{table}");
        let row = lines.next().unwrap();
        assert!(
            row.contains("dig[812]") && row.contains("1000-3000ms"),
            "{table}"
        );
        assert!(row.contains("~12"), "{table}");
        let json = rendered_close(&report, Format::Json);
        assert!(json.ends_with("}\n") && json.lines().count() == 1, "{json}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["type"], "udp_close");
        assert_eq!(
            (v["key"]["lport"].as_u64(), v["key"]["rport"].as_u64()),
            (Some(40000), Some(53))
        );
        assert_eq!(
            (v["RcvDrops"].as_u64(), v["RcvDrops_exact"].as_bool()),
            (Some(12), Some(false))
        );
        assert_eq!(v["RcvDrops_from"], "last poll");
        assert_eq!(v["lifetime_ms"]["at_least"], 1000);
        assert_eq!(v["events"]["OutBytes"], 20);
        assert_eq!(v["process"], "dig[812]");
        assert_eq!(v["close_notices_lost"]["since_start"], 3);
    }

    #[test]
    fn a_udp_close_known_only_from_its_notice_says_its_drops_are_unknown() {
        let report = udp_close_report(true);
        let text = rendered_close(&report, Format::Text);
        assert!(text.contains("RcvDrops = -"), "{text}");
        assert!(text.contains("lived at most about 3000 ms"), "{text}");
        assert!(!text.contains("Gauges"), "{text}");
        let v: serde_json::Value =
            serde_json::from_str(&rendered_close(&report, Format::Json)).unwrap();
        assert!(v["RcvDrops"].is_null() && v["gauges"].is_null(), "{v}");
        assert_eq!(
            (v["known_from"].as_str(), v["RcvDrops_from"].as_str()),
            (Some("close notice"), Some("unknown"))
        );
        assert!(v["process"].is_null());
    }
}
