//! Close notifications: the sock_diag message the kernel multicasts for
//! every TCP or UDP socket it destroys (groups `SKNLGRP_INET_TCP_DESTROY`
//! and `SKNLGRP_INET6_TCP_DESTROY`, what `ss -E` listens to, or their UDP
//! twins), in the network namespace the listening socket was opened in.
//! A TCP notice carries the socket's final `tcp_info`, so connections that
//! live and die between two polls are counted whole, unprivileged and
//! without tracefs. A UDP notice carries only the tuple, the cookie and
//! the receive queue (no inode, no uid, no SK_MEMINFO, so no drop count:
//! inet_diag_handler_get_info fills the message and udp_diag's get_info;
//! seen on 6.18), and none comes for UDP-Lite (sock_diag_destroy_group
//! knows TCP and UDP only).
//!
//! The listener is read without blocking, between polls as often as the
//! loop wakes, into a bounded queue; a full kernel buffer or a full queue
//! is counted, never silent. The kernel says a full buffer (ENOBUFS) once
//! per overflow, however many notices it then drops, so the notices lost
//! are counted from the socket's own drop count (SO_MEMINFO's
//! SK_MEMINFO_DROPS, which the kernel raises for each one); where that
//! cannot be read (before 4.12), only the overflows are, as a lower bound.

use std::io;

use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket};

use super::sockdiag::{parse_datagram, DiagError, ParseStats};
use crate::model::{CloseLoss, SocketSample};

/// Multicast groups of NETLINK_SOCK_DIAG (include/uapi/linux/sock_diag.h).
const SKNLGRP_INET_TCP_DESTROY: u32 = 1;
const SKNLGRP_INET_UDP_DESTROY: u32 = 2;
const SKNLGRP_INET6_TCP_DESTROY: u32 = 3;
const SKNLGRP_INET6_UDP_DESTROY: u32 = 4;

/// Whose destroy notices a listener reads. Each protocol gets its own
/// listener: a notice does not say its protocol but in an attribute, and
/// each listener's drop count then tells that protocol's losses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseGroups {
    Tcp,
    Udp,
}

impl CloseGroups {
    fn groups(self) -> [u32; 2] {
        match self {
            CloseGroups::Tcp => [SKNLGRP_INET_TCP_DESTROY, SKNLGRP_INET6_TCP_DESTROY],
            CloseGroups::Udp => [SKNLGRP_INET_UDP_DESTROY, SKNLGRP_INET6_UDP_DESTROY],
        }
    }
}
/// The kernel-side receive buffer asked for: room for a few seconds of a
/// busy host's closes (each notice takes about 1 KiB there). Above
/// net.core.rmem_max only a privileged process gets it.
pub const DEFAULT_CLOSE_BUFFER: usize = 8 << 20;
/// Closes kept between two polls, at most; past this they are counted as
/// lost.
const QUEUE_LIMIT: usize = 1 << 20;
const DATAGRAM_BUFFER: usize = 64 * 1024;
/// getsockopt(SOL_SOCKET, SO_MEMINFO) (asm-generic/socket.h; the libc
/// crate does not name it for every architecture): the socket's
/// `sk_meminfo` array, SK_MEMINFO_DROPS among them.
#[cfg(not(any(target_arch = "sparc", target_arch = "sparc64")))]
const SO_MEMINFO: libc::c_int = 55;
#[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
const SO_MEMINFO: libc::c_int = 0x39;

/// A socket subscribed to the destroy groups of its namespace.
pub struct CloseListener {
    socket: Socket,
    buffer: Vec<u8>,
    queue: Vec<SocketSample>,
    /// Notices the queue dropped.
    queue_lost: u64,
    /// Notices the kernel dropped, from its drop count (None: it cannot be
    /// read here).
    kernel_lost: Option<u64>,
    /// The drop count last read (a 32-bit counter, so its growth is added
    /// up rather than read whole).
    kernel_drops_read: u32,
    /// Times the kernel reported a full buffer (ENOBUFS).
    overflows: u64,
    stats: ParseStats,
}

