//! The live view's state and drawing, pure: a window report goes in as
//! [`LiveData`] (rates per group), keys go in as crossterm key events and
//! come out as [`Action`]s for the loop, and [`ViewState::draw`] renders
//! onto any ratatui backend (tests use ratatui's `TestBackend`).

use std::collections::VecDeque;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Sparkline, Table, TableState};
use ratatui::Frame;

use crate::aggregate::Index;
use crate::counters::{Counter, Counters};
use crate::filter::FilterSet;
use crate::report::{human_rate, Report};

/// Windows of the selected group's rates kept for its sparkline.
pub const HISTORY: usize = 240;
/// Rows kept from one report, busiest first (the rest are counted).
pub const ROWS_LIMIT: usize = 2000;

/// One group's rates over the last window.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveRow {
    pub key: String,
    pub sockets: usize,
    pub send_bps: f64,
    pub recv_bps: f64,
    pub segs_ps: f64,
    /// Retransmitted segments per 100 sent (none when nothing was sent).
    pub retrans_pct: Option<f64>,
    pub opens_ps: f64,
    pub resets_ps: f64,
    /// For tuples: state, smoothed rtt (µs) and cwnd (segments).
    pub state: Option<&'static str>,
    pub rtt_us: Option<u32>,
    pub cwnd: Option<u32>,
}

/// What one report gives the view.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveData {
    /// RFC 3339 end of the window, or seconds since the start.
    pub clock: String,
    pub window_s: f64,
    pub tracked: usize,
    pub index: Index,
    /// "tracepoint; events lost 0" when precision mode runs.
    pub precision: Option<String>,
    pub closes_lost: Option<u64>,
    pub totals: LiveRow,
    pub rows: Vec<LiveRow>,
    /// Rows past [`ROWS_LIMIT`], left out.
    pub rows_dropped: usize,
    pub notices: Vec<String>,
}

fn sum(counters: &Counters, names: &[Counter]) -> u64 {
    names.iter().map(|c| counters.value(*c)).sum()
}

/// A group's (or the totals') rates from its window counters.
fn rates(key: String, sockets: usize, c: &Counters, seconds: f64) -> LiveRow {
    let per_s = |v: u64| v as f64 / seconds.max(1e-3);
    let out = c.value(Counter::OutSegs);
    let retrans = c.value(Counter::RetransSegs);
    LiveRow {
        key,
        sockets,
        send_bps: per_s(c.value(Counter::BytesSent)),
        recv_bps: per_s(c.value(Counter::BytesReceived)),
        segs_ps: per_s(c.value(Counter::InSegs) + out),
        retrans_pct: (out > 0).then(|| 100.0 * retrans as f64 / out as f64),
        opens_ps: per_s(sum(c, &[Counter::ActiveOpens, Counter::PassiveOpens])),
        resets_ps: per_s(sum(
            c,
            &[Counter::EstabResets, Counter::OutRsts, Counter::InRsts],
        )),
        state: None,
        rtt_us: None,
        cwnd: None,
    }
}

