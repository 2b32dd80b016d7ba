//! Criterion benches of the per-poll user-space path: parsing sock_diag
//! datagrams, tracking (diff + attribution) and rendering JSON, for 10k
//! sockets. The kernel's own cost is measured by scripts/bench.sh.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use tcpipstat::aggregate::{group_rows, Index};
use tcpipstat::diff::Tracker;
use tcpipstat::filter::FilterSet;
use tcpipstat::model::{Snapshot, SocketSource};
use tcpipstat::report::{render, Format, RenderOptions, Report, ReportKind};
use tcpipstat::source::sockdiag::{parse_datagram, ParseStats};

const SOCKETS: usize = 10_000;

/// One SOCK_DIAG_BY_FAMILY message as 6.18 sends it: header, a 280-byte
/// tcp_info, the congestion name and skmeminfo.
fn message(i: usize, bytes_sent: u64) -> Vec<u8> {
    let mut payload = vec![0u8; 72];
    payload[0] = libc::AF_INET as u8;
    payload[1] = 1;
    payload[4..6].copy_from_slice(&(10_000 + (i % 50_000) as u16).to_be_bytes());
    payload[6..8].copy_from_slice(&80u16.to_be_bytes());
    payload[8..12].copy_from_slice(&[10, 0, (i >> 8) as u8, i as u8]);
    payload[24..28].copy_from_slice(&[10, 1, 0, 1]);
    payload[44..48].copy_from_slice(&(i as u32 + 1).to_ne_bytes());
    let mut info = vec![0u8; 280];
    info[0] = 1;
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

/// ~32 KiB datagrams, as the kernel packs a dump.
fn datagrams(bytes_sent: u64) -> Vec<Vec<u8>> {
    let mut out = vec![Vec::new()];
    for i in 0..SOCKETS {
        let m = message(i, bytes_sent + i as u64);
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
    Snapshot::new(ms, SocketSource::SockDiag, sockets)
}

fn benches(c: &mut Criterion) {
    let first = datagrams(1_000_000);
    let second = datagrams(2_000_000);
    let mut group = c.benchmark_group("poll_10k_sockets");
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
    group.bench_function("track_second_poll", |b| {
        b.iter_batched(
            || {
                let mut tracker = Tracker::new();
                tracker.observe(&snapshot(0, &first), &none);
                (tracker, snapshot(1000, &second))
            },
            |(mut tracker, next)| {
                tracker.observe(&next, &none);
                tracker
            },
            BatchSize::LargeInput,
        )
    });
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

/// Matching 10k sockets against 10,000 filters (ports and addresses), as
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
    let keys: Vec<_> = snapshot(1, &datagrams(1_000_000))
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

criterion_group! {
    name = poll_path;
    config = Criterion::default().sample_size(20);
    targets = benches, filter_benches
}
criterion_main!(poll_path);
