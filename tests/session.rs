//! The session, driven without a kernel: recorded dumps (testdata/replay)
//! and built snapshots through a replay source, built kernel events through
//! a replay feed. Window reports, --onclose reports, --system residuals and
//! precision sections are checked here as an ordinary user can run them.

use std::path::Path;

use tcpipstat::aggregate::GroupKey;
use tcpipstat::cli::{self, CliOutcome};
use tcpipstat::config::Config;
use tcpipstat::counters::Counter;
use tcpipstat::model::event::{EventTuple, Probe, Timed, TraceEvent};
use tcpipstat::model::tcp_info::TcpInfo;
use tcpipstat::model::{CloseLoss, Snapshot, SocketKey, SocketSample, SocketSource, TcpState};
use tcpipstat::report::{self, Report};
use tcpipstat::session::feed::{ProbeSummary, ReplayFeed};
use tcpipstat::session::Session;
use tcpipstat::source::procfs::SystemCounters;
use tcpipstat::source::replay::ReplaySource;

fn config(args: &[&str]) -> Config {
    let argv = std::iter::once("tcpipstat").chain(args.iter().copied());
    match cli::parse(argv.map(String::from)) {
        CliOutcome::Run(config) => *config,
        _ => panic!("bad test arguments {args:?}"),
    }
}

fn session(args: &[&str], source: ReplaySource) -> Session {
    Session::new(&config(args), Box::new(source), None)
}

fn counter(report: &Report<'_>, key: &GroupKey, counter: Counter) -> u64 {
    report
        .groups
        .iter()
        .find(|g| g.key == *key)
        .unwrap_or_else(|| panic!("no group {key}"))
        .counters
        .value(counter)
}

fn rendered(options: report::RenderOptions, report: &Report<'_>) -> String {
    let mut out = Vec::new();
    report::render(report, options, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn lo(lport: u16, rport: u16) -> SocketKey {
    let lo = "127.0.0.1".parse().unwrap();
    SocketKey::new(lo, lport, lo, rport)
}

/// tcp_info (4.19+ layout) with the counters these tests use.
fn info(bytes_sent: u64, bytes_received: u64, segs_out: u32, segs_in: u32) -> TcpInfo {
    let mut raw = vec![0u8; 232];
    raw[0] = TcpState::Established as u8;
    raw[120..128].copy_from_slice(&bytes_sent.to_ne_bytes()); // bytes_acked
    raw[128..136].copy_from_slice(&bytes_received.to_ne_bytes());
    raw[136..140].copy_from_slice(&segs_out.to_ne_bytes());
    raw[140..144].copy_from_slice(&segs_in.to_ne_bytes());
    raw[200..208].copy_from_slice(&bytes_sent.to_ne_bytes());
    TcpInfo::from_bytes(&raw).unwrap()
}

fn socket(cookie: u64, key: SocketKey, state: TcpState, info: Option<TcpInfo>) -> SocketSample {
    let mut sample = SocketSample::bare(key, cookie, state);
    sample.tcp_info = info;
    sample
}

fn listener() -> SocketSample {
    let any = "0.0.0.0".parse().unwrap();
    socket(1, SocketKey::new(any, 80, any, 0), TcpState::Listen, None)
}

fn snapshot(ms: u64, sockets: Vec<SocketSample>) -> Snapshot {
    Snapshot::new(ms, SocketSource::SockDiag, sockets)
}

#[test]
fn a_recorded_run_gives_the_window_report_the_live_run_printed() {
    let source = ReplaySource::from_dir(Path::new("testdata/replay"), 400).unwrap();
    let polls = 5;
    let mut session = session(&["--timeout", "2", "--format", "json"], source);
    for _ in 0..polls {
        session.poll().unwrap();
    }
    let options = session.render_options();
    let report = session.window_report();
    let tuple = |l, r| GroupKey::Tuple(lo(l, r));
    assert_eq!(report.polls, polls);
    assert_eq!(
        counter(&report, &tuple(40001, 5001), Counter::BytesSent),
        5000
    );
    assert_eq!(
        counter(&report, &tuple(40001, 5001), Counter::BytesReceived),
        700
    );
    assert_eq!(
        counter(&report, &tuple(5001, 40001), Counter::BytesReceived),
        5000
    );
    assert_eq!(
        counter(&report, &tuple(40002, 5001), Counter::BytesSent),
        300
    );
    assert_eq!(
        counter(&report, &tuple(40002, 5001), Counter::ActiveOpens),
        1
    );
    assert_eq!(
        counter(&report, &tuple(5001, 40002), Counter::PassiveOpens),
        1
    );
    let json: serde_json::Value = serde_json::from_str(&rendered(options, &report)).unwrap();
    let live: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("testdata/replay/report.json").unwrap())
            .unwrap();
    let bytes_of = |v: &serde_json::Value, lport: u64| {
        v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["key"]["lport"] == lport)
            .map(|g| g["counters"]["Socket"]["BytesSent"].clone())
    };
    assert_eq!(bytes_of(&json, 40002), bytes_of(&live, 40002));
    assert_eq!(bytes_of(&json, 40001), bytes_of(&live, 40001));
}

