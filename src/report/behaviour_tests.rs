//! Tests of what reports say across a run and how they rank and fold
//! groups, in every format: the `~` legend once per run, `--top` and
//! `--sort` with an exact "others" sum, TIME_WAIT folding, table columns
//! fixed by the first table, closed sockets' gauges, and where a close
//! report's counters come from.

use super::test_fixtures::{self as fixtures, render_with};
use super::*;
use crate::aggregate::SortBy;

fn options(format: Format) -> RenderOptions {
    RenderOptions {
        format,
        ..Default::default()
    }
}

/// Renders and returns the text and what the report said.
fn said(report: &Report<'_>, options: RenderOptions) -> (String, Said) {
    let mut out = Vec::new();
    let said = render(report, options, &mut out).unwrap();
    (String::from_utf8(out).unwrap(), said)
}

fn json(report: &Report<'_>, options: RenderOptions) -> serde_json::Value {
    serde_json::from_str(&render_with(report, options)).unwrap()
}

const LEGEND_START: &str = "(~ marks a count inferred";

// ---- the ~ legend -----------------------------------------------------------

#[test]
fn the_approximate_legend_is_said_once_per_run_under_the_first_report_with_a_tilde() {
    // by_container shows no ~: no legend yet.
    let quiet = fixtures::by_container();
    let tilde = fixtures::window_tuple();
    for format in [Format::Text, Format::Table] {
        let mut run = options(format);
        let (out, first) = said(&quiet, run);
        assert!(!out.contains(LEGEND_START), "{format:?}: {out}");
        assert!(!first.legend);
        run = run.after(first);
        let (out, second) = said(&tilde, run);
        assert_eq!(out.matches(LEGEND_START).count(), 1, "{format:?}: {out}");
        assert!(second.legend);
        run = run.after(second);
        let (out, third) = said(&tilde, run);
        assert!(out.contains("~9"), "{format:?}: {out}");
        assert!(!out.contains(LEGEND_START), "{format:?}: said once: {out}");
        assert!(!third.legend);
    }
}

#[test]
fn the_legend_follows_the_groups_and_totals_not_the_heading() {
    let out = render_with(&fixtures::window_tuple(), options(Format::Text));
    let legend = out.find(LEGEND_START).unwrap();
    assert!(legend > out.find("Total of the 2 groups above").unwrap());
    assert!(!out.lines().nth(2).unwrap_or("").starts_with(LEGEND_START));
}

#[test]
fn json_explains_approx_in_every_report_since_each_line_stands_alone() {
    let report = fixtures::window_tuple();
    let mut run = options(Format::Json);
    for _ in 0..2 {
        let (out, said_now) = said(&report, run);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["approx_means"], APPROX_LEGEND);
        run = run.after(said_now);
    }
}

// ---- --top and --sort ---------------------------------------------------------

fn totals_without_ranking(report: &Report<'_>) -> serde_json::Value {
    json(report, options(Format::Json))["totals"].clone()
}

#[test]
fn top_lists_the_busiest_and_sums_the_rest_into_others_with_totals_whole() {
    let report = fixtures::lport_groups();
    let v = json(&report, fixtures::top(Format::Json, 1));
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["key"]["lport"], 443, "the busiest");
    assert_eq!(v["others"]["groups"], 2);
    assert_eq!(v["others"]["sockets"], 3);
    assert_eq!(v["others"]["counters"]["Socket"]["BytesSent"], 208 + 640);
    assert_eq!(v["totals"], totals_without_ranking(&report));
    let text = render_with(&report, fixtures::top(Format::Text, 1));
    assert!(
        text.contains("Others: 2 quieter groups (3 sockets)"),
        "{text}"
    );
    assert!(!text.contains("Local port: 22"), "{text}");
    assert!(
        text.contains("Total of all 3 groups (1 listed, 2 in Others)"),
        "{text}"
    );
    let table = render_with(&report, fixtures::top(Format::Table, 2));
    assert!(table.contains("│ others: 1 groups │ 1 "), "{table}");
    assert!(table.contains("│ total            │ 6 "), "{table}");
}

#[test]
fn a_top_as_large_as_the_report_sums_nothing() {
    let report = fixtures::lport_groups();
    let v = json(&report, fixtures::top(Format::Json, 3));
    assert_eq!(v["groups"].as_array().unwrap().len(), 3);
    assert!(v.get("others").is_none());
    let text = render_with(&report, fixtures::top(Format::Text, 10));
    assert!(!text.contains("Others:"), "{text}");
    assert!(text.contains("Total of the 3 groups above"), "{text}");
}

