//! Precision mode: kernel tracepoints and kprobes read through
//! perf_event_open ring buffers (never eBPF), decoded into
//! [`crate::model::event`]s that attribution (`diff`) adds to what polling
//! sees. Knows nothing of reports, the command line or attribution.
//!
//! - `layout`: tracepoint `format` files parsed into field layouts.
//! - `decoder`: raw samples → events, by the layout read at run time.
//! - `kprobe_defs`: the kprobes used where a tracepoint is missing.
//! - `tracing_fs`: finding/mounting tracefs, event ids, kprobe_events.
//! - `perf_ring`: perf_event_open and the per-CPU ring buffers.
//! - `collector`: picks the probes for this kernel and runs them.

pub mod collector;
pub mod decoder;
pub mod kprobe_defs;
pub mod layout;
pub mod perf_ring;
pub mod tracing_fs;
