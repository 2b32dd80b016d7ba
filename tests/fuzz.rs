//! Property tests of every parser of outside data on arbitrary input: what
//! the kernel sends (sock_diag datagrams, tcp_info of any length, /proc/net
//! texts, tracefs format files and the records they describe, perf ring
//! records), what users type (filters, durations, seed `key=value`
//! arguments, command lines) and what containers leave in cgroup paths.
//! The property is the same for all: no panic, and a result bounded by the
//! input (a parser never invents more than its input can hold).
//!
//! Each property runs `PROPTEST_CASES` cases (256 by default, as in CI);
//! `scripts/fuzz.sh` runs them long. Inputs are both raw bytes and valid
//! recorded inputs with bytes changed, cut or repeated, which reach deeper.

use std::path::Path;

use proptest::prelude::*;

use tcpipstat::filter::{Filter, FilterSet};
use tcpipstat::model::tcp_info::TcpInfo;
use tcpipstat::source::containers::container_label;
use tcpipstat::source::procfs::{
    parse_proc_net_tcp, read_system_counters, SystemCounters, MIB_COUNTER_LIMIT,
};
use tcpipstat::source::replay::snapshot_from_recording;
use tcpipstat::source::sockdiag::{parse_datagram, ParseStats};
use tcpipstat::trace::decoder::{Decoder, EventKind};
use tcpipstat::trace::layout::EventFormat;
use tcpipstat::trace::perf_ring::walk;

fn testdata(path: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(path),
    )
    .unwrap_or_else(|e| panic!("testdata/{path}: {e}"))
}

/// A recorded input with changes: bytes overwritten, a cut, a repeat.
fn mutated(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = seed.len().max(1);
    (
        prop::collection::vec((0..len, any::<u8>()), 0..16),
        0..=len,
        any::<bool>(),
    )
        .prop_map(move |(flips, cut, repeat)| {
            let mut data = seed.clone();
            for (at, byte) in flips {
                if let Some(b) = data.get_mut(at) {
                    *b = byte;
                }
            }
            data.truncate(cut);
            if repeat {
                let again = data.clone();
                data.extend_from_slice(&again);
            }
            data
        })
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..2048)
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,200}",
        "[0-9a-f:.*/\\[\\]\\- ]{0,60}",
        bytes().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

/// A sock_diag datagram: raw, or a recorded one mutated.
fn datagram() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        bytes(),
        mutated(testdata("replay/poll-0002.nl")),
        mutated(testdata("kernels/5.10/sockdiag-once.nl")),
    ]
}

