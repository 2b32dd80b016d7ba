#!/bin/bash
# bench-export.sh - the Prometheus exporter at scale: N loopback connections
# (2N sockets, default N=10000) opened in a private namespace after
# `tcpipstat --listen --index tuple --poll 5s` started, so every socket is a
# series (its opens and bytes), with a series limit below and above the
# socket count, and for each: the exporter's CPU per second of
# wall time (utime+stime from /proc/PID/stat over the run), the scrape
# latency (median and max of curl's time_total over SCRAPES scrapes, one a
# second) and the exposition's size. Root (namespaces). Prints one line per
# limit; scripts/bench.sh-style figures for the README.
#
# Usage: scripts/bench-export.sh [N] [SCRAPES]     (env: BIN=target/release/tcpipstat)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
N=${1:-10000}
SCRAPES=${2:-10}
BIN=${BIN:-$HERE/../target/release/tcpipstat}
NS=tis-bench-export-$$
TMP=$(mktemp -d)
cleanup() {
  exec 7>&- 2>/dev/null || true
  ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null || true
  sleep 0.3
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
[ -x "$BIN" ] || cargo build --release --manifest-path "$HERE/../Cargo.toml" >/dev/null
ip netns add "$NS"
ip -n "$NS" link set lo up
mkfifo "$TMP/hold"
ticks=$(getconf CLK_TCK)
port=9977
for limit in $((N)) $((4 * N)); do
  ip netns exec "$NS" "$BIN" --listen ":$port" --index tuple --poll 5s --max-series "$limit" 2>/dev/null &
  pid=$!
  sleep 1
  (ip netns exec "$NS" python3 "$HERE/conngen.py" "$N" --tune < "$TMP/hold" > "$TMP/gen.out" 2> "$TMP/gen.err" &)
  exec 7>"$TMP/hold"
  for _ in $(seq 600); do grep -q READY "$TMP/gen.out" 2>/dev/null && break; sleep 0.5; done
  grep -q READY "$TMP/gen.out" || { echo "conngen failed: $(cat "$TMP/gen.err")" >&2; exit 1; }
  sleep 11   # two windows with every connection in them
  start=$(date +%s.%N)
  cpu0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  : > "$TMP/times"
  for _ in $(seq "$SCRAPES"); do
    ip netns exec "$NS" curl -s -o "$TMP/body" -w '%{time_total}\n' "http://127.0.0.1:$port/metrics" >> "$TMP/times"
    sleep 1
  done
  cpu1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  end=$(date +%s.%N)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  exec 7>&-   # conngen ends with its stdin
  sleep 2
  : > "$TMP/gen.out"
  series=$(grep -c '^tcpipstat_' "$TMP/body" || true)
  folded=$(awk '/^tcpipstat_series_folded_total/ {print $2}' "$TMP/body")
  sort -n "$TMP/times" > "$TMP/sorted"
  median=$(awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}' "$TMP/sorted")
  max=$(tail -1 "$TMP/sorted")
  cpu_ms=$(echo "($cpu1 - $cpu0) * 1000 / $ticks / ($end - $start)" | bc -l)
  printf 'sockets=%d max-series=%d: exporter CPU %.1f ms/s; scrape median %.1f ms, max %.1f ms; %d samples, %s bytes, folded windows %s\n' \
    $((2 * N)) "$limit" "$cpu_ms" "$(echo "$median * 1000" | bc -l)" "$(echo "$max * 1000" | bc -l)" \
    "$series" "$(stat -c %s "$TMP/body")" "${folded:-0}"
  port=$((port + 1))
done
