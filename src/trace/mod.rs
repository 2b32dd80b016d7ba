//! Precision mode: kernel tracepoints and kprobes read through
//! perf_event_open ring buffers (never eBPF), decoded into the events of
//! [`crate::model::event`] (`TraceEvent`, `Timed`, `Probe`, `EventTuple`),
//! which live there, not here, so whoever attributes them needs nothing of
//! this module but [`Collector`].
//!
//! The lowest layer but `model`: it imports only `crate::model`,
//! `crate::counters` and `crate::source::sockdiag` (for last-moment
//! lookups), never the command line, attribution, reports or the run loop.
//! Its options ([`ProbeOptions`]) and its account of what it opened
//! ([`ProbeSummary`]) are its own plain types.
//!
//! - `layout`: event `format` files parsed into field layouts.
//! - `decoder`: raw samples → events, by the layout read at run time; the
//!   kinds of event that can be opened; kprobe call halves paired.
//! - `kprobe_defs`: the kprobes used where a tracepoint is missing.
//! - `ftrace_pipe`: a private ftrace instance read as text, for the
//!   delayed-ACK timer (perf rings miss timer expiries on idle CPUs).
//! - `kernel_facts`: symbol addresses and struct offsets of the running
//!   kernel (kallsyms, BTF), for the delayed-ACK timer.
//! - `tracing_fs`: finding/mounting tracefs, format files, kprobe_events.
//! - `perf_ring`: perf_event_open, the per-CPU ring buffers, and the
//!   CLOCK_MONOTONIC reading their timestamps compare with.
//! - `collector`: picks the probes for this kernel, opens and runs them.

pub mod collector;
pub mod decoder;
pub mod ftrace_pipe;
pub mod kernel_facts;
pub mod kprobe_defs;
pub mod layout;
pub mod perf_ring;
pub mod tracing_fs;

pub use collector::{Collector, PrecisionError, ProbeMode, ProbeOptions, ProbeSummary};
