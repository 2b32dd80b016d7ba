//! The mixed short-connection workload (scripts/mixed.py: IPv4 and IPv6,
//! lives of 1 ms to 1 s, 0 to 1 MB each way, graceful by either side,
//! shutdown first, SO_LINGER 0 aborts, refused connects) in a private
//! namespace, under tcpipstat in plain polling, in precision mode, and in
//! precision mode's `--onclose` reports. Opens, fails and resets must
//! equal the namespace's MIB; each socket's BytesReceived the bytes its
//! application read, for every connection that was not aborted. Root is
//! needed (namespaces, perf tracepoints); without it each test prints SKIP.

mod common;

use std::collections::HashMap;
use std::thread::sleep;
use std::time::Duration;

use common::{json_reports, wait_output, Netns};

const CONNECTIONS: &str = "150";
const SPREAD_S: f64 = 2.0;
const MAX_LIFE_S: f64 = 1.0;
const STATE_COUNTERS: [&str; 4] = ["ActiveOpens", "PassiveOpens", "AttemptFails", "EstabResets"];
/// Runs whose ring lost events tell so, and are tried again (a busy
/// machine); exactness is only promised without loss.
const ATTEMPTS: usize = 3;

/// One run at a time: precision runs see the whole host's events, and the
/// workload is timing-sensitive enough without a second one beside it.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

type Tuple = (String, u64, String, u64);

/// What one run gave: the tool's counters per tuple, the namespace's Tcp
/// MIB, the workload's truth, and the events the tool's rings lost.
struct Run {
    sockets: HashMap<Tuple, HashMap<String, u64>>,
    /// The groups of each tuple as reported, to show what went wrong.
    groups: HashMap<Tuple, Vec<serde_json::Value>>,
    mib: HashMap<String, u64>,
    truth: serde_json::Value,
    events_lost: u64,
    stdout: String,
}

