//! The live view's state, pure: a window report goes in as [`LiveData`]
//! (rates per group), notes as text, keys as crossterm key events that
//! come out as [`Action`]s for the loop; `draw` renders it onto any
//! ratatui backend (tests use ratatui's `TestBackend`).

use std::collections::VecDeque;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::widgets::TableState;

use super::columns::Column;
use crate::aggregate::Index;
use crate::counters::{Counter, Counters};
use crate::filter::FilterSet;
use crate::report::Report;

/// Windows of the selected group's rates kept for its sparkline.
pub const HISTORY: usize = 240;
/// Rows kept from one report, busiest first (the rest are counted).
pub const ROWS_LIMIT: usize = 2000;
/// Notes kept for `n` (older ones are counted).
pub const NOTES_LIMIT: usize = 64;
/// Longest filter that can be typed.
const PROMPT_LIMIT: usize = 512;

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
    /// For tuples: state, smoothed rtt (µs) and cwnd (segments); for
    /// other groups, rtt is the p50 of their sockets' smoothed RTT samples
    /// (estimated from the buckets).
    pub state: Option<&'static str>,
    pub rtt_us: Option<u32>,
    pub cwnd: Option<u32>,
    /// For tuples, when owners are looked up: the process holding the
    /// socket, as every report names it (`command[pid]`, `?`, `-`).
    pub owner: Option<String>,
    /// A group of UDP sockets (`-u`): what it shows in place of TCP's
    /// rates, which it has none of.
    pub udp: Option<UdpRates>,
}

/// A UDP group's window, as the live view shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UdpRates {
    /// Receive drops (the sockets' sk_drops) per second; None when no
    /// socket's source counts them (sockets known only from a notice).
    pub drops_ps: Option<f64>,
    /// Bytes waiting to be read, summed over the group's open sockets.
    pub recv_queue: u64,
    /// Whether its send and recv rates are known (`--precision`: bytes
    /// of its send and receive calls).
    pub bytes: bool,
}

impl LiveRow {
    /// The two values charted for it per window: send and recv rates for
    /// TCP, drops per second and bytes unread for UDP.
    pub fn chart_values(&self) -> (u64, u64) {
        match self.udp {
            Some(u) => (u.drops_ps.unwrap_or(0.0) as u64, u.recv_queue),
            None => (self.send_bps as u64, self.recv_bps as u64),
        }
    }
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
    /// Which protocols the run shows (`-t`, `-u`).
    pub tcp: bool,
    pub udp: bool,
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
        owner: None,
        udp: None,
    }
}

/// A UDP group's row: `udp` (or `udplite` for one UDP-Lite socket) before
/// its key, so that it is told from TCP's group of the same key.
fn udp_row(key: String, g: &crate::udp::UdpGroup, seconds: f64) -> LiveRow {
    let proto = match g.proto {
        Some("UdpLite") => "udplite",
        _ => "udp",
    };
    let per_s = |v: u64| v as f64 / seconds.max(1e-3);
    LiveRow {
        state: g.state,
        udp: Some(UdpRates {
            drops_ps: g.drops.map(per_s),
            recv_queue: g.recv_queue,
            bytes: g.events.is_some(),
        }),
        send_bps: g.events.map_or(0.0, |e| per_s(e.out_bytes)),
        recv_bps: g.events.map_or(0.0, |e| per_s(e.in_bytes)),
        ..rates(
            format!("{proto} {key}"),
            g.sockets as usize,
            &Counters::default(),
            seconds,
        )
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
                row.owner.clone_from(&g.owner);
                if let Some(sample) = g.sample {
                    row.state = Some(sample.state.name());
                    row.rtt_us = sample.tcp_info.as_ref().and_then(|i| i.rtt());
                    row.cwnd = sample.tcp_info.as_ref().and_then(|i| i.snd_cwnd());
                } else if report.index != Index::Tuple {
                    row.rtt_us = g.rtt.quantile_us(0.5).map(|us| us.round() as u32);
                }
                row
            })
            .collect();
        let mut sockets: usize = report.groups.iter().map(|g| g.sockets).sum();
        let mut udp_totals = None;
        if let Some(section) = &report.udp {
            let mut drops = None;
            let mut recv_queue = 0;
            for g in &section.groups {
                rows.push(udp_row(report.key_value(&g.key), g, seconds));
                sockets += g.sockets as usize;
                if let Some(d) = g.drops {
                    *drops.get_or_insert(0) += d;
                }
                recv_queue += g.recv_queue;
            }
            udp_totals = Some(UdpRates {
                drops_ps: drops.map(|d| d as f64 / seconds.max(1e-3)),
                recv_queue,
                bytes: false,
            });
        }
        let rows_dropped = rows.len().saturating_sub(ROWS_LIMIT);
        if rows_dropped > 0 {
            // The busiest first, TCP by bytes sent, UDP by drops.
            let busy = |r: &LiveRow| r.udp.map_or(r.send_bps, |u| u.drops_ps.unwrap_or(0.0));
            rows.sort_by(|a, b| busy(b).total_cmp(&busy(a)));
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
            tcp: report.tcp,
            udp: report.udp.is_some(),
            totals: LiveRow {
                udp: udp_totals,
                ..rates("total".into(), sockets, &totals, seconds)
            },
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
    /// UDP's receive drops.
    Drops,
}

