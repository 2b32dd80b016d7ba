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
    sockets: usize,
    counters: Counters,
}

pub fn row(group: &Group<'_>) -> Row {
    Row {
        key: group.key.value(),
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
    let columns: Vec<Counter> = Counter::ALL
        .iter()
        .copied()
        .filter(|c| {
            rows.iter()
                .any(|r| r.counters.get(*c).is_some_and(|v| v != 0 || options.zeros))
        })
        .collect();
    let mut builder = Builder::default();
    let mut header = vec![report.index.name().to_string(), "sockets".to_string()];
    header.extend(columns.iter().map(|c| c.name().to_string()));
    builder.push_record(header);
    for r in rows {
        let mut record = vec![r.key.clone(), r.sockets.to_string()];
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