impl LiveData {
    /// The rates of a window report; `tracked`: sockets the run holds.
    pub fn of(report: &Report<'_>, tracked: usize) -> LiveData {
        let seconds = report.end_ms.saturating_sub(report.start_ms) as f64 / 1000.0;
        let mut totals = Counters::default();
        let mut rows: Vec<LiveRow> = report
            .groups
            .iter()
            .map(|g| {
                totals.add(&g.counters);
                let mut row = rates(report.key_value(&g.key), g.sockets, &g.counters, seconds);
                if let Some(sample) = g.sample {
                    row.state = Some(sample.state.name());
                    row.rtt_us = sample.tcp_info.as_ref().and_then(|i| i.rtt());
                    row.cwnd = sample.tcp_info.as_ref().and_then(|i| i.snd_cwnd());
                }
                row
            })
            .collect();
        let sockets = report.groups.iter().map(|g| g.sockets).sum();
        let rows_dropped = rows.len().saturating_sub(ROWS_LIMIT);
        if rows_dropped > 0 {
            rows.sort_by(|a, b| b.send_bps.total_cmp(&a.send_bps));
            rows.truncate(ROWS_LIMIT);
        }
        let precision = report.precision.as_ref().map(|p| {
            let mut text = format!("{}; events lost {}", p.probes, p.events_lost);
            if p.events_undelivered > 0 {
                text.push_str(&format!(", undelivered {}", p.events_undelivered));
            }
            text
        });
        LiveData {
            clock: report
                .clock_times()
                .map(|(_, end)| end)
                .unwrap_or_else(|| format!("{:.1} s", report.end_ms as f64 / 1000.0)),
            window_s: seconds,
            tracked,
            index: report.index,
            precision,
            closes_lost: report.closes_lost.map(|lost| lost.notices),
            totals: rates("total".into(), sockets, &totals, seconds),
            rows,
            rows_dropped,
            notices: report.notices.clone(),
        }
    }
}

/// The column rows are sorted by (`s` cycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Send,
    Recv,
    Segs,
    Retrans,
    Opens,
    Resets,
}

impl SortKey {
    const ALL: [SortKey; 6] = [
        SortKey::Send,
        SortKey::Recv,
        SortKey::Segs,
        SortKey::Retrans,
        SortKey::Opens,
        SortKey::Resets,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SortKey::Send => "send",
            SortKey::Recv => "recv",
            SortKey::Segs => "segs/s",
            SortKey::Retrans => "retrans",
            SortKey::Opens => "opens/s",
            SortKey::Resets => "resets/s",
        }
    }

    fn value(self, row: &LiveRow) -> f64 {
        match self {
            SortKey::Send => row.send_bps,
            SortKey::Recv => row.recv_bps,
            SortKey::Segs => row.segs_ps,
            SortKey::Retrans => row.retrans_pct.unwrap_or(0.0),
            SortKey::Opens => row.opens_ps,
            SortKey::Resets => row.resets_ps,
        }
    }

    fn next(self) -> SortKey {
        let at = SortKey::ALL.iter().position(|k| *k == self).unwrap_or(0);
        SortKey::ALL[(at + 1) % SortKey::ALL.len()]
    }
}

/// What the loop must do after a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    None,
    Quit,
    /// Group by this index from the next window on.
    Regroup(Index),
    /// Keep only what this filter matches (None: lift the view's filter).
    Filter(Option<FilterSet>),
}

/// The order `i` cycles through.
const INDEXES: [Index; 8] = [
    Index::Tuple,
    Index::Lport,
    Index::Rport,
    Index::Laddr,
    Index::Raddr,
    Index::Process,
    Index::Netns,
    Index::Container,
];

#[derive(Debug)]
pub struct ViewState {
    pub sort: SortKey,
    pub paused: bool,
    pub help: bool,
    /// The filter being typed after `/`, until Enter or Esc.
    pub editing: Option<String>,
    /// The view's filter as last applied (empty: none).
    pub filter: String,
    pub filter_error: Option<String>,
    /// The filter the shown data was grouped under.
    data_filter: String,
    pub index: Index,
    data: Option<LiveData>,
    table: TableState,
    /// The selected group's key and its (send, recv) rates per window.
    selected_key: Option<String>,
    history: VecDeque<(u64, u64)>,
}

impl ViewState {
    pub fn new(index: Index) -> ViewState {
        ViewState {
            sort: SortKey::Send,
            paused: false,
            help: false,
            editing: None,
            filter: String::new(),
            filter_error: None,
            data_filter: String::new(),
            index,
            data: None,
            table: TableState::default().with_selected(Some(0)),
            selected_key: None,
            history: VecDeque::new(),
        }
    }

