//! The live view's table columns: which there are for an index, the text
//! of each cell, how wide a column must be for its header and every value
//! (nothing is cut), and which columns are left out, whole and least needed
//! first, when the terminal is too narrow. Pure: rows in, widths out.

use ratatui::text::Line;

use super::view::LiveRow;
use crate::aggregate::{Index, UNSEEN_OWNER_VALUE};
use crate::report::human_rate;

/// Blank cells between two columns.
pub const GAP: u16 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// The group: a tuple, a port, an address, a process, a namespace.
    Key,
    /// With index=tuple: the process holding the socket.
    Process,
    Sockets,
    Send,
    Recv,
    Segs,
    Retrans,
    Opens,
    Resets,
    /// With index=tuple: the socket's gauges (rtt, for other groups: the
    /// p50 of their sockets' smoothed RTT samples).
    State,
    Rtt,
    Cwnd,
    /// With -u: UDP's receive drops per second and bytes unread.
    Drops,
    RecvQ,
}

/// For tuples, left out first to last when the terminal is narrow: a
/// tuple is one socket (its count says little), then the gauges and rare
/// events, then what tells one connection from another. Send and recv go
/// last; the tuple itself never.
const TUPLE_DROP_ORDER: [Column; 13] = [
    Column::Sockets,
    Column::RecvQ,
    Column::Cwnd,
    Column::Opens,
    Column::Resets,
    Column::Rtt,
    Column::Segs,
    Column::State,
    Column::Retrans,
    Column::Process,
    Column::Drops,
    Column::Recv,
    Column::Send,
];

/// For other groups, left out first to last.
const GROUP_DROP_ORDER: [Column; 10] = [
    Column::Rtt,
    Column::RecvQ,
    Column::Resets,
    Column::Opens,
    Column::Segs,
    Column::Retrans,
    Column::Sockets,
    Column::Drops,
    Column::Recv,
    Column::Send,
];

/// TCP's rates: a UDP group has none of them.
const TCP_ONLY: [Column; 8] = [
    Column::Send,
    Column::Recv,
    Column::Segs,
    Column::Retrans,
    Column::Opens,
    Column::Resets,
    Column::Rtt,
    Column::Cwnd,
];

impl Column {
    /// The header: the index's name for the key column.
    pub fn title(self, index: Index) -> &'static str {
        match self {
            Column::Key => index.name(),
            Column::Process => "process",
            Column::Sockets => "socks",
            Column::Send => "send",
            Column::Recv => "recv",
            Column::Segs => "segs/s",
            Column::Retrans => "retrans",
            Column::Opens => "opens/s",
            Column::Resets => "resets/s",
            Column::State => "state",
            Column::Rtt if index == Index::Tuple => "rtt",
            Column::Rtt => "rtt p50",
            Column::Cwnd => "cwnd",
            Column::Drops => "drops/s",
            Column::RecvQ => "recv-q",
        }
    }

    /// Numbers are right-aligned, so that their units line up.
    pub fn numeric(self) -> bool {
        !matches!(self, Column::Key | Column::Process | Column::State)
    }

    /// One group's value in this column: `-` where a UDP group has
    /// nothing of TCP's, blank where a TCP group has nothing of UDP's, `?`
    /// for drops no source of the group counts.
    pub fn cell(self, r: &LiveRow) -> String {
        match (self, r.udp) {
            (Column::Drops, Some(u)) => {
                return u.drops_ps.map_or_else(|| "?".into(), |d| format!("{d:.1}"))
            }
            (Column::RecvQ, Some(u)) => return u.recv_queue.to_string(),
            (Column::Drops | Column::RecvQ, None) => return String::new(),
            (Column::Send | Column::Recv, Some(u)) if u.bytes => {}
            (column, Some(_)) if TCP_ONLY.contains(&column) => return "-".into(),
            _ => {}
        }
        match self {
            Column::Key => r.key.clone(),
            Column::Process => r.owner.clone().unwrap_or_default(),
            Column::Sockets => r.sockets.to_string(),
            Column::Send => human_rate(r.send_bps),
            Column::Recv => human_rate(r.recv_bps),
            Column::Segs => format!("{:.0}", r.segs_ps),
            Column::Retrans => percent(r.retrans_pct),
            Column::Opens => format!("{:.1}", r.opens_ps),
            Column::Resets => format!("{:.1}", r.resets_ps),
            Column::State => r.state.unwrap_or("").to_string(),
            Column::Rtt => r.rtt_us.map(human_us).unwrap_or_default(),
            Column::Cwnd => r.cwnd.map(|c| c.to_string()).unwrap_or_default(),
            Column::Drops | Column::RecvQ => String::new(),
        }
    }
}

