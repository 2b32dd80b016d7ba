//! Traffic with known byte counts for the live tests: a server and clients
//! that run on threads inside a named namespace, each connection moving
//! [`UP`] bytes to the server and [`DOWN`] back, closed gracefully (the
//! client first) or aborted with SO_LINGER 0.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

pub const UP: usize = 10_000;
pub const DOWN: usize = 5_000;

/// Runs `f` on its own thread inside namespace `name`.
pub fn in_namespace<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<T> {
    let path = format!("/run/netns/{name}");
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path).expect("open netns file");
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
}

/// Serves `count` connections: reads UP bytes, answers DOWN, then reads
/// to the end and closes (the client closes first).
pub fn serve(listener: TcpListener, count: usize) {
    for _ in 0..count {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut got = vec![0u8; UP];
        if conn.read_exact(&mut got).is_err() {
            continue;
        }
        let _ = conn.write_all(&vec![0x33; DOWN]);
        let mut rest = Vec::new();
        let _ = conn.read_to_end(&mut rest);
    }
}

/// Makes `count` connections; with `abort`, each ends with SO_LINGER 0 (a
/// reset) after the exchange instead of a FIN.
pub fn clients(to: SocketAddr, count: usize, abort: bool) {
    for _ in 0..count {
        let mut conn = TcpStream::connect(to).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.write_all(&vec![0x5a; UP]).unwrap();
        let mut got = vec![0u8; DOWN];
        conn.read_exact(&mut got).unwrap();
        if abort {
            let linger = nix::libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            nix::sys::socket::setsockopt(&conn, nix::sys::socket::sockopt::Linger, &linger)
                .unwrap();
        }
    }
}
