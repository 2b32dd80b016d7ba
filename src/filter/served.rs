//! The sockets of an endpoint the run itself serves (the exporter's
//! `--listen` address), told from a socket's key alone: its listener, the
//! connections it accepted, and the client side of those when the client
//! is on this host. Reports leave them out, so that scraping the exporter
//! adds no series of its own.

use std::net::{IpAddr, SocketAddr};

use crate::model::{unmap, SocketKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServedEndpoint {
    /// The address bound (an unspecified address: every local one).
    pub addr: SocketAddr,
    /// The namespace it is bound in, as keys name it when several are
    /// sampled (a key of the run's own namespace alone says 0).
    pub netns: u64,
}

impl ServedEndpoint {
    /// Whether `key` is one of the endpoint's sockets: its local side is
    /// the endpoint (the listener, an accepted connection), or its peer is
    /// (a client on this host; one connecting to an unspecified bind
    /// reaches it by loopback or by an address of its own, which is then
    /// its source too). No other socket of the namespace can have the
    /// endpoint's local port and address: the bind holds them.
    pub fn holds(&self, key: &SocketKey) -> bool {
        if key.netns != 0 && key.netns != self.netns {
            return false;
        }
        let port = self.addr.port();
        let (local, remote) = (unmap(key.local), unmap(key.remote));
        let bound = unmap(self.addr.ip());
        if bound.is_unspecified() {
            let family_served = |a: IpAddr| a.is_ipv4() || bound.is_ipv6();
            let server = key.local_port == port && family_served(local);
            let client = key.remote_port == port
                && family_served(remote)
                && (remote.is_loopback() || remote == local);
            server || client
        } else {
            (key.local_port == port && local == bound)
                || (key.remote_port == port && remote == bound)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(netns: u64, local: &str, remote: &str) -> SocketKey {
        let local: SocketAddr = local.parse().unwrap();
        let remote: SocketAddr = remote.parse().unwrap();
        SocketKey {
            netns,
            ..SocketKey::new(local.ip(), local.port(), remote.ip(), remote.port())
        }
    }

    #[test]
    fn the_served_endpoint_holds_its_listener_its_connections_and_local_clients_only() {
        let served = ServedEndpoint {
            addr: "127.0.0.1:9977".parse().unwrap(),
            netns: 7,
        };
        // Listener, accepted connection, the local scraper's side.
        assert!(served.holds(&key(0, "127.0.0.1:9977", "0.0.0.0:0")));
        assert!(served.holds(&key(0, "127.0.0.1:9977", "127.0.0.1:40000")));
        assert!(served.holds(&key(7, "127.0.0.1:40000", "127.0.0.1:9977")));
        // Another namespace's port 9977 is not ours.
        assert!(!served.holds(&key(8, "127.0.0.1:9977", "127.0.0.1:40000")));
        // Nor is another local address, or a connection out to port 9977
        // elsewhere.
        assert!(!served.holds(&key(0, "127.0.0.2:9977", "127.0.0.1:40000")));
        assert!(!served.holds(&key(0, "10.0.0.1:40000", "10.0.0.2:9977")));
        assert!(!served.holds(&key(0, "127.0.0.1:40000", "127.0.0.1:80")));
    }

    #[test]
    fn an_unspecified_bind_serves_every_local_address_of_its_family() {
        let v4 = ServedEndpoint {
            addr: "0.0.0.0:9977".parse().unwrap(),
            netns: 0,
        };
        assert!(v4.holds(&key(0, "10.0.0.1:9977", "10.0.0.2:50000")));
        assert!(v4.holds(&key(0, "[::ffff:10.0.0.1]:9977", "[::ffff:10.0.0.2]:5")));
        assert!(!v4.holds(&key(0, "[2001:db8::1]:9977", "[2001:db8::2]:5")));
        // A client on this host: by loopback, or by its own address.
        assert!(v4.holds(&key(0, "127.0.0.1:50000", "127.0.0.1:9977")));
        assert!(v4.holds(&key(0, "10.0.0.1:50000", "10.0.0.1:9977")));
        // A connection to another host's 9977 is its own business.
        assert!(!v4.holds(&key(0, "10.0.0.1:50000", "10.0.0.2:9977")));
        let v6 = ServedEndpoint {
            addr: "[::]:9977".parse().unwrap(),
            netns: 0,
        };
        assert!(v6.holds(&key(0, "[2001:db8::1]:9977", "[2001:db8::2]:5")));
        assert!(v6.holds(&key(0, "10.0.0.1:9977", "10.0.0.2:5")));
        assert!(v6.holds(&key(0, "[::1]:50000", "[::1]:9977")));
    }
}
