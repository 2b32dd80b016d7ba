//! One row per group (tabled): the group key, socket count, then one column
//! per counter. The run's first table fixes the counter columns (those any
//! of its rows has; all-zero ones only with `--zeros`) so that they never
//! move; a counter a later row has outside them is listed under the table.
//! Approximate values carry a `~`. Rows summing the groups past `--top`
//! and those of TIME_WAIT sockets only come last, then the total.

use std::io::{self, Write};

use tabled::{builder::Builder, settings::Style, Table};

use super::{RenderOptions, Report, ReportKind, Summed, Sums};
use crate::aggregate::Group;
use crate::counters::{Counter, Counters};

/// A group as the table keeps it until the end (columns depend on all).
pub struct Row {
    key: String,
    owner: Option<String>,
    sockets: usize,
    counters: Counters,
    /// Smoothed RTT's p50/p90/p99, where the index keeps them.
    rtt: Option<String>,
    /// Handshake times' p50/p90/p99 (a tuple's one), where events timed any.
    handshake: Option<String>,
}

pub fn row(report: &Report<'_>, group: &Group<'_>) -> Row {
    Row {
        key: report.key_value(&group.key),
        owner: group.owner.clone(),
        sockets: group.sockets,
        counters: group.counters,
        rtt: super::rtt_text(report, &group.rtt),
        handshake: super::handshake_text(&group.rtt.handshake),
    }
}

fn summed_row(report: &Report<'_>, key: String, summed: &Summed) -> Row {
    Row {
        key,
        owner: None,
        sockets: summed.sockets,
        counters: summed.counters,
        rtt: super::rtt_text(report, &summed.rtt),
        handshake: super::handshake_text(&summed.rtt.handshake),
    }
}

/// A counter's cell: `~` before an approximate value, `-` where absent.
fn cell(counters: &Counters, counter: Counter) -> String {
    match counters.get(counter) {
        Some(v) if v != 0 && counters.is_approx(counter) => format!("~{v}"),
        Some(v) => v.to_string(),
        None => "-".to_string(),
    }
}

/// The table of `rows` with these counter columns.
fn build(report: &Report<'_>, rows: &[Row], columns: &[Counter]) -> Table {
    let mut builder = Builder::default();
    let owners = rows.iter().any(|r| r.owner.is_some());
    let rtt = rows.iter().any(|r| r.rtt.is_some());
    let handshake = rows.iter().any(|r| r.handshake.is_some());
    let mut header = vec![report.index.name().to_string()];
    if owners {
        header.push("process".to_string());
    }
    header.push("sockets".to_string());
    if rtt {
        header.push("rtt p50/p90/p99".to_string());
    }
    if handshake {
        header.push("handshake".to_string());
    }
    header.extend(columns.iter().map(|c| c.name().to_string()));
    builder.push_record(header);
    for r in rows {
        let mut record = vec![r.key.clone()];
        if owners {
            record.push(r.owner.clone().unwrap_or_default());
        }
        record.push(r.sockets.to_string());
        if rtt {
            record.push(r.rtt.clone().unwrap_or_else(|| "-".to_string()));
        }
        if handshake {
            record.push(r.handshake.clone().unwrap_or_else(|| "-".to_string()));
        }
        record.extend(columns.iter().map(|c| cell(&r.counters, *c)));
        builder.push_record(record);
    }
    builder.build()
}

/// Counters as bits (`Counter as u32`), and back in their order.
fn bits_of(counters: impl Iterator<Item = Counter>) -> u32 {
    counters.fold(0, |bits, c| bits | 1 << c as u32)
}

fn counters_of(bits: u32) -> Vec<Counter> {
    Counter::ALL
        .iter()
        .copied()
        .filter(|c| bits & (1 << *c as u32) != 0)
        .collect()
}