#[test]
fn windows_start_where_the_last_one_ended() {
    let key = lo(40000, 80);
    let polls = (0..4)
        .map(|i| {
            snapshot(
                i * 1000,
                vec![socket(
                    7,
                    key,
                    TcpState::Established,
                    Some(info(i * 100, 0, 0, 0)),
                )],
            )
        })
        .collect();
    let mut session = session(&["--interval", "1s"], ReplaySource::new(polls));
    session.poll().unwrap();
    session.poll().unwrap();
    let first = session.window_report();
    assert_eq!((first.start_ms, first.end_ms), (0, 1000));
    assert_eq!(
        counter(&first, &GroupKey::Tuple(key), Counter::BytesSent),
        100
    );
    drop(first);
    session.end_window();
    session.poll().unwrap();
    session.poll().unwrap();
    let second = session.window_report();
    assert_eq!(
        (second.start_ms, second.end_ms, second.polls),
        (1000, 3000, 2)
    );
    assert_eq!(
        counter(&second, &GroupKey::Tuple(key), Counter::BytesSent),
        200
    );
}

#[test]
fn onclose_reports_each_connection_once_with_its_lifetime_counters() {
    let server = lo(80, 40000);
    let client = lo(40000, 80);
    let open = |ms, sent| {
        snapshot(
            ms,
            vec![
                listener(),
                socket(
                    2,
                    server,
                    TcpState::Established,
                    Some(info(sent / 2, sent, 5, 6)),
                ),
                socket(
                    3,
                    client,
                    TcpState::Established,
                    Some(info(sent, sent / 2, 6, 5)),
                ),
            ],
        )
    };
    let polls = vec![
        open(0, 1000),
        open(1000, 4000),
        // The client went to TIME_WAIT (same cookie); the server is gone.
        snapshot(
            2000,
            vec![listener(), socket(3, client, TcpState::TimeWait, None)],
        ),
        snapshot(
            3000,
            vec![listener(), socket(3, client, TcpState::TimeWait, None)],
        ),
    ];
    let mut session = session(&["--onclose"], ReplaySource::new(polls));
    for _ in 0..3 {
        session.poll().unwrap();
    }
    let options = session.render_options();
    let reports = session.close_reports(false);
    assert_eq!(reports.len(), 2, "both ends closed");
    for report in &reports {
        assert_eq!(report.groups.len(), 1);
        assert_eq!(report.groups[0].closed, 1);
    }
    let client_report = reports
        .iter()
        .find(|r| r.groups[0].key == GroupKey::Tuple(client))
        .unwrap();
    // Lifetime counters: since the socket's creation, as last polled.
    assert_eq!(
        counter(client_report, &GroupKey::Tuple(client), Counter::BytesSent),
        4000
    );
    let text = rendered(options, client_report);
    assert!(text.contains("127.0.0.1:40000 <-> 127.0.0.1:80"), "{text}");
    drop(reports);
    session.forget_closes();
    session.poll().unwrap();
    assert!(
        session.close_reports(false).is_empty(),
        "each close is reported once"
    );
}

#[test]
fn system_residual_is_the_namespace_delta_less_what_sockets_did() {
    let key = lo(40000, 80);
    let polls = vec![
        snapshot(
            0,
            vec![socket(
                7,
                key,
                TcpState::Established,
                Some(info(0, 0, 10, 10)),
            )],
        ),
        snapshot(
            1000,
            vec![socket(
                7,
                key,
                TcpState::Established,
                Some(info(0, 0, 40, 25)),
            )],
        ),
    ];
    let mib = |out_segs: &str, in_segs: &str| {
        let mut counters = SystemCounters::default();
        counters.add_header_value_pairs(&format!(
            "Tcp: InSegs OutSegs CurrEstab\nTcp: {in_segs} {out_segs} 1\n"
        ));
        counters
    };
    let source =
        ReplaySource::new(polls).with_system_counters(vec![mib("100", "200"), mib("150", "230")]);
    let mut session = session(&["--timeout", "1", "--system"], source);
    session.poll().unwrap();
    session.poll().unwrap();
    let report = session.window_report();
    let system = report.system.as_ref().expect("a system section");
    let residual = |counter: Counter| {
        system
            .residuals
            .iter()
            .find(|r| r.counter == counter)
            .unwrap_or_else(|| panic!("no residual {counter:?}: {system:?}"))
    };
    // The namespace sent 50 segments, the socket 30: 20 unattributed.
    assert_eq!(residual(Counter::OutSegs).system, 50);
    assert_eq!(residual(Counter::OutSegs).unattributed(), 20);
    assert_eq!(residual(Counter::InSegs).unattributed(), 15);
    assert_eq!(system.deltas.get("Tcp:OutSegs"), Some(50));
}

