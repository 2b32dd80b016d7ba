#!/bin/bash
# bench-udp.sh - what a UDP poll costs against the kernel's own dump.
#
# Usage: scripts/bench-udp.sh            (root: it makes a network namespace)
# Env:   SIZES="1000 10000 100000" (UDP sockets held open)  RUNS=5 (median of)
#        BIN=target/release/tcpipstat (built when absent)
#
# In a private namespace a helper holds SIZE UDP sockets bound to loopback
# (one in ten receiving a few datagrams it never reads, so drops and queues
# are not all zero). Alternating the commands RUNS times, it measures CPU
# (user+sys, scripts/rusage-run.c) of:
#   once   `tcpipstat -u --once --format json`   vs one bare C dump of UDP and
#          UDP-Lite, both families, with SK_MEMINFO (scripts/bare-dump.c,
#          BARE_PROTO=udp): what tcpipstat adds to the kernel's walk
#   steady `tcpipstat -u --timeout 9 --poll 250ms` minus `--timeout 3`: the
#          CPU of 24 more polls, per poll, vs 24 bare dumps 250 ms apart / 24
# and prints a Markdown table with the ratios (issue 22 asks steady ≤ 1.1x).
#
# MODE=precision: what --precision costs per datagram instead. In the
# namespace scripts/lib/connhelper.c (udprate) sends RATE datagrams/s
# (default 100000) of 200 bytes for DURATION seconds (default 8) to a receiver that
# reads them all, while `tcpipstat -u --precision --system` runs over the
# same span; then again with plain `tcpipstat -u --system`. RUNS times each,
# alternating. Prints tcpipstat's CPU per datagram with precision, without,
# and their difference (issue 22 asks ≤ 2 µs), with the events lost and the
# datagrams the report counted (InDatagrams + OutDatagrams from events)
# against those the helper sent and read.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
SIZES=${SIZES:-1000 10000 100000}
RUNS=${RUNS:-5}
BIN=${BIN:-$root/target/release/tcpipstat}
[ "$(id -u)" = 0 ] || { echo "SKIP: bench-udp: needs root (ip netns)"; exit 0; }
[ -x "$BIN" ] || (cd "$root" && cargo build --release --quiet)
tmp=$(mktemp -d)
ns=tis-bench-udp-$$
helper_pid=
cleanup() {
  [ -n "$helper_pid" ] && kill $helper_pid 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
gcc -O2 -Wall -o "$tmp/rusage-run" "$here/rusage-run.c"
gcc -O2 -Wall -o "$tmp/bare-dump" "$here/bare-dump.c"

if [ "${MODE:-}" = precision ]; then
  RATE=${RATE:-100000}; SECONDS_RUN=${DURATION:-8}
  gcc -O2 -Wall -o "$tmp/connhelper" "$here/lib/connhelper.c"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  # One run: tcpipstat (with "$@") over a load of SECONDS_RUN s; prints
  # "<cpu µs> <datagrams sent> <events lost> <datagrams counted>".
  run() {
    ip netns exec "$ns" "$tmp/rusage-run" sh -c "exec \"\$0\" \"\$@\" > $tmp/report.json" \
      "$BIN" -u --system --timeout $((SECONDS_RUN + 2)) --format json "$@" > "$tmp/rusage" &
    local tis=$!
    sleep 1
    ip netns exec "$ns" "$tmp/connhelper" udprate "$RATE" "$SECONDS_RUN" 7000 > "$tmp/load"
    wait $tis
    python3 - "$tmp/report.json" "$tmp/rusage" "$tmp/load" <<'PY'
import json, sys
reports = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
udp = reports[-1]["udp"]
cpu = int(open(sys.argv[2]).read().split()[1])
sent = int(open(sys.argv[3]).read().split()[2])
p = udp.get("precision")
lost = p["events_lost_since_start"] if p else 0
counted = sum((g.get("events") or {}).get(k, 0) for g in udp["groups"] for k in ("InDatagrams", "OutDatagrams"))
print(cpu, sent, lost, counted)
PY
  }
  : > "$tmp/with"; : > "$tmp/without"
  for _ in $(seq "$RUNS"); do
    run --precision >> "$tmp/with"
    run >> "$tmp/without"
  done
  echo "| rate/s | runs | tcpipstat µs/datagram --precision | without | difference | events lost (max) | datagrams counted / sent+read (min) |"
  echo "|--:|--:|--:|--:|--:|--:|--:|"
  python3 - "$tmp/with" "$tmp/without" "$RATE" "$RUNS" <<'PY'
import statistics, sys
def rows(path): return [list(map(int, l.split())) for l in open(path) if l.strip()]
w, wo = rows(sys.argv[1]), rows(sys.argv[2])
per = lambda rs: statistics.median(r[0] / r[1] for r in rs)
pw, pwo = per(w), per(wo)
print(f"| {sys.argv[3]} | {sys.argv[4]} | {pw:.3f} | {pwo:.3f} | {pw - pwo:.3f} | {max(r[2] for r in w)} | {min(r[3] / (2 * r[1]) for r in w):.4f} |")
PY
  exit 0
fi

# Holds argv[1] UDP sockets (helper number argv[2]) (a tenth IPv6, a tenth with 2 KiB receive
# buffers flooded with 20 datagrams each, never read) until killed.
helper_py='
import resource, socket, sys, time
n, h = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
socks = []
for i in range(n):
    v6 = i % 10 == 9
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    if i % 10 == 0:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    # A loopback address has ~28,000 ephemeral ports: spread over 127.0.H.1-8.
    s.bind(("::1" if v6 else f"127.0.{h}.{1 + i % 8}", 0))
    socks.append(s)
out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for s in socks[::10]:
    for _ in range(20):
        out.sendto(b"x" * 200, s.getsockname())
print("READY", flush=True)
time.sleep(3600)
'

# CPU µs of one run of "$@" inside the namespace.
cpu() { ip netns exec "$ns" "$tmp/rusage-run" "$@" | awk '{ print $2 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

echo "| UDP sockets | tcpipstat --once ms | bare dump ms | ratio | tcpipstat steady ms/poll | bare steady ms/dump | ratio |"
echo "|--:|--:|--:|--:|--:|--:|--:|"
for size in $SIZES; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  # A process may hold no more descriptors than its hard limit (which
  # root without CAP_SYS_RESOURCE cannot raise): helpers of CHUNK sockets.
  chunk=$(( $(ulimit -Hn) - 256 ))
  left=$size; helpers=0; helper_pids=()
  while [ "$left" -gt 0 ]; do
    n=$(( left < chunk ? left : chunk ))
    ip netns exec "$ns" python3 -c "$helper_py" "$n" "$helpers" > "$tmp/ready.$helpers" &
    helper_pids+=($!); helpers=$((helpers + 1)); left=$((left - n))
  done
  helper_pid="${helper_pids[*]}"
  for i in $(seq 0 $((helpers - 1))); do
    for _ in $(seq 600); do grep -q READY "$tmp/ready.$i" 2>/dev/null && break; sleep 0.1; done
    grep -q READY "$tmp/ready.$i" || { echo "bench-udp: a helper did not get its sockets" >&2; exit 1; }
  done
  : > "$tmp/once"; : > "$tmp/bare"; : > "$tmp/steady"; : > "$tmp/bare24"
  for _ in $(seq "$RUNS"); do
    cpu "$BIN" -u --once --format json >> "$tmp/once"
    BARE_PROTO=udp cpu "$tmp/bare-dump" >> "$tmp/bare"
    short=$(cpu "$BIN" -u --timeout 3 --poll 250ms --format json)
    long=$(cpu "$BIN" -u --timeout 9 --poll 250ms --format json)
    echo $(( (long - short) / 24 )) >> "$tmp/steady"
    bare24=$(BARE_PROTO=udp BARE_REPEAT=24 BARE_INTERVAL_MS=250 cpu "$tmp/bare-dump")
    echo $(( bare24 / 24 )) >> "$tmp/bare24"
  done
  o=$(median < "$tmp/once"); b=$(median < "$tmp/bare")
  s=$(median < "$tmp/steady"); b24=$(median < "$tmp/bare24")
  awk -v n="$size" -v o="$o" -v b="$b" -v s="$s" -v b24="$b24" 'BEGIN {
    printf "| %d | %.2f | %.2f | %.2fx | %.2f | %.2f | %.2fx |\n",
      n, o / 1000, b / 1000, (b ? o / b : 0), s / 1000, b24 / 1000, (b24 ? s / b24 : 0) }'
  kill $helper_pid; wait 2>/dev/null || true; helper_pid=
  ip netns del "$ns"
done
