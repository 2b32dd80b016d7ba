#!/usr/bin/env bash
# record-testdata.sh - records testdata/replay/: the raw sock_diag dumps of a
# short tcpipstat run (--record) in a private namespace, while a loopback
# connection with fixed ports sends known bytes between two polls. The
# replay tests feed these dumps through the parser and the tracker.
#
# Scenario (kept in testdata/replay/manifest.txt): listener 127.0.0.1:5001,
# client 127.0.0.1:40001. Before the run: 1000 bytes client->server. During
# the run, between polls: 5000 bytes client->server and 700 back; a second
# connection from port 40002 opens, sends 300 bytes and stays open.
# Usage (root): scripts/record-testdata.sh [BINARY]
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (ip netns)"; exit 0; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$ROOT/target/release/tcpipstat}
OUT=$ROOT/testdata/replay
NS=tcpipstat-record-$$
trap 'ip netns del "$NS" 2>/dev/null || true' EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
rm -f "$OUT"/poll-*.nl
ip netns exec "$NS" python3 - "$BIN" "$OUT" <<'PY'
import socket, subprocess, sys, time
binary, out = sys.argv[1], sys.argv[2]
def connect(port):
    c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.bind(("127.0.0.1", port)); c.connect(("127.0.0.1", 5001))
    s, _ = listener.accept(); return c, s
def move(a, b, n):
    a.sendall(b"x" * n); got = 0
    while got < n: got += len(b.recv(65536))
listener = socket.socket(); listener.bind(("127.0.0.1", 5001)); listener.listen()
c1, s1 = connect(40001)
move(c1, s1, 1000)
run = subprocess.Popen([binary, "--record", out, "--poll", "400ms", "--timeout", "1500ms", "--format", "json"],
                       stdout=subprocess.PIPE)
time.sleep(0.6)
move(c1, s1, 5000); move(s1, c1, 700)
c2, s2 = connect(40002)
move(c2, s2, 300)
report = run.communicate()[0].decode()
open(out + "/report.json", "w").write(report)
PY
ls -l "$OUT"