fn tuple(lport: u16, rport: u16) -> EventTuple {
    EventTuple::of_key(&lo(lport, rport))
}

fn at(time_ns: u64, event: TraceEvent) -> Timed {
    Timed {
        time_ns,
        probe: Probe::Tracepoint,
        event,
        pid: None,
    }
}

/// A connection to :80 that opens and closes between two polls, as
/// inet_sock_set_state tells it.
fn short_connection(port: u16, sk: u64) -> Vec<Timed> {
    use TcpState::*;
    let change = |sk, tuple, old, new| TraceEvent::StateChange {
        sk,
        tuple,
        old,
        new,
        in_softirq: None,
    };
    let (client, server) = (tuple(port, 80), tuple(80, port));
    let newborn = EventTuple {
        remote: "0.0.0.0".parse().unwrap(),
        ..server
    };
    let no_port = EventTuple {
        local_port: 0,
        ..client
    };
    [
        change(sk, no_port, Close, SynSent),
        change(sk + 1, newborn, Listen, SynRecv),
        change(sk, client, SynSent, Established),
        change(sk + 1, server, SynRecv, Established),
        change(sk, client, Established, FinWait1),
        change(sk + 1, server, Established, CloseWait),
        change(sk + 1, server, LastAck, Close),
        change(sk, client, FinWait2, Close),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, e)| at(i as u64, e))
    .collect()
}

fn probe_summary() -> ProbeSummary {
    let states = vec![
        Counter::ActiveOpens,
        Counter::PassiveOpens,
        Counter::AttemptFails,
        Counter::EstabResets,
    ];
    ProbeSummary {
        probes: "tracepoint".to_string(),
        sources: vec![(
            states.clone(),
            "tracepoint sock:inet_sock_set_state".to_string(),
        )],
        exact_states: true,
        covered: states,
        syn_retransmits_told: false,
        destructions_told: false,
        ..ProbeSummary::default()
    }
}

#[test]
fn precision_counts_connections_between_polls_and_accounts_for_its_events() {
    let polls = (0..3)
        .map(|i| snapshot(i * 1000, vec![listener()]))
        .collect();
    let events: Vec<Timed> = (0..20)
        .flat_map(|i| short_connection(41000 + i, 1000 + 2 * u64::from(i)))
        .collect();
    let event_count = events.len() as u64;
    // Before the baseline (not counted), between polls 1 and 2, none after.
    let feed = ReplayFeed::new(probe_summary(), vec![Vec::new(), events, Vec::new()]).with_lost(3);
    let config = config(&["--timeout", "2", "--precision", "--index", "lport"]);
    let mut session = Session::new(
        &config,
        Box::new(ReplaySource::new(polls)),
        Some(Box::new(feed)),
    );
    for _ in 0..3 {
        session.poll().unwrap();
    }
    let notices = session.take_fresh_notices();
    assert!(
        notices.iter().any(|n| n.contains("3 kernel events lost")),
        "{notices:?}"
    );
    let report = session.window_report();
    assert_eq!(
        counter(&report, &GroupKey::Lport(80), Counter::PassiveOpens),
        20
    );
    let clients: u64 = report
        .groups
        .iter()
        .filter(|g| g.key != GroupKey::Lport(80))
        .map(|g| g.counters.value(Counter::ActiveOpens))
        .sum();
    assert_eq!(clients, 20);
    assert_eq!(
        counter(&report, &GroupKey::Lport(80), Counter::EstabResets),
        0
    );
    let precision = report.precision.as_ref().expect("a precision section");
    assert_eq!(precision.events, event_count);
    assert_eq!(precision.events_lost, 3);
    assert_eq!(precision.probes, "tracepoint");
    assert!(!counter_is_approx(&report, Counter::PassiveOpens));
}

fn counter_is_approx(report: &Report<'_>, counter: Counter) -> bool {
    report.groups.iter().any(|g| g.counters.is_approx(counter))
}

#[test]
fn a_failed_poll_after_the_baseline_is_noted_and_skipped() {
    let key = lo(40000, 80);
    let polls = vec![snapshot(
        0,
        vec![socket(
            7,
            key,
            TcpState::Established,
            Some(info(0, 0, 0, 0)),
        )],
    )];
    let mut session = session(&["--timeout", "1"], ReplaySource::new(polls));
    session.poll().unwrap();
    session.poll().expect("a later failure is not the run's");
    let notices = session.take_fresh_notices();
    assert!(
        notices
            .iter()
            .any(|n| n.starts_with("a poll failed and was skipped")),
        "{notices:?}"
    );
    let report = session.window_report();
    assert_eq!(report.polls, 1);
}