impl CloseListener {
    /// Joins `which` protocol's destroy groups (IPv4 and IPv6) with a
    /// receive buffer of `buffer_bytes`.
    pub fn open(buffer_bytes: usize, which: CloseGroups) -> Result<CloseListener, DiagError> {
        let mut socket = Socket::new(NETLINK_SOCK_DIAG).map_err(DiagError::Io)?;
        // An unbound socket has port id 0, the kernel's own, and multicast
        // skips it: bind to a port id of our own first.
        socket.bind_auto().map_err(DiagError::Io)?;
        for group in which.groups() {
            socket.add_membership(group).map_err(membership_error)?;
        }
        socket.set_non_blocking(true).map_err(DiagError::Io)?;
        set_receive_buffer(&socket, buffer_bytes);
        let drops = kernel_drops(&socket);
        Ok(CloseListener {
            socket,
            buffer: Vec::with_capacity(DATAGRAM_BUFFER),
            queue: Vec::new(),
            queue_lost: 0,
            kernel_lost: drops.map(|_| 0),
            kernel_drops_read: drops.unwrap_or(0),
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
                    continue;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                // EAGAIN: nothing more; any other error ends this read.
                Err(_) => break,
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
                self.queue_lost += (self.queue.len() - QUEUE_LIMIT.max(before)) as u64;
                self.queue.truncate(QUEUE_LIMIT.max(before));
            }
        }
        self.read_kernel_drops();
    }

    /// Adds the kernel's drops since the last read.
    fn read_kernel_drops(&mut self) {
        let (Some(lost), Some(now)) = (self.kernel_lost.as_mut(), kernel_drops(&self.socket))
        else {
            return;
        };
        *lost += u64::from(now.wrapping_sub(self.kernel_drops_read));
        self.kernel_drops_read = now;
    }

    /// The closes read since the last call, oldest first.
    pub fn take(&mut self) -> Vec<SocketSample> {
        self.drain();
        std::mem::take(&mut self.queue)
    }

    /// Notices lost since the listener opened: each one where the kernel's
    /// drop count can be read, else one per overflow (a lower bound).
    pub fn loss(&self) -> CloseLoss {
        close_loss(self.kernel_lost, self.overflows, self.queue_lost)
    }

    /// Malformed notices skipped.
    pub fn malformed(&self) -> usize {
        self.stats.malformed
    }
}

/// What a listener lost: the kernel's drops (None: not countable, then
/// each overflow counts as one, a lower bound) and the queue's.
fn close_loss(kernel_lost: Option<u64>, overflows: u64, queue_lost: u64) -> CloseLoss {
    CloseLoss {
        notices: kernel_lost.unwrap_or(overflows) + queue_lost,
        overflows,
        exact: kernel_lost.is_some(),
    }
}

/// The socket's SK_MEMINFO_DROPS (the kernel counts each message it could
/// not queue), None where SO_MEMINFO is missing (before 4.12).
fn kernel_drops(socket: &Socket) -> Option<u32> {
    use std::os::fd::AsRawFd;
    const VARS: usize = libc::SK_MEMINFO_DROPS as usize + 1;
    let mut meminfo = [0u32; VARS];
    let mut len = std::mem::size_of_val(&meminfo) as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `meminfo`, which
    // is that large and lives across the call; the fd belongs to `socket`.
    let result = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_MEMINFO,
            meminfo.as_mut_ptr().cast(),
            &mut len,
        )
    };
    // An older kernel's shorter array has no drop count.
    let whole = len as usize >= std::mem::size_of_val(&meminfo);
    (result == 0 && whole).then_some(meminfo[libc::SK_MEMINFO_DROPS as usize])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_notices_are_counted_from_the_kernel_drops_not_from_overflows() {
        // Three overflows that dropped 4,000 notices, and 2 the queue dropped.
        let loss = close_loss(Some(4000), 3, 2);
        assert_eq!(loss.notices, 4002);
        assert_eq!(loss.overflows, 3);
        assert!(loss.exact);
    }

    #[test]
    fn without_the_kernel_drop_count_lost_notices_are_a_lower_bound() {
        let loss = close_loss(None, 3, 0);
        assert_eq!(loss.notices, 3);
        assert!(!loss.exact);
    }

    #[test]
    fn a_close_listener_reads_the_kernels_drop_count() {
        // Needs only a netlink socket of one's own (no privilege); a
        // kernel without sock_diag's destroy groups has nothing to read.
        let Ok(mut listener) = CloseListener::open(0, CloseGroups::Tcp) else {
            return;
        };
        // SO_MEMINFO with SK_MEMINFO_DROPS: every kernel the project
        // supports with notices but 4.9-4.11 has it.
        assert!(listener.kernel_lost.is_some());
        listener.drain();
        assert_eq!(listener.loss(), CloseLoss::none(true));
    }
}