impl SortKey {
    const ALL: [SortKey; 7] = [
        SortKey::Send,
        SortKey::Recv,
        SortKey::Segs,
        SortKey::Retrans,
        SortKey::Opens,
        SortKey::Resets,
        SortKey::Drops,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SortKey::Send => "send",
            SortKey::Recv => "recv",
            SortKey::Segs => "segs/s",
            SortKey::Retrans => "retrans",
            SortKey::Opens => "opens/s",
            SortKey::Resets => "resets/s",
            SortKey::Drops => "drops/s",
        }
    }

    /// The column it sorts by.
    pub fn column(self) -> Column {
        match self {
            SortKey::Send => Column::Send,
            SortKey::Recv => Column::Recv,
            SortKey::Segs => Column::Segs,
            SortKey::Retrans => Column::Retrans,
            SortKey::Opens => Column::Opens,
            SortKey::Resets => Column::Resets,
            SortKey::Drops => Column::Drops,
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
            SortKey::Drops => row.udp.and_then(|u| u.drops_ps).unwrap_or(0.0),
        }
    }

    /// Whether it sorts by a value of this protocol's rows.
    fn shown(self, tcp: bool, udp: bool) -> bool {
        if self == SortKey::Drops {
            udp
        } else {
            tcp
        }
    }

    /// The next key that sorts the protocols shown.
    fn next(self, tcp: bool, udp: bool) -> SortKey {
        let at = SortKey::ALL.iter().position(|k| *k == self).unwrap_or(0);
        (1..=SortKey::ALL.len())
            .map(|step| SortKey::ALL[(at + step) % SortKey::ALL.len()])
            .find(|k| k.shown(tcp, udp))
            .unwrap_or(self)
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
const INDEXES: [Index; 9] = [
    Index::Tuple,
    Index::Lport,
    Index::Rport,
    Index::Laddr,
    Index::Raddr,
    Index::Process,
    Index::Netns,
    Index::Container,
    Index::Pod,
];

/// The filter being typed after `/`. It opens with the filter in force,
/// selected: typing replaces it, Enter keeps it, an arrow edits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub text: String,
    pub selected: bool,
}

impl Prompt {
    /// Takes one key; false when the key is not the prompt's.
    fn key(&mut self, key: KeyEvent) -> bool {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('u') if ctrl => self.text.clear(),
            KeyCode::Char('w') if ctrl => {
                let kept = self.text.trim_end().rfind(' ').map_or(0, |at| at + 1);
                self.text.truncate(if self.selected { 0 } else { kept });
            }
            KeyCode::Backspace if self.selected => self.text.clear(),
            KeyCode::Backspace => {
                self.text.pop();
            }
            KeyCode::Char(c) if !ctrl => {
                if self.selected {
                    self.text.clear();
                }
                if self.text.len() < PROMPT_LIMIT {
                    self.text.push(c);
                }
            }
            KeyCode::Left | KeyCode::Right | KeyCode::Home | KeyCode::End => {}
            _ => return false,
        }
        self.selected = false;
        true
    }
}

/// A note raised while the view runs, with the time it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Wall-clock time of day, `HH:MM:SS`.
    pub at: String,
    pub text: String,
}