#[test]
fn close_notices_count_short_connections_and_the_namespace_bounds_their_resets() {
    let server = lo(80, 40000);
    let client = lo(40000, 80);
    let mut baseline = snapshot(0, vec![listener()]);
    baseline.closes_watched = true;
    let mut next = snapshot(1000, vec![listener()]);
    next.closes_watched = true;
    // Lived and died between the polls: the client's FIN acknowledged
    // (bytes_acked = SYN + 300 + FIN); the server's not (it looks reset).
    let mut client_end = socket(3, client, TcpState::Close, Some(info(300, 201, 4, 4)));
    client_end.tcp_info = Some(info_acked(300, 201, 302));
    let server_end = socket(2, server, TcpState::Close, Some(info_acked(200, 300, 200)));
    next.closed = vec![client_end, server_end];
    let mib = |resets: &str| {
        let mut counters = SystemCounters::default();
        counters.add_header_value_pairs(&format!("Tcp: EstabResets\nTcp: {resets}\n"));
        counters
    };
    let source =
        ReplaySource::new(vec![baseline, next]).with_system_counters(vec![mib("7"), mib("7")]);
    let mut session = session(&["--timeout", "1", "--system"], source);
    session.poll().unwrap();
    session.poll().unwrap();
    let report = session.window_report();
    let (c, s) = (GroupKey::Tuple(client), GroupKey::Tuple(server));
    assert_eq!(counter(&report, &c, Counter::ActiveOpens), 1);
    assert_eq!(counter(&report, &s, Counter::PassiveOpens), 1);
    // The peer's FIN is no data byte.
    assert_eq!(counter(&report, &c, Counter::BytesReceived), 200);
    assert_eq!(counter(&report, &s, Counter::BytesReceived), 300);
    // The server end looked reset, but the namespace counted none.
    assert_eq!(counter(&report, &s, Counter::EstabResets), 0);
}

/// tcp_info with bytes_acked set apart from bytes sent.
fn info_acked(sent: u64, received: u64, acked: u64) -> TcpInfo {
    let mut raw = vec![0u8; 232];
    raw[0] = TcpState::Close as u8;
    raw[120..128].copy_from_slice(&acked.to_ne_bytes());
    raw[128..136].copy_from_slice(&received.to_ne_bytes());
    raw[136..140].copy_from_slice(&4u32.to_ne_bytes());
    raw[140..144].copy_from_slice(&4u32.to_ne_bytes());
    raw[200..208].copy_from_slice(&sent.to_ne_bytes());
    TcpInfo::from_bytes(&raw).unwrap()
}

#[test]
fn a_report_carries_the_notices_of_its_own_window_only() {
    let polls = (0..4)
        .map(|i| snapshot(i * 1000, vec![listener()]))
        .collect();
    let feed = ReplayFeed::new(probe_summary(), vec![Vec::new(); 4]).with_lost(3);
    let config = config(&["--interval", "1", "--precision"]);
    let mut session = Session::new(
        &config,
        Box::new(ReplaySource::new(polls)),
        Some(Box::new(feed)),
    );
    session.poll().unwrap();
    session.poll().unwrap();
    let first = session.window_report().notices.clone();
    session.end_window();
    assert!(
        first.iter().any(|n| n.contains("3 kernel events lost")),
        "{first:?}"
    );
    session.poll().unwrap();
    let second = session.window_report().notices.clone();
    session.end_window();
    assert!(
        second.is_empty(),
        "repeated from an earlier window: {second:?}"
    );
}

/// Polls 0, 1000 and 2000 ms of a host with a listener on :80, and 10
/// loopback connections to it that opened and closed (gracefully) before
/// each poll after the baseline, known from their close notices; with the
/// namespace's counters saying as much.
fn short_connections_between_polls() -> ReplaySource {
    let mut polls = Vec::new();
    let mut mibs = Vec::new();
    for poll in 0..3u16 {
        let mut next = snapshot(u64::from(poll) * 1000, vec![listener()]);
        next.closes_watched = true;
        if poll > 0 {
            for i in 0..10 {
                let port = 40000 + poll * 100 + i;
                let cookie = u64::from(port) * 2;
                let client = socket(
                    cookie,
                    lo(port, 80),
                    TcpState::Close,
                    Some(info_acked(300, 201, 302)),
                );
                let server = socket(
                    cookie + 1,
                    lo(80, port),
                    TcpState::Close,
                    Some(info_acked(200, 301, 201)),
                );
                next.closed.extend([client, server]);
            }
        }
        polls.push(next);
        let opens = u64::from(poll) * 10;
        let mut mib = SystemCounters::default();
        mib.add_header_value_pairs(&format!(
            "Tcp: ActiveOpens PassiveOpens EstabResets\nTcp: {opens} {opens} 0\n"
        ));
        mibs.push(mib);
    }
    ReplaySource::new(polls).with_system_counters(mibs)
}

