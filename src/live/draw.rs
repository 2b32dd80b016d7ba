//! Drawing the live view onto a ratatui frame: a header whose items wrap
//! whole, the table with the columns that fit (see `columns`), the
//! selected group's chart, the latest note, the keys, and the help and
//! notes popups. Nothing here changes the view's state but the table's
//! scroll offset.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Sparkline, Table, TableState};
use ratatui::Frame;

use super::columns::{self, Column};
use super::view::{LiveRow, Popup, ViewState};
use crate::report::human_rate;

/// Lines the latest note may take under the chart.
const NOTE_LINES: usize = 2;
/// Lines of the selected group's chart: its title, the rates, 3 of bars.
const CHART_HEIGHT: u16 = 5;
/// A terminal lower than this has no chart: the table needs the rows.
const CHART_MIN_TERMINAL: u16 = 20;

const HELP: [&str; 14] = [
    "q, Esc, Ctrl-C  quit (the terminal is restored)",
    "↑ ↓ j k PgUp PgDn  select a group: its rates are charted below",
    "s  sort by the next column: send, recv, segs/s, retrans, opens/s, resets/s (with -u: drops/s)",
    "i  group by the next index: tuple, lport, rport, laddr, raddr, process, netns, container",
    "p  group by process (again: back to the index before)",
    "/  filter, as on the command line: *:443-* *-10.0.0.0/8:* (Enter applies; Ctrl-U clears)",
    "space  pause: the view stays, collection goes on",
    "n  the notes raised while the view runs",
    "?  this help (Esc or ? closes it)",
    "",
    "Rates are per second over the last window; B = bytes. retrans = RetransSegs per 100 OutSegs; opens = Active+PassiveOpens; resets = EstabResets+OutRsts+InRsts.",
    "process: the socket's holder, command[pid]; ? unreadable; - none holds it (TIME_WAIT); - (closed before any poll saw its owner), - (unseen) where the column is narrow.",
    "A new index or filter applies from the next window. Columns that do not fit are left out whole (said on the table's top line).",
    "With -u, UDP groups are rows named udp … (udplite …): drops/s = receive drops (sk_drops) per second, ? where no source counts them; recv-q = bytes unread; - in TCP's columns.",
];

impl ViewState {
    pub fn draw(&mut self, frame: &mut Frame) {
        let area = frame.area();
        let header = self.header_lines(area.width);
        let note = self.note_lines(area.width);
        let chart = if area.height >= CHART_MIN_TERMINAL {
            CHART_HEIGHT
        } else {
            0
        };
        let [header_area, body, chart_area, note_area, footer] = Layout::vertical([
            Constraint::Length(header.len() as u16),
            Constraint::Min(3),
            Constraint::Length(chart),
            Constraint::Length(note.len() as u16),
            Constraint::Length(1),
        ])
        .areas(area);
        frame.render_widget(Paragraph::new(header), header_area);
        self.draw_table(frame, body);
        if chart > 0 {
            self.draw_chart(frame, chart_area);
        }
        frame.render_widget(
            Paragraph::new(note).style(Style::new().fg(Color::Yellow)),
            note_area,
        );
        frame.render_widget(Paragraph::new(self.footer_line(area.width)), footer);
        match self.popup {
            Some(Popup::Help) => draw_popup(frame, area, "keys (Esc or ? closes)", &HELP, false),
            Some(Popup::Notes) => {
                let title = format!(
                    "notes: {} in all{} (Esc or n closes)",
                    self.notes_total,
                    if self.notes_total > self.notes.len() as u64 {
                        format!(", the latest {} kept", self.notes.len())
                    } else {
                        String::new()
                    }
                );
                let lines: Vec<String> = if self.notes.is_empty() {
                    vec!["(none yet)".to_string()]
                } else {
                    self.notes
                        .iter()
                        .map(|n| format!("{}  {}", n.at, n.text))
                        .collect()
                };
                let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
                draw_popup(frame, area, &title, &lines, true);
            }
            None => {}
        }
    }

