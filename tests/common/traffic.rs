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
            abort_on_close(&conn);
        }
    }
}

/// Sets SO_LINGER 0: closing `conn` then resets the connection
/// (`tcp_disconnect`) instead of sending a FIN.
pub fn abort_on_close(conn: &TcpStream) {
    let linger = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    nix::sys::socket::setsockopt(conn, nix::sys::socket::sockopt::Linger, &linger).unwrap();
}

/// Keeps each connection `listener` accepts a request socket
/// (TCP_NEW_SYN_RECV) until its first data arrives, for up to `seconds`.
fn defer_accept(listener: &TcpListener, seconds: i32) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid socket descriptor, and a pointer to an int that
    // outlives the call, with its size.
    let rc = unsafe {
        nix::libc::setsockopt(
            listener.as_raw_fd(),
            nix::libc::IPPROTO_TCP,
            nix::libc::TCP_DEFER_ACCEPT,
            (&seconds as *const i32).cast(),
            std::mem::size_of::<i32>() as nix::libc::socklen_t,
        )
    };
    assert_eq!(
        rc,
        0,
        "TCP_DEFER_ACCEPT: {}",
        std::io::Error::last_os_error()
    );
}

/// `count` connections to a listener on 127.0.0.1:`port` in `ns` whose
/// server ends stay request sockets for `held` (the clients' handshakes
/// are done, the server waits for data: TCP_DEFER_ACCEPT), then move UP
/// and DOWN bytes and close, client first. Returns how many request
/// sockets `ss` listed meanwhile.
pub fn deferred_connections(ns: &super::Netns, port: u16, count: usize, held: Duration) -> usize {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let listener = ns.listen(&addr.to_string());
    defer_accept(&listener, 10);
    let conns: Vec<TcpStream> = (0..count).map(|_| ns.connect(addr)).collect();
    std::thread::sleep(held);
    let listed = ns
        .command("ss")
        .args(["-Htn", "state", "syn-recv"])
        .output()
        .expect("ss");
    let requests = String::from_utf8_lossy(&listed.stdout).lines().count();
    let server = in_namespace(&ns.name, move || serve(listener, count));
    // Each client closes after its exchange: the server reads to its end.
    for mut conn in conns {
        conn.write_all(&vec![0x5a; UP]).unwrap();
        let mut got = vec![0u8; DOWN];
        conn.read_exact(&mut got).unwrap();
    }
    server.join().unwrap();
    requests
}

/// Sets namespace `ns` up for [`failed_connects`] (before a run starts,
/// so that it reads `tcp_syn_retries` as the connects meet it): SYNs to
/// 10.9.9.2 go unanswered (a veth whose peer is down, its neighbour entry
/// set: an unresolved one would report the host unreachable), and are
/// sent again once (`tcp_syn_retries` 1: given up after ~3 s).
pub fn unanswered_route(ns: &super::Netns) {
    for args in [
        &["sysctl", "-qw", "net.ipv4.tcp_syn_retries=1"][..],
        &[
            "ip", "link", "add", "void0", "type", "veth", "peer", "name", "void1",
        ],
        &["ip", "addr", "add", "10.9.9.1/24", "dev", "void0"],
        &["ip", "link", "set", "void0", "up"],
        &[
            "ip",
            "neigh",
            "add",
            "10.9.9.2",
            "lladdr",
            "02:00:00:00:00:01",
            "dev",
            "void0",
            "nud",
            "permanent",
        ],
    ] {
        super::run_ok(ns.command(args[0]).args(&args[1..]));
    }
}

/// Connects that never complete, in `ns` (set up by [`unanswered_route`]),
/// one of each way the kernel ends them: refused (a closed port answers
/// with a reset), given up (unanswered, its retries spent)
/// and abandoned (unanswered, closed by the application after 300 ms).
/// The kernel counts an AttemptFail for the first two only.
pub fn failed_connects(ns: &super::Netns) {
    let closed: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let void: SocketAddr = "10.9.9.2:80".parse().unwrap();
    in_namespace(&ns.name, move || {
        let refused = TcpStream::connect(closed).expect_err("refused");
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        let abandoned = TcpStream::connect_timeout(&void, Duration::from_millis(300));
        assert_eq!(
            abandoned.expect_err("abandoned").kind(),
            std::io::ErrorKind::TimedOut
        );
        let gave_up = TcpStream::connect(void).expect_err("given up");
        assert_eq!(gave_up.kind(), std::io::ErrorKind::TimedOut);
    })
    .join()
    .unwrap();
}