fn totals(report: &Report<'_>) -> tcpipstat::counters::Counters {
    let mut sum = tcpipstat::counters::Counters::default();
    for group in &report.groups {
        sum.add(&group.counters);
    }
    sum
}

fn sockets_residual(report: &Report<'_>, counter: Counter) -> (i64, i64) {
    let system = report.system.as_ref().expect("a system section");
    let r = system
        .residuals
        .iter()
        .find(|r| r.counter == counter)
        .unwrap_or_else(|| panic!("no residual {counter:?}"));
    (r.system, r.sockets)
}

#[test]
fn a_window_past_the_listing_bound_keeps_its_port_groups_and_totals_whole() {
    let args = [
        "--timeout",
        "2",
        "--system",
        "--index",
        "lport",
        "--closed-limit",
        "4",
    ];
    let mut session = session(&args, short_connections_between_polls());
    for _ in 0..3 {
        session.poll().unwrap();
    }
    let report = session.window_report();
    let sum = totals(&report);
    // 20 connections: 40 closed sockets, of which 36 past the bound.
    assert_eq!(sum.value(Counter::ActiveOpens), 20);
    assert_eq!(sum.value(Counter::PassiveOpens), 20);
    assert_eq!(sum.value(Counter::BytesSent), 20 * (300 + 200));
    assert_eq!(
        sockets_residual(&report, Counter::ActiveOpens),
        (20, 20),
        "the --system sum and the groups agree"
    );
    // Every server socket is in port 80's group, listed or not.
    assert_eq!(
        counter(&report, &GroupKey::Lport(80), Counter::PassiveOpens),
        20
    );
    assert!(report.groups.iter().all(|g| g.key != GroupKey::Unlisted));
    let note = report
        .notices
        .iter()
        .find(|n| n.contains("not listed one by one"))
        .expect("the bound is said");
    assert!(
        note.contains("36 sockets") && note.contains("in their groups"),
        "{note}"
    );
    // JSON's totals are the same.
    let json = rendered(
        report::RenderOptions {
            format: report::Format::Json,
            ..Default::default()
        },
        &report,
    );
    let value: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(value["totals"]["Tcp"]["ActiveOpens"], 20, "{json}");
}

#[test]
fn a_window_past_the_listing_bound_by_tuple_counts_the_rest_in_one_unlisted_row() {
    let args = ["--timeout", "2", "--system", "--closed-limit", "4"];
    let mut session = session(&args, short_connections_between_polls());
    for _ in 0..3 {
        session.poll().unwrap();
    }
    let report = session.window_report();
    let sum = totals(&report);
    assert_eq!(sum.value(Counter::ActiveOpens), 20);
    assert_eq!(sum.value(Counter::PassiveOpens), 20);
    let unlisted = report
        .groups
        .iter()
        .find(|g| g.key == GroupKey::Unlisted)
        .expect("an unlisted row");
    assert_eq!((unlisted.sockets, unlisted.closed), (36, 36));
    let text = rendered(report::RenderOptions::default(), &report);
    assert!(
        text.contains("Closed sockets not listed one by one"),
        "{text}"
    );
    let table = rendered(
        report::RenderOptions {
            format: report::Format::Table,
            ..Default::default()
        },
        &report,
    );
    assert!(table.contains("(closed, unlisted)"), "{table}");
    session.end_window();
    // The next window starts with nothing folded.
    session.poll().unwrap_or(());
    assert!(session
        .window_report()
        .groups
        .iter()
        .all(|g| g.key != GroupKey::Unlisted));
}

