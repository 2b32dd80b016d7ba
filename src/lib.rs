//! tcpipstat: per-socket TCP/IP statistics from sock_diag and /proc, and
//! kernel tracepoints or kprobes through perf rings (never eBPF).
//!
//! Data flows one way and each module imports only those before it here:
//! `model` (plain data) ← `counters`, `rtt` (RTT histograms), `filter` ← `source` (polling input),
//! `trace` (kernel events) ← `diff` (attribution) ← `aggregate` (groups) ←
//! `udp` (UDP sockets' windows, groups and MIB) ← `report` (formats) ← `export` (the Prometheus exporter's state and its
//! HTTP edge) ← `config` (one run's typed configuration) ← `session` (one
//! run's polls, events and reports) ← `live` (the terminal view) ← `run`
//! (time and signals). `cli` turns the command line into a `config`; the
//! engine does not know it.

pub mod aggregate;
pub mod cli;
pub mod config;
pub mod counters;
pub mod diff;
pub mod export;
pub mod filter;
pub mod live;
pub mod manual;
pub mod model;
pub mod report;
pub mod rtt;
pub mod run;
pub mod session;
pub mod source;
pub mod trace;
pub mod udp;
