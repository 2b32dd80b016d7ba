//! The pure pipeline driven by real kernel data recorded in testdata/: dumps
//! of a run with known traffic (testdata/replay) go through the parser, the
//! tracker and the grouping, and must give what the live run reported.

use std::path::Path;

use tcpipstat::aggregate::{group_rows, GroupKey, Index};
use tcpipstat::counters::Counter;
use tcpipstat::diff::Tracker;
use tcpipstat::filter::FilterSet;
use tcpipstat::model::SocketKey;
use tcpipstat::source::replay::read_recording_dir;

fn key(lport: u16, rport: u16) -> GroupKey {
    let lo = "127.0.0.1".parse().unwrap();
    GroupKey::Tuple(SocketKey::new(lo, lport, lo, rport))
}

#[test]
fn recorded_run_replays_to_the_known_traffic() {
    let snapshots = read_recording_dir(Path::new("testdata/replay"), 400).unwrap();
    assert!(
        snapshots.len() >= 3,
        "recording has {} polls",
        snapshots.len()
    );
    let mut tracker = Tracker::new();
    let none = FilterSet::default();
    for snapshot in snapshots {
        assert!(!snapshot.sockets.is_empty());
        tracker.observe(&snapshot, &none);
    }
    let groups = group_rows(tracker.rows(), Index::Tuple);
    let get = |k: GroupKey, c: Counter| {
        groups
            .iter()
            .find(|g| g.key == k)
            .unwrap_or_else(|| panic!("no group {k}"))
            .counters
            .value(c)
    };
    assert_eq!(get(key(40001, 5001), Counter::BytesSent), 5000);
    assert_eq!(get(key(40001, 5001), Counter::BytesReceived), 700);
    assert_eq!(get(key(5001, 40001), Counter::BytesReceived), 5000);
    assert_eq!(get(key(40001, 5001), Counter::ActiveOpens), 0);
    assert_eq!(get(key(40002, 5001), Counter::BytesSent), 300);
    assert_eq!(get(key(40002, 5001), Counter::ActiveOpens), 1);
    assert_eq!(get(key(5001, 40002), Counter::PassiveOpens), 1);
    assert_eq!(get(key(5001, 40002), Counter::CurrEstab), 1);

    // And the live run's own report says the same.
    let live: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("testdata/replay/report.json").unwrap())
            .unwrap();
    let live_group = live["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"]["lport"] == 40002)
        .unwrap();
    assert_eq!(live_group["counters"]["Socket"]["BytesSent"], 300);
}

#[test]
fn every_prefix_of_a_recorded_dump_parses_without_panic() {
    let bytes = std::fs::read("testdata/replay/poll-0002.nl").unwrap();
    for cut in 0..bytes.len() {
        let (snapshot, _) = tcpipstat::source::replay::snapshot_from_recording(&bytes[..cut], 0);
        assert!(snapshot.sockets.len() <= 6);
    }
    let (full, stats) = tcpipstat::source::replay::snapshot_from_recording(&bytes, 0);
    assert_eq!(stats.malformed, 0);
    // Listener, two connections (both ends): five sockets.
    assert_eq!(full.sockets.len(), 5);
}
