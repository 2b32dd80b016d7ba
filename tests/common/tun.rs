//! A path of known delay between two namespaces, for kernels without
//! `sch_netem`: a tun device in each, and threads that carry every IPv4
//! packet from one to the other, holding those the client sends for the
//! delay its destination address is given (one queue per delay, so a short
//! path never waits behind a long one). Replies come back at once. The
//! tun devices go with their file descriptors when the line is dropped.
//! The system calls (TUNSETIFF, poll) are wrapped here, with their safety
//! argued.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::libc;

/// `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

/// Creates tun device `name` (IFF_TUN, no packet information) in the
/// calling thread's network namespace; it lives as long as the file.
pub fn open_tun(name: &str) -> std::io::Result<File> {
    assert!(name.len() < 16, "interface names have at most 15 bytes");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")?;
    // struct ifreq: the name (16 bytes), then a union whose first member,
    // ifr_flags, is a short; 40 bytes in all on Linux.
    let mut ifreq = [0u8; 40];
    ifreq[..name.len()].copy_from_slice(name.as_bytes());
    let flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    ifreq[16..18].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: the descriptor is open; TUNSETIFF reads and writes one struct
    // ifreq, and `ifreq` is a buffer of its size that outlives the call.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, ifreq.as_mut_ptr()) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file)
}

/// Whether `file` has a packet to read within `timeout_ms`.
fn readable(file: &File, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the duration of the call.
    let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    rc > 0 && pfd.revents & libc::POLLIN != 0
}

/// The threads that carry packets between two tun devices.
pub struct DelayLine {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl DelayLine {
    /// Carries packets between `client` and `server` (tun devices in two
    /// namespaces): those from the client to an address of `delays` wait
    /// that long, the rest of IPv4 and everything back go at once.
    pub fn start(client: File, server: File, delays: HashMap<Ipv4Addr, Duration>) -> DelayLine {
        let stop = Arc::new(AtomicBool::new(false));
        let client = Arc::new(client);
        let server = Arc::new(server);
        let mut threads = Vec::new();
        let mut queues: HashMap<Ipv4Addr, mpsc::Sender<(Instant, Vec<u8>)>> = HashMap::new();
        for (address, delay) in delays {
            let (send, receive) = mpsc::channel::<(Instant, Vec<u8>)>();
            queues.insert(address, send);
            let out = Arc::clone(&server);
            threads.push(std::thread::spawn(move || {
                for (due, packet) in receive {
                    let wait = (due + delay).saturating_duration_since(Instant::now());
                    std::thread::sleep(wait);
                    let _ = (&*out).write(&packet);
                }
            }));
        }
        {
            let (from, to, stop) = (Arc::clone(&client), Arc::clone(&server), Arc::clone(&stop));
            threads.push(std::thread::spawn(move || {
                carry(&from, &stop, |packet| {
                    let destination = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
                    match queues.get(&destination) {
                        Some(queue) => {
                            let _ = queue.send((Instant::now(), packet.to_vec()));
                        }
                        None => {
                            let _ = (&*to).write(packet);
                        }
                    }
                });
                // The queues close with `queues`: their threads end.
            }));
        }
        {
            let (from, to, stop) = (server, client, Arc::clone(&stop));
            threads.push(std::thread::spawn(move || {
                carry(&from, &stop, |packet| {
                    let _ = (&*to).write(packet);
                });
            }));
        }
        DelayLine { stop, threads }
    }
}

/// Reads IPv4 packets from `from` until `stop`, handing each to `deliver`.
fn carry(from: &File, stop: &AtomicBool, mut deliver: impl FnMut(&[u8])) {
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        if !readable(from, 50) {
            continue;
        }
        let Ok(n) = (&*from).read(&mut buf) else {
            continue;
        };
        // IPv4 only (router solicitations and the like are dropped).
        if n >= 20 && buf[0] >> 4 == 4 {
            deliver(&buf[..n]);
        }
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
