#!/usr/bin/env bash
# bench-netns.sh - the cost of sampling many namespaces: `--all-netns` over
# NS namespaces of SOCKS sockets each, against one namespace holding the
# same total, in the same run. Both a one-shot snapshot (--once) and steady
# polling (a 3 s window polled every 250 ms, CPU per poll) are measured.
#
# Usage (root): scripts/bench-netns.sh      Env: NS=50 SOCKS=200 RUNS=5,
#   TCPIPSTAT=path (else cargo build --release), OUT=file for the table.
# Leaves nothing behind: namespaces and generators go away on exit.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "SKIP: bench-netns.sh needs root (ip netns)"; exit 0; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
NS=${NS:-50}
SOCKS=${SOCKS:-200}
RUNS=${RUNS:-5}
TAG=tisb$$
TMP=$(mktemp -d /tmp/tcpipstat-bench-netns.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for ns in $(ip netns list | awk '{print $1}' | grep "^$TAG-" || true); do ip netns del "$ns"; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

BIN=${TCPIPSTAT:-$ROOT/target/release/tcpipstat}
[ -n "${TCPIPSTAT:-}" ] || (cd "$ROOT" && cargo build --release -q)
gcc -O2 -o "$TMP/rusage" "$HERE/rusage-run.c"
gcc -O2 -o "$TMP/bare" "$HERE/bare-dump.c"

# start_ns NAME CONNECTIONS: a namespace holding that many connections.
start_ns() {
    ip netns add "$1"
    ip -n "$1" link set lo up
    mkfifo "$TMP/$1.keep"
    ip netns exec "$1" python3 "$HERE/conngen.py" "$2" --tune <"$TMP/$1.keep" >"$TMP/$1.out" 2>&1 &
    PIDS+=($!)
    exec {fd}>"$TMP/$1.keep"
    rm -f "$TMP/$1.keep"
}
wait_ready() {
    for out in "$@"; do
        for ((t = 0; t < 600; t++)); do grep -q READY "$TMP/$out.out" && break; sleep 0.1; done
        grep -q READY "$TMP/$out.out" || { echo "conngen in $out failed: $(cat "$TMP/$out.out")"; exit 1; }
    done
}

conns=$((SOCKS / 2))
names=()
for ((i = 0; i < NS; i++)); do start_ns "$TAG-$i" "$conns"; names+=("$TAG-$i"); done
start_ns "$TAG-big" $((NS * conns))
wait_ready "${names[@]}" "$TAG-big"

# median CPU ms of RUNS runs of a command
cpu_ms() {
    for ((r = 0; r < RUNS; r++)); do "$TMP/rusage" "$@" | awk '{print $2}'; done |
        sort -n | awk '{a[NR] = $1} END { printf "%.1f", a[int((NR + 1) / 2)] / 1000 }'
}
poll_ms() {   # CPU per poll of a 3 s window polled every 250 ms (13 polls)
    "$TMP/rusage" "$@" --timeout 3s --poll 250ms --format json | awk '{ printf "%.1f", $2 / 13 / 1000 }'
}
many_once=$(cpu_ms "$BIN" --all-netns --once --format json)
one_once=$(cpu_ms "$BIN" --netns "$TAG-big" --once --format json)
many_poll=$(poll_ms "$BIN" --all-netns)
one_poll=$(poll_ms "$BIN" --netns "$TAG-big")
namespaces=$(ip netns list | wc -l)
ns_files=()
for name in "${names[@]}"; do ns_files+=("/run/netns/$name"); done
many_bare=$(cpu_ms "$TMP/bare" "${ns_files[@]}")
one_bare=$(cpu_ms "$TMP/bare" "/run/netns/$TAG-big")
report() {
    echo "## --all-netns: $NS namespaces x $SOCKS sockets vs 1 namespace x $((NS * SOCKS)) sockets"
    echo
    echo "$(uname -sr), $(nproc) CPUs, $namespaces namespaces on the host; CPU = user+sys, median of $RUNS (--once)."
    echo
    echo "| case | tcpipstat --once json CPU ms | tcpipstat per poll CPU ms | bare dump of the same namespaces CPU ms |"
    echo "|---|--:|--:|--:|"
    echo "| --all-netns, $NS x $SOCKS sockets | $many_once | $many_poll | $many_bare |"
    echo "| --netns, 1 x $((NS * SOCKS)) sockets | $one_once | $one_poll | $one_bare |"
    awk -v a="$many_once" -v b="$one_once" -v c="$many_poll" -v d="$one_poll" -v e="$many_bare" -v f="$one_bare" \
        'BEGIN { printf "| ratio many / one | %.2fx | %.2fx | %.2fx |\n", a / b, c / d, e / f }'
}
report
[ -z "${OUT:-}" ] || report >"$OUT"
