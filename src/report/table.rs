//! One row per group (tabled): the group key, socket count, then one column
//! per counter that any group has (all-zero columns dropped unless
//! `--zeros`); approximate values carry a `~`.

use std::io::{self, Write};

use tabled::{builder::Builder, settings::Style};

use super::{RenderOptions, Report};
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

pub fn end(
    report: &Report<'_>,
    rows: &[Row],
    options: RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    if let Some(precision) = &report.precision {
        super::text::write_precision(precision, report.kind, out)?;
    }
    let columns: Vec<Counter> = Counter::ALL
        .iter()
        .copied()
        .filter(|c| {
            rows.iter()
                .any(|r| r.counters.get(*c).is_some_and(|v| v != 0 || options.zeros))
        })
        .collect();
    let mut builder = Builder::default();
    let owners = rows.iter().any(|r| r.owner.is_some());
    let mut header = vec![report.index.name().to_string()];
    if owners {
        header.push("process".to_string());
    }
    header.push("sockets".to_string());
    header.extend(columns.iter().map(|c| c.name().to_string()));
    builder.push_record(header);
    for r in rows {
        let mut record = vec![r.key.clone()];
        if owners {
            record.push(r.owner.clone().unwrap_or_default());
        }
        record.push(r.sockets.to_string());
        for c in &columns {
            record.push(match r.counters.get(*c) {
                Some(v) if r.counters.is_approx(*c) => format!("~{v}"),
                Some(v) => v.to_string(),
                None => "-".to_string(),
            });
        }
        builder.push_record(record);
    }
    if rows.is_empty() {
        writeln!(out, "(no TCP socket activity)")?;
    } else {
        let mut table = builder.build();
        table.with(Style::sharp());
        writeln!(out, "{table}")?;
    }
    if let Some(system) = &report.system {
        let mut builder = Builder::default();
        builder.push_record(["counter", "system", "sockets", "unattributed"]);
        for r in &system.residuals {
            builder.push_record([
                r.counter.name().to_string(),
                r.system.to_string(),
                r.sockets.to_string(),
                r.unattributed().to_string(),
            ]);
        }
        let mut table = builder.build();
        table.with(Style::sharp());
        writeln!(out, "{table}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{GroupKey, Index};
    use crate::report::{render, Format, ReportKind};

    #[test]
    fn one_row_per_group_with_only_nonzero_columns() {
        let mut busy = Counters::default();
        busy.set(Counter::BytesSent, 5000, false);
        busy.set(Counter::InSegs, 4, false);
        busy.set(Counter::RetransSegs, 0, false);
        let mut quiet = Counters::default();
        quiet.set(Counter::BytesSent, 10, false);
        let group = |port, counters| Group {
            key: GroupKey::Lport(port),
            counters,
            sockets: 2,
            closed: 0,
            sample: None,
            owner: None,
            history: Default::default(),
        };
        let report = Report::new(
            ReportKind::Window,
            Index::Lport,
            (0, 1000),
            2,
            vec![group(80, busy), group(22, quiet)],
        );
        let mut out = Vec::new();
        render(
            &report,
            RenderOptions {
                format: Format::Table,
                zeros: false,
            },
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].contains("lport")
                && lines[1].contains("BytesSent")
                && lines[1].contains("InSegs")
        );
        assert!(
            !text.contains("RetransSegs"),
            "all-zero column dropped:\n{text}"
        );
        assert!(lines[3].contains("80") && lines[3].contains("5000") && lines[3].contains("~4"));
        assert!(lines[4].contains("22") && lines[4].contains("10") && lines[4].contains("-"));
    }
}