    fn header_lines(&self, width: u16) -> Vec<Line<'static>> {
        let Some(d) = &self.data else {
            return vec![Line::from("tcpipstat: collecting the first window…")];
        };
        let index = if d.index == self.index {
            format!("index {}", self.index.name())
        } else {
            format!(
                "index {} ({} from the next window)",
                d.index.name(),
                self.index.name()
            )
        };
        let mut first = vec![
            "tcpipstat".to_string(),
            time_of_clock(&d.clock).to_string(),
            format!("window {:.1} s", d.window_s),
            format!("sockets tracked {}", d.tracked),
            index,
        ];
        if self.paused {
            first.push("[paused: space resumes]".to_string());
        }
        let mut second = vec![match &d.precision {
            Some(p) => format!("precision: {p}"),
            None => "precision: off (polls only)".to_string(),
        }];
        if let Some(lost) = d.closes_lost {
            second.push(format!("close notices lost {lost}"));
        }
        if !self.filter.is_empty() {
            second.push(format!("filter: {}", self.filter));
        }
        if self.filter != self.data_filter {
            second.push("(filter from the next window)".to_string());
        }
        let t = &d.totals;
        let groups = d.rows.len() + d.rows_dropped;
        let mut third = Vec::new();
        if d.tcp {
            third.extend([
                format!("send {}", human_rate(t.send_bps)),
                format!("recv {}", human_rate(t.recv_bps)),
                format!("{:.0} segs/s", t.segs_ps),
                format!("retrans {}", columns::percent(t.retrans_pct)),
                format!("opens {:.1}/s", t.opens_ps),
                format!("resets {:.1}/s", t.resets_ps),
            ]);
        }
        if let Some(u) = t.udp {
            third.push(match u.drops_ps {
                Some(d) => format!("udp drops {d:.1}/s"),
                None => "udp drops ?".to_string(),
            });
            third.push(format!("recv-q {} B", u.recv_queue));
        }
        if let Some(first) = third.first_mut() {
            first.insert_str(0, "total: ");
        }
        third.push(format!(
            "({groups} group{}{})",
            if groups == 1 { "" } else { "s" },
            if d.rows_dropped > 0 {
                format!(", {} quietest not listed", d.rows_dropped)
            } else {
                String::new()
            }
        ));
        [first, second, third]
            .iter()
            .flat_map(|items| flow(items, width))
            .map(Line::from)
            .collect()
    }

    fn draw_table(&mut self, frame: &mut Frame, area: Rect) {
        let index = self.data.as_ref().map_or(self.index, |d| d.index);
        let rows: &[LiveRow] = self.data.as_ref().map_or(&[], |d| &d.rows);
        let owners = rows.iter().any(|r| r.owner.is_some());
        let (tcp, udp) = self.data.as_ref().map_or((true, false), |d| (d.tcp, d.udp));
        let all = columns::columns(index, owners, tcp, udp);
        let sorted = self.sort.column();
        let titles: Vec<String> = all
            .iter()
            .map(|c| match c.title(index) {
                title if *c == sorted => format!("{title}▼"),
                title => title.to_string(),
            })
            .collect();
        // Only the rows in view are made cells, and they size the columns
        // (a long value scrolled away does not cost a column).
        let visible = usize::from(area.height.saturating_sub(2));
        let (offset, selected) = scroll(self.table.offset(), self.table.selected(), visible);
        let mut texts: Vec<Vec<String>> = rows
            .iter()
            .skip(offset)
            .take(visible)
            .map(|r| all.iter().map(|c| c.cell(r)).collect())
            .collect();
        let fit = fit_columns(&all, &titles, &mut texts, index, sorted, area.width);
        let at: Vec<usize> = fit
            .shown
            .iter()
            .filter_map(|(c, _)| all.iter().position(|a| a == c))
            .collect();
        let cell = |column: Column, text: String| {
            if column.numeric() {
                Cell::from(Line::from(text).right_aligned())
            } else {
                Cell::from(text)
            }
        };
        let header = Row::new(at.iter().map(|&i| cell(all[i], titles[i].clone())))
            .style(Style::new().add_modifier(Modifier::BOLD));
        let rows: Vec<Row> = texts
            .into_iter()
            .map(|mut row| {
                Row::new(
                    at.iter()
                        .map(|&i| cell(all[i], std::mem::take(&mut row[i]))),
                )
            })
            .collect();
        let mut block = Block::new().borders(Borders::TOP);
        let room = area.width.saturating_sub(2);
        if let Some(text) = columns::left_out_text(&fit.left_out, index, room) {
            block = block.title(Line::from(text).right_aligned());
        }
        let table = Table::new(rows, fit.shown.iter().map(|(_, w)| Constraint::Length(*w)))
            .header(header)
            .column_spacing(columns::GAP)
            .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
            .block(block);
        *self.table.offset_mut() = offset;
        let mut in_view = TableState::default().with_selected(selected);
        frame.render_stateful_widget(table, area, &mut in_view);
    }

    fn draw_chart(&self, frame: &mut Frame, area: Rect) {
        let latest = self.history.back();
        let title = match (&self.selected_key, latest) {
            (Some(key), Some(_)) => format!("{key}  (last {} windows)", self.history.len()),
            _ => "no group selected".to_string(),
        };
        let block = Block::new().borders(Borders::TOP).title(title);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let halves = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .spacing(1)
            .split(inner);
        // A UDP group charts its drops and its bytes unread.
        let udp = self.selected_row().is_some_and(|r| r.udp.is_some());
        let names = if udp {
            ["drops/s", "recv-q"]
        } else {
            ["send", "recv"]
        };
        for (at, (name, half)) in names.into_iter().zip(halves.iter()).enumerate() {
            let value = |h: &(u64, u64)| if at == 0 { h.0 } else { h.1 };
            let [label, bars] =
                Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(*half);
            if let Some(latest) = latest {
                let text = match (udp, at) {
                    (false, _) => format!("{name} {}", human_rate(value(latest) as f64)),
                    (true, 0) => format!("{name} {}", value(latest)),
                    (true, _) => format!("{name} {} B", value(latest)),
                };
                frame.render_widget(Paragraph::new(text), label);
            }
            // The newest windows that fit, right-aligned like top's graphs.
            let skip = self.history.len().saturating_sub(usize::from(bars.width));
            let data: Vec<u64> = self.history.iter().skip(skip).map(value).collect();
            frame.render_widget(Sparkline::default().data(&data), bars);
        }
    }

    /// The latest note, wrapped over at most [`NOTE_LINES`] lines.
    fn note_lines(&self, width: u16) -> Vec<Line<'static>> {
        let Some(note) = self.notes.back() else {
            return Vec::new();
        };
        let mut lines = wrap(&format!("note {}: {}", note.at, note.text), width);
        if lines.len() > NOTE_LINES {
            lines.truncate(NOTE_LINES);
            let more = " … (n)";
            let last = &mut lines[NOTE_LINES - 1];
            while !last.is_empty() && width_of(last) + width_of(more) > width {
                last.pop();
            }
            // At a word's end, not inside one.
            let end = last.rfind(' ').unwrap_or(last.len());
            last.truncate(end);
            last.push_str(more);
        }
        lines.into_iter().map(Line::from).collect()
    }

    fn footer_line(&self, width: u16) -> Line<'static> {
        if let Some(prompt) = &self.editing {
            let text = if prompt.selected {
                Span::styled(
                    prompt.text.clone(),
                    Style::new().add_modifier(Modifier::REVERSED),
                )
            } else {
                Span::raw(prompt.text.clone())
            };
            return Line::from(vec![
                Span::raw("filter: "),
                text,
                Span::raw("_  (Enter applies, Esc cancels, Ctrl-U clears, empty lifts it)"),
            ]);
        }
        if let Some(err) = &self.filter_error {
            return Line::from(format!("bad filter: {err}  (/ to edit)"));
        }
        let keys = [
            "q quit",
            "↑↓ select",
            "s sort",
            "i index",
            "p by process",
            "/ filter",
            "space pause",
            "n notes",
        ];
        let help = "? help";
        let mut line = String::new();
        for key in keys {
            if width_of(&line) + width_of(key) + width_of(help) + 4 <= width {
                line.push_str(key);
                line.push_str("  ");
            }
        }
        line.push_str(help);
        Line::from(line)
    }
}