/// The columns of groups by `index`, in the order shown; `owners`: the
/// groups' owners are known (a process column); `tcp`, `udp`: the
/// protocols the run shows.
pub fn columns(index: Index, owners: bool, tcp: bool, udp: bool) -> Vec<Column> {
    let mut all = vec![Column::Key];
    let tuples = index == Index::Tuple;
    if tuples && owners {
        all.push(Column::Process);
    }
    all.push(Column::Sockets);
    if tcp {
        all.extend([
            Column::Send,
            Column::Recv,
            Column::Segs,
            Column::Retrans,
            Column::Opens,
            Column::Resets,
        ]);
    }
    if udp {
        all.extend([Column::Drops, Column::RecvQ]);
    }
    if tuples {
        all.push(Column::State);
        if tcp {
            all.extend([Column::Rtt, Column::Cwnd]);
        }
    } else if tcp {
        all.push(Column::Rtt);
    }
    all
}

/// What fits: each shown column with its width, and those left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fit {
    pub shown: Vec<(Column, u16)>,
    pub left_out: Vec<Column>,
}

/// Fits `columns` (each as wide as its widest text in `needed`) into
/// `width` cells: whole columns are left out in the index's drop order,
/// the sorted one only when nothing else is left; the key column alone is
/// cut when even it does not fit.
pub fn fit(columns: &[Column], needed: &[u16], index: Index, sorted: Column, width: u16) -> Fit {
    let mut keep: Vec<bool> = vec![true; columns.len()];
    let total = |keep: &[bool]| -> u32 {
        let widths = needed.iter().zip(keep).filter(|(_, k)| **k);
        let count = widths.clone().count() as u32;
        widths.map(|(w, _)| u32::from(*w)).sum::<u32>() + u32::from(GAP) * count.saturating_sub(1)
    };
    let order: &[Column] = if index == Index::Tuple {
        &TUPLE_DROP_ORDER
    } else {
        &GROUP_DROP_ORDER
    };
    // The sorted column goes last, when the key alone is left to fit.
    let sorted_last = order.iter().filter(|c| **c != sorted).chain([&sorted]);
    for drop in sorted_last.filter(|c| **c != Column::Key) {
        if total(&keep) <= u32::from(width) {
            break;
        }
        if let Some(at) = columns.iter().position(|c| c == drop) {
            keep[at] = false;
        }
    }
    let mut fit = Fit {
        shown: Vec::new(),
        left_out: Vec::new(),
    };
    for ((column, need), kept) in columns.iter().zip(needed).zip(&keep) {
        if *kept {
            let need = if *column == Column::Key {
                (*need).min(width)
            } else {
                *need
            };
            fit.shown.push((*column, need));
        } else {
            fit.left_out.push(*column);
        }
    }
    fit
}

/// An owner in a process column that would not fit with it whole: the
/// long label of a socket closed before any poll saw it becomes the
/// exporter's word for it; other owners are short already.
pub fn narrow_owner(label: &str) -> String {
    if label == UNSEEN_OWNER_VALUE {
        "- (unseen)".to_string()
    } else {
        label.to_string()
    }
}

/// What to say of the columns left out, in at most `room` cells.
pub fn left_out_text(left_out: &[Column], index: Index, room: u16) -> Option<String> {
    if left_out.is_empty() {
        return None;
    }
    let names: Vec<&str> = left_out.iter().map(|c| c.title(index)).collect();
    let plural = if names.len() == 1 { "" } else { "s" };
    let long = format!(" not shown (too narrow): {} ", names.join(", "));
    let short = format!(" {} column{plural} not shown (too narrow) ", names.len());
    [long, short]
        .into_iter()
        .find(|t| Line::from(t.as_str()).width() <= usize::from(room))
}