/// Writes the table (and the `~` legend when `legend`); returns the
/// counter columns it fixed for the run, when it is the run's first table
/// with rows.
pub fn end(
    report: &Report<'_>,
    listed: Vec<Row>,
    sums: &Sums,
    legend: bool,
    options: RenderOptions,
    out: &mut dyn Write,
) -> io::Result<Option<u32>> {
    match (report.clock_times(), report.kind) {
        (Some((start, end)), ReportKind::Window) => writeln!(
            out,
            "{start} to {end} ({})",
            super::polls_text(report.polls)
        )?,
        (Some((_, at)), ReportKind::Snapshot) => writeln!(out, "snapshot at {at}")?,
        _ => {}
    }
    if let Some(precision) = &report.precision {
        super::text::write_precision(precision, report.kind, out)?;
    }
    let mut fixed = None;
    if sums.groups() == 0 {
        if report.tcp {
            writeln!(out, "(no TCP socket activity)")?;
        }
    } else {
        let rows = rows_with_sums(report, listed, sums);
        let bits = options.columns.unwrap_or_else(|| {
            let shown = Counter::ALL.iter().copied().filter(|c| {
                rows.iter()
                    .any(|r| r.counters.get(*c).is_some_and(|v| v != 0 || options.zeros))
            });
            bits_of(shown)
        });
        if options.columns.is_none() {
            fixed = Some(bits);
        }
        write_table(report, &rows, counters_of(bits), options, out)?;
        write_outside_columns(&rows, bits, out)?;
        if !sums.others.is_empty() {
            writeln!(out, "(others: {})", super::others_text(&sums.others, "row"))?;
        }
        if !sums.time_wait.is_empty() {
            let text = super::time_wait_text(&sums.time_wait, report.index, "row");
            writeln!(out, "(TIME_WAIT: {text})")?;
        }
    }
    if legend {
        writeln!(out, "({})", super::APPROX_LEGEND)?;
    }
    if let Some(system) = &report.system {
        write_system(system, out)?;
    }
    Ok(fixed)
}

/// The listed rows, then one for each sum of groups and the total.
fn rows_with_sums(report: &Report<'_>, mut rows: Vec<Row>, sums: &Sums) -> Vec<Row> {
    if !sums.others.is_empty() {
        let key = format!("others: {} groups", sums.others.groups);
        rows.push(summed_row(report, key, &sums.others));
    }
    if !sums.time_wait.is_empty() {
        let tw = &sums.time_wait;
        let key = match report.index {
            crate::aggregate::Index::Tuple => format!("TIME_WAIT: {} sockets", tw.time_wait),
            _ => format!("TIME_WAIT: {} groups", tw.groups),
        };
        rows.push(summed_row(report, key, tw));
    }
    if sums.entries() > 1 {
        rows.push(Row {
            key: "total".to_string(),
            owner: None,
            sockets: sums.sockets,
            counters: sums.totals,
            rtt: super::rtt_text(report, &sums.rtt),
            handshake: super::handshake_text(&sums.rtt.handshake),
        });
    }
    rows
}

/// The table, leaving out the columns past the terminal's width, rightmost
/// first, and saying so.
fn write_table(
    report: &Report<'_>,
    rows: &[Row],
    mut columns: Vec<Counter>,
    options: RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut left_out = 0;
    let table = loop {
        let mut table = build(report, rows, &columns);
        table.with(Style::sharp());
        let fits = options
            .width
            .is_none_or(|w| table.total_width() <= usize::from(w));
        if fits || columns.len() <= 1 {
            break table;
        }
        columns.pop();
        left_out += 1;
    };
    writeln!(out, "{table}")?;
    if left_out > 0 {
        writeln!(
            out,
            "({left_out} more counter column{} do not fit this terminal: widen it, or use --format text or json)",
            if left_out == 1 { "" } else { "s" }
        )?;
    }
    Ok(())
}

