//! One row per group (tabled): the group key, socket count, then one column
//! per counter that any group has (all-zero columns dropped unless
//! `--zeros`); approximate values carry a `~`.

use std::io::{self, Write};

use tabled::{builder::Builder, settings::Style, Table};

use super::{RenderOptions, Report, ReportKind};
use crate::aggregate::Group;
use crate::counters::{Counter, Counters};

/// A group as the table keeps it until the end (columns depend on all).
pub struct Row {
    key: String,
    owner: Option<String>,
    sockets: usize,
    counters: Counters,
}

pub fn row(report: &Report<'_>, group: &Group<'_>) -> Row {
    Row {
        key: report.key_value(&group.key),
        owner: group.owner.clone(),
        sockets: group.sockets,
        counters: group.counters,
    }
}

/// The table of `rows` (and a total row) with these counter columns.
fn build(report: &Report<'_>, rows: &[Row], total: Option<&Row>, columns: &[Counter]) -> Table {
    let mut builder = Builder::default();
    let owners = rows.iter().any(|r| r.owner.is_some());
    let mut header = vec![report.index.name().to_string()];
    if owners {
        header.push("process".to_string());
    }
    header.push("sockets".to_string());
    header.extend(columns.iter().map(|c| c.name().to_string()));
    builder.push_record(header);
    for r in rows.iter().chain(total) {
        let mut record = vec![r.key.clone()];
        if owners {
            record.push(r.owner.clone().unwrap_or_default());
        }
        record.push(r.sockets.to_string());
        for c in columns {
            record.push(match r.counters.get(*c) {
                Some(v) if v != 0 && r.counters.is_approx(*c) => format!("~{v}"),
                Some(v) => v.to_string(),
                None => "-".to_string(),
            });
        }
        builder.push_record(record);
    }
    builder.build()
}

pub fn end(
    report: &Report<'_>,
    rows: &[Row],
    totals: &Counters,
    options: RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
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
    let mut columns: Vec<Counter> = Counter::ALL
        .iter()
        .copied()
        .filter(|c| {
            options.sticky_columns & (1 << *c as u32) != 0
                || rows
                    .iter()
                    .any(|r| r.counters.get(*c).is_some_and(|v| v != 0 || options.zeros))
        })
        .collect();
    let approx_shown = rows.iter().any(|r| {
        columns
            .iter()
            .any(|c| r.counters.is_approx(*c) && r.counters.value(*c) != 0)
    });
    if approx_shown {
        writeln!(out, "({})", super::APPROX_LEGEND)?;
    }
    let total = (rows.len() > 1).then(|| Row {
        key: "total".to_string(),
        owner: None,
        sockets: rows.iter().map(|r| r.sockets).sum(),
        counters: *totals,
    });
    if rows.is_empty() {
        writeln!(out, "(no TCP socket activity)")?;
    } else {
        // Columns past the terminal's width are left out, rightmost first.
        let mut left_out = 0;
        let table = loop {
            let mut table = build(report, rows, total.as_ref(), &columns);
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
        if report.hidden_groups > 0 {
            writeln!(out, "({})", super::hidden_text(report.hidden_groups))?;
        }
        if left_out > 0 {
            writeln!(
                out,
                "({left_out} more counter column{} do not fit this terminal: widen it, or use --format text or json)",
                if left_out == 1 { "" } else { "s" }
            )?;
        }
    }
    if let Some(system) = &report.system {
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
        writeln!(out, "{table}")?;
    }
    Ok(())
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
    fn columns_shown_before_stay_and_a_narrow_terminal_loses_the_rightmost() {
        use crate::counters::Counter;
        let report = fixtures::window_tuple();
        let options = crate::report::RenderOptions {
            format: Format::Table,
            sticky_columns: 1 << Counter::OutRsts as u32,
            ..Default::default()
        };
        let wide = table_with(&report, options);
        assert!(header(&wide).contains(&"OutRsts".to_string()), "{wide}");
        // Two groups: a total row.
        assert!(wide.lines().any(|l| l.starts_with("│ total ")), "{wide}");
        let narrow = table_with(
            &report,
            crate::report::RenderOptions {
                width: Some(80),
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
    fn the_approximate_mark_is_explained_above_the_table() {
        let out = table(&fixtures::window_tuple(), false);
        assert!(out.contains("~9"), "{out}");
        assert!(out.starts_with("(~ marks a count inferred"), "{out}");
    }

    #[test]
    fn columns_start_with_index_owner_and_sockets() {
        let cells = header(&table(&fixtures::window_tuple(), false));
        assert_eq!(cells[..4], ["tuple", "process", "sockets", "BytesSent"]);
        let cells = header(&table(&fixtures::lport_groups(), false));
        assert_eq!(cells[..3], ["lport", "sockets", "BytesSent"]);
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
}