/// Retransmitted segments per 100 sent, or `-` when nothing was sent.
pub fn percent(value: Option<f64>) -> String {
    value
        .map(|v| format!("{v:.1}%"))
        .unwrap_or_else(|| "-".into())
}

/// A smoothed rtt in µs or ms.
pub fn human_us(us: u32) -> String {
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

    fn widths_of(columns: &[Column], index: Index) -> Vec<u16> {
        columns
            .iter()
            .map(|c| match c {
                Column::Key => 31,
                Column::Process => 14,
                c => c.title(index).len() as u16,
            })
            .collect()
    }

    fn shown(fit: &Fit) -> Vec<Column> {
        fit.shown.iter().map(|(c, _)| *c).collect()
    }

    fn width_of(fit: &Fit) -> u16 {
        fit.shown.iter().map(|(_, w)| w).sum::<u16>() + GAP * (fit.shown.len() as u16 - 1)
    }

    #[test]
    fn a_wide_terminal_shows_every_column_at_its_needed_width() {
        let all = columns(Index::Tuple, true, true, false);
        let needed = widths_of(&all, Index::Tuple);
        let fit = fit(&all, &needed, Index::Tuple, Column::Send, 200);
        assert!(fit.left_out.is_empty());
        assert_eq!(shown(&fit), all);
        assert_eq!(fit.shown[0], (Column::Key, 31));
    }

    #[test]
    fn a_narrow_terminal_leaves_out_whole_columns_least_needed_first() {
        let all = columns(Index::Tuple, true, true, false);
        let needed = widths_of(&all, Index::Tuple);
        let fit = fit(&all, &needed, Index::Tuple, Column::Send, 80);
        assert!(width_of(&fit) <= 80, "{fit:?}");
        // Every shown column keeps its needed width.
        for (column, width) in &fit.shown {
            let at = all.iter().position(|c| c == column).unwrap();
            assert_eq!(*width, needed[at]);
        }
        for gone in [Column::Sockets, Column::Cwnd, Column::Opens] {
            assert!(fit.left_out.contains(&gone), "{fit:?}");
        }
        for kept in [Column::Key, Column::Process, Column::Send, Column::Recv] {
            assert!(shown(&fit).contains(&kept), "{fit:?}");
        }
        // In the order shown.
        let order: Vec<usize> = shown(&fit)
            .iter()
            .map(|c| all.iter().position(|a| a == c).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn the_sorted_column_is_never_left_out() {
        let all = columns(Index::Lport, false, true, false);
        let needed = widths_of(&all, Index::Lport);
        let fit = fit(&all, &needed, Index::Lport, Column::Resets, 45);
        assert!(shown(&fit).contains(&Column::Resets), "{fit:?}");
        assert!(!shown(&fit).contains(&Column::Opens), "{fit:?}");
    }

    #[test]
    fn a_key_wider_than_the_terminal_is_all_that_is_left() {
        let all = columns(Index::Tuple, false, true, false);
        let needed = widths_of(&all, Index::Tuple);
        let fit = fit(&all, &needed, Index::Tuple, Column::Send, 20);
        assert_eq!(fit.shown, [(Column::Key, 20)]);
        assert!(fit.left_out.contains(&Column::Send));
    }

    #[test]
    fn only_the_long_unseen_owner_has_a_narrow_form() {
        assert_eq!(narrow_owner(UNSEEN_OWNER_VALUE), "- (unseen)");
        for owner in ["nginx[812]", "?", "-", "4242"] {
            assert_eq!(narrow_owner(owner), owner);
        }
    }

    #[test]
    fn the_columns_left_out_are_named_or_counted_as_room_allows() {
        let out = [Column::Cwnd, Column::Rtt];
        let long = left_out_text(&out, Index::Tuple, 80).unwrap();
        assert_eq!(long, " not shown (too narrow): cwnd, rtt ");
        let short = left_out_text(&out, Index::Tuple, 34).unwrap();
        assert_eq!(short, " 2 columns not shown (too narrow) ");
        assert_eq!(left_out_text(&out, Index::Tuple, 10), None);
        assert_eq!(left_out_text(&[], Index::Tuple, 80), None);
    }
}