    /// Takes a new window's data (ignored while paused).
    pub fn update(&mut self, data: LiveData) {
        if self.paused {
            return;
        }
        self.show(data);
        let selected = self
            .selected_row()
            .map(|r| (r.send_bps as u64, r.recv_bps as u64));
        if let Some(rates) = selected {
            if self.history.len() == HISTORY {
                self.history.pop_front();
            }
            self.history.push_back(rates);
        }
    }

    /// Shows `data` without adding it to the history.
    pub fn show(&mut self, mut data: LiveData) {
        self.data_filter = self.filter.clone();
        self.sort_rows(&mut data.rows);
        self.data = Some(data);
        self.reselect();
    }

    fn sort_rows(&self, rows: &mut [LiveRow]) {
        let key = self.sort;
        rows.sort_by(|a, b| {
            key.value(b)
                .total_cmp(&key.value(a))
                .then_with(|| a.key.cmp(&b.key))
        });
    }

    /// Keeps the selection on the same group when it moved in the order.
    fn reselect(&mut self) {
        let Some(data) = &self.data else { return };
        let wanted = self.selected_key.as_ref();
        let at = wanted.and_then(|k| data.rows.iter().position(|r| &r.key == k));
        let len = data.rows.len();
        let index = match at {
            Some(i) => i,
            None => self
                .table
                .selected()
                .unwrap_or(0)
                .min(len.saturating_sub(1)),
        };
        self.table.select((len > 0).then_some(index));
        let key = data.rows.get(index).map(|r| r.key.clone());
        self.follow(key);
    }

    /// The selected group is `key`: its history starts anew when it is
    /// another group.
    fn follow(&mut self, key: Option<String>) {
        if key != self.selected_key {
            self.history.clear();
            self.selected_key = key;
        }
    }

    pub fn selected_row(&self) -> Option<&LiveRow> {
        let data = self.data.as_ref()?;
        data.rows.get(self.table.selected()?)
    }

    fn move_selection(&mut self, by: isize) {
        let Some(data) = &self.data else { return };
        if data.rows.is_empty() {
            return;
        }
        let last = data.rows.len() - 1;
        let now = self.table.selected().unwrap_or(0) as isize;
        let next = (now + by).clamp(0, last as isize) as usize;
        self.table.select(Some(next));
        let key = data.rows.get(next).map(|r| r.key.clone());
        self.follow(key);
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        if let Some(text) = self.editing.as_mut() {
            match key.code {
                KeyCode::Esc => self.editing = None,
                KeyCode::Enter => {
                    let text = self.editing.take().unwrap_or_default();
                    return self.apply_filter(text);
                }
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char(c)
                    if !key.modifiers.contains(KeyModifiers::CONTROL) && text.len() < 512 =>
                {
                    text.push(c);
                }
                _ => {}
            }
            return Action::None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('c') if ctrl => Action::Quit,
            KeyCode::Esc | KeyCode::Char('?') if self.help => {
                self.help = false;
                Action::None
            }
            KeyCode::Char('q') | KeyCode::Esc => Action::Quit,
            KeyCode::Char('?') => {
                self.help = true;
                Action::None
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.move_selection(1);
                Action::None
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.move_selection(-1);
                Action::None
            }
            KeyCode::PageDown => {
                self.move_selection(20);
                Action::None
            }
            KeyCode::PageUp => {
                self.move_selection(-20);
                Action::None
            }
            KeyCode::Char('s') => {
                self.sort = self.sort.next();
                if let Some(mut data) = self.data.take() {
                    self.sort_rows(&mut data.rows);
                    self.data = Some(data);
                    self.reselect();
                }
                Action::None
            }
            KeyCode::Char('i') => {
                let at = INDEXES.iter().position(|i| *i == self.index).unwrap_or(0);
                self.index = INDEXES[(at + 1) % INDEXES.len()];
                Action::Regroup(self.index)
            }
            KeyCode::Char('/') => {
                self.editing = Some(self.filter.clone());
                Action::None
            }
            KeyCode::Char('p') => {
                self.paused = !self.paused;
                Action::None
            }
            _ => Action::None,
        }
    }