proptest! {
    #[test]
    fn sock_diag_datagrams(data in datagram()) {
        let mut sockets = Vec::new();
        let mut stats = ParseStats::default();
        let mut interrupted = false;
        parse_datagram(&data, None, &mut sockets, &mut stats, &mut interrupted);
        // An inet_diag_msg is 72 bytes behind a 16-byte header.
        prop_assert!(sockets.len() <= data.len() / 88);
        let (snapshot, _) = snapshot_from_recording(&data, 0);
        prop_assert!(snapshot.sockets.len() <= data.len() / 88);
        for sample in &snapshot.sockets {
            let _ = tcpipstat::counters::cumulative(sample);
        }
    }

    #[test]
    fn tcp_info_of_any_length(raw in prop_oneof![bytes(), mutated(testdata("tcp_info/len-280.bin"))]) {
        if let Some(info) = TcpInfo::from_bytes(&raw) {
            prop_assert!(info.len() <= raw.len());
            let _ = (info.bytes_acked(), info.bytes_received(), info.segs_in(), info.segs_out());
            let _ = format!("{info:?}");
        }
    }

    #[test]
    fn proc_net_texts(text in prop_oneof![
        text(),
        mutated(testdata("kernels/6.18/tcp")).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        mutated(testdata("kernels/6.18/snmp")).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        mutated(testdata("kernels/6.18/snmp6")).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]) {
        let mut sockets = Vec::new();
        parse_proc_net_tcp(text.as_bytes(), &mut sockets);
        prop_assert!(sockets.len() <= text.lines().count());
        let mut counters = SystemCounters::default();
        let problems = counters.add_header_value_pairs(&text);
        prop_assert!(problems.named.len() <= 3);
        let problems = counters.add_snmp6(&text);
        prop_assert!(problems.named.len() <= 3);
        prop_assert!(counters.values.len() <= text.split_whitespace().count());
        let _ = counters.delta_since(&SystemCounters::default());
    }

    /// MIB files of any size, cut anywhere: what is kept is bounded, every
    /// counter kept has a name and a value from the same pair, and what is
    /// left out is said.
    #[test]
    fn mib_files_of_any_size_and_cut(
        names in 0usize..20_000,
        values in 0usize..20_000,
        repeat_line in 0usize..4,
        cut in any::<prop::sample::Index>(),
    ) {
        let mut text = String::from("Ip: Forwarding\nIp: 1\n");
        let before_tcp = text.len();
        let section = |prefix: &str, n: usize| {
            let words: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
            format!("Tcp: {}\n", words.join(" "))
        };
        let header = section("N", names);
        let row = section("", values);
        for _ in 0..=repeat_line {
            text.push_str(&header);
            text.push_str(&row);
        }
        let cut = cut.index(text.len() + 1);
        let dir = std::env::temp_dir().join(format!("tis-fuzz-mib-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, body) in [("snmp", &text[..cut]), ("netstat", ""), ("snmp6", "")] {
            std::fs::write(dir.join(name), body).unwrap();
        }
        let (counters, missing) = read_system_counters(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        prop_assert!(counters.values.len() <= MIB_COUNTER_LIMIT + 1);
        for (key, value) in &counters.values {
            if let Some(n) = key.strip_prefix("Tcp:N") {
                prop_assert_eq!(n.parse::<i64>().ok(), Some(*value), "{}", key);
            }
        }
        let kept = counters.values.keys().filter(|k| k.starts_with("Tcp:")).count();
        let whole = names.min(values).min(MIB_COUNTER_LIMIT - 1);
        let said = missing.join("; ");
        // Both empty files are named, and a short snmp file too.
        prop_assert!(said.contains("/netstat: empty") && said.contains("/snmp6: empty"), "{}", said);
        // (A cut before Tcp leaves a file that merely has no Tcp.)
        if cut > before_tcp && (kept < whole || names != values) {
            prop_assert!(said.contains("/snmp: "), "kept {} of {}: {}", kept, whole, said);
        }
        prop_assert!(said.len() < 4096, "{}", said.len());
    }

    #[test]
    fn tracefs_formats_and_their_records(
        format in prop_oneof![
            text(),
            mutated(testdata("trace/6.18/tracepoint/tcp__tcp_send_reset.format"))
                .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            mutated(testdata("trace/6.18/tracepoint/skb__kfree_skb.format"))
                .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            mutated(testdata("trace/5.10/tracepoint/sock__inet_sock_set_state.format"))
                .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        ],
        record in prop_oneof![bytes(), mutated(testdata("trace/6.18/tracepoint/sock__inet_sock_set_state-1.bin"))],
    ) {
        if let Ok(parsed) = EventFormat::parse(&format) {
            for kind in EventKind::ALL {
                if let Ok(decoder) = Decoder::new(*kind, &parsed) {
                    let _ = decoder.decode(&record);
                }
            }
        }
    }

    #[test]
    fn perf_ring_records(data in prop::collection::vec(any::<u8>(), 0..4096), tail in any::<u64>(), span in 0u64..8192) {
        // A ring is a power of two long.
        let size = data.len().next_power_of_two().min(4096);
        let mut ring = data.clone();
        ring.resize(size, 0);
        let mut scratch = Vec::new();
        let tags = Default::default();
        let mut samples = 0usize;
        let walked = walk(&ring, tail, tail.wrapping_add(span), &mut scratch, &tags, &mut |_| samples += 1);
        // A record is at least its 8-byte header.
        prop_assert!(walked.samples <= (span as usize) / 8 + 1);
        prop_assert!(scratch.len() <= size);
    }

    #[test]
    fn filters(texts in prop::collection::vec(text(), 0..20)) {
        for t in &texts {
            if let Err(err) = Filter::parse(t) {
                // The error names the bad part without echoing it whole.
                let len = err.to_string().chars().count();
                prop_assert!(len < 1_500, "{} characters", len);
            }
        }
        let _ = FilterSet::parse(&texts).map(|set| set.with_mirrors().to_bytecode());
    }

    #[test]
    fn command_lines(args in prop::collection::vec(prop_oneof![
        text(),
        Just("--interval".to_string()), Just("--poll".to_string()), Just("--timeout".to_string()),
        Just("--count".to_string()), Just("--netns".to_string()), Just("--index".to_string()),
        Just("--ring-pages".to_string()), Just("--close-buffer".to_string()),
        "(index|onclose|interval|count|timeout|zeros)=[a-z0-9.]{0,6}",
        "[0-9]{0,25}(ns|ms|s|m|h|d|K|M|G)?",
    ], 0..8)) {
        let argv = std::iter::once("tcpipstat".to_string()).chain(args);
        if let tcpipstat::cli::CliOutcome::Usage(err) = tcpipstat::cli::parse(argv) {
            let line = tcpipstat::cli::error_line(&err);
            prop_assert!(!line.chars().any(char::is_control), "{}", line);
            // Escaped where the value is quoted, not only by the last resort.
            let message = err.to_string();
            prop_assert!(!message.chars().any(char::is_control), "{}", message);
        }
    }

    #[test]
    fn durations(t in text()) {
        let _ = tcpipstat::cli::parse_duration(&t, "--poll");
    }

    #[test]
    fn container_cgroup_paths(t in prop_oneof![
        text(),
        mutated(testdata("cgroup/docker-systemd")).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        mutated(testdata("cgroup/containerd-kubepods")).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]) {
        if let Some(label) = container_label(&t) {
            prop_assert!(label.len() <= t.len() + 32);
        }
    }
}
