//! Criterion benches of the per-poll user-space path at 100k sockets, as a
//! large host has them: parsing sock_diag datagrams, tracking (diff and
//! attribution) a poll in which nothing moved, one in which a tenth of the
//! sockets moved and one in which all did, and rendering JSON. Cookies
//! come with gaps and in hash order, ports and addresses spread, a tenth
//! IPv6. The kernel's own cost is measured by scripts/bench.sh.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use tcpipstat::aggregate::{group_rows, Index};
use tcpipstat::diff::Tracker;
use tcpipstat::filter::FilterSet;
use tcpipstat::model::{Snapshot, SocketSource};
use tcpipstat::report::{render, Format, RenderOptions, Report, ReportKind};
use tcpipstat::source::sockdiag::{parse_datagram, ParseStats};

const SOCKETS: usize = 100_000;

/// A fixed pseudo-random sequence (no dependency, the same every run).
fn spread(i: usize, salt: u64) -> u64 {
    let mut x = (i as u64)
        .wrapping_add(salt)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 29;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^ (x >> 32)
}

/// One SOCK_DIAG_BY_FAMILY message as 6.18 sends it: header, a 280-byte
/// tcp_info whose idle clocks tick, the congestion name and skmeminfo.
fn message(i: usize, bytes_sent: u64, clock_ms: u32) -> Vec<u8> {
    let v6 = i % 10 == 0;
    let mut payload = vec![0u8; 72];
    payload[0] = if v6 { libc::AF_INET6 } else { libc::AF_INET } as u8;
    payload[1] = 1;
    let local_port = 1024 + (spread(i, 1) % 64_000) as u16;
    let remote_port = [443u16, 80, 5432, 6379, 8080][i % 5];
    payload[4..6].copy_from_slice(&local_port.to_be_bytes());
    payload[6..8].copy_from_slice(&remote_port.to_be_bytes());
    let (local, remote) = (spread(i, 2).to_be_bytes(), spread(i % 997, 3).to_be_bytes());
    if v6 {
        payload[8..16].copy_from_slice(&local);
        payload[16..24].copy_from_slice(&remote);
        payload[24..32].copy_from_slice(&remote);
        payload[32..40].copy_from_slice(&local);
    } else {
        payload[8..12].copy_from_slice(&local[..4]);
        payload[24..28].copy_from_slice(&remote[..4]);
    }
    // Cookies grow with every socket the host ever made: gaps, and the
    // dump walks them in hash order, not in cookie order.
    let cookie = 1_000_000 + (i as u64) * 37 + spread(i, 4) % 37;
    payload[44..48].copy_from_slice(&(cookie as u32).to_ne_bytes());
    payload[48..52].copy_from_slice(&((cookie >> 32) as u32).to_ne_bytes());
    payload[68..72].copy_from_slice(&(cookie as u32 / 3).to_ne_bytes());
    let mut info = vec![0u8; 280];
    info[0] = 1;
    for at in [44, 52, 56] {
        info[at..at + 4].copy_from_slice(&clock_ms.to_ne_bytes());
    }
    info[68..72].copy_from_slice(&(200 + (i % 5000) as u32).to_ne_bytes());
    info[80..84].copy_from_slice(&10u32.to_ne_bytes());
    info[120..128].copy_from_slice(&bytes_sent.to_ne_bytes());
    info[136..140].copy_from_slice(&((bytes_sent / 1000) as u32).to_ne_bytes());
    info[200..208].copy_from_slice(&bytes_sent.to_ne_bytes());
    let attrs: [(u16, Vec<u8>); 3] = [(2, info), (4, b"cubic\0".to_vec()), (7, vec![0u8; 36])];
    for (kind, value) in attrs {
        payload.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        payload.extend_from_slice(&kind.to_ne_bytes());
        payload.extend_from_slice(&value);
        payload.resize((payload.len() + 3) & !3, 0);
    }
    let mut msg = Vec::new();
    msg.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
    msg.extend_from_slice(&20u16.to_ne_bytes());
    msg.extend_from_slice(&2u16.to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&payload);
    msg
}

/// A poll's datagrams (~32 KiB, as the kernel packs a dump): every
/// socket's clocks at `clock_ms`; the sockets `moved` says sent more.
fn datagrams(clock_ms: u32, moved: impl Fn(usize) -> bool) -> Vec<Vec<u8>> {
    let mut out = vec![Vec::new()];
    for i in 0..SOCKETS {
        let sent = 1_000_000 + i as u64 + if moved(i) { 1448 } else { 0 };
        let m = message(i, sent, clock_ms);
        if out.last().unwrap().len() + m.len() > 32 * 1024 {
            out.push(Vec::new());
        }
        out.last_mut().unwrap().extend_from_slice(&m);
    }
    out
}

fn snapshot(ms: u64, data: &[Vec<u8>]) -> Snapshot {
    let mut sockets = Vec::with_capacity(SOCKETS);
    let (mut stats, mut intr) = (ParseStats::default(), false);
    for d in data {
        parse_datagram(d, Some(1), &mut sockets, &mut stats, &mut intr);
    }
    assert_eq!(sockets.len(), SOCKETS);
    Snapshot::new(ms, SocketSource::SockDiag, sockets)
}