/// Counters rows have outside the columns the run's first table fixed,
/// one line per row that has any: no number is left out.
fn write_outside_columns(rows: &[Row], columns: u32, out: &mut dyn Write) -> io::Result<()> {
    let mut said = false;
    for r in rows {
        let outside: Vec<String> = r
            .counters
            .iter()
            .filter(|(c, v)| *v != 0 && columns & (1 << *c as u32) == 0)
            .map(|(c, _)| format!("{} = {}", c.name(), cell(&r.counters, c)))
            .collect();
        if outside.is_empty() {
            continue;
        }
        if !said {
            writeln!(
                out,
                "(counters outside the columns the run's first table fixed:)"
            )?;
            said = true;
        }
        writeln!(out, "  {}: {}", r.key, outside.join(", "))?;
    }
    Ok(())
}

/// The `--system` residuals.
fn write_system(system: &crate::aggregate::SystemSection, out: &mut dyn Write) -> io::Result<()> {
    if system.namespaces > 1 {
        writeln!(
            out,
            "(system: summed over {} namespaces)",
            system.namespaces
        )?;
    }
    let mut builder = Builder::default();
    // The named column only where a source named a part.
    let named = system.residuals.iter().any(|r| !r.named.is_empty());
    let mut header = vec!["counter", "system", "sockets", "unattributed"];
    if named {
        header.extend(["of which named", "unknown"]);
    }
    builder.push_record(header);
    for r in &system.residuals {
        let mut row = vec![
            r.counter.name().to_string(),
            r.system.to_string(),
            r.sockets.to_string(),
            r.unattributed().to_string(),
        ];
        if named {
            let parts: Vec<String> = r
                .named
                .iter()
                .map(|(class, n)| format!("{class}: {n}"))
                .collect();
            row.push(parts.join(", "));
            row.push(r.unknown().to_string());
        }
        builder.push_record(row);
    }
    let mut table = builder.build();
    table.with(Style::sharp());
    writeln!(out, "{table}")
}

#[cfg(test)]
mod tests {
    use crate::report::test_fixtures::{self as fixtures, render_to_string};
    use crate::report::{Format, Report};

    fn table(report: &Report<'_>, zeros: bool) -> String {
        render_to_string(report, Format::Table, zeros)
    }