    fn apply_filter(&mut self, text: String) -> Action {
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.is_empty() {
            self.filter.clear();
            self.filter_error = None;
            return Action::Filter(None);
        }
        match FilterSet::parse(&words) {
            Ok(set) => {
                self.filter = words.join(" ");
                self.filter_error = None;
                Action::Filter(Some(set))
            }
            Err(err) => {
                // The footer says "bad filter: " before it.
                self.filter_error = Some(format!("{}: {}", err.filter, err.reason));
                Action::None
            }
        }
    }

    pub fn draw(&mut self, frame: &mut Frame) {
        let area = frame.area();
        let [header, body, chart, footer] = Layout::vertical([
            Constraint::Length(3),
            Constraint::Min(3),
            Constraint::Length(5),
            Constraint::Length(1),
        ])
        .areas(area);
        frame.render_widget(Paragraph::new(self.header_lines()), header);
        self.draw_table(frame, body);
        self.draw_chart(frame, chart);
        frame.render_widget(Paragraph::new(self.footer_line()), footer);
        if self.help {
            draw_help(frame, area);
        }
    }

    fn header_lines(&self) -> Vec<Line<'static>> {
        let Some(d) = &self.data else {
            return vec![Line::from("tcpipstat: collecting the first window…")];
        };
        let t = &d.totals;
        let index = if d.index == self.index {
            self.index.name().to_string()
        } else {
            format!(
                "{} ({} from the next window)",
                d.index.name(),
                self.index.name()
            )
        };
        let mut first = format!(
            "tcpipstat  {}  window {:.1} s  sockets tracked {}  index {index}",
            d.clock, d.window_s, d.tracked,
        );
        if self.paused {
            first.push_str("  [paused]");
        }
        let mut second = match &d.precision {
            Some(p) => format!("precision: {p}"),
            None => "precision: off (polls only)".to_string(),
        };
        if let Some(lost) = d.closes_lost {
            second.push_str(&format!("  close notices lost {lost}"));
        }
        if !self.filter.is_empty() {
            second.push_str(&format!("  filter: {}", self.filter));
        }
        if self.filter != self.data_filter {
            second.push_str("  (from the next window)");
        }
        let groups = d.rows.len() + d.rows_dropped;
        let third = format!(
            "total: send {}  recv {}  {:.0} segs/s  retrans {}  opens {:.1}/s  resets {:.1}/s  ({groups} group{}{})",
            human_rate(t.send_bps),
            human_rate(t.recv_bps),
            t.segs_ps,
            percent(t.retrans_pct),
            t.opens_ps,
            t.resets_ps,
            if groups == 1 { "" } else { "s" },
            if d.rows_dropped > 0 {
                format!(", {} quietest not listed", d.rows_dropped)
            } else {
                String::new()
            }
        );
        vec![Line::from(first), Line::from(second), Line::from(third)]
    }

    fn draw_table(&mut self, frame: &mut Frame, area: Rect) {
        let shown = self.data.as_ref().map_or(self.index, |d| d.index);
        let tuples = shown == Index::Tuple;
        let mut titles = vec![
            shown.name(),
            "socks",
            "send",
            "recv",
            "segs/s",
            "retrans",
            "opens/s",
            "resets/s",
        ];
        if tuples {
            titles.extend(["state", "rtt", "cwnd"]);
        }
        let sorted = self.sort.name();
        let header = Row::new(titles.into_iter().enumerate().map(|(i, t)| {
            let text = if i > 0 && t == sorted {
                format!("{t}▼")
            } else {
                t.to_string()
            };
            Cell::from(text)
        }))
        .style(Style::new().add_modifier(Modifier::BOLD));
        let rows: Vec<Row> = self
            .data
            .as_ref()
            .map(|d| d.rows.iter().map(|r| table_row(r, tuples)).collect())
            .unwrap_or_default();
        let key_width = if tuples { 46 } else { 24 };
        let mut widths = vec![
            Constraint::Min(key_width),
            Constraint::Length(5),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(9),
        ];
        if tuples {
            widths.extend([
                Constraint::Length(11),
                Constraint::Length(8),
                Constraint::Length(5),
            ]);
        }
        let table = Table::new(rows, widths)
            .header(header)
            .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
            .block(Block::new().borders(Borders::TOP));
        frame.render_stateful_widget(table, area, &mut self.table);
    }

    fn draw_chart(&self, frame: &mut Frame, area: Rect) {
        let (send_title, recv_title) = match (&self.selected_key, self.history.back()) {
            (Some(key), Some((send, recv))) => (
                format!("{key}  send {}", human_rate(*send as f64)),
                format!(
                    "recv {}  (last {} windows)",
                    human_rate(*recv as f64),
                    self.history.len()
                ),
            ),
            _ => ("no group selected".to_string(), String::new()),
        };
        let [send_area, recv_area] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(area);
        // The newest windows that fit, right-aligned like top's graphs.
        let fit = |width: u16| {
            let skip = self
                .history
                .len()
                .saturating_sub(width.saturating_sub(2) as usize);
            self.history.iter().skip(skip)
        };
        let send: Vec<u64> = fit(send_area.width).map(|(s, _)| *s).collect();
        let recv: Vec<u64> = fit(recv_area.width).map(|(_, r)| *r).collect();
        frame.render_widget(
            Sparkline::default()
                .block(Block::new().borders(Borders::TOP).title(send_title))
                .data(&send),
            send_area,
        );
        frame.render_widget(
            Sparkline::default()
                .block(Block::new().borders(Borders::TOP).title(recv_title))
                .data(&recv),
            recv_area,
        );
    }

    fn footer_line(&self) -> Line<'static> {
        if let Some(text) = &self.editing {
            return Line::from(format!(
                "filter (Enter applies, Esc cancels, empty lifts it): {text}_"
            ));
        }
        if let Some(err) = &self.filter_error {
            return Line::from(format!("bad filter: {err}  (/ to edit)"));
        }
        let notice = self
            .data
            .as_ref()
            .and_then(|d| d.notices.last().cloned())
            .map(|n| format!("  note: {n}"))
            .unwrap_or_default();
        Line::from(format!(
            "q quit  ↑↓ select  s sort ({})  i index  / filter  p pause  ? help{notice}",
            self.sort.name()
        ))
    }
}