/// Which popup covers the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Popup {
    Help,
    Notes,
}

#[derive(Debug)]
pub struct ViewState {
    pub sort: SortKey,
    pub paused: bool,
    pub popup: Option<Popup>,
    /// The filter being typed after `/`, until Enter or Esc.
    pub editing: Option<Prompt>,
    /// The view's filter as last applied (empty: none).
    pub filter: String,
    pub filter_error: Option<String>,
    /// The filter the shown data was grouped under.
    pub(super) data_filter: String,
    pub index: Index,
    /// The index `p` goes back to.
    before_process: Index,
    pub(super) data: Option<LiveData>,
    pub(super) table: TableState,
    /// The selected group's key and its charted values per window (see
    /// [`LiveRow::chart_values`]).
    pub(super) selected_key: Option<String>,
    pub(super) history: VecDeque<(u64, u64)>,
    /// The latest notes, oldest first, and how many came in all.
    pub(super) notes: VecDeque<Note>,
    pub(super) notes_total: u64,
}

impl ViewState {
    pub fn new(index: Index) -> ViewState {
        ViewState {
            sort: SortKey::Send,
            paused: false,
            popup: None,
            editing: None,
            filter: String::new(),
            filter_error: None,
            data_filter: String::new(),
            index,
            before_process: Index::Tuple,
            data: None,
            table: TableState::default().with_selected(Some(0)),
            selected_key: None,
            history: VecDeque::new(),
            notes: VecDeque::new(),
            notes_total: 0,
        }
    }

    /// Takes a new window's data (ignored while paused; its notes are
    /// kept all the same).
    pub fn update(&mut self, data: LiveData) {
        self.note(data.notices.clone());
        if self.paused {
            return;
        }
        self.show(data);
        let selected = self.selected_row().map(LiveRow::chart_values);
        if let Some(rates) = selected {
            if self.history.len() == HISTORY {
                self.history.pop_front();
            }
            self.history.push_back(rates);
        }
    }

    /// Shows `data` without adding it to the history.
    pub fn show(&mut self, mut data: LiveData) {
        if !self.sort.shown(data.tcp, data.udp) {
            self.sort = self.sort.next(data.tcp, data.udp);
        }
        self.data_filter = self.filter.clone();
        self.sort_rows(&mut data.rows);
        self.data = Some(data);
        self.reselect();
    }