fn namespace_mib(ns: &Netns) -> HashMap<String, u64> {
    let out = common::run_ok(ns.command("cat").arg("/proc/net/snmp"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let tcp: Vec<&str> = text.lines().filter(|l| l.starts_with("Tcp:")).collect();
    let names = tcp[0].split_whitespace().skip(1);
    let values = tcp[1].split_whitespace().skip(1);
    names
        .zip(values)
        .filter_map(|(n, v)| Some((n.to_string(), v.parse().ok()?)))
        .collect()
}

fn run_workload(tool_args: &[&str], seed: u64) -> Run {
    let ns = Netns::new("mixed");
    let window = format!("{}s", SPREAD_S + MAX_LIFE_S + 5.0);
    let mut args = tool_args.to_vec();
    args.extend(["--timeout", &window]);
    let child = ns.spawn_tcpipstat(&args);
    sleep(Duration::from_millis(1500));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/mixed.py");
    let work = ns
        .command("python3")
        .args([script, "--connections", CONNECTIONS])
        .args(["--spread", &SPREAD_S.to_string()])
        .args(["--max-life", &MAX_LIFE_S.to_string()])
        .args(["--seed", &seed.to_string()])
        .output()
        .expect("run scripts/mixed.py");
    let mib = namespace_mib(&ns);
    let out = wait_output(child);
    assert!(
        work.status.success(),
        "workload: {}",
        String::from_utf8_lossy(&work.stderr)
    );
    let truth: serde_json::Value = serde_json::from_slice(&work.stdout).expect("truth JSON");
    let reports = json_reports(&out.stdout);
    let mut sockets: HashMap<Tuple, HashMap<String, u64>> = HashMap::new();
    let mut groups: HashMap<Tuple, Vec<serde_json::Value>> = HashMap::new();
    let mut events_lost = 0;
    for report in &reports {
        events_lost = events_lost.max(report["precision"]["events_lost"].as_u64().unwrap_or(0));
        for group in report["groups"].as_array().into_iter().flatten() {
            let k = &group["key"];
            let key = (
                k["laddr"].as_str().unwrap_or("").to_string(),
                k["lport"].as_u64().unwrap_or(0),
                k["raddr"].as_str().unwrap_or("").to_string(),
                k["rport"].as_u64().unwrap_or(0),
            );
            groups.entry(key.clone()).or_default().push(group.clone());
            let counts = sockets.entry(key).or_default();
            for section in group["counters"].as_object().into_iter().flatten() {
                for (name, value) in section.1.as_object().into_iter().flatten() {
                    *counts.entry(name.clone()).or_default() += value.as_u64().unwrap_or(0);
                }
            }
        }
    }
    Run {
        sockets,
        groups,
        mib,
        truth,
        events_lost,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

/// Each end's lives by tuple (a tuple can serve two lives: a client port
/// taken again while the last life's server end sits in TIME_WAIT), with
/// the bytes each end's application read and how the connection ended.
fn lives_by_tuple(truth: &serde_json::Value) -> HashMap<Tuple, Vec<(u64, String, &'static str)>> {
    let mut lives: HashMap<Tuple, Vec<(u64, String, &'static str)>> = HashMap::new();
    for c in truth["connections"].as_array().expect("connections") {
        let (laddr, lport) = (
            c["laddr"].as_str().unwrap().to_string(),
            c["lport"].as_u64().unwrap(),
        );
        let (raddr, rport) = (
            c["raddr"].as_str().unwrap().to_string(),
            c["rport"].as_u64().unwrap(),
        );
        let end = c["end"].as_str().unwrap().to_string();
        let client = (laddr.clone(), lport, raddr.clone(), rport);
        lives
            .entry(client)
            .or_default()
            .push((c["down"].as_u64().unwrap(), end.clone(), "client"));
        if !c["refused"].as_bool().unwrap() {
            lives
                .entry((raddr, rport, laddr, lport))
                .or_default()
                .push((c["up"].as_u64().unwrap(), end, "server"));
        }
    }
    lives
}

/// Whether this end closed first with nothing that shows it got the
/// peer's FIN: a poll cannot tell whether its notice counts that FIN.
fn closed_first(end: &str, side: &str) -> bool {
    matches!(
        (end, side),
        ("client_first", "client") | ("server_first", "server") | ("shutdown_first", "client")
    )
}

/// Runs the workload under `tool_args` until a run loses no events (at
/// most [`ATTEMPTS`]) and checks it. `exact_for_first_closers`: whether
/// ends that closed first must be exact too (with events), or may be one
/// byte short where marked ~ (polling: see [`closed_first`]).
fn check_mixed_workload(tool_args: &[&str], exact_for_first_closers: bool) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut run = None;
    for attempt in 0..ATTEMPTS {
        let r = run_workload(tool_args, 1000 + attempt as u64);
        if r.events_lost == 0 {
            run = Some(r);
            break;
        }
        eprintln!(
            "attempt {attempt}: {} kernel events lost, again",
            r.events_lost
        );
    }
    let Some(run) = run else {
        eprintln!("SKIP exactness: every attempt lost kernel events (a machine this busy)");
        return;
    };
    let totals: HashMap<&str, u64> = STATE_COUNTERS
        .iter()
        .map(|name| {
            (
                *name,
                run.sockets
                    .values()
                    .map(|s| s.get(*name).copied().unwrap_or(0))
                    .sum(),
            )
        })
        .collect();
    for name in STATE_COUNTERS {
        assert_eq!(
            totals[name], run.mib[name],
            "{name}: sockets {} namespace {} (seed {}): {}",
            totals[name], run.mib[name], run.truth["seed"], run.stdout
        );
    }
    let expected = &run.truth["expected"];
    assert_eq!(
        run.mib["ActiveOpens"],
        expected["ActiveOpens"].as_u64().unwrap()
    );
    let lives = lives_by_tuple(&run.truth);
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (tuple, ends) in &lives {
        let aborted = ends
            .iter()
            .any(|(_, end, _)| matches!(end.as_str(), "client_abort" | "server_abort" | "refused"));
        if aborted {
            continue;
        }
        checked += 1;
        let want: u64 = ends.iter().map(|(bytes, _, _)| bytes).sum();
        let got = run
            .sockets
            .get(tuple)
            .and_then(|s| s.get("BytesReceived"))
            .copied()
            .unwrap_or(0);
        let first_closer = ends.iter().any(|(_, end, side)| closed_first(end, side));
        // Polling cannot tell a first closer from a second one whose
        // close it never saw: then (and only then) its bytes received may
        // be one short, and they must be marked ~.
        let marked_approx = run.groups.get(tuple).is_some_and(|groups| {
            groups
                .iter()
                .any(|g| g["approx"].to_string().contains("\"BytesReceived\""))
        });
        // With events, only where they never showed the socket close (its
        // notice came in a dump that began before its close's events).
        let close_unseen = run.groups.get(tuple).is_some_and(|groups| {
            groups
                .iter()
                .all(|g| !g["states"].to_string().contains("\"CLOSE\""))
        });
        let short_by_a_fin = (!exact_for_first_closers || close_unseen)
            && first_closer
            && marked_approx
            && got + 1 == want;
        if got != want && !short_by_a_fin {
            let reported = run.groups.get(tuple);
            wrong.push(format!(
                "{tuple:?} {ends:?}: BytesReceived {got} in {reported:?}"
            ));
        }
    }
    assert!(checked > 0, "no graceful connection in the workload");
    assert!(
        wrong.is_empty(),
        "{} of {checked} sockets' bytes wrong (seed {}): {wrong:#?}",
        wrong.len(),
        run.truth["seed"]
    );
}

#[test]
fn mixed_short_connections_count_exactly_by_polling() {
    skip_unless_root!();
    check_mixed_workload(&["--index", "tuple", "--system", "--format", "json"], false);
}

#[test]
fn mixed_short_connections_count_exactly_with_precision() {
    if let Some(reason) = common::precision_skip_reason() {
        eprintln!("SKIP {}: {reason}", module_path!());
        return;
    }
    check_mixed_workload(
        &[
            "--precision",
            "tracepoint",
            "--ring-pages",
            "1024",
            "--index",
            "tuple",
            "--system",
            "--format",
            "json",
        ],
        true,
    );
}

#[test]
fn mixed_short_connections_count_exactly_in_onclose_reports() {
    if let Some(reason) = common::precision_skip_reason() {
        eprintln!("SKIP {}: {reason}", module_path!());
        return;
    }
    check_mixed_workload(
        &[
            "--precision",
            "tracepoint",
            "--ring-pages",
            "1024",
            "--onclose",
            "--format",
            "json",
        ],
        true,
    );
}
