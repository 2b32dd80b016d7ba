//! Precision mode: kernel tracepoints and kprobes read through
//! perf_event_open ring buffers (never eBPF), decoded into [`event`]s that
//! attribution adds to what polling sees.
//!
//! - `event`: the decoded events (plain data).
//! - `format`: tracepoint `format` files parsed into field layouts.
//! - `decode`: raw samples → events, by the layout read at run time.
//! - `kprobes`: the kprobe definitions used where a tracepoint is missing.
//! - `tracefs`: finding/mounting tracefs, event ids, kprobe_events.
//! - `perf`: perf_event_open and the per-CPU ring buffers.

pub mod decode;
pub mod event;
pub mod format;
pub mod kprobes;
pub mod perf;
pub mod tracefs;