    /// Keeps notes for the status line and `n`; a text already kept is
    /// not kept twice (a window's report repeats what was raised in it).
    /// True when one was new.
    pub fn note(&mut self, notes: Vec<String>) -> bool {
        let mut new = false;
        for text in notes {
            if self.notes.iter().any(|n| n.text == text) {
                continue;
            }
            if self.notes.len() == NOTES_LIMIT {
                self.notes.pop_front();
            }
            self.notes.push_back(Note {
                at: time_of_day(std::time::SystemTime::now()),
                text,
            });
            self.notes_total += 1;
            new = true;
        }
        new
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
        if let Some(prompt) = self.editing.as_mut() {
            match key.code {
                KeyCode::Esc => self.editing = None,
                KeyCode::Enter => {
                    let text = self.editing.take().map(|p| p.text).unwrap_or_default();
                    return self.apply_filter(text);
                }
                _ => {
                    prompt.key(key);
                }
            }
            return Action::None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('c') if ctrl => Action::Quit,
            KeyCode::Esc if self.popup.is_some() => {
                self.popup = None;
                Action::None
            }
            KeyCode::Char('q') | KeyCode::Esc => Action::Quit,
            KeyCode::Char('?') => {
                self.toggle(Popup::Help);
                Action::None
            }
            KeyCode::Char('n') => {
                self.toggle(Popup::Notes);
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
                let (tcp, udp) = self.data.as_ref().map_or((true, false), |d| (d.tcp, d.udp));
                self.sort = self.sort.next(tcp, udp);
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
            KeyCode::Char('p') => {
                if self.index == Index::Process {
                    self.index = self.before_process;
                } else {
                    self.before_process = self.index;
                    self.index = Index::Process;
                }
                Action::Regroup(self.index)
            }
            KeyCode::Char('/') => {
                self.editing = Some(Prompt {
                    selected: !self.filter.is_empty(),
                    text: self.filter.clone(),
                });
                Action::None
            }
            KeyCode::Char(' ') => {
                self.paused = !self.paused;
                Action::None
            }
            _ => Action::None,
        }
    }

    fn toggle(&mut self, popup: Popup) {
        self.popup = (self.popup != Some(popup)).then_some(popup);
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
}

/// `HH:MM:SS` of a wall-clock time, UTC like the reports' clocks.
fn time_of_day(at: std::time::SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(at).to_string();
    text.get(11..19).unwrap_or(&text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::columns::human_us;
    use crate::report::human_rate;
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
            owner: None,
            udp: None,
        }
    }

    /// A connection's row as index=tuple gives it, with its owner.
    fn tuple_row(key: &str, owner: &str, send: f64) -> LiveRow {
        LiveRow {
            state: Some("ESTABLISHED"),
            rtt_us: Some(33),
            cwnd: Some(10),
            owner: Some(owner.into()),
            retrans_pct: Some(12.5),
            opens_ps: 1.0,
            ..row(key, send, 993_900.0)
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
            tcp: true,
            udp: false,
            totals: row("total", 0.0, 0.0),
            rows,
            rows_dropped: 0,
            notices: Vec::new(),
        }
    }

    fn tuples(rows: Vec<LiveRow>) -> LiveData {
        let mut totals = row("total", 0.0, 0.0);
        for r in &rows {
            totals.send_bps += r.send_bps;
            totals.recv_bps += r.recv_bps;
        }
        LiveData {
            index: Index::Tuple,
            totals,
            ..data(rows)
        }
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new_with_kind(code, KeyModifiers::NONE, KeyEventKind::Press)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new_with_kind(KeyCode::Char(c), KeyModifiers::CONTROL, KeyEventKind::Press)
    }

    fn typed(view: &mut ViewState, text: &str) {
        for c in text.chars() {
            view.on_key(key(KeyCode::Char(c)));
        }
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

    /// The table's header line: the one that starts with the index name.
    fn header_line<'s>(text: &'s str, index: &str) -> &'s str {
        text.lines()
            .find(|l| l.starts_with(index) && l.contains("send"))
            .unwrap_or_else(|| panic!("a header line:\n{text}"))
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
            .filter(|l| !l.contains("windows)"))
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
        typed(&mut view, "*:443-*");
        let Action::Filter(Some(set)) = view.on_key(key(KeyCode::Enter)) else {
            panic!("a filter");
        };
        assert!(!set.matches_everything());
        assert_eq!(view.filter, "*:443-*");
        // A bad filter is said, and nothing changes: typing replaces the
        // filter in force, which the prompt opens with.
        view.on_key(key(KeyCode::Char('/')));
        typed(&mut view, "bogus");
        assert_eq!(view.editing.as_ref().unwrap().text, "bogus");
        assert_eq!(view.on_key(key(KeyCode::Enter)), Action::None);
        assert!(view.filter_error.is_some());
        assert_eq!(view.filter, "*:443-*");
        // An empty filter lifts it.
        view.on_key(key(KeyCode::Char('/')));
        view.on_key(key(KeyCode::Backspace));
        assert_eq!(view.on_key(key(KeyCode::Enter)), Action::Filter(None));
        // Space pauses: the shown window stays.
        view.update(data(vec![row("443", 1.0, 0.0)]));
        view.on_key(key(KeyCode::Char(' ')));
        view.update(data(vec![row("80", 1.0, 0.0)]));
        assert_eq!(view.selected_row().unwrap().key, "443");
        assert!(screen(&mut view, 100, 20).contains("[paused"));
        // Help opens with ?, closes with Esc; q quits.
        view.on_key(key(KeyCode::Char('?')));
        assert!(screen(&mut view, 100, 24).contains("keys (Esc"));
        assert_eq!(view.on_key(key(KeyCode::Esc)), Action::None);
        assert_eq!(view.popup, None);
        assert_eq!(view.on_key(key(KeyCode::Char('q'))), Action::Quit);
        assert_eq!(view.on_key(ctrl('c')), Action::Quit);
    }

