#!/usr/bin/env python3
"""conngen.py - owned by scripts/bench.sh: hold N established loopback TCP connections.

Usage:  conngen.py N [--base-port P] [--per-worker K] [--payload B] [--tune]

Opens N established TCP connections over 127.0.0.1 in the *current* network
namespace (2N sockets), sends B (default 100) bytes on every client end and
reads them on the server end, then prints "READY <N>" on stdout (flushed) and
holds everything open until SIGTERM/SIGINT, or until stdin reaches EOF when
stdin is a pipe, socket or tty (so a caller that dies takes it down too; with
stdin from /dev/null or a file only a signal stops it). Exit status 1 and a
message on stderr if setup fails. Python 3.11 stdlib only.

Workers: each forked worker owns one listener (127.0.0.1:P+i) and both ends of
up to K connections (default: fits the hard RLIMIT_NOFILE, which is raised to
as the soft limit; at most 8000). One listener port per worker keeps every
destination far from ephemeral-port exhaustion.

--tune (root, meant for a private netns: it writes /proc/sys of the current
namespace) sets net.ipv4.ip_local_port_range="1024 65535",
net.core.somaxconn=65535 and net.ipv4.tcp_max_syn_backlog=65535 first.
Typical use:
    ip netns add t; ip -n t link set lo up
    ip netns exec t python3 scripts/conngen.py 50000 --tune
"""
import argparse
import os
import struct
import resource
import signal
import socket
import stat
import sys

BATCH = 512  # connects per accept round; stays well below the listen backlog
LINGER0 = struct.pack("ii", 1, 0)  # close() sends RST: no TIME_WAIT left behind
TUNE = {"net/ipv4/ip_local_port_range": "1024 65535",
        "net/core/somaxconn": "65535", "net/ipv4/tcp_max_syn_backlog": "65535"}


def worker(lst, n, payload, ready_w, alive_r):
    """Open n connections to listener lst, report on ready_w, hold until alive_r EOF."""
    conns, addr, data = [], lst.getsockname(), b"x" * payload
    while len(conns) < n:
        clients = []
        for _ in range(min(BATCH, n - len(conns))):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
            c.connect(addr)
            clients.append(c)
        for c in clients:
            s, _ = lst.accept()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
            c.sendall(data)
            got = 0
            while got < payload:
                chunk = s.recv(payload - got)
                if not chunk:
                    raise ConnectionError("peer closed early")
                got += len(chunk)
            conns.append((c, s))
    os.write(ready_w, b"%d\n" % len(conns))
    os.close(ready_w)
    os.read(alive_r, 1)  # returns b"" when the parent goes away
    os._exit(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("n", type=int, help="number of connections (2n sockets)")
    ap.add_argument("--base-port", type=int, default=20000)
    ap.add_argument("--per-worker", type=int, default=0)
    ap.add_argument("--payload", type=int, default=100)
    ap.add_argument("--tune", action="store_true")
    a = ap.parse_args()
    if a.tune:
        for key, val in TUNE.items():
            with open("/proc/sys/" + key, "w") as f:
                f.write(val)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    per = a.per_worker or min(8000, (hard - 64) // 2)
    counts = [min(per, a.n - i) for i in range(0, a.n, per)]
    # Bind every listener before any connect, so no ephemeral port can take one.
    listeners = []
    for i in range(len(counts)):
        lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            lst.bind(("127.0.0.1", a.base_port + i))
        except OSError as e:
            sys.exit(f"conngen: bind 127.0.0.1:{a.base_port + i}: {e.strerror}")
        lst.listen(4096)
        listeners.append(lst)
    ready_r, ready_w = os.pipe()
    alive_r, alive_w = os.pipe()
    pids = []
    for i, cnt in enumerate(counts):
        pid = os.fork()
        if pid == 0:
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                os.close(ready_r)
                os.close(alive_w)
                for j, other in enumerate(listeners):
                    if j != i:
                        other.close()
                worker(listeners[i], cnt, a.payload, ready_w, alive_r)
            except BaseException as e:  # noqa: BLE001 - report anything, then die
                print(f"conngen worker {i}: {e!r}", file=sys.stderr, flush=True)
            os._exit(1)
        pids.append(pid)
    os.close(ready_w)
    os.close(alive_r)
    for lst in listeners:
        lst.close()

    def stop(*_):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        with os.fdopen(ready_r) as f:
            done = sum(int(line) for line in f)  # EOF once every worker reported or died
        if done != a.n:
            print(f"conngen: only {done} of {a.n} connections", file=sys.stderr)
            raise SystemExit(1)
        print(f"READY {done}", flush=True)
        mode = os.fstat(0).st_mode
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(0):
            while os.read(0, 4096):
                pass
        else:
            while True:
                signal.pause()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        os.close(alive_w)  # workers see EOF and exit
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


if __name__ == "__main__":
    main()
