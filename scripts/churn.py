#!/usr/bin/env python3
"""churn.py - owned by scripts/bench.sh: steady connection churn for the
precision-mode case.

Usage:  churn.py RATE SECONDS [--port P] [--workers W] [--close-after-ms M]

Listens on 127.0.0.1:P (default 7000) and, from W (default 4) threads,
opens RATE connections per second in total for SECONDS: each client sends
300 bytes, the server end answers 300, the client reads them and closes
first, the server reads the end and closes M ms later (default 5: as a
server finishing its work does, and as long as a round trip beyond
loopback keeps a closing socket in FIN_WAIT/CLOSE_WAIT). Prints "DONE <connections>
<seconds>" at the end. Python 3 stdlib only."""
import argparse
import socket
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rate", type=float)
    ap.add_argument("seconds", type=float)
    ap.add_argument("--port", type=int, default=7000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--close-after-ms", type=float, default=5.0)
    a = ap.parse_args()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", a.port))
    listener.listen(4096)
    payload = b"x" * 300
    stop = time.monotonic() + a.seconds
    done = [0] * a.workers

    def serve():
        while True:
            try:
                c, _ = listener.accept()
            except OSError:
                return
            try:
                c.recv(4096)
                c.sendall(payload)
                while c.recv(4096):
                    pass
                time.sleep(a.close_after_ms / 1000)
            except OSError:
                pass
            c.close()

    def client(i):
        period = a.workers / a.rate
        next_at = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= stop:
                return
            if now < next_at:
                time.sleep(next_at - now)
            next_at += period
            s = socket.create_connection(("127.0.0.1", a.port))
            s.sendall(payload)
            got = 0
            while got < 300:
                d = s.recv(4096)
                if not d:
                    break
                got += len(d)
            s.close()
            done[i] += 1

    # Enough servers that their closing delay does not limit the rate.
    n_servers = a.workers + int(a.rate * a.close_after_ms / 1000) + 1
    servers = [threading.Thread(target=serve, daemon=True) for _ in range(n_servers)]
    for t in servers:
        t.start()
    started = time.monotonic()
    clients = [threading.Thread(target=client, args=(i,)) for i in range(a.workers)]
    for t in clients:
        t.start()
    for t in clients:
        t.join()
    print(f"DONE {sum(done)} {time.monotonic() - started:.2f}", flush=True)


if __name__ == "__main__":
    main()