    #[test]
    fn i_cycles_through_every_index_pod_last_and_back_to_tuples() {
        let mut view = ViewState::new(Index::Tuple);
        let mut seen = Vec::new();
        for _ in 0..INDEXES.len() {
            let Action::Regroup(index) = view.on_key(key(KeyCode::Char('i'))) else {
                panic!("a regroup");
            };
            seen.push(index);
        }
        assert_eq!(seen[seen.len() - 2], Index::Pod);
        assert_eq!(seen.last(), Some(&Index::Tuple));
        let mut names: Vec<&str> = seen.iter().map(|i| i.name()).collect();
        names.sort_unstable();
        let mut all = Index::NAMES.to_vec();
        all.sort_unstable();
        assert_eq!(names, all);
    }

    #[test]
    fn groups_show_their_rtt_p50_and_pods_their_labels() {
        let report = crate::report::test_fixtures::lport_groups();
        let data = LiveData::of(&report, 6);
        let rtt = |key: &str| data.rows.iter().find(|r| r.key == key).unwrap().rtt_us;
        assert_eq!(rtt("443"), Some(1_750));
        assert_eq!(rtt("22"), Some(300));
        assert_eq!(rtt("8080"), None);
        let mut view = ViewState::new(Index::Lport);
        view.update(data);
        let shown = screen(&mut view, 140, 20);
        assert!(
            shown.contains("rtt p50") && shown.contains("1.8ms"),
            "{shown}"
        );
        let pods = LiveData::of(&crate::report::test_fixtures::by_pod(), 3);
        assert!(
            pods.rows.iter().any(|r| r.key == "shop/web-0/nginx"),
            "{:?}",
            pods.rows
        );
    }

    #[test]
    fn p_groups_by_process_and_again_goes_back_to_the_index_before() {
        let mut view = ViewState::new(Index::Lport);
        assert_eq!(
            view.on_key(key(KeyCode::Char('p'))),
            Action::Regroup(Index::Process)
        );
        assert_eq!(
            view.on_key(key(KeyCode::Char('p'))),
            Action::Regroup(Index::Lport)
        );
    }