/// The columns that fit `width`, each as wide as its title and texts. A
/// process column left out for the long label of sockets closed before
/// any poll saw them is shown when it fits with the narrow form (and
/// `texts` then carry it).
fn fit_columns(
    all: &[Column],
    titles: &[String],
    texts: &mut [Vec<String>],
    index: crate::aggregate::Index,
    sorted: Column,
    width: u16,
) -> columns::Fit {
    let mut needed: Vec<u16> = titles.iter().map(|t| width_of(t)).collect();
    for row in texts.iter() {
        for (need, text) in needed.iter_mut().zip(row) {
            *need = (*need).max(width_of(text));
        }
    }
    let fit = columns::fit(all, &needed, index, sorted, width);
    let Some(p) = all.iter().position(|c| *c == Column::Process) else {
        return fit;
    };
    if !fit.left_out.contains(&Column::Process) {
        return fit;
    }
    let narrow: Vec<String> = texts.iter().map(|r| columns::narrow_owner(&r[p])).collect();
    needed[p] = narrow
        .iter()
        .map(|t| width_of(t))
        .fold(width_of(&titles[p]), u16::max);
    let retry = columns::fit(all, &needed, index, sorted, width);
    if retry.left_out.contains(&Column::Process) {
        return fit;
    }
    for (row, owner) in texts.iter_mut().zip(narrow) {
        row[p] = owner;
    }
    retry
}