#[test]
fn lost_close_notices_are_said_in_every_window_they_happen_in_their_unit() {
    // Each window loses 101 notices in one overflow of the kernel's buffer:
    // the same count each time, said each time.
    let polls = (0..4)
        .map(|i| snapshot(i * 1000, vec![listener()]))
        .collect();
    let lost = |notices, overflows| CloseLoss {
        notices,
        overflows,
        exact: true,
    };
    let source = ReplaySource::new(polls).with_closes_lost(vec![
        lost(0, 0),
        lost(101, 1),
        lost(202, 2),
        lost(303, 3),
    ]);
    // --zeros: the listener's group shows its (zero) opens, and their mark.
    let mut session = session(&["--interval", "1", "--format", "json", "--zeros"], source);
    session.poll().unwrap();
    let mut said_on_stderr = Vec::new();
    for window in 1..=3u64 {
        session.poll().unwrap();
        said_on_stderr.extend(session.take_fresh_notices());
        let report = session.window_report();
        let window_loss = report.closes_lost_window.expect("notices are read");
        assert_eq!(window_loss.notices, 101, "window {window}");
        assert_eq!(report.closes_lost.unwrap().notices, 101 * window);
        assert!(
            report
                .notices
                .iter()
                .any(|n| n.starts_with("101 close notices lost in this window")),
            "window {window}: {:?}",
            report.notices
        );
        assert!(
            counter_is_approx(&report, Counter::PassiveOpens),
            "window {window}: opens are not exact when notices were lost"
        );
        let json = rendered(
            report::RenderOptions {
                format: report::Format::Json,
                ..Default::default()
            },
            &report,
        );
        let value: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
        let loss = &value["close_notices_lost"];
        assert_eq!(loss["unit"], "notices");
        assert_eq!(loss["window"], 101);
        assert_eq!(loss["since_start"], 101 * window);
        assert_eq!(loss["buffer_overflows_window"], 1);
        assert_eq!(value["closes_lost"], 101 * window);
        drop(report);
        session.end_window();
    }
    let on_stderr = said_on_stderr
        .iter()
        .filter(|n| n.starts_with("101 close notices lost since the last poll"))
        .count();
    assert_eq!(on_stderr, 3, "{said_on_stderr:?}");
}

#[test]
fn a_kernel_that_does_not_count_lost_notices_gets_a_lower_bound_said_as_such() {
    let polls = (0..2)
        .map(|i| snapshot(i * 1000, vec![listener()]))
        .collect();
    let overflowed = CloseLoss {
        notices: 2,
        overflows: 2,
        exact: false,
    };
    let source =
        ReplaySource::new(polls).with_closes_lost(vec![CloseLoss::none(false), overflowed]);
    let mut session = session(&["--timeout", "1"], source);
    session.poll().unwrap();
    session.poll().unwrap();
    let report = session.window_report();
    let text = rendered(report::RenderOptions::default(), &report);
    assert!(
        text.contains("close notices lost: at least 2 in this window (2 overflows)"),
        "{text}"
    );
    // Notices go to stderr and JSON, not into the text report.
    let notices = report.notices.join("\n");
    assert!(
        notices.contains("an unknown number of notices"),
        "{notices}"
    );
}

/// [`short_connection`] as its processes' system calls tell it too: the
/// client's connect and close run in `client`, the server's reads in
/// `server` (both with the address a send or receive carries, no tuple).
fn short_connection_of(port: u16, sk: u64, client: u32, server: u32) -> Vec<Timed> {
    let mut events = short_connection(port, sk);
    for timed in &mut events {
        if let TraceEvent::StateChange {
            sk: at,
            in_softirq,
            old,
            ..
        } = &mut timed.event
        {
            // The connect's and the close's changes are system calls'.
            let by_call = *at == sk && matches!(old, TcpState::Close | TcpState::Established);
            *in_softirq = Some(!by_call);
            timed.pid = by_call.then_some(client);
        }
    }
    let read = |bytes| TraceEvent::Received {
        sk: sk + 1,
        tuple: None,
        bytes,
    };
    events.insert(
        4,
        Timed {
            pid: Some(server),
            ..at(3, read(100))
        },
    );
    events.push(Timed {
        pid: Some(server),
        ..at(9, read(0))
    });
    events
}

#[test]
fn precision_names_the_process_whose_calls_made_connections_between_polls() {
    let polls = (0..3)
        .map(|i| snapshot(i * 1000, vec![listener()]))
        .collect();
    let events: Vec<Timed> = (0..20)
        .flat_map(|i| short_connection_of(41000 + i, 1000 + 2 * u64::from(i), 4242, 812))
        .collect();
    // The client exited before the report: its name was read in time.
    let feed = ReplayFeed::new(probe_summary(), vec![Vec::new(), events, Vec::new()])
        .with_process_names(vec![(4242, "curl".to_string()), (812, "nginx".to_string())]);
    let config = config(&["--timeout", "2", "--precision", "--index", "process"]);
    let mut session = Session::new(
        &config,
        Box::new(ReplaySource::new(polls)),
        Some(Box::new(feed)),
    );
    for _ in 0..3 {
        session.poll().unwrap();
    }
    let options = session.render_options();
    let report = session.window_report();
    let client = GroupKey::Process(4242);
    let server = GroupKey::Process(812);
    assert_eq!(counter(&report, &client, Counter::ActiveOpens), 20);
    assert_eq!(counter(&report, &server, Counter::PassiveOpens), 20);
    assert_eq!(
        counter(&report, &server, Counter::MessageBytesReceived),
        2000
    );
    let unowned: Vec<_> = report
        .groups
        .iter()
        .filter(|g| g.key != client && g.key != server)
        .filter(|g| {
            g.counters.value(Counter::ActiveOpens) + g.counters.value(Counter::PassiveOpens) > 0
        })
        .map(|g| g.key.to_string())
        .collect();
    assert!(unowned.is_empty(), "{unowned:?}");
    let text = rendered(options, &report);
    assert!(text.contains("Process: curl[4242]"), "{text}");
    assert!(text.contains("Process: nginx[812]"), "{text}");
}