    #[test]
    fn the_filter_prompt_opens_empty_and_ctrl_u_clears_it() {
        let mut view = ViewState::new(Index::Tuple);
        view.update(tuples(vec![]));
        view.on_key(key(KeyCode::Char('/')));
        assert_eq!(
            view.editing,
            Some(Prompt {
                text: String::new(),
                selected: false
            })
        );
        assert!(screen(&mut view, 80, 24).contains("filter: _"));
        typed(&mut view, "*:443-* *:80-*");
        view.on_key(ctrl('w'));
        assert_eq!(view.editing.as_ref().unwrap().text, "*:443-* ");
        view.on_key(ctrl('u'));
        assert_eq!(view.editing.as_ref().unwrap().text, "");
        typed(&mut view, "*:443-*");
        view.on_key(key(KeyCode::Enter));
        // With a filter in force the prompt shows it selected: an arrow
        // keeps it for editing, Ctrl-U clears it.
        view.on_key(key(KeyCode::Char('/')));
        assert!(view.editing.as_ref().unwrap().selected);
        view.on_key(key(KeyCode::End));
        typed(&mut view, " *:80-*");
        assert_eq!(view.editing.as_ref().unwrap().text, "*:443-* *:80-*");
        view.on_key(ctrl('u'));
        assert_eq!(view.editing.as_ref().unwrap().text, "");
        assert_eq!(view.on_key(key(KeyCode::Esc)), Action::None);
        assert_eq!(view.filter, "*:443-*");
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

    /// Two connections of a process as a tuple view shows them at `width`.
    fn tuple_screen(width: u16, height: u16) -> String {
        let mut view = ViewState::new(Index::Tuple);
        view.update(tuples(vec![
            tuple_row("127.0.0.1:58726 127.0.0.1:5000", "python3[4242]", 993_900.0),
            tuple_row("127.0.0.1:5000 127.0.0.1:58726", "python3[4242]", 0.0),
        ]));
        screen(&mut view, width, height)
    }

    #[test]
    fn no_header_is_shorter_than_its_name_and_no_value_is_cut_at_any_width() {
        let names = [
            "tuple", "process", "socks", "send", "recv", "segs/s", "retrans", "opens/s",
            "resets/s", "state", "rtt", "cwnd",
        ];
        for (width, height) in [(80, 24), (120, 40), (200, 50)] {
            let text = tuple_screen(width, height);
            let header: Vec<&str> = header_line(&text, "tuple").split_whitespace().collect();
            let shown: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| header.iter().any(|h| h.trim_end_matches('▼') == *n))
                .collect();
            assert_eq!(
                shown.len(),
                header.len(),
                "every header is a whole name at {width}: {header:?}\n{text}"
            );
            for value in [
                "993.9 kB/s",
                "12.5%",
                "ESTABLISHED",
                "33µs",
                "python3[4242]",
            ] {
                let column = match value {
                    "993.9 kB/s" => "recv",
                    "12.5%" => "retrans",
                    "ESTABLISHED" => "state",
                    "33µs" => "rtt",
                    _ => "process",
                };
                if shown.contains(&column) {
                    assert!(text.contains(value), "{value} whole at {width}:\n{text}");
                }
            }
            // What is left out is said: named, or counted where the
            // names do not fit.
            let left_out: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| !shown.contains(n))
                .collect();
            let named = format!("not shown (too narrow): {} ", left_out.join(", "));
            let counted = format!("{} columns not shown (too narrow)", left_out.len());
            assert_eq!(
                !left_out.is_empty(),
                text.contains(&named) || text.contains(&counted),
                "{left_out:?} at {width}:\n{text}"
            );
            assert!(!text.contains('…') || text.contains("… (n)"), "{text}");
        }
        // 80 columns keep the tuple, its owner and both rates.
        let narrow = tuple_screen(80, 24);
        let header = header_line(&narrow, "tuple");
        for name in ["process", "send▼", "recv"] {
            assert!(header.contains(name), "{name}:\n{narrow}");
        }
        // 200 columns show them all.
        assert!(!tuple_screen(200, 50).contains("not shown"));
    }

    #[test]
    fn the_tuple_column_is_as_wide_as_the_longest_tuple() {
        for width in [80, 120, 200] {
            let text = tuple_screen(width, 30);
            let header = header_line(&text, "tuple");
            // "127.0.0.1:58726 127.0.0.1:5000" is 30 cells, then one gap.
            assert!(
                header.starts_with(&format!("{:<31}process", "tuple")),
                "{header}"
            );
        }
    }

    #[test]
    fn columns_are_sized_by_the_rows_in_view_and_the_selection_stays_in_view() {
        let mut rows: Vec<LiveRow> = (0..40)
            .map(|i| {
                tuple_row(
                    &format!("10.0.0.1:{i} 10.0.0.2:80"),
                    "nginx[7]",
                    100.0 - f64::from(i),
                )
            })
            .collect();
        let unseen = crate::aggregate::UNSEEN_OWNER_VALUE;
        rows.push(tuple_row("10.0.0.1:99 10.0.0.2:80", unseen, 0.0));
        let mut view = ViewState::new(Index::Tuple);
        view.update(tuples(rows));
        let top = screen(&mut view, 120, 24);
        assert!(!top.contains(unseen), "{top}");
        assert!(header_line(&top, "tuple").starts_with(&format!("{:<24}process  ", "tuple")));
        view.on_key(key(KeyCode::PageDown));
        view.on_key(key(KeyCode::PageDown));
        let bottom = screen(&mut view, 120, 24);
        assert_eq!(view.selected_row().unwrap().owner.as_deref(), Some(unseen));
        assert!(
            bottom.contains(&format!("10.0.0.1:99 10.0.0.2:80 {unseen}")),
            "{bottom}"
        );
        assert!(!bottom.contains("10.0.0.1:0 "), "{bottom}");
    }

    #[test]
    fn at_80_columns_sockets_no_poll_saw_keep_a_process_column_in_its_narrow_form() {
        let unseen = crate::aggregate::UNSEEN_OWNER_VALUE;
        let mut view = ViewState::new(Index::Tuple);
        view.update(tuples(vec![
            tuple_row("127.0.0.1:58726 127.0.0.1:5000", "python3[4242]", 900.0),
            tuple_row("127.0.0.1:37206 127.0.0.1:6000", unseen, 2.0),
        ]));
        let narrow = screen(&mut view, 80, 24);
        assert!(
            header_line(&narrow, "tuple").contains("process"),
            "{narrow}"
        );
        assert!(narrow.contains("127.0.0.1:6000 - (unseen) "), "{narrow}");
        let wide = screen(&mut view, 200, 24);
        assert!(
            wide.contains(&format!("127.0.0.1:6000 {unseen} ")),
            "{wide}"
        );
    }

    #[test]
    fn a_process_column_names_each_connections_owner() {
        let text = tuple_screen(120, 30);
        let line = text
            .lines()
            .find(|l| l.starts_with("127.0.0.1:58726 "))
            .unwrap();
        assert!(line.contains(" python3[4242] "), "{text}");
        // Other indexes have none: the group is no one socket.
        let mut view = ViewState::new(Index::Lport);
        view.update(data(vec![row("443", 1.0, 0.0)]));
        let text = screen(&mut view, 120, 30);
        assert!(!header_line(&text, "lport").contains("process"), "{text}");
    }

    #[test]
    fn the_header_wraps_between_its_items_never_inside_one() {
        let text = tuple_screen(80, 24);
        let top: Vec<&str> = text.lines().take_while(|l| !l.starts_with('─')).collect();
        assert!(top.len() > 3, "{text}");
        for item in [
            "window 1.0 s",
            "sockets tracked 2",
            "total: send 993.9 kB/s",
            "recv 2.0 MB/s",
        ] {
            assert!(top.iter().any(|l| l.contains(item)), "{item}:\n{text}");
        }
        assert!(top.iter().all(|l| !l.trim_end().ends_with("total:")));
    }

    #[test]
    fn notes_show_in_the_view_as_they_come_and_n_lists_them() {
        let mut view = ViewState::new(Index::Tuple);
        view.update(tuples(vec![]));
        assert!(view.note(vec!["the first note".into()]));
        assert!(screen(&mut view, 80, 24).contains(": the first note"));
        // A window's report repeats its notes: kept once.
        let mut window = tuples(vec![]);
        window.notices = vec!["the first note".into(), "a second, longer note ".repeat(12)];
        view.update(window);
        assert_eq!(view.notes_total, 2);
        let text = screen(&mut view, 80, 24);
        assert!(text.contains("a second, longer note"), "{text}");
        assert!(
            text.contains("… (n)"),
            "a long note ends where it is cut: {text}"
        );
        // Paused, notes still come.
        view.on_key(key(KeyCode::Char(' ')));
        assert!(view.note(vec!["while paused".into()]));
        assert!(screen(&mut view, 80, 24).contains("while paused"));
        view.on_key(key(KeyCode::Char('n')));
        let text = screen(&mut view, 80, 24);
        assert!(
            text.contains("notes: 3 in all") && text.contains("the first note"),
            "{text}"
        );
        view.on_key(key(KeyCode::Char('n')));
        assert_eq!(view.popup, None);
        // Bounded, and counted past the bound.
        for i in 0..(NOTES_LIMIT + 5) {
            view.note(vec![format!("note {i}")]);
        }
        assert_eq!(view.notes.len(), NOTES_LIMIT);
        assert_eq!(view.notes_total, (NOTES_LIMIT + 8) as u64);
    }

    #[test]
    fn a_tiny_terminal_draws_without_panicking() {
        let mut view = ViewState::new(Index::Tuple);
        view.update(tuples(vec![tuple_row(
            "127.0.0.1:80 127.0.0.1:5000",
            "sshd[1]",
            1.0,
        )]));
        view.note(vec!["a note".into()]);
        for popup in [None, Some(Popup::Help), Some(Popup::Notes)] {
            view.popup = popup;
            for (w, h) in [(1, 1), (10, 3), (40, 8), (0, 0), (3, 30)] {
                let _ = screen(&mut view, w, h);
            }
        }
        view.editing = Some(Prompt {
            text: "x".repeat(PROMPT_LIMIT),
            selected: true,
        });
        let _ = screen(&mut view, 5, 5);
    }

    fn udp_group(port: u16, drops: Option<u64>, recv_queue: u64) -> crate::udp::UdpGroup {
        crate::udp::UdpGroup {
            key: crate::aggregate::GroupKey::Lport(port),
            sockets: 1,
            closed: 0,
            notice_only: 0,
            drops,
            recv_queue,
            send_queue: 0,
            rcvbuf: Some(2304),
            sndbuf: Some(212_992),
            memory: recv_queue,
            proto: None,
            state: None,
            events: None,
        }
    }

    /// A `-u` window of two UDP ports over 2 s: one dropping 300
    /// datagrams, one whose only socket is known from its notice.
    fn udp_report(tcp: bool) -> Report<'static> {
        let mut report = Report::new(
            crate::report::ReportKind::Window,
            Index::Lport,
            (1000, 3000),
            2,
            Vec::new(),
        );
        report.tcp = tcp;
        report.udp = Some(crate::udp::UdpSection::new(
            vec![udp_group(5353, Some(300), 2048), udp_group(9999, None, 0)],
            true,
            0,
        ));
        report
    }

    #[test]
    fn udp_groups_are_rows_of_drops_per_second_and_bytes_unread() {
        let data = LiveData::of(&udp_report(false), 0);
        assert!(data.udp && !data.tcp);
        let keys: Vec<&str> = data.rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["udp 5353", "udp 9999"]);
        let dropping = data.rows[0].udp.unwrap();
        assert_eq!(dropping.drops_ps, Some(150.0));
        assert_eq!(dropping.recv_queue, 2048);
        assert_eq!(data.rows[1].udp.unwrap().drops_ps, None);
        let totals = data.totals.udp.unwrap();
        assert_eq!(totals.drops_ps, Some(150.0));
        assert_eq!(data.totals.sockets, 2);

        // Alone, UDP is sorted by its drops and shows no TCP column.
        let mut view = ViewState::new(Index::Lport);
        view.update(data);
        assert_eq!(view.sort, SortKey::Drops);
        view.on_key(key(KeyCode::Char('s')));
        assert_eq!(view.sort, SortKey::Drops, "no other key sorts UDP alone");
        let text = screen(&mut view, 80, 24);
        let header = text
            .lines()
            .find(|l| l.starts_with("lport"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            header.contains("drops/s▼") && header.contains("recv-q"),
            "{header}"
        );
        assert!(!header.contains("send"), "{header}");
        let row = text.lines().find(|l| l.starts_with("udp 5353")).unwrap();
        assert!(row.contains("150.0") && row.contains("2048"), "{row}");
        let unknown = text.lines().find(|l| l.starts_with("udp 9999")).unwrap();
        assert!(unknown.contains('?'), "{unknown}");
        assert!(text.contains("total: udp drops 150.0/s"), "{text}");
        // The selected group charts its drops.
        assert!(text.contains("drops/s 150"), "{text}");
    }

    #[test]
    fn udp_rows_beside_tcp_ones_show_no_tcp_rates_and_s_reaches_their_drops() {
        let mut report = udp_report(true);
        let mut counters = Counters::default();
        counters.set(Counter::BytesSent, 4000, false);
        report.groups.push(crate::aggregate::Group {
            counters,
            sockets: 1,
            ..crate::aggregate::Group::empty(crate::aggregate::GroupKey::Lport(443))
        });
        let data = LiveData::of(&report, 1);
        let mut view = ViewState::new(Index::Lport);
        view.update(data);
        assert_eq!(view.sort, SortKey::Send);
        let text = screen(&mut view, 120, 24);
        let tcp = text.lines().find(|l| l.starts_with("443 ")).unwrap();
        let udp = text.lines().find(|l| l.starts_with("udp 5353")).unwrap();
        assert!(tcp.contains("2.0 kB/s"), "{tcp}");
        assert!(!tcp.contains('?'), "{tcp}");
        assert!(udp.contains(" - "), "UDP has no TCP rates: {udp}");
        for _ in 0..6 {
            view.on_key(key(KeyCode::Char('s')));
        }
        assert_eq!(view.sort, SortKey::Drops);
        let text = screen(&mut view, 120, 24);
        let first = text
            .lines()
            .skip_while(|l| !l.starts_with("lport"))
            .nth(1)
            .unwrap();
        assert!(first.starts_with("udp 5353"), "{text}");
        view.on_key(key(KeyCode::Char('s')));
        assert_eq!(view.sort, SortKey::Send, "the cycle goes round");
    }
}
