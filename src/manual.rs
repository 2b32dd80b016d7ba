//! The manual page (`--generate man`): clap_mangen renders the title,
//! NAME, SYNOPSIS and OPTIONS from the flags' own help, and this module
//! writes the sections around them: what the output holds, the counters
//! and how exact each is, the live view's keys, the exporter's metrics,
//! exit status, privileges, files and examples. Lists that the code also
//! knows (counters, the `~` legend, metric names) are taken from it.

use clap_mangen::Man;
use roff::{bold, italic, roman, Roff};

use crate::counters::{Counter, Section};

/// The manual page of `command`, in roff.
pub fn render(command: clap::Command) -> String {
    let man = Man::new(command);
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = man.render_title(&mut out);
    let _ = man.render_name_section(&mut out);
    let _ = man.render_synopsis_section(&mut out);
    out.extend(description().render().into_bytes());
    let _ = man.render_options_section(&mut out);
    out.extend(after_options().render().into_bytes());
    let _ = man.render_version_section(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The section headings, in order, as the page gives them.
pub const SECTIONS: [&str; 16] = [
    "NAME",
    "SYNOPSIS",
    "DESCRIPTION",
    "OPTIONS",
    "FILTERS",
    "OUTPUT",
    "COUNTERS",
    "LIVE VIEW",
    "METRICS",
    "PRECISION MODE",
    "PRIVILEGES",
    "EXIT STATUS",
    "FILES",
    "EXAMPLES",
    "SEE ALSO",
    "VERSION",
];

/// Exit status and when: main.rs maps outcomes to these codes.
pub const EXIT_STATUS: [(&str, &str); 3] = [
    (
        "0",
        "Done: the reports were printed (at --timeout, --count, SIGINT or SIGTERM, \
         or on quitting the live view), --help, --version or --generate; also when \
         the reader of the output went away (a closed pipe).",
    ),
    (
        "1",
        "A failure while running: the output could not be written (a full disk), \
         --record could not write its directory, sockets could not be read at all.",
    ),
    (
        "2",
        "Bad usage, or a start the run was asked for and cannot have: a malformed or \
         contradictory option, filter or duration; --netns naming a namespace that \
         does not exist or cannot be entered (without CAP_SYS_ADMIN); an explicit \
         --precision tracepoint or kprobe that the kernel or the privileges cannot \
         give; a --listen address that cannot be bound. One line on stderr names \
         the bad part.",
    ),
];

/// The live view's keys, as its help (`?`) lists them (the arrows by
/// name: the page stays ASCII for roff).
pub const LIVE_KEYS: [(&str, &str); 9] = [
    (
        "q, Esc, Ctrl-C",
        "quit; the terminal is restored and the exit status is 0",
    ),
    (
        "Up Down j k PgUp PgDn",
        "select a group: its send and receive rates over the last windows are charted below the table",
    ),
    (
        "s",
        "sort by the next column: send, recv, segs/s, retrans, opens/s, resets/s (with -u: drops/s; with -u alone, drops/s only)",
    ),
    (
        "i",
        "group by the next index: tuple, lport, rport, laddr, raddr, process, netns, container (from the next window)",
    ),
    (
        "p",
        "group by process; pressed again, back to the index before",
    ),
    (
        "/",
        "filter, in the command line's syntax (*:443-*): the prompt opens empty, or with the filter in force selected; Ctrl-U clears it, Ctrl-W deletes a word; Enter applies, an empty filter lifts it, a bad one is said and changes nothing",
    ),
    ("space", "pause: the view stays, collection goes on"),
    (
        "n",
        "the notes raised while the view runs (the latest 64); the newest also shows on a line above the keys as it comes",
    ),
    ("?", "this help (Esc or ? closes it)"),
];

/// Each counter: where it comes from and what it counts. A counter added
/// to the code without a line here does not compile.
fn counter_doc(counter: Counter) -> &'static str {
    match counter {
        Counter::BytesSent => {
            "Bytes sent, retransmitted ones included (tcpi_bytes_sent, Linux 4.19+; \
             on older kernels the bytes acknowledged, marked ~)."
        }
        Counter::BytesAcked => {
            "Bytes the peer acknowledged (tcpi_bytes_acked; counts the SYN, as RFC 4898 does)."
        }
        Counter::BytesReceived => {
            "Bytes received (tcpi_bytes_received); the peer's FIN is not a data byte."
        }
        Counter::BytesRetrans => "Bytes sent again (tcpi_bytes_retrans).",
        Counter::DataSegsOut => "Segments sent that carried data (tcpi_data_segs_out).",
        Counter::DataSegsIn => "Segments received that carried data (tcpi_data_segs_in).",
        Counter::MessagesSent => {
            "Send calls that moved data (sock:sock_send_length, else kprobes on tcp_sendmsg)."
        }
        Counter::MessagesReceived => {
            "Receive calls that moved data (sock:sock_recv_length, else kprobes on tcp_recvmsg)."
        }
        Counter::MessageBytesSent => "The bytes those send calls moved.",
        Counter::MessageBytesReceived => "The bytes those receive calls moved.",
        Counter::Drops => {
            "Packets the kernel dropped, with a reason, whose receiving socket is this one \
             (skb:kfree_skb, Linux 5.17+); the report's header gives TCP's drops by reason."
        }
        Counter::ActiveOpens => {
            "Connections this side opened. From a socket appearing or from its close notice; \
             from state-change events with --precision. Marked ~ when guessed from a socket's \
             appearance rather than seen."
        }
        Counter::PassiveOpens => {
            "Connections accepted: a new socket on the address and port of a listener seen \
             in the run. Exactness as ActiveOpens."
        }
        Counter::AttemptFails => {
            "Connection attempts that failed (SYN_SENT or SYN_RECV to CLOSE, as the kernel \
             counts them). Marked ~ when inferred from a socket's end."
        }
        Counter::EstabResets => {
            "Connections reset from ESTABLISHED or CLOSE_WAIT. Marked ~ when inferred from a \
             socket's end (its final counters, or its vanishing without a TIME_WAIT)."
        }
        Counter::OutRsts => "Resets sent (tcp:tcp_send_reset).",
        Counter::InRsts => "Resets received (tcp:tcp_receive_reset).",
        Counter::CurrEstab => {
            "Sockets of the group in ESTABLISHED or CLOSE_WAIT at the report (a gauge)."
        }
        Counter::InSegs => {
            "Segments received (tcpi_segs_in). Always ~: the namespace's counter counts a \
             GRO or loopback super-packet once, the socket each segment in it."
        }
        Counter::OutSegs => {
            "Segments sent, without retransmissions, as the MIB counts them \
             (tcpi_segs_out less tcpi_total_retrans)."
        }
        Counter::RetransSegs => "Segments retransmitted (tcpi_total_retrans).",
        Counter::TCPTimeouts => "Retransmission timeouts (tcpi_total_rto, Linux 6.7+).",
        Counter::TCPSynRetrans => {
            "SYN-ACKs sent again by a listener and SYNs sent again by a connect \
             (tcp:tcp_retransmit_synack, tcp:tcp_retransmit_skb)."
        }
        Counter::TCPDSACKRecv => "D-SACKs received (tcpi_dsack_dups). Always ~.",
        Counter::TCPReorderSeen => "Reordering events seen (tcpi_reord_seen).",
        Counter::TCPOFOQueue => "Segments received out of order (tcpi_rcv_ooopack). Always ~.",
        Counter::TCPDelivered => "Segments delivered (tcpi_delivered).",
        Counter::TCPDeliveredCE => "Segments delivered with a CE mark (tcpi_delivered_ce).",
        Counter::ListenDrops | Counter::ListenOverflows => {
            "Per listener: the namespace's count over the window, given to the listener \
             whose own drop count moved; marked ~ when several share it. --once: the \
             listener's drop count alone."
        }
        Counter::DelayedACKs => {
            "ACKs sent by the socket's delayed-ACK timer (timer:timer_expire_entry on \
             tcp_delack_timer, with the packet it queued). Always ~: an ACK deferred to \
             the socket's owner is missed, a compressed SACK sent by the timer counts."
        }
    }
}

fn section(roff: &mut Roff, title: &str) {
    roff.control("SH", [title]);
}

fn subsection(roff: &mut Roff, title: &str) {
    roff.control("SS", [title]);
}

fn para(roff: &mut Roff, text: &str) {
    roff.control("PP", []);
    roff.text([roman(text)]);
}

/// A tagged paragraph: `tag` in bold, `text` indented under it.
fn item(roff: &mut Roff, tag: &str, text: &str) {
    roff.control("TP", []);
    roff.text([bold(tag)]);
    roff.text([roman(text)]);
}

/// Lines shown as typed, not filled.
fn literal(roff: &mut Roff, lines: &[&str]) {
    roff.control("PP", []);
    roff.control("RS", ["4"]);
    roff.control("nf", []);
    for line in lines {
        roff.text([roman(*line)]);
    }
    roff.control("fi", []);
    roff.control("RE", []);
}

fn description() -> Roff {
    let mut roff = Roff::new();
    // Option names and paths read badly broken across lines or stretched.
    roff.control("nh", []);
    roff.control("ad", ["l"]);
    section(&mut roff, "DESCRIPTION");
    para(
        &mut roff,
        "tcpipstat tells, for each TCP socket or each group of sockets (by local or remote \
         address or port, network namespace, container or process), how many bytes, \
         segments, retransmits, opens, failed attempts and resets happened over a window. \
         It polls every socket through netlink sock_diag (tcp_info and friends), diffs the \
         snapshots and attributes the deltas; the kernel's close notices give each \
         socket's final counters, so connections that open and close between two polls \
         count too. It needs no eBPF, BTF, kernel debuginfo or kernel module.",
    );
    para(
        &mut roff,
        "What it reports depends on how it is run: without --timeout or --interval it \
         collects until SIGINT or SIGTERM (Ctrl-C) and then prints one report; --timeout \
         DUR prints it after DUR; --interval DUR prints a report every DUR (on a terminal, \
         without --format, the live view instead); --once prints one snapshot of every \
         socket's counters since its creation; --onclose prints each socket's lifetime \
         report as it closes (with -u, each UDP socket's too: tuple, owner, lifetime \
         bounds, receive drops as last polled, datagrams and bytes with --precision); \
         --listen serves the totals as Prometheus metrics. --system \
         sets the sockets' counts against the namespace's own MIB counters \
         (/proc/net/snmp, netstat, snmp6) and shows what no socket accounts for. \
         --precision adds kernel tracepoints (or kprobes) read through perf ring buffers, \
         still no eBPF, for what counters cannot tell: resets sent and received, state \
         histories, send and receive calls, drops by reason, delayed ACKs.",
    );
    para(
        &mut roff,
        "The options of the original SystemTap script are taken in its spelling too: \
         index=raddr, timeout=60, nozeros=0, onclose=1.",
    );
    roff
}

fn after_options() -> Roff {
    let mut roff = Roff::new();
    filters(&mut roff);
    output(&mut roff);
    counters(&mut roff);
    live_view(&mut roff);
    metrics(&mut roff);
    precision(&mut roff);
    privileges(&mut roff);
    exit_status(&mut roff);
    files(&mut roff);
    examples(&mut roff);
    see_also(&mut roff);
    roff
}

fn filters(roff: &mut Roff) {
    section(roff, "FILTERS");
    para(
        roff,
        "A FILTER is LOCAL-REMOTE, each side * (anything) or ADDR:PORT. ADDR is *, an IPv4 \
         address whose octets may be * (9.*.*.*), an IPv4 prefix (10.0.0.0/8), or an IPv6 \
         address or prefix in brackets ([::1], [2001:db8::/32]); PORT is * or 0 to 65535. \
         Several filters are OR-ed. They are compiled to INET_DIAG bytecode, so the kernel \
         skips other sockets, and applied again in user space, so results never depend on \
         the kernel. A bad filter is one line naming its bad part.",
    );
    literal(
        roff,
        &[
            "*:443-*                  local port 443",
            "*-10.0.0.0/8:*           remote addresses in 10/8",
            "*.*.*.*:80-*.*.*.*:*     the original script's spelling",
            "[::1]:*-[2001:db8::/32]:443",
        ],
    );
    para(
        roff,
        "DUR is 500ms, 1s, 2m or a number of seconds (at most 366 days).",
    );
}

fn output(roff: &mut Roff) {
    section(roff, "OUTPUT");
    para(
        roff,
        "Reports go to stdout, notices (one line each, \"tcpipstat: note: ...\") to stderr \
         and into the report they concern. On a terminal, runs that print reports keep a \
         one-line status on stderr (elapsed, polls, sockets), erased before each report.",
    );
    item(
        roff,
        "text",
        "The original script's blocks. A heading gives the window on the wall clock (RFC \
         3339, UTC) and the polls in it, then how many close notices were lost. Each group \
         follows, busiest first: its key (laddr:lport <-> raddr:rport for tuples), \"sockets: \
         N (M closed)\", then counters by section (Socket, Tcp, TcpExt) as \"Name = value  \
         (rate/s)\", and for tuples a Gauges line. A total of the groups ends the report; \
         --system adds the namespace's deltas and what the sockets do not account for.",
    );
    item(
        roff,
        "table",
        "One row per group, a column per counter. Columns, once shown, stay for the whole \
         run; on a terminal those past its width are left out, saying how many.",
    );
    item(
        roff,
        "json",
        "One object per report, one per line. Keys: type (window, snapshot, close, or \
         udp_close for a UDP socket's --onclose report, whose keys are in the guide), \
         index, start_ms and end_ms (since the run began), start_time and end_time (RFC \
         3339), polls, groups (each with key, sockets, closed, counters, approx and \
         gauges), totals, closes_lost and close_notices_lost, approx_means, notices; \
         system (namespaces, deltas, gauges, unattributed) with --system; precision with \
         --precision.",
    );
    para(
        roff,
        "Counters are deltas over the window; --once and --onclose give them since the \
         socket's creation. Zero counters and groups where nothing happened are left out \
         unless --zeros. A counter the kernel cannot give (an older kernel, the /proc \
         fallback) is left out, never printed as 0. Rates are per second over the window.",
    );
    para(
        roff,
        "Gauges are current values, shown for tuples and in --once: state; receive and send \
         queue (for listeners, accept queue and its limit); congestion control; rtt_us, \
         rttvar_us, min_rtt_us, rto_us; mss, cwnd, ssthresh; snd_wnd, rcv_wnd; unacked, \
         lost, retrans_out, notsent_bytes; delivery_rate and pacing_rate (bytes/s); receive \
         and send memory. A socket that closed shows them as of the last poll that saw it.",
    );
}

fn counters(roff: &mut Roff) {
    section(roff, "COUNTERS");
    para(
        roff,
        "Counter names are the kernel's MIB names (and the JSON keys). A value is exact \
         unless marked ~ (in JSON, listed under the group's approx):",
    );
    roff.control("RS", ["4"]);
    roff.text([roman(crate::report::APPROX_LEGEND)]);
    roff.control("RE", []);
    para(
        roff,
        "Counters marked (precision) come only from kernel events and need --precision. \
         The original script's Ip InReceives and OutRequests are not per socket (a socket \
         counts segments, the MIB IP packets): the namespace's are in --system.",
    );
    for part in Section::ALL {
        subsection(roff, part.name());
        for counter in Counter::ALL.iter().filter(|c| c.section() == part) {
            let tag = if counter.is_event_only() {
                format!("{} (precision)", counter.name())
            } else {
                counter.name().to_string()
            };
            item(roff, &tag, counter_doc(*counter));
        }
    }
}

fn live_view(roff: &mut Roff) {
    section(roff, "LIVE VIEW");
    para(
        roff,
        "--interval on a terminal, without --format, opens a full-screen view: a header \
         with the clock, the window, the sockets tracked, precision mode's source and \
         losses and the totals; one row per group, busiest first, with rates per second \
         over the last window; below, the selected group's rates over the last windows. \
         Rates: bytes (B, k = 1000) per second; retrans is RetransSegs per 100 OutSegs; \
         opens/s ActiveOpens + PassiveOpens; resets/s EstabResets + OutRsts + InRsts. \
         Piped, or with --format, the reports are printed instead. Keys:",
    );
    for (keys, does) in LIVE_KEYS {
        item(roff, keys, does);
    }
}

fn metrics(roff: &mut Roff) {
    section(roff, "METRICS");
    para(
        roff,
        "--listen ADDR:PORT serves GET /metrics (the Prometheus text format, or OpenMetrics \
         when the scraper's Accept asks for it) and GET /healthz. Every poll is a window \
         added to totals kept since the start, so each counter series only goes up; a \
         scrape never triggers a dump. Labels are the index's (laddr, lport, raddr, rport, \
         netns, container, process; namespace, pod and container with --index pod; tuples \
         add netns with several namespaces).",
    );
    item(
        roff,
        "counters",
        "One family per counter, tcpipstat_ and its name in snake case and _total; a \
         series appears once its counter moved:",
    );
    let families: Vec<String> = Counter::ALL
        .iter()
        .map(|c| format!("tcpipstat_{}_total", crate::export::snake_case(c.name())))
        .collect();
    let lines: Vec<&str> = families.iter().map(String::as_str).collect();
    literal(roff, &lines);
    item(
        roff,
        "gauges",
        "Of the latest poll: tcpipstat_sockets and tcpipstat_curr_estab per group; \
         tcpipstat_rtt_seconds, tcpipstat_cwnd_segments and (--precision) \
         tcpipstat_handshake_seconds per tuple; \
         tcpipstat_sockets_by_state{state}.",
    );
    item(
        roff,
        "--system",
        "tcpipstat_namespace_total{counter} (the namespace's MIB, summed over the windows) \
         and tcpipstat_unattributed{counter} (the latest window's residual, a gauge that \
         can be negative).",
    );
    item(
        roff,
        "the exporter itself",
        "tcpipstat_polls_total, tcpipstat_poll_duration_seconds, tcpipstat_sockets_tracked, \
         tcpipstat_events_lost_total, tcpipstat_events_undelivered_total, \
         tcpipstat_close_notices_lost_total, tcpipstat_scrapes_total, tcpipstat_series, \
         tcpipstat_series_folded_total, tcpipstat_series_expired_total, \
         tcpipstat_http_connections_dropped_total, tcpipstat_http_requests_rejected_total.",
    );
    para(
        roff,
        "At most --max-series groups are kept one by one; groups past it are summed into \
         one series whose labels say other. A series no poll touched for --series-expiry \
         is forgotten, and starts again from 0 if its group comes back.",
    );
}

fn precision(roff: &mut Roff) {
    section(roff, "PRECISION MODE");
    para(
        roff,
        "--precision opens kernel tracepoints with perf_event_open, one ring buffer per CPU \
         (--ring-pages), and kprobes where a tracepoint is missing; never eBPF. Each event's \
         layout is read from its tracefs format file at run time. State changes then come \
         from events (exact opens, fails, resets, and each socket's state history); resets \
         sent and received, messages, drops by reason and delayed ACKs are added. Every \
         report says which source filled each counter and how many events were lost (a \
         full ring: raise --ring-pages) or counted by the kernel but never delivered.",
    );
    para(
        roff,
        "auto (the bare flag) falls back to plain polling, saying why in one line, when \
         neither tracepoints nor kprobes can be had; tracepoint and kprobe exit 2 instead. \
         tracefs is mounted at /sys/kernel/tracing when it is not (and unmounted at the \
         end); the run's ftrace instance and kprobes are removed at exit.",
    );
}

fn privileges(roff: &mut Roff) {
    section(roff, "PRIVILEGES");
    para(
        roff,
        "Nothing needs root for the namespace tcpipstat runs in: its socket dump (every \
         socket's counters, whoever owns it), the close notices and /proc/net are open to \
         any user.",
    );
    item(
        roff,
        "--netns",
        "Entering another namespace needs CAP_SYS_ADMIN: without it the run exits 2 saying so.",
    );
    item(
        roff,
        "--all-netns",
        "Namespaces that cannot be entered or found are named once; the rest are sampled.",
    );
    item(
        roff,
        "-p, --index process",
        "Other users' processes need root (CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH): their \
         sockets show ? and a notice says why (permission, or too many open files).",
    );
    item(
        roff,
        "--precision",
        "Needs root, or CAP_PERFMON (CAP_SYS_ADMIN) with access to tracefs, or \
         kernel.perf_event_paranoid=-1 for the events; auto without them runs as plain \
         polling and says what is missing. Delayed ACKs need BTF (/sys/kernel/btf/vmlinux).",
    );
    item(
        roff,
        "--close-buffer",
        "Above net.core.rmem_max needs CAP_NET_ADMIN (SO_RCVBUFFORCE); else the buffer is \
         capped there.",
    );
    para(
        roff,
        "Where sock_diag is unavailable (no tcp_diag module, a sandbox), tcpipstat says so \
         and reads /proc/net/tcp and tcp6: sockets, states and the counters derived from \
         them still work; bytes, segments, retransmits, TcpExt and gauges do not.",
    );
}

fn exit_status(roff: &mut Roff) {
    section(roff, "EXIT STATUS");
    for (code, when) in EXIT_STATUS {
        item(roff, code, when);
    }
}

fn files(roff: &mut Roff) {
    section(roff, "FILES");
    for (path, what) in [
        (
            "/run/netns/NAME",
            "Network namespaces by name, as ip-netns(8) makes them (--netns NAME, --all-netns, labels).",
        ),
        (
            "/proc/net/snmp, /proc/net/netstat, /proc/net/snmp6",
            "The namespace's MIB counters (--system, and the window's resets).",
        ),
        (
            "/proc/net/tcp, /proc/net/tcp6",
            "Sockets, where sock_diag is unavailable or with --source proc.",
        ),
        (
            "/proc/PID/fd, /proc/PID/comm",
            "Sockets' owners and their names (-p, --index process).",
        ),
        (
            "/proc/PID/ns/net, /proc/PID/cgroup",
            "Namespaces of processes and their containers (--netns PID, --all-netns, --index container).",
        ),
        (
            "/proc/sys/net/ipv4/tcp_syn_retries",
            "How often a connect's SYN is sent before the kernel gives up (failed attempts).",
        ),
        (
            "/sys/kernel/tracing",
            "tracefs (--precision): event formats, kprobe_events, and the run's instance instances/tcpipstat-PID.",
        ),
        (
            "/sys/kernel/btf/vmlinux, /proc/kallsyms",
            "Where the delayed-ACK timer lies in a socket, and its function's address (--precision).",
        ),
        (
            "DIR/poll-NNNN.nl",
            "Each poll's raw sock_diag datagrams (--record DIR).",
        ),
    ] {
        item(roff, path, what);
    }
}

fn examples(roff: &mut Roff) {
    section(roff, "EXAMPLES");
    for (command, what) in [
        (
            "tcpipstat --interval 1s",
            "Every second, what each connection did (the live view on a terminal).",
        ),
        (
            "tcpipstat --timeout 60",
            "Every active socket over the next minute.",
        ),
        (
            "tcpipstat --index raddr '*:80-*'",
            "Who talks to the web server, until Ctrl-C.",
        ),
        (
            "tcpipstat --once '*:443-*'",
            "Every socket of local port 443, since its creation.",
        ),
        (
            "tcpipstat --timeout 60 --index lport --system",
            "A minute per local port, against the namespace's MIB.",
        ),
        (
            "tcpipstat --interval 5s --index lport --format table",
            "Which services are busy, every 5 s, as a table.",
        ),
        (
            "tcpipstat --onclose '*:8080-*'",
            "Each connection to :8080 as it closes.",
        ),
        (
            "tcpipstat --index process --timeout 30",
            "Which program did the talking.",
        ),
        (
            "sudo tcpipstat --precision --timeout 10s",
            "Exact opens, closes and resets from kernel tracepoints.",
        ),
        (
            "sudo tcpipstat --all-netns --index container --interval 2s",
            "Per container, every 2 s.",
        ),
        (
            "sudo tcpipstat --netns web1 -p --once",
            "One named namespace, with processes.",
        ),
        (
            "tcpipstat --listen :9977 --index lport",
            "Prometheus metrics per local port on 127.0.0.1:9977.",
        ),
        ("tcpipstat --generate man | man -l -", "This manual."),
    ] {
        item(roff, command, what);
    }
}

fn see_also(roff: &mut Roff) {
    section(roff, "SEE ALSO");
    roff.text([
        bold("ss"),
        roman("(8), "),
        bold("nstat"),
        roman("(8), "),
        bold("netstat"),
        roman("(8), "),
        bold("ip-netns"),
        roman("(8), "),
        bold("perf_event_open"),
        roman("(2), "),
        bold("tcp"),
        roman("(7). The documents under "),
        italic("docs/"),
        roman(
            " in tcpipstat's source: the guide, the counters and how each is attributed, \
             precision mode, the exporter, performance.",
        ),
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> String {
        use clap::CommandFactory;
        render(crate::cli::Args::command())
    }

    #[test]
    fn every_section_heading_is_in_the_page_in_order() {
        let page = page();
        let headings: Vec<&str> = page
            .lines()
            .filter_map(|l| l.strip_prefix(".SH "))
            .map(|h| h.trim_matches('"'))
            .collect();
        assert_eq!(headings, SECTIONS, "{page}");
    }

    #[test]
    fn the_page_is_ascii_for_any_roff() {
        let page = page();
        let odd: Vec<&str> = page.lines().filter(|l| !l.is_ascii()).collect();
        assert!(odd.is_empty(), "{odd:?}");
    }

    #[test]
    fn description_is_not_the_name_line() {
        let page = page();
        let name = page
            .split(".SH NAME\n")
            .nth(1)
            .unwrap()
            .lines()
            .next()
            .unwrap();
        let description = page.split(".SH DESCRIPTION\n").nth(1).unwrap();
        let about = name.split(" \\- ").nth(1).unwrap();
        assert!(!description.contains(about), "{about}");
    }

    #[test]
    fn every_counter_and_its_metric_family_is_documented() {
        let page = page();
        for counter in Counter::ALL {
            assert!(
                page.contains(&format!("\\fB{}", counter.name())),
                "{counter:?}"
            );
            let family = format!(
                "tcpipstat_{}_total",
                crate::export::snake_case(counter.name())
            );
            assert!(page.contains(&family), "{family}");
        }
    }

    /// The keys the live view's help lists: the text before two spaces on
    /// each line of its popup, with the first word of what it does.
    fn live_help_keys() -> Vec<(String, String)> {
        use ratatui::backend::TestBackend;
        use ratatui::crossterm::event::{KeyCode, KeyEvent};
        use ratatui::Terminal;
        let mut view = crate::live::view::ViewState::new(crate::aggregate::Index::Lport);
        view.on_key(KeyEvent::from(KeyCode::Char('?')));
        let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
        terminal.draw(|f| view.draw(f)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        let mut keys = Vec::new();
        for y in 0..buffer.area.height {
            let line: String = (0..buffer.area.width)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect();
            let Some(inside) = line.split('│').nth(1) else {
                continue;
            };
            let Some((key, does)) = inside.trim().split_once("  ") else {
                continue;
            };
            let first_word = does
                .split_whitespace()
                .next()
                .unwrap_or("")
                .trim_end_matches(|c: char| !c.is_alphanumeric())
                .to_string();
            let key = key.trim().replace('↑', "Up").replace('↓', "Down");
            keys.push((key, first_word));
        }
        keys
    }

    #[test]
    fn the_manual_lists_the_keys_the_live_view_help_lists() {
        let keys = live_help_keys();
        assert!(keys.len() >= 5, "{keys:?}");
        for (key, first_word) in &keys {
            let listed = LIVE_KEYS
                .iter()
                .find(|(k, _)| k == key)
                .unwrap_or_else(|| panic!("key {key:?} is not in the manual"));
            assert!(
                listed.1.starts_with(first_word.as_str()),
                "{key:?}: the view says {first_word:?}…, the manual {:?}",
                listed.1
            );
        }
        assert_eq!(keys.len(), LIVE_KEYS.len(), "{keys:?}");
    }
}
