//! tcpipstat: per-socket TCP/IP statistics from sock_diag and /proc.
//!
//! Data flows one way: `source` (the only kernel I/O) fills a
//! [`model::Snapshot`]; `diff` attributes deltas and state events to sockets;
//! `aggregate` groups them; `report` renders. `run` drives the loop and
//! `cli` turns arguments into a typed configuration.

pub mod aggregate;
pub mod cli;
pub mod counters;
pub mod diff;
pub mod filter;
pub mod model;
pub mod report;
pub mod run;
pub mod session;
pub mod source;
pub mod trace;
