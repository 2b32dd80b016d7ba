#!/bin/bash
# test-under-load.sh - the README's test command, run several times in a row
# on a busy machine: another tcpipstat (precision mode, every namespace)
# and a steady connection load run beside it the whole time, so the live
# tests meet foreign events in the shared tracepoints, another reader of
# sock_diag and the close notices, and a CPU that is not theirs.
#
# Usage: scripts/test-under-load.sh [RUNS]     (default 5)
# Env:   RATE=1000  connections a second of the load (churn.py, in a
#                   namespace of its own, loopback)
#        TEST_ARGS  passed to `cargo test` (e.g. "--test precision")
#
# Prints one `RUN i PASS|FAIL seconds` per run and `under load: N of M
# passed` last; exits 1 if any run failed (its output kept in $OUT). Needs
# root for the namespace and the second tcpipstat; without it: SKIP.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
runs=${1:-5}
rate=${RATE:-1000}
out=${OUT:-/tmp/tcpipstat-under-load}
case "$runs" in ''|*[!0-9]*) echo "test-under-load.sh: error: RUNS '$runs' is not a number" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "SKIP: test-under-load: needs root (a namespace for the load, precision mode beside)"; exit 0; }
command -v python3 >/dev/null || { echo "SKIP: test-under-load: python3 is not installed"; exit 0; }

mkdir -p "$out"
ns="tcpipstat-load-$$"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
}
trap cleanup EXIT

(cd "$root" && cargo build --release --quiet && cargo test --no-run --quiet 2>/dev/null)
ip netns add "$ns"
ip -n "$ns" link set lo up
# Twelve hours at most: the trap ends it with the runs.
ip netns exec "$ns" python3 "$here/churn.py" "$rate" 43200 --port 7000 >"$out/load.out" 2>"$out/load.err" &
pids+=($!)
# Its reports are rendered and thrown away (every tuple of a second at
# 1,000 conn/s: ~2 MB a second).
"$root/target/release/tcpipstat" --all-netns --precision --interval 1s --format json >/dev/null 2>"$out/other-tcpipstat.err" &
pids+=($!)
sleep 2
for pid in "${pids[@]}"; do
  kill -0 "$pid" 2>/dev/null || { echo "test-under-load.sh: the load or the other tcpipstat did not start:" >&2; cat "$out"/*.err >&2; exit 1; }
done

passed=0
for i in $(seq 1 "$runs"); do
  start=$(date +%s)
  # shellcheck disable=SC2086  # TEST_ARGS is a list of words
  if (cd "$root" && cargo test ${TEST_ARGS:-}) >"$out/run-$i.log" 2>&1; then
    verdict=PASS; passed=$((passed + 1))
  else
    verdict=FAIL
  fi
  echo "RUN $i $verdict $(( $(date +%s) - start ))s"
  [ "$verdict" = PASS ] || grep -E '^test .* FAILED$|^---- |panicked at' "$out/run-$i.log" | head -20 || true
done
# The load and the other tcpipstat must have run to the end: a run with
# them dead was not under load.
for pid in "${pids[@]}"; do
  kill -0 "$pid" 2>/dev/null || { echo "test-under-load.sh: the load or the other tcpipstat died during the runs (see $out)" >&2; exit 1; }
done
echo "under load: $passed of $runs passed (load $rate conn/s, another tcpipstat --all-netns --precision beside)"
[ "$passed" = "$runs" ]