/// A popup of `lines` wrapped to its width; `newest_last` keeps the end
/// in view when they do not all fit.
fn draw_popup(frame: &mut Frame, area: Rect, title: &str, lines: &[&str], newest_last: bool) {
    let width = 100.min(area.width);
    let inner = width.saturating_sub(2);
    let mut wrapped: Vec<String> = lines.iter().flat_map(|l| wrap(l, inner)).collect();
    let room = usize::from(area.height.saturating_sub(2));
    if newest_last && wrapped.len() > room {
        wrapped.drain(..wrapped.len() - room);
    }
    let height = (wrapped.len() as u16 + 2).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(wrapped.into_iter().map(Line::from).collect::<Vec<_>>())
            .block(Block::new().borders(Borders::ALL).title(title.to_string())),
        popup,
    );
}

/// The first row in view, kept from `offset` unless the selection moved
/// out of view, and the selection's place among the rows in view.
fn scroll(offset: usize, selected: Option<usize>, visible: usize) -> (usize, Option<usize>) {
    let offset = match selected {
        Some(at) if at < offset => at,
        Some(at) if visible > 0 && at >= offset + visible => at + 1 - visible,
        _ => offset,
    };
    (offset, selected.map(|at| at - offset))
}

/// Cells `text` takes on a terminal.
fn width_of(text: &str) -> u16 {
    u16::try_from(Span::raw(text).width()).unwrap_or(u16::MAX)
}

/// Items on lines of at most `width` cells, two spaces apart; an item is
/// never split (one wider than the line has a line of its own).
fn flow(items: &[String], width: u16) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for item in items {
        if !line.is_empty() && width_of(&line) + 2 + width_of(item) > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push_str("  ");
        }
        line.push_str(item);
    }
    lines.push(line);
    lines
}

/// Words on lines of at most `width` cells; a word wider than a line is
/// split.
fn wrap(text: &str, width: u16) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && width_of(&line) + 1 + width_of(word) > width {
            lines.push(std::mem::take(&mut line));
        } else if !line.is_empty() {
            line.push(' ');
        }
        for ch in word.chars() {
            let mut buf = [0u8; 4];
            if !line.is_empty() && width_of(&line) + width_of(ch.encode_utf8(&mut buf)) > width {
                lines.push(std::mem::take(&mut line));
            }
            line.push(ch);
        }
    }
    lines.push(line);
    lines
}

/// The time of day of a report's RFC 3339 clock (`04:30:35.740Z`); other
/// clocks (seconds since the start) as they are.
fn time_of_clock(clock: &str) -> &str {
    clock.split_once('T').map_or(clock, |(_, time)| time)
}
