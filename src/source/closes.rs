//! Close notifications: the sock_diag message the kernel multicasts for
//! every TCP socket it destroys (groups `SKNLGRP_INET_TCP_DESTROY` and
//! `SKNLGRP_INET6_TCP_DESTROY`, what `ss -E` listens to), in the network
//! namespace the listening socket was opened in. Each carries the
//! socket's final `tcp_info`, so connections that live and die between two
//! polls are counted whole, unprivileged and without tracefs.
//!
//! The listener is read without blocking, between polls as often as the
//! loop wakes, into a bounded queue; a full kernel buffer (ENOBUFS) or a
//! full queue is counted, never silent.

use std::io;

use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket};

use super::sockdiag::{parse_datagram, DiagError, ParseStats};
use crate::model::SocketSample;

/// Multicast groups of NETLINK_SOCK_DIAG (include/uapi/linux/sock_diag.h).
const SKNLGRP_INET_TCP_DESTROY: u32 = 1;
const SKNLGRP_INET6_TCP_DESTROY: u32 = 3;
/// The kernel-side receive buffer asked for: room for a few seconds of a
/// busy host's closes (each notice takes about 1 KiB there). Above
/// net.core.rmem_max only a privileged process gets it.
pub const DEFAULT_CLOSE_BUFFER: usize = 8 << 20;
/// Closes kept between two polls, at most; past this they are counted as
/// lost.
const QUEUE_LIMIT: usize = 1 << 20;
const DATAGRAM_BUFFER: usize = 64 * 1024;

/// A socket subscribed to the destroy groups of its namespace.
pub struct CloseListener {
    socket: Socket,
    buffer: Vec<u8>,
    queue: Vec<SocketSample>,
    /// Notices the kernel or the queue dropped (ENOBUFS counts as one: the
    /// kernel does not say how many).
    lost: u64,
    /// Times the kernel reported a full buffer.
    overflows: u64,
    stats: ParseStats,
}

impl CloseListener {
    /// Joins both destroy groups with a receive buffer of `buffer_bytes`.
    pub fn open(buffer_bytes: usize) -> Result<CloseListener, DiagError> {
        let mut socket = Socket::new(NETLINK_SOCK_DIAG).map_err(DiagError::Io)?;
        // An unbound socket has port id 0, the kernel's own, and multicast
        // skips it: bind to a port id of our own first.
        socket.bind_auto().map_err(DiagError::Io)?;
        for group in [SKNLGRP_INET_TCP_DESTROY, SKNLGRP_INET6_TCP_DESTROY] {
            socket.add_membership(group).map_err(membership_error)?;
        }
        socket.set_non_blocking(true).map_err(DiagError::Io)?;
        set_receive_buffer(&socket, buffer_bytes);
        Ok(CloseListener {
            socket,
            buffer: Vec::with_capacity(DATAGRAM_BUFFER),
            queue: Vec::new(),
            lost: 0,
            overflows: 0,
            stats: ParseStats::default(),
        })
    }

    /// Reads every notice waiting, without blocking.
    pub fn drain(&mut self) {
        let mut interrupted = false;
        loop {
            self.buffer.clear();
            match self.socket.recv(&mut self.buffer, 0) {
                Ok(_) => {}
                Err(err) if err.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.overflows += 1;
                    self.lost += 1;
                    continue;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                // EAGAIN: nothing more; any other error ends this read.
                Err(_) => return,
            }
            let before = self.queue.len();
            parse_datagram(
                &self.buffer,
                None,
                &mut self.queue,
                &mut self.stats,
                &mut interrupted,
            );
            if self.queue.len() > QUEUE_LIMIT {
                self.lost += (self.queue.len() - QUEUE_LIMIT.max(before)) as u64;
                self.queue.truncate(QUEUE_LIMIT.max(before));
            }
        }
    }

    /// The closes read since the last call, oldest first.
    pub fn take(&mut self) -> Vec<SocketSample> {
        self.drain();
        std::mem::take(&mut self.queue)
    }

    /// Notices lost since the listener opened (a lower bound: a full kernel
    /// buffer counts once per report of it).
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Malformed notices skipped.
    pub fn malformed(&self) -> usize {
        self.stats.malformed
    }
}

fn membership_error(err: io::Error) -> DiagError {
    match err.raw_os_error() {
        Some(libc::EINVAL | libc::ENOENT | libc::EPERM | libc::EACCES) => {
            DiagError::Unavailable(err)
        }
        _ => DiagError::Io(err),
    }
}

/// SO_RCVBUFFORCE where privileged, else SO_RCVBUF (capped by rmem_max);
/// a failure only makes losses likelier, and losses are counted.
fn set_receive_buffer(socket: &Socket, bytes: usize) {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(bytes / 2).unwrap_or(libc::c_int::MAX);
    for option in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: setsockopt reads exactly size_of::<c_int>() bytes from a
        // live c_int; the fd belongs to `socket`, alive for the call.
        let result = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if result == 0 {
            return;
        }
    }
}