/// One group's cells.
fn table_row(r: &LiveRow, tuples: bool) -> Row<'static> {
    let mut cells = vec![
        r.key.clone(),
        r.sockets.to_string(),
        human_rate(r.send_bps),
        human_rate(r.recv_bps),
        format!("{:.0}", r.segs_ps),
        percent(r.retrans_pct),
        format!("{:.1}", r.opens_ps),
        format!("{:.1}", r.resets_ps),
    ];
    if tuples {
        cells.push(r.state.unwrap_or("").to_string());
        cells.push(r.rtt_us.map(human_us).unwrap_or_default());
        cells.push(r.cwnd.map(|c| c.to_string()).unwrap_or_default());
    }
    Row::new(cells)
}

fn draw_help(frame: &mut Frame, area: Rect) {
    let lines = [
        "q, Esc, Ctrl-C  quit (the terminal is restored)",
        "↑ ↓ j k PgUp PgDn  select a group: its rates are charted below",
        "s   sort by the next column: send, recv, segs/s, retrans, opens/s, resets/s",
        "i   group by the next index: tuple, lport, rport, laddr, raddr, process, netns, container",
        "/   filter, as on the command line: *:443-* *-10.0.0.0/8:* (Enter applies)",
        "p   pause: the view stays, collection goes on",
        "?   this help (Esc or ? closes it)",
        "",
        "Rates are per second over the last window; B = bytes. retrans = RetransSegs per",
        "100 OutSegs; opens = Active+PassiveOpens; resets = EstabResets+OutRsts+InRsts.",
        "A new index or filter applies from the next window.",
    ];
    let width = 92.min(area.width);
    let height = (lines.len() as u16 + 2).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines.iter().map(|l| Line::from(*l)).collect::<Vec<_>>())
            .block(Block::new().borders(Borders::ALL).title("keys")),
        popup,
    );
}

