//! The group series' counter and gauge families, written straight as text.
//!
//! Hand-written rather than through prometheus-client's collectors: those
//! encode every sample's label set anew, label by label through trait
//! objects, which was ~60% of a scrape's CPU at 40,000 tuple series (each
//! has ~7 samples, 4 labels). Here each series' label set is rendered and
//! escaped once per exposition, and its samples copy it. The output is byte
//! for byte what the crate writes for the same families in either format
//! (a test holds the two side by side); every other family still goes
//! through the crate.

use std::fmt::Write as _;

use super::encode::Format;
use super::{snake_case, Exporter, Labels, Series};
use crate::counters::Counter;

/// Each series' label set as it appears between the braces, rendered
/// once into one shared buffer (`text[range]`).
struct Rendered<'a> {
    range: std::ops::Range<usize>,
    series: &'a Series,
}

/// A label set as the text formats write it: `name="value"` joined by
/// commas, values escaped (backslash, double quote, line feed).
pub(super) fn render_labels(labels: &Labels, out: &mut String) {
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        if value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
            for c in value.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
        } else {
            out.push_str(value);
        }
        out.push('"');
    }
}

/// The families the group collectors wrote: one counter family per
/// tcpipstat counter that moved in some series, then the group gauges.
pub(super) fn write_group_families(out: &mut String, state: &Exporter, format: Format) {
    let mut text = String::with_capacity(96 * state.series_count());
    let rendered: Vec<Rendered<'_>> = state
        .all_series()
        .map(|(labels, series)| {
            let start = text.len();
            render_labels(labels, &mut text);
            Rendered {
                range: start..text.len(),
                series,
            }
        })
        .collect();
    write_counters(out, &text, &rendered, format);
    write_gauges(out, &text, &rendered, format);
}