    fn table_with(report: &Report<'_>, options: crate::report::RenderOptions) -> String {
        let mut out = Vec::new();
        crate::report::render(report, options, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn columns_fixed_by_the_first_table_stay_and_a_narrow_terminal_loses_the_rightmost() {
        use crate::counters::Counter;
        let report = fixtures::window_tuple();
        let options = crate::report::RenderOptions {
            format: Format::Table,
            columns: Some(1 << Counter::OutRsts as u32 | 1 << Counter::BytesSent as u32),
            ..Default::default()
        };
        let wide = table_with(&report, options);
        assert_eq!(
            header(&wide),
            ["tuple", "process", "sockets", "BytesSent", "OutRsts"],
            "{wide}"
        );
        // Two groups: a total row.
        assert!(wide.lines().any(|l| l.starts_with("│ total ")), "{wide}");
        let narrow = table_with(
            &report,
            crate::report::RenderOptions {
                width: Some(80),
                columns: None,
                ..options
            },
        );
        let table_lines = narrow
            .lines()
            .filter(|l| l.starts_with(['┌', '│', '├', '└']));
        assert!(table_lines.clone().count() > 3);
        assert!(
            table_lines.clone().all(|l| l.chars().count() <= 80),
            "{narrow}"
        );
        assert!(
            narrow.contains("more counter columns do not fit this terminal"),
            "{narrow}"
        );
    }

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
    fn window_tuple_ipv4_and_ipv6_with_owners() {
        insta::assert_snapshot!("window_tuple", table(&fixtures::window_tuple(), false));
    }

    #[test]
    fn window_tuple_with_zeros() {
        insta::assert_snapshot!("window_tuple_zeros", table(&fixtures::window_tuple(), true));
    }

    #[test]
    fn all_zero_columns_show_only_with_zeros() {
        let report = fixtures::window_tuple();
        let (hidden, shown) = (
            header(&table(&report, false)),
            header(&table(&report, true)),
        );
        for column in ["TCPTimeouts", "TCPDSACKRecv", "TCPReorderSeen"] {
            assert!(
                !hidden.iter().any(|c| c == column),
                "{column} without --zeros"
            );
            assert!(shown.iter().any(|c| c == column), "{column} with --zeros");
        }
        // BytesSent is zero for one socket only: the column stays.
        assert!(hidden.iter().any(|c| c == "BytesSent"));
    }

    #[test]
    fn the_approximate_mark_is_explained_under_the_table() {
        let out = table(&fixtures::window_tuple(), false);
        assert!(out.contains("~9"), "{out}");
        let legend = out.find("(~ marks a count inferred").expect("the legend");
        assert!(legend > out.rfind('└').unwrap(), "{out}");
    }

    #[test]
    fn columns_start_with_index_owner_and_sockets() {
        let cells = header(&table(&fixtures::window_tuple(), false));
        assert_eq!(cells[..4], ["tuple", "process", "sockets", "BytesSent"]);
        let cells = header(&table(&fixtures::lport_groups(), false));
        assert_eq!(
            cells[..4],
            ["lport", "sockets", "rtt p50/p90/p99", "BytesSent"]
        );
    }

    #[test]
    fn lport_groups_with_closed_sockets() {
        insta::assert_snapshot!("lport_groups", table(&fixtures::lport_groups(), false));
    }

    #[test]
    fn close_report() {
        insta::assert_snapshot!("close", table(&fixtures::close(), false));
    }

    #[test]
    fn close_report_with_precision() {
        insta::assert_snapshot!(
            "close_with_precision",
            table(&fixtures::close_with_precision(), false)
        );
    }

    #[test]
    fn system_residuals() {
        insta::assert_snapshot!("system", table(&fixtures::system(), false));
    }

    #[test]
    fn system_residuals_with_zeros() {
        insta::assert_snapshot!("system_zeros", table(&fixtures::system(), true));
    }

    #[test]
    fn precision_window() {
        insta::assert_snapshot!(
            "precision_window",
            table(&fixtures::precision_window(), false)
        );
    }

    #[test]
    fn namespaces_tuple() {
        insta::assert_snapshot!(
            "namespaces_tuple",
            table(&fixtures::namespaces_tuple(), false)
        );
    }

    #[test]
    fn by_netns() {
        insta::assert_snapshot!("by_netns", table(&fixtures::by_netns(), false));
    }

    #[test]
    fn by_container() {
        insta::assert_snapshot!("by_container", table(&fixtures::by_container(), false));
    }

    #[test]
    fn by_process() {
        insta::assert_snapshot!("by_process", table(&fixtures::by_process(), false));
    }

    #[test]
    fn snapshot_with_listener() {
        insta::assert_snapshot!(
            "snapshot_listener",
            table(&fixtures::snapshot_listener(), false)
        );
    }

    #[test]
    fn snapshot_filtered_empty() {
        insta::assert_snapshot!(
            "snapshot_filtered_empty",
            table(&fixtures::snapshot_filtered_empty(), false)
        );
    }

    #[test]
    fn window_empty() {
        insta::assert_snapshot!("window_empty", table(&fixtures::window_empty(), false));
    }

    #[test]
    fn time_wait_sockets_fold_into_one_row() {
        insta::assert_snapshot!(
            "snapshot_time_wait",
            table(&fixtures::snapshot_time_wait(), false)
        );
    }

    #[test]
    fn top_lists_the_busiest_and_sums_the_others_into_one_row() {
        insta::assert_snapshot!(
            "lport_groups_top_1",
            fixtures::render_with(&fixtures::lport_groups(), fixtures::top(Format::Table, 1))
        );
    }

    #[test]
    fn closed_sockets_rows() {
        insta::assert_snapshot!(
            "window_closed_sockets",
            table(&fixtures::window_closed_sockets(), false)
        );
    }
}
