#!/usr/bin/env python3
"""mixed.py - a mixed workload of short TCP connections that prints its own truth.

Usage:  mixed.py [--connections N] [--seed S] [--spread SEC] [--max-life SEC]
                 [--max-bytes B] [--deadline SEC] [--ready-file PATH]

Meant for a private network namespace (it uses 127.0.0.1 and ::1 only):
    ip netns add m; ip -n m link set lo up
    ip netns exec m python3 scripts/mixed.py --connections 500 > truth.json

Makes N connections (default 500), started at random moments over --spread
seconds (default 3), each over IPv4 or IPv6 (half each), living from 1 ms to
--max-life seconds (default 3, log-uniform), moving 0 to --max-bytes bytes
each way (default 1,000,000; a fifth of the directions move none), and ending
one of these ways (by weight):
  client_first     the client closes first, the server reads the end, closes
  server_first     the server closes first, the client reads the end, closes
  shutdown_first   the client shuts down its sending side after sending; the
                   server reads to the end, answers, closes; the client reads
                   to the end and closes
  client_abort     after the exchange the client closes with SO_LINGER 0 (RST)
  server_abort     after the exchange the server closes with SO_LINGER 0 (RST)
  refused          a connect() to a port nobody listens on (the peer's RST)

Prints one JSON object on stdout when every connection is over: "connections"
(per connection: id, family, end, the client's tuple laddr/lport/raddr/rport,
bytes "up" (client to server) and "down" as each application read them, and
"aborted"/"refused"), and "expected": the opens and failed attempts the
namespace's MIB must show (ActiveOpens = every connect(), PassiveOpens =
every accepted connection, AttemptFails = refused connects). Bytes of aborted
connections are what the applications read, not what the kernel acked: only
non-aborted connections' bytes are exact truth.

Bounded in time: every socket operation times out after --deadline seconds
(default 20), and the whole run stops with exit status 1 and a message on
stderr past spread + max-life + deadline. Exit status 1 too when a
connection did not go as planned (it is named on stderr; the JSON is still
printed, with "errors"). Python 3.11 stdlib only.
"""
import argparse
import json
import math
import os
import random
import socket
import struct
import sys
import threading
import time

LINGER0 = struct.pack("ii", 1, 0)
ENDS = [("client_first", 3), ("server_first", 3), ("shutdown_first", 2),
        ("client_abort", 2), ("server_abort", 2), ("refused", 2)]
FAMILIES = {"ipv4": (socket.AF_INET, "127.0.0.1"), "ipv6": (socket.AF_INET6, "::1")}
CHUNK = 65536


def plan(rng, a, i):
    """One connection's plan: family, end, sizes, life, start time."""
    end = rng.choices([e for e, _ in ENDS], [w for _, w in ENDS])[0]

    def size():
        return 0 if rng.random() < 0.2 else int(math.exp(rng.uniform(0, math.log(a.max_bytes))))

    return {
        "id": i,
        "family": rng.choice(sorted(FAMILIES)),
        "end": end,
        "plan_up": size(),
        "plan_down": size(),
        "life": math.exp(rng.uniform(math.log(0.001), math.log(a.max_life))),
        "start": rng.uniform(0, a.spread),
    }


def send_all(s, n):
    data = b"m" * min(n, CHUNK)
    left = n
    while left:
        left -= s.send(data[:min(left, CHUNK)])


def read_exactly(s, n):
    got = 0
    while got < n:
        chunk = s.recv(min(CHUNK, n - got))
        if not chunk:
            break
        got += len(chunk)
    return got


def read_to_end(s):
    got = 0
    while True:
        chunk = s.recv(CHUNK)
        if not chunk:
            return got
        got += len(chunk)