#[test]
fn sort_ranks_groups_by_the_chosen_counter_largest_first() {
    let report = fixtures::lport_groups();
    let ports = |sort| {
        let v = json(
            &report,
            RenderOptions {
                sort,
                ..options(Format::Json)
            },
        );
        v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["key"]["lport"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    // As they come (busiest first, as the grouper sorts) by default.
    assert_eq!(ports(SortBy::Activity), [443, 22, 8080]);
    // PassiveOpens: 3, 1, 2.
    assert_eq!(
        ports(SortBy::Counter(Counter::PassiveOpens)),
        [443, 8080, 22]
    );
    // BytesReceived: 2400, 0, 96; ties are broken by activity.
    assert_eq!(
        ports(SortBy::Counter(Counter::BytesReceived)),
        [443, 8080, 22]
    );
    // Every group 0: activity decides.
    assert_eq!(
        ports(SortBy::Counter(Counter::TCPTimeouts)),
        [443, 8080, 22]
    );
    // With --top, the first by that counter are listed.
    let v = json(
        &report,
        RenderOptions {
            sort: SortBy::Counter(Counter::PassiveOpens),
            ..fixtures::top(Format::Json, 2)
        },
    );
    assert_eq!(v["groups"][1]["key"]["lport"], 8080);
    assert_eq!(v["others"]["groups"], 1);
}

#[test]
fn sort_names_are_counter_names_in_any_case_or_activity() {
    assert_eq!(
        SortBy::parse("BytesSent"),
        Some(SortBy::Counter(Counter::BytesSent))
    );
    assert_eq!(
        SortBy::parse("retranssegs"),
        Some(SortBy::Counter(Counter::RetransSegs))
    );
    assert_eq!(SortBy::parse("activity"), Some(SortBy::Activity));
    for bad in ["", "Bytes", "BytesSent ", "bogus"] {
        assert_eq!(SortBy::parse(bad), None, "{bad:?}");
    }
    for counter in Counter::ALL {
        assert_eq!(
            SortBy::parse(counter.name()).unwrap().name(),
            counter.name()
        );
    }
}

// ---- TIME_WAIT ------------------------------------------------------------------

#[test]
fn time_wait_only_groups_fold_into_one_line_unless_listed_and_totals_stay_whole() {
    let report = fixtures::snapshot_time_wait();
    let folded = json(&report, options(Format::Json));
    let listed = json(&report, fixtures::time_wait_listed(Format::Json));
    assert_eq!(folded["groups"].as_array().unwrap().len(), 2);
    assert_eq!(listed["groups"].as_array().unwrap().len(), 5);
    assert_eq!(folded["time_wait"]["time_wait_sockets"], 3);
    assert!(listed.get("time_wait").is_none());
    assert_eq!(folded["totals"], listed["totals"]);
    let text = render_with(&report, options(Format::Text));
    assert_eq!(text.matches("TIME-WAIT").count(), 0, "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("TIME_WAIT: "))
            .count(),
        1,
        "{text}"
    );
    assert!(text.contains("TIME_WAIT: 3 sockets summed into this line: --time-wait lists them"));
}

#[test]
fn time_wait_folding_comes_before_top_so_the_top_are_real_connections() {
    let report = fixtures::snapshot_time_wait();
    let v = json(&report, fixtures::top(Format::Json, 1));
    assert_eq!(v["groups"][0]["key"]["lport"], 443);
    assert_eq!(v["others"]["groups"], 1, "the listener");
    assert_eq!(v["time_wait"]["groups"], 3);
    assert_eq!(v["totals"], totals_without_ranking(&report));
}

#[test]
fn a_streamed_snapshot_folds_time_wait_sockets_as_they_come() {
    let report = fixtures::snapshot_time_wait();
    let mut out = Vec::new();
    let mut writer = ReportWriter::begin(&report, options(Format::Text), &mut out).unwrap();
    // The TIME_WAIT sockets first, as a dump may give them.
    for group in report.groups.iter().rev() {
        writer.group(&report, group).unwrap();
    }
    writer.end(&report).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains("TIME-WAIT"), "{text}");
    assert!(text.contains("TIME_WAIT: 3 sockets"), "{text}");
}

#[test]
fn a_report_of_time_wait_sockets_only_is_not_called_empty() {
    let mut report = fixtures::snapshot_time_wait();
    report.groups.retain(|g| g.only_time_wait);
    let text = render_with(&report, options(Format::Text));
    assert!(!text.contains("No TCP socket activity"), "{text}");
    assert!(
        !text.contains("Total of"),
        "one line needs no total: {text}"
    );
    let table = render_with(&report, options(Format::Table));
    assert!(table.contains("TIME_WAIT: 3 sockets"), "{table}");
}

// ---- table columns ------------------------------------------------------------------

/// The header row's cells (the line after the table's top border).
fn header(out: &str) -> Vec<String> {
    out.lines()
        .skip_while(|l| !l.starts_with('┌'))
        .nth(1)
        .expect("a header row")
        .split('│')
        .map(|cell| cell.trim().to_string())
        .filter(|cell| !cell.is_empty())
        .collect()
}

#[test]
fn table_columns_fixed_by_the_first_report_never_move_and_later_counters_are_listed_under_it() {
    let first = fixtures::lport_groups();
    let mut later = fixtures::lport_groups();
    // A counter the first table had no column for, in a later window.
    later.groups[1].counters.set(Counter::TCPOFOQueue, 4, false);
    later.groups[2].counters.set(Counter::TCPTimeouts, 1, false);
    let run = options(Format::Table);
    let (one, said_first) = said(&first, run);
    assert!(said_first.columns.is_some());
    let run = run.after(said_first);
    let (two, said_second) = said(&later, run);
    assert_eq!(said_second.columns, None, "the first table fixed them");
    assert_eq!(header(&one), header(&two));
    assert!(!header(&two).contains(&"TCPOFOQueue".to_string()));
    assert!(
        two.contains("(counters outside the columns the run's first table fixed:)"),
        "{two}"
    );
    assert!(two.contains("  22: TCPOFOQueue = ~4\n"), "{two}");
    assert!(two.contains("  8080: TCPTimeouts = 1\n"), "{two}");
    assert!(
        two.contains("  total: TCPTimeouts = 1, TCPOFOQueue = ~4\n"),
        "{two}"
    );
    // A later report without them has the same columns and no list.
    let (three, _) = said(&first, run.after(said_second));
    assert_eq!(header(&three), header(&one));
    assert!(!three.contains("outside the columns"), "{three}");
}

#[test]
fn an_empty_first_table_fixes_no_columns() {
    let (out, said_empty) = said(&fixtures::window_empty(), options(Format::Table));
    assert!(out.contains("(no TCP socket activity)"));
    assert_eq!(said_empty.columns, None);
}

// ---- closed sockets' gauges ---------------------------------------------------------

fn gauge_names(group: &serde_json::Value) -> Vec<String> {
    group["gauges"]
        .as_object()
        .map(|g| g.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn a_closed_sockets_gauges_are_what_it_last_measured_and_nothing_raw() {
    let v = json(&fixtures::window_closed_sockets(), options(Format::Json));
    let groups = v["groups"].as_array().unwrap();
    for closed in &groups[..3] {
        assert_eq!(closed["gauges_closed"], true);
        for raw in [
            "state",
            "recv_q",
            "send_q",
            "notsent_bytes",
            "unacked",
            "rto_us",
            "snd_wnd",
            "pacing_rate",
        ] {
            assert!(closed["gauges"].get(raw).is_none(), "{raw}: {closed}");
        }
    }
    // (serde_json's map lists them by name.)
    assert_eq!(
        gauge_names(&groups[1]),
        [
            "cwnd",
            "delivery_rate",
            "min_rtt_us",
            "mss",
            "rtt_us",
            "rttvar_us",
            "ssthresh"
        ]
    );
    // A refused connect measured nothing: no gauge at all.
    assert!(gauge_names(&groups[2]).is_empty(), "{}", groups[2]);
    let text = render_with(&fixtures::window_closed_sockets(), options(Format::Text));
    assert!(!text.contains("4294967295"), "{text}");
    assert!(!text.contains("65538"), "{text}");
    assert!(!text.contains("UNCONN"), "{text}");
}

#[test]
fn a_min_rtt_of_u32_max_is_no_rtt_sample_on_live_sockets_too() {
    let v = json(&fixtures::window_closed_sockets(), options(Format::Json));
    let connecting = &v["groups"][3];
    assert_eq!(connecting["gauges"]["state"], "SYN-SENT");
    for none in ["rtt_us", "rttvar_us", "min_rtt_us"] {
        assert!(connecting["gauges"].get(none).is_none(), "{connecting}");
    }
    // A measured one keeps all three.
    let v = json(&fixtures::window_tuple(), options(Format::Json));
    assert_eq!(v["groups"][0]["gauges"]["min_rtt_us"], 900);
}

// ---- where a close report's counters come from ------------------------------------

#[test]
fn close_reports_say_where_their_counters_come_from() {
    let cases = [
        (
            CountedFrom::LastPoll { cleared: false },
            "closed: lifetime counters as last polled, 250 ms or less before the close",
            "last poll",
        ),
        (
            CountedFrom::LastPoll { cleared: true },
            "closed: lifetime counters as last polled: its close notice came with them cleared (an abort)",
            "last poll (close notice cleared by an abort)",
        ),
        (
            CountedFrom::CloseNotice { polled: true },
            "closed: final lifetime counters, from the kernel's close notice",
            "close notice",
        ),
        (
            CountedFrom::CloseNotice { polled: false },
            "closed: lifetime counters from the kernel's close notice (no poll saw it open)",
            "close notice (never polled)",
        ),
        (
            CountedFrom::ClearedNotice,
            "closed: no poll saw it open, and its close notice came with the counters cleared (an abort): only how it ended is known",
            "close notice, cleared by an abort (never polled)",
        ),
        (
            CountedFrom::Events,
            "closed: lifetime counters from kernel events (no poll saw it open, no close notice gave them)",
            "kernel events (never polled)",
        ),
    ];
    for (from, line, field) in cases {
        let mut report = fixtures::close();
        report.kind = ReportKind::Close {
            unseen_ms: 250,
            from,
        };
        let text = render_with(&report, options(Format::Text));
        assert!(text.contains(&format!("\n{line}\n")), "{from:?}: {text}");
        let v = json(&report, options(Format::Json));
        assert_eq!(v["counters_from"], field, "{from:?}");
    }
}

#[test]
fn index_pod_names_namespace_pod_and_container_in_every_format() {
    let report = fixtures::by_pod();
    let text = fixtures::render_to_string(&report, Format::Text, false);
    assert!(text.contains("Pod: shop/web-0 container nginx"), "{text}");
    assert!(
        text.contains("Pod: shop/web-0 (sockets no process holds)"),
        "{text}"
    );
    assert!(
        text.contains("Pod: none (container: docker:3f4e5a6b7c8d)"),
        "{text}"
    );
    let table = fixtures::render_to_string(&report, Format::Table, false);
    assert!(table.contains("shop/web-0/nginx"), "{table}");
    assert!(table.contains("docker:3f4e5a6b7c8d"), "{table}");
    let json: serde_json::Value =
        serde_json::from_str(&fixtures::render_to_string(&report, Format::Json, false)).unwrap();
    let mut keys: Vec<String> = json["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].to_string())
        .collect();
    keys.sort();
    let mut want: Vec<String> = [
        serde_json::json!({"namespace": "shop", "pod": "web-0", "container": "nginx"}),
        serde_json::json!({"namespace": null, "pod": null, "container": "docker:3f4e5a6b7c8d"}),
        serde_json::json!({"namespace": "shop", "pod": "web-0", "container": null}),
    ]
    .iter()
    .map(|k| k.to_string())
    .collect();
    want.sort();
    assert_eq!(keys, want);
}

#[test]
fn handshake_times_show_as_percentiles_per_group_and_one_value_per_tuple() {
    let handshakes = |us: &[u32]| {
        let mut h = crate::rtt::RttHistogram::default();
        for &one in us {
            let mut s = crate::rtt::RttSamples::default();
            s.set_handshake(one);
            h.add_samples(&s);
        }
        h
    };
    let mut report = fixtures::lport_groups();
    report.groups[0]
        .rtt
        .merge(&handshakes(&[20_000, 21_000, 22_000]));
    let text = render_with(&report, options(Format::Text));
    assert!(
        text.contains("Handshake p50/p90/p99: 21.00ms/")
            && text.contains("(3 connects timed from SYN to ESTABLISHED"),
        "{text}"
    );
    let v = json(&report, options(Format::Json));
    let timed = &v["groups"][0]["handshake"];
    assert_eq!(timed["samples"], 3);
    assert_eq!(
        (timed["min_us"].as_u64(), timed["max_us"].as_u64()),
        (Some(20_000), Some(22_000))
    );
    assert!(
        v["groups"][1].get("handshake").is_none(),
        "no connect timed"
    );
    let table = render_with(&report, options(Format::Table));
    assert!(
        table.contains("handshake") && table.contains("21.00ms/"),
        "{table}"
    );

    // A tuple: its one connect's time, and the bucket bounds with it.
    let mut tuple = fixtures::window_tuple();
    let plain = json(&tuple, options(Format::Json));
    assert!(plain.get("rtt_bucket_bounds_us").is_none());
    tuple.groups[0].rtt.merge(&handshakes(&[20_500]));
    let text = render_with(&tuple, options(Format::Text));
    assert!(
        text.contains("Handshake: 20.50ms (a connect's SYN"),
        "{text}"
    );
    let v = json(&tuple, options(Format::Json));
    assert_eq!(v["groups"][0]["handshake"]["max_us"], 20_500);
    assert!(v["rtt_bucket_bounds_us"].is_array());
    assert!(
        v["groups"][0].get("rtt").is_none(),
        "a tuple's RTT is its gauge"
    );
}
