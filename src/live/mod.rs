//! The live view (`--interval` on a terminal without `--format`): a
//! full-screen table of groups with their rates, refreshed every window,
//! on ratatui + crossterm. This file is the terminal edge: it owns the
//! loop (polls on the run's cadence, a report every interval, keys read
//! between them); what is shown and what keys do is `view`, pure, drawn
//! by `draw` with the columns that fit (`columns`).

mod columns;
mod draw;
pub mod view;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use ratatui::DefaultTerminal;

use crate::config::{Config, Mode};
use crate::session::{next_boundary, Session};
use view::{Action, LiveData, ViewState};

/// Longest wait between two looks at the keyboard.
const KEY_LATENCY: Duration = Duration::from_millis(50);

/// Runs the live view until `q`, Ctrl-C, SIGTERM, `--count` or
/// `--timeout`; the terminal is restored however it ends (ratatui's
/// panic hook restores it on a panic too).
pub fn run(session: &mut Session, config: &Config, stop: &AtomicBool) -> anyhow::Result<()> {
    let mut terminal = ratatui::try_init().context("opening the terminal for the live view")?;
    let result = live_loop(&mut terminal, session, config, stop);
    let restored = ratatui::try_restore().context("restoring the terminal");
    result.and(restored)
}

fn live_loop(
    terminal: &mut DefaultTerminal,
    session: &mut Session,
    config: &Config,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let Mode::Interval {
        every,
        count,
        timeout,
    } = config.mode
    else {
        anyhow::bail!("the live view needs --interval");
    };
    let started = Instant::now();
    let ends_at = timeout.map(|t| started + t);
    let mut next_poll = started + config.poll;
    let mut next_report = started + every;
    let mut reports = 0u64;
    let mut view = ViewState::new(session.index());
    // The owner of each connection, in its own column (as `ss -p` shows).
    session.look_up_owners();
    // Notes raised before the view opened (stderr would be hidden under it).
    view.note(session.take_fresh_notices());
    terminal.draw(|f| view.draw(f))?;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut redraw = false;
        while event::poll(Duration::ZERO)? {
            match event::read()? {
                Event::Key(key) if key.kind != KeyEventKind::Release => {
                    redraw = true;
                    match view.on_key(key) {
                        Action::Quit => return Ok(()),
                        Action::None => {}
                        // Both apply from the next window (this one's
                        // counts so far would show a fraction of it).
                        Action::Regroup(index) => session.set_index(index),
                        Action::Filter(filter) => session.set_view_filter(filter),
                    }
                }
                Event::Resize(..) => redraw = true,
                _ => {}
            }
        }
        let now = Instant::now();
        if now >= next_poll {
            session.poll()?;
            next_poll = next_boundary(next_poll, config.poll, now);
        }
        // Notes are shown as they come, in the view: stderr would tear
        // the screen.
        redraw |= view.note(session.take_fresh_notices());
        let finishing = ends_at.is_some_and(|t| now >= t);
        if now >= next_report || finishing {
            let data = current(session);
            session.end_window();
            view.update(data);
            redraw = true;
            reports += 1;
            next_report = next_boundary(next_report, every, now);
            if count.is_some_and(|n| reports >= n) || finishing {
                terminal.draw(|f| view.draw(f))?;
                return Ok(());
            }
        }
        if redraw {
            terminal.draw(|f| view.draw(f))?;
        }
        let until = next_poll
            .min(next_report)
            .saturating_duration_since(Instant::now());
        session.wait(until.min(KEY_LATENCY));
    }
}

/// The current window's rates (ended or still running).
fn current(session: &mut Session) -> LiveData {
    let tracked = session.tracker().tracked();
    LiveData::of(&session.window_report(), tracked)
}