fn benches(c: &mut Criterion) {
    let first = datagrams(10, |_| false);
    let mut group = c.benchmark_group("poll_100k_sockets");
    group.throughput(Throughput::Elements(SOCKETS as u64));
    group.bench_function("parse", |b| {
        let mut out = Vec::with_capacity(SOCKETS);
        b.iter(|| {
            out.clear();
            let (mut stats, mut intr) = (ParseStats::default(), false);
            for d in &first {
                parse_datagram(d, Some(1), &mut out, &mut stats, &mut intr);
            }
            assert_eq!(out.len(), SOCKETS);
        })
    });
    let none = FilterSet::default();
    let polls = [
        ("track_idle_poll", datagrams(1010, |_| false)),
        (
            "track_tenth_moved",
            datagrams(1010, |i| spread(i, 5) % 10 == 0),
        ),
        ("track_all_moved", datagrams(1010, |_| true)),
    ];
    for (name, second) in &polls {
        group.bench_function(*name, |b| {
            b.iter_batched(
                || {
                    let mut tracker = Tracker::new();
                    tracker.observe(&snapshot(0, &first), &none);
                    (tracker, snapshot(1000, second))
                },
                |(mut tracker, next)| {
                    tracker.observe(&next, &none);
                    tracker
                },
                BatchSize::LargeInput,
            )
        });
    }
    let snap = snapshot(0, &first);
    group.bench_function("render_once_json", |b| {
        let mut out = Vec::with_capacity(8 << 20);
        b.iter(|| {
            out.clear();
            let groups = group_rows(tcpipstat::diff::lifetime_rows(&snap, &none), Index::Tuple);
            let report = Report::new(ReportKind::Snapshot, Index::Tuple, (0, 0), 1, groups);
            render(
                &report,
                RenderOptions {
                    format: Format::Json,
                    zeros: false,
                    ..Default::default()
                },
                &mut out,
            )
            .unwrap();
        })
    });
    group.finish();
}

/// Matching 100k sockets against 10,000 filters (ports and addresses), as
/// the tracker does each poll: the index makes it cost about what a few
/// filters cost.
fn filter_benches(c: &mut Criterion) {
    let texts: Vec<String> = (0..10_000u32)
        .map(|i| match i % 3 {
            0 => format!("*:{}-*", 1 + i),
            1 => format!("10.{}.{}.0/24:*-*", (i >> 8) & 255, i & 255),
            _ => format!("*-192.168.{}.{}:443", (i >> 8) & 255, i & 255),
        })
        .collect();
    let many = FilterSet::parse(&texts).unwrap();
    let few = FilterSet::parse(&["*:80-*", "10.0.0.0/8:*-*"]).unwrap();
    let keys: Vec<_> = snapshot(1, &datagrams(0, |_| false))
        .sockets
        .iter()
        .map(|s| s.key)
        .collect();
    let mut group = c.benchmark_group("filters");
    group.throughput(Throughput::Elements(keys.len() as u64));
    for (name, set) in [("match_10k_filters", &many), ("match_2_filters", &few)] {
        group.bench_function(name, |b| {
            b.iter(|| keys.iter().filter(|k| set.matches(k)).count())
        });
    }
    group.finish();
}

/// One exposition of 100k tuple series (the exporter's state after a
/// window of the snapshot's lifetimes), as a scrape that finds a new poll
/// encodes it: throughput is in samples, so the time per element is the
/// scrape CPU per sample `scripts/bench-export.sh` measures end to end.
fn export_benches(c: &mut Criterion) {
    use std::sync::Arc;
    use tcpipstat::export::encode::{body, Format as Exposition};
    use tcpipstat::export::{Exporter, Limits};
    let snap = snapshot(0, &datagrams(10, |_| false));
    let none = FilterSet::default();
    let groups = group_rows(tcpipstat::diff::lifetime_rows(&snap, &none), Index::Tuple);
    let report = Report::new(ReportKind::Window, Index::Tuple, (0, 1000), 1, groups);
    let mut exporter = Exporter::new(Limits {
        max_series: 2 * SOCKETS,
        ..Limits::default()
    });
    exporter.add_window(&report, 1000);
    let state = Arc::new(exporter);
    let text = body(&state, Exposition::Prometheus, 0);
    let samples = text.lines().filter(|l| !l.starts_with('#')).count();
    let mut group = c.benchmark_group("export_100k_series");
    group.throughput(Throughput::Elements(samples as u64));
    for (name, format) in [
        ("encode_prometheus", Exposition::Prometheus),
        ("encode_openmetrics", Exposition::OpenMetrics),
    ] {
        group.bench_function(name, |b| b.iter(|| body(&state, format, text.len())));
    }
    group.finish();
}

criterion_group! {
    name = poll_path;
    config = Criterion::default().sample_size(20);
    targets = benches, filter_benches, export_benches
}
criterion_main!(poll_path);