#[test]
fn connections_known_only_from_notices_are_closed_before_any_poll_not_time_wait() {
    let orphan = lo(40001, 80);
    let (client, server) = (lo(40000, 80), lo(80, 40000));
    // An orphan polled twice (its process closed it: inode 0), moving
    // bytes: truly held by no process.
    let polled_orphan = |sent| {
        let mut s = socket(9, orphan, TcpState::FinWait1, Some(info(sent, 0, 1, 1)));
        s.inode = 0;
        s
    };
    let mut baseline = snapshot(0, vec![listener(), polled_orphan(100)]);
    baseline.closes_watched = true;
    let mut next = snapshot(1000, vec![listener(), polled_orphan(150)]);
    next.closes_watched = true;
    // A connection that lived and died between the polls: its notices.
    let mut client_end = socket(3, client, TcpState::Close, None);
    client_end.tcp_info = Some(info_acked(300, 201, 302));
    let mut server_end = socket(2, server, TcpState::Close, None);
    server_end.tcp_info = Some(info_acked(200, 300, 202));
    next.closed = vec![client_end, server_end];
    let source = ReplaySource::new(vec![baseline, next]);
    let mut session = session(&["--timeout", "1", "--index", "process"], source);
    session.poll().unwrap();
    session.poll().unwrap();
    let options = session.render_options();
    let report = session.window_report();
    let unseen = GroupKey::Process(tcpipstat::aggregate::UNSEEN_OWNER);
    let none = GroupKey::Process(tcpipstat::aggregate::NO_OWNER);
    assert_eq!(counter(&report, &unseen, Counter::ActiveOpens), 1);
    assert_eq!(counter(&report, &unseen, Counter::PassiveOpens), 1);
    assert_eq!(counter(&report, &none, Counter::BytesSent), 50);
    assert_eq!(counter(&report, &none, Counter::ActiveOpens), 0);
    let text = rendered(options, &report);
    assert!(
        text.contains("Process: - (closed before any poll saw its owner)"),
        "{text}"
    );
    assert!(text.contains("TIME_WAIT, orphaned or half-open"), "{text}");
}

/// --onclose says where each socket's counters come from: the close
/// notice of a socket polled before, the notice alone of one no poll saw,
/// the last poll where an abort's notice came cleared, and the last poll
/// where no notice came at all.
#[test]
fn close_reports_say_where_each_sockets_counters_come_from() {
    let notified = lo(40001, 80);
    let aborted = lo(40002, 80);
    let vanished = lo(40003, 80);
    let unseen = lo(40004, 80);
    let open = |cookie, key, sent| {
        socket(
            cookie,
            key,
            TcpState::Established,
            Some(info(sent, 0, 2, 2)),
        )
    };
    let mut baseline = snapshot(
        0,
        vec![
            listener(),
            open(11, notified, 100),
            open(12, aborted, 100),
            open(13, vanished, 100),
        ],
    );
    baseline.closes_watched = true;
    let mut second = snapshot(1000, vec![listener()]);
    second.closes_watched = true;
    // An orderly close's final counters (its FIN acknowledged).
    let notice = socket(11, notified, TcpState::Close, Some(info_acked(400, 0, 402)));
    // An abort's notice: the peer port cleared, the counters zeroed.
    let any_port = SocketKey::new(aborted.local, aborted.local_port, aborted.remote, 0);
    let abort = socket(12, any_port, TcpState::Close, Some(info(0, 0, 0, 0)));
    // A connection no poll saw.
    let only_notice = socket(14, unseen, TcpState::Close, Some(info_acked(50, 0, 52)));
    second.closed = vec![notice, abort, only_notice];
    let mut third = snapshot(2000, vec![listener()]);
    third.closes_watched = true;
    let source = ReplaySource::new(vec![baseline, second, third]);
    let mut session = session(&["--onclose"], source);
    for _ in 0..3 {
        session.poll().unwrap();
    }
    let options = session.render_options();
    let reports = session.close_reports(false);
    let said = |key: SocketKey| {
        let report = reports
            .iter()
            .find(|r| r.groups[0].key == GroupKey::Tuple(key))
            .unwrap_or_else(|| panic!("no close of {key}"));
        let text = rendered(options, report);
        let line = text
            .lines()
            .find(|l| l.starts_with("closed: "))
            .unwrap_or_else(|| panic!("no closed: line in {text}"))
            .to_string();
        (
            line,
            counter(report, &GroupKey::Tuple(key), Counter::BytesSent),
        )
    };
    assert_eq!(
        said(notified),
        (
            "closed: final lifetime counters, from the kernel's close notice".to_string(),
            400
        )
    );
    assert_eq!(
        said(unseen),
        (
            "closed: lifetime counters from the kernel's close notice (no poll saw it open)"
                .to_string(),
            50
        )
    );
    assert_eq!(
        said(aborted),
        (
            "closed: lifetime counters as last polled: its close notice came with them cleared (an abort)"
                .to_string(),
            100
        )
    );
    let (line, sent) = said(vanished);
    assert!(
        line.starts_with("closed: lifetime counters as last polled, ")
            && line.ends_with(" ms or less before the close"),
        "{line}"
    );
    assert_eq!(sent, 100);
}