fn write_counters(out: &mut String, text: &str, rendered: &[Rendered<'_>], format: Format) {
    // Which counters moved anywhere, in one pass: most never do, and a
    // family per counter would otherwise walk every series to find out.
    let mut moved = [false; Counter::ALL.len()];
    for r in rendered {
        for (flag, counter) in moved.iter_mut().zip(Counter::ALL) {
            *flag |= r.series.totals.get(*counter).is_some_and(|v| v > 0);
        }
    }
    let mut help = String::new();
    for (counter, _) in Counter::ALL.iter().zip(moved).filter(|(_, m)| *m) {
        if *counter == Counter::CurrEstab {
            // A gauge, among the group gauges.
            continue;
        }
        let name = snake_case(counter.name());
        help.clear();
        let _ = write!(
            help,
            "{} since the exporter started (tcpipstat's {}).",
            counter.name(),
            counter.section().name()
        );
        write_descriptor(out, &name, &help, Kind::Counter, format);
        let mut digits = itoa::Buffer::new();
        for r in rendered {
            if let Some(value) = r.series.totals.get(*counter).filter(|v| *v > 0) {
                write_sample_start(out, &name, Kind::Counter, &text[r.range.clone()]);
                out.push_str(digits.format(value));
                out.push('\n');
            }
        }
    }
}

fn write_gauges(out: &mut String, text: &str, rendered: &[Rendered<'_>], format: Format) {
    let mut digits = Digits::default();
    for (name, help, value) in super::encode::GROUP_GAUGES {
        let current = || rendered.iter().filter(|r| r.series.current);
        if !current().any(|r| value(r.series).is_some()) {
            continue;
        }
        write_descriptor(out, name, help, Kind::Gauge, format);
        for r in current() {
            if let Some(v) = value(r.series) {
                write_sample_start(out, name, Kind::Gauge, &text[r.range.clone()]);
                digits.push_float(out, v, format);
                out.push('\n');
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

/// `# HELP` and `# TYPE`: OpenMetrics names a counter family without
/// `_total` and leaves help as is; the Prometheus format names it with
/// `_total` and escapes backslashes and line feeds in help.
fn write_descriptor(out: &mut String, name: &str, help: &str, kind: Kind, format: Format) {
    let total = if kind == Kind::Counter && format == Format::Prometheus {
        "_total"
    } else {
        ""
    };
    for (line, text) in [("# HELP tcpipstat_", None), ("# TYPE tcpipstat_", Some(()))] {
        out.push_str(line);
        out.push_str(name);
        out.push_str(total);
        out.push(' ');
        match text {
            None if format == Format::Prometheus => {
                for c in help.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        c => out.push(c),
                    }
                }
            }
            None => out.push_str(help),
            Some(()) => out.push_str(match kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            }),
        }
        out.push('\n');
    }
}

/// A sample up to its value: `tcpipstat_name[_total]{labels} `.
fn write_sample_start(out: &mut String, name: &str, kind: Kind, labels: &str) {
    out.push_str("tcpipstat_");
    out.push_str(name);
    if kind == Kind::Counter {
        out.push_str("_total");
    }
    if !labels.is_empty() {
        out.push('{');
        out.push_str(labels);
        out.push('}');
    }
    out.push(' ');
}

/// Number formatting buffers, reused from sample to sample.
#[derive(Default)]
struct Digits {
    integer: itoa::Buffer,
    float: dtoa::Buffer,
}

impl Digits {
    /// A gauge's value as each format writes an f64: what dtoa writes (the
    /// formats differ only for values that are not finite, which no group
    /// gauge has). Most gauges are whole numbers (sockets, segments), for
    /// which dtoa's text is the integer's and `.0`, written faster so.
    fn push_float(&mut self, out: &mut String, v: f64, format: Format) {
        if v.fract() == 0.0 && v.is_sign_positive() && v < 1e15 {
            out.push_str(self.integer.format(v as u64));
            out.push_str(".0");
        } else if v.is_finite() {
            out.push_str(self.float.format_finite(v));
        } else if format == Format::OpenMetrics {
            out.push_str(self.float.format(v));
        } else if v.is_nan() {
            out.push_str("NaN");
        } else if v > 0.0 {
            out.push_str("+Inf");
        } else {
            out.push_str("-Inf");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::encode::reference;
    use super::*;
    use crate::aggregate::Index;
    use crate::report::{test_fixtures as fx, Report};

    fn hand_written(state: &Arc<Exporter>, format: Format) -> String {
        let mut out = String::new();
        write_group_families(&mut out, state, format);
        out
    }

    /// Every fixture's state, and one past the series limit (an `other`
    /// series) whose process names need escaping.
    fn states() -> Vec<(&'static str, Arc<Exporter>)> {
        let add = |name, reports: Vec<Report<'static>>, max_series| {
            let mut exporter = Exporter::new(super::super::Limits {
                max_series,
                ..Default::default()
            });
            for (i, report) in reports.iter().enumerate() {
                exporter.add_window(report, 1000 * (i as u64 + 1));
            }
            (name, Arc::new(exporter))
        };
        let mut odd = fx::by_process();
        odd.index = Index::Process;
        for (pid, name) in [(812, "a\"b\nc"), (4242, "back\\slash")] {
            odd.process_names.insert(pid, name.to_string());
        }
        vec![
            add("empty", vec![], 10),
            add(
                "tuple",
                vec![fx::window_tuple(), fx::precision_window()],
                5000,
            ),
            add("lport", vec![fx::lport_groups(), fx::lport_groups()], 5000),
            add("closes", vec![fx::window_closed_sockets()], 5000),
            add("namespaces", vec![fx::namespaces_tuple()], 5000),
            add("pods", vec![fx::by_pod()], 5000),
            add("processes_escaped", vec![odd.clone()], 5000),
            add("past_the_limit", vec![fx::window_tuple(), odd], 1),
        ]
    }

    #[test]
    fn the_hand_written_families_are_what_the_crate_writes_byte_for_byte() {
        for (name, state) in states() {
            for format in [Format::Prometheus, Format::OpenMetrics] {
                let mine = hand_written(&state, format);
                let theirs = reference::group_families(&state, format);
                // The crate's family order is the same; its sample order is
                // the map's, which both walk alike.
                assert_eq!(mine, theirs, "{name}, {format:?}");
            }
        }
        // The cases are not vacuous: samples, escapes and `other` occur.
        let all: String = states()
            .iter()
            .map(|(_, s)| hand_written(s, Format::Prometheus))
            .collect();
        for needle in [
            "tcpipstat_bytes_sent_total{",
            "tcpipstat_rtt_seconds{",
            "tcpipstat_cwnd_segments{",
            r#"process="a\"b\nc["#,
            r#"process="back\\slash["#,
            r#"="other""#,
        ] {
            assert!(all.contains(needle), "no {needle} in\n{all}");
        }
    }

    #[test]
    fn whole_gauges_are_written_as_dtoa_writes_them() {
        let mut digits = Digits::default();
        let mut reference = dtoa::Buffer::new();
        let mut values = vec![0.0, 1.0, 7.0, 10.0, 1e14, 999_999_999_999_999.0, 1e15, 2e15];
        values.extend((0..2000).map(|i| f64::from(i) * 37.0));
        values.extend([0.5, 1e-5, 0.000_123, 123.456, -0.0, -3.0]);
        for v in values {
            let mut mine = String::new();
            digits.push_float(&mut mine, v, Format::Prometheus);
            assert_eq!(mine, reference.format_finite(v), "{v}");
        }
    }

    #[test]
    fn label_values_are_escaped_as_the_text_formats_want() {
        let mut out = String::new();
        render_labels(
            &vec![("a", "x\"y".to_string()), ("b", "c:\\d\ne".to_string())],
            &mut out,
        );
        assert_eq!(out, r#"a="x\"y",b="c:\\d\ne""#);
    }
}