def abort(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
    s.close()


class Workload:
    def __init__(self, a):
        self.a = a
        self.lock = threading.Lock()
        self.plans_by_port = {}  # (family, client port) -> plan, before connect
        self.port_known = threading.Condition(self.lock)
        self.errors = []
        self.listeners = {}
        self.refused_port = {}
        for fam, (af, host) in FAMILIES.items():
            lst = socket.socket(af, socket.SOCK_STREAM)
            lst.bind((host, 0))
            lst.listen(4096)
            self.listeners[fam] = lst
            # A port bound and never listened on: connects to it are refused,
            # and no other socket can take it while the run lasts.
            hole = socket.socket(af, socket.SOCK_STREAM)
            hole.bind((host, 0))
            self.refused_port[fam] = hole

    def error(self, p, what):
        with self.lock:
            self.errors.append(f"connection {p['id']} ({p['end']}, {p['family']}): {what}")

    def accept_loop(self, fam):
        lst = self.listeners[fam]
        while True:
            try:
                conn, peer = lst.accept()
            except OSError:
                return
            with self.port_known:
                p = self.plans_by_port.pop((fam, peer[1]), None)
            if p is None:
                conn.close()
                continue
            threading.Thread(target=self.server, args=(p, conn), daemon=True).start()

    def server(self, p, s):
        s.settimeout(self.a.deadline)
        try:
            pause = p["life"] / 2
            end = p["end"]
            if end == "shutdown_first":
                p["up"] = read_to_end(s)
                send_all(s, p["plan_down"])
                s.close()
                return
            p["up"] = read_exactly(s, p["plan_up"])
            time.sleep(pause)
            send_all(s, p["plan_down"])
            p["server_sent"].set()
            if end == "server_first":
                s.close()
            elif end == "server_abort":
                p["server_done"].wait(self.a.deadline)
                abort(s)
            elif end == "client_first":
                rest = read_to_end(s)
                if rest:
                    self.error(p, f"server read {rest} bytes past the plan")
                s.close()
            else:  # client_abort: the client's RST ends this end's read
                try:
                    read_to_end(s)
                except ConnectionResetError:
                    pass
                s.close()
        except OSError as e:
            self.error(p, f"server: {e}")
            s.close()

    def client(self, p):
        af, host = FAMILIES[p["family"]]
        s = socket.socket(af, socket.SOCK_STREAM)
        s.settimeout(self.a.deadline)
        try:
            s.bind((host, 0))
            local = s.getsockname()
            p["laddr"], p["lport"] = local[0], local[1]
            p["raddr"] = host
            if p["end"] == "refused":
                p["rport"] = self.refused_port[p["family"]].getsockname()[1]
                try:
                    s.connect((host, p["rport"]))
                    self.error(p, "a refused connect was accepted")
                except ConnectionRefusedError:
                    pass
                s.close()
                return
            p["rport"] = self.listeners[p["family"]].getsockname()[1]
            with self.port_known:
                self.plans_by_port[(p["family"], p["lport"])] = p
            s.connect((host, p["rport"]))
            end = p["end"]
            send_all(s, p["plan_up"])
            if end == "shutdown_first":
                s.shutdown(socket.SHUT_WR)
                p["down"] = read_to_end(s)
                s.close()
                return
            p["down"] = read_exactly(s, p["plan_down"])
            time.sleep(p["life"] / 2)
            if end == "client_first":
                s.close()
            elif end == "client_abort":
                # Not before the server is done sending: the RST must find
                # it reading, not make its send fail.
                p["server_sent"].wait(self.a.deadline)
                abort(s)
            elif end == "server_first":
                rest = read_to_end(s)
                if rest:
                    self.error(p, f"client read {rest} bytes past the plan")
                s.close()
            else:  # server_abort: the client waits for the server's RST
                p["server_done"].set()
                try:
                    read_to_end(s)
                except ConnectionResetError:
                    pass
                s.close()
        except OSError as e:
            self.error(p, f"client: {e}")
            s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--connections", type=int, default=500)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--spread", type=float, default=3.0)
    ap.add_argument("--max-life", type=float, default=3.0)
    ap.add_argument("--max-bytes", type=int, default=1_000_000)
    ap.add_argument("--deadline", type=float, default=20.0)
    ap.add_argument("--ready-file", help="created once the listeners are up, before any connect")
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    plans = [plan(rng, a, i) for i in range(a.connections)]
    for p in plans:
        p.update(up=0, down=0, server_done=threading.Event(), server_sent=threading.Event())
    w = Workload(a)
    for fam in FAMILIES:
        threading.Thread(target=w.accept_loop, args=(fam,), daemon=True).start()
    if a.ready_file:
        open(a.ready_file, "w").close()
    begun = time.monotonic()
    clients = []
    for p in sorted(plans, key=lambda p: p["start"]):
        delay = begun + p["start"] - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t = threading.Thread(target=w.client, args=(p,), daemon=True)
        t.start()
        clients.append(t)
    stop = begun + a.spread + a.max_life + a.deadline
    for t in clients:
        t.join(max(0.0, stop - time.monotonic()))
    # Servers end shortly after their clients; give them the same bound.
    while threading.active_count() > 3 and time.monotonic() < stop:
        time.sleep(0.01)
    late = threading.active_count() > 3
    for lst in w.listeners.values():
        lst.close()
    if late:
        w.errors.append(f"run not over {stop - begun:.1f} s after it began")
    for p in plans:
        if p["end"] not in ("refused", "client_abort", "server_abort"):
            if p["up"] != p["plan_up"] or p["down"] != p["plan_down"]:
                w.errors.append(f"connection {p['id']}: moved {p['up']}/{p['down']} "
                                f"of {p['plan_up']}/{p['plan_down']}")
    connections = []
    for p in plans:
        aborted = p["end"] in ("client_abort", "server_abort")
        connections.append({
            "id": p["id"], "family": p["family"], "end": p["end"],
            "laddr": p.get("laddr"), "lport": p.get("lport"),
            "raddr": p.get("raddr"), "rport": p.get("rport"),
            "up": p["up"], "down": p["down"], "life_ms": round(p["life"] * 1000, 1),
            "aborted": aborted, "refused": p["end"] == "refused",
        })
    refused = sum(c["refused"] for c in connections)
    out = {
        "seed": seed,
        "seconds": round(time.monotonic() - begun, 3),
        "expected": {
            "ActiveOpens": len(connections),
            "PassiveOpens": len(connections) - refused,
            "AttemptFails": refused,
        },
        "ends": {e: sum(c["end"] == e for c in connections) for e, _ in ENDS},
        "connections": connections,
        "errors": w.errors,
    }
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
    if w.errors:
        for e in w.errors:
            print("mixed.py: " + e, file=sys.stderr)
        os._exit(1)
    os._exit(0)


if __name__ == "__main__":
    main()