fn udp(
    cookie: u64,
    lport: u16,
    rport: u16,
    drops: Option<u32>,
) -> tcpipstat::model::udp::UdpSample {
    tcpipstat::model::udp::UdpSample {
        key: lo(lport, rport),
        proto: tcpipstat::model::udp::UdpProto::Udp,
        cookie,
        connected: rport != 0,
        inode: cookie + 100,
        uid: 0,
        recv_queue: 0,
        send_queue: 0,
        rcvbuf: drops.map(|_| 4608),
        sndbuf: drops.map(|_| 9216),
        drops,
    }
}

fn udp_snapshot(
    ms: u64,
    sockets: Vec<tcpipstat::model::udp::UdpSample>,
    closed: Vec<tcpipstat::model::udp::UdpSample>,
) -> Snapshot {
    let mut snapshot = snapshot(ms, Vec::new());
    snapshot.udp = sockets;
    snapshot.udp_closed = closed;
    snapshot.udp_closes_watched = true;
    snapshot
}

#[test]
fn onclose_reports_each_udp_socket_once_as_it_closes_and_filters_apply() {
    // A server on 53 that drops; a client polled once; two clients known
    // only from their notices, one of them from port 5000 (filtered out).
    let notice = |cookie, lport, rport| udp(cookie, lport, rport, None);
    let polls = vec![
        udp_snapshot(0, vec![udp(1, 53, 0, Some(0))], vec![]),
        udp_snapshot(
            1000,
            vec![udp(1, 53, 0, Some(5)), udp(2, 40000, 53, Some(0))],
            vec![],
        ),
        udp_snapshot(
            2000,
            vec![udp(1, 53, 0, Some(9))],
            vec![
                notice(2, 40000, 53),
                notice(3, 40001, 53),
                notice(4, 40002, 5000),
            ],
        ),
        udp_snapshot(3000, vec![], vec![]),
    ];
    let mut session = session(
        &["-u", "--onclose", "--format", "json", "*-*:53", "*:53-*"],
        ReplaySource::new(polls),
    );
    for _ in 0..3 {
        session.poll().unwrap();
    }
    let options = session.render_options();
    let reports = session.close_reports(false);
    let mut closes: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| serde_json::from_str(&rendered(options, r)).unwrap())
        .collect();
    closes.sort_by_key(|c| c["key"]["lport"].as_u64());
    let ports: Vec<u64> = closes
        .iter()
        .map(|c| c["key"]["lport"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, [40000, 40001], "{closes:?}");
    assert_eq!(closes[0]["known_from"], "polls and close notice");
    assert_eq!(closes[0]["RcvDrops"], 0);
    assert_eq!(closes[0]["lifetime_ms"]["at_least"], 0);
    assert_eq!(closes[0]["lifetime_ms"]["at_most"], 2000);
    assert_eq!(closes[1]["known_from"], "close notice");
    assert!(closes[1]["RcvDrops"].is_null());
    assert_eq!(closes[1]["lifetime_ms"]["at_most"], 1000);
    drop(reports);
    session.forget_closes();
    assert!(session.close_reports(false).is_empty(), "each close once");
    // The server ends at the next poll: its drops as last polled, ~.
    session.poll().unwrap();
    let reports = session.close_reports(false);
    assert_eq!(reports.len(), 1);
    let server: serde_json::Value = serde_json::from_str(&rendered(options, &reports[0])).unwrap();
    assert_eq!(server["key"]["lport"], 53);
    assert_eq!(server["RcvDrops"], 9);
    assert_eq!(server["RcvDrops_exact"], false);
    assert!(
        server["lifetime_ms"]["at_most"].is_null(),
        "open at the start"
    );
    let text = rendered(
        report::RenderOptions {
            format: report::Format::Text,
            ..options
        },
        &reports[0],
    );
    assert!(text.contains("RcvDrops = ~9"), "{text}");
}