fn percent(value: Option<f64>) -> String {
    value
        .map(|v| format!("{v:.1}%"))
        .unwrap_or_else(|| "-".into())
}

fn human_us(us: u32) -> String {
    if us >= 10_000 {
        format!("{:.0}ms", f64::from(us) / 1000.0)
    } else if us >= 1000 {
        format!("{:.1}ms", f64::from(us) / 1000.0)
    } else {
        format!("{us}µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::crossterm::event::KeyEventKind;
    use ratatui::Terminal;

    fn row(key: &str, send: f64, recv: f64) -> LiveRow {
        LiveRow {
            key: key.into(),
            sockets: 1,
            send_bps: send,
            recv_bps: recv,
            segs_ps: 10.0,
            retrans_pct: Some(0.0),
            opens_ps: 0.0,
            resets_ps: 0.0,
            state: None,
            rtt_us: None,
            cwnd: None,
        }
    }

    fn data(rows: Vec<LiveRow>) -> LiveData {
        LiveData {
            clock: "2026-11-29T06:00:01.000Z".into(),
            window_s: 1.0,
            tracked: rows.len(),
            index: Index::Lport,
            precision: None,
            closes_lost: Some(0),
            totals: row("total", 0.0, 0.0),
            rows,
            rows_dropped: 0,
            notices: Vec::new(),
        }
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new_with_kind(code, KeyModifiers::NONE, KeyEventKind::Press)
    }

    fn screen(view: &mut ViewState, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| view.draw(f)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        let mut text = String::new();
        for y in 0..buffer.area.height {
            for x in 0..buffer.area.width {
                text.push_str(buffer[(x, y)].symbol());
            }
            text.push('\n');
        }
        text
    }

    #[test]
    fn rates_come_in_human_units() {
        assert_eq!(human_rate(0.0), "0 B/s");
        assert_eq!(human_rate(950.0), "950 B/s");
        assert_eq!(human_rate(1234.0), "1.2 kB/s");
        assert_eq!(human_rate(3_400_000.0), "3.4 MB/s");
        assert_eq!(human_rate(-5.0), "0 B/s");
        assert_eq!(human_us(850), "850µs");
        assert_eq!(human_us(1500), "1.5ms");
        assert_eq!(human_us(25_000), "25ms");
    }

    #[test]
    fn rows_sort_by_send_and_s_cycles_the_column_keeping_the_selection() {
        let mut view = ViewState::new(Index::Lport);
        view.update(data(vec![row("80", 10.0, 900.0), row("443", 500.0, 1.0)]));
        assert_eq!(view.selected_row().unwrap().key, "443");
        assert_eq!(view.on_key(key(KeyCode::Char('s'))), Action::None);
        assert_eq!(view.sort, SortKey::Recv);
        // Still on 443, now second in the order.
        assert_eq!(view.selected_row().unwrap().key, "443");
        let text = screen(&mut view, 120, 20);
        assert!(text.contains("recv▼"), "{text}");
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("80 ") || l.starts_with("443 "))
            .filter(|l| !l.contains(" send "))
            .collect();
        assert_eq!(rows.len(), 2, "{text}");
        assert!(
            rows[0].starts_with("80 "),
            "80 sorts first by recv:\n{text}"
        );
    }

    #[test]
    fn the_selected_group_keeps_a_bounded_history() {
        let mut view = ViewState::new(Index::Lport);
        for i in 0..(HISTORY + 10) {
            view.update(data(vec![row("443", i as f64, 0.0)]));
        }
        assert_eq!(view.history.len(), HISTORY);
        assert_eq!(view.history.back(), Some(&((HISTORY + 9) as u64, 0)));
        // Another group selected: its own history starts.
        view.update(data(vec![row("443", 1.0, 0.0), row("80", 0.0, 0.0)]));
        view.on_key(key(KeyCode::Down));
        assert_eq!(view.selected_row().unwrap().key, "80");
        assert!(view.history.is_empty());
    }

    #[test]
    fn keys_quit_regroup_filter_and_pause() {
        let mut view = ViewState::new(Index::Tuple);
        assert_eq!(
            view.on_key(key(KeyCode::Char('i'))),
            Action::Regroup(Index::Lport)
        );
        assert_eq!(view.on_key(key(KeyCode::Char('/'))), Action::None);
        for c in "*:443-*".chars() {
            view.on_key(key(KeyCode::Char(c)));
        }
        let Action::Filter(Some(set)) = view.on_key(key(KeyCode::Enter)) else {
            panic!("a filter");
        };
        assert!(!set.matches_everything());
        assert_eq!(view.filter, "*:443-*");
        // A bad filter is said, and nothing changes.
        view.on_key(key(KeyCode::Char('/')));
        for _ in 0..10 {
            view.on_key(key(KeyCode::Backspace));
        }
        for c in "bogus".chars() {
            view.on_key(key(KeyCode::Char(c)));
        }
        assert_eq!(view.on_key(key(KeyCode::Enter)), Action::None);
        assert!(view.filter_error.is_some());
        assert_eq!(view.filter, "*:443-*");
        // An empty filter lifts it.
        view.on_key(key(KeyCode::Char('/')));
        for _ in 0..10 {
            view.on_key(key(KeyCode::Backspace));
        }
        assert_eq!(view.on_key(key(KeyCode::Enter)), Action::Filter(None));
        // Pause keeps the shown window.
        view.update(data(vec![row("443", 1.0, 0.0)]));
        view.on_key(key(KeyCode::Char('p')));
        view.update(data(vec![row("80", 1.0, 0.0)]));
        assert_eq!(view.selected_row().unwrap().key, "443");
        assert!(screen(&mut view, 100, 20).contains("[paused]"));
        // Help opens with ?, closes with Esc; q quits.
        view.on_key(key(KeyCode::Char('?')));
        assert!(screen(&mut view, 100, 24).contains("keys"));
        assert_eq!(view.on_key(key(KeyCode::Esc)), Action::None);
        assert_eq!(view.on_key(key(KeyCode::Char('q'))), Action::Quit);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(view.on_key(ctrl_c), Action::Quit);
    }

    #[test]
    fn a_bad_filter_is_said_once() {
        let mut view = ViewState::new(Index::Lport);
        view.update(data(vec![row("443", 1.0, 0.0)]));
        view.on_key(key(KeyCode::Char('/')));
        for c in "bogus".chars() {
            view.on_key(key(KeyCode::Char(c)));
        }
        assert_eq!(view.on_key(key(KeyCode::Enter)), Action::None);
        let text = screen(&mut view, 160, 20);
        assert_eq!(text.matches("bad filter").count(), 1, "{text}");
        assert!(text.contains("'bogus'"), "{text}");
    }

    #[test]
    fn a_new_index_is_said_to_come_with_the_next_window() {
        let mut view = ViewState::new(Index::Lport);
        view.update(data(vec![row("443", 1.0, 0.0)]));
        view.on_key(key(KeyCode::Char('i')));
        let text = screen(&mut view, 140, 20);
        assert!(
            text.contains("index lport (rport from the next window)"),
            "{text}"
        );
    }

    #[test]
    fn a_tiny_terminal_draws_without_panicking() {
        let mut view = ViewState::new(Index::Tuple);
        view.update(data(vec![row("127.0.0.1:80 127.0.0.1:5000", 1.0, 2.0)]));
        view.help = true;
        for (w, h) in [(1, 1), (10, 3), (40, 8), (0, 0)] {
            let _ = screen(&mut view, w, h);
        }
    }
}
