//! One row per group (tabled): the group key, socket count, then one column
//! per counter that any group has (all-zero columns dropped unless
//! `--zeros`); approximate values carry a `~`.

use std::io::{self, Write};

use tabled::{builder::Builder, settings::Style};

use super::{RenderOptions, Report};
use crate::counters::Counter;

pub fn render(report: &Report<'_>, options: RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    let columns: Vec<Counter> = Counter::ALL
        .iter()
        .copied()
        .filter(|c| {
            report
                .groups
                .iter()
                .any(|g| g.counters.get(*c).is_some_and(|v| v != 0 || options.zeros))
        })
        .collect();
    let mut builder = Builder::default();
    let mut header = vec![report.index.name().to_string(), "sockets".to_string()];
    header.extend(columns.iter().map(|c| c.name().to_string()));
    builder.push_record(header);
    for group in &report.groups {
        let mut row = vec![group.key.value(), group.sockets.to_string()];
        for c in &columns {
            row.push(match group.counters.get(*c) {
                Some(v) if group.counters.is_approx(*c) => format!("~{v}"),
                Some(v) => v.to_string(),
                None => "-".to_string(),
            });
        }
        builder.push_record(row);
    }
    if report.groups.is_empty() {
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
