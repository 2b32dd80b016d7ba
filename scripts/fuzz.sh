#!/usr/bin/env bash
# fuzz.sh - the long run of tests/fuzz.rs: every parser of outside data
# (sock_diag datagrams, tcp_info, /proc/net texts, tracefs formats and
# records, perf ring records, filters, command lines, durations, cgroup
# paths) on arbitrary and mutated input, CASES cases in all (default 10
# million), spread evenly over the properties. Prints the cases run, the
# time taken, and any failure proptest shrank (exit 1).
#
# Usage: scripts/fuzz.sh [CASES]
set -euo pipefail
cd "$(dirname "$0")/.."
CASES=${1:-10000000}
PROPERTIES=$(grep -c '^    fn [a-z_]*(' tests/fuzz.rs)
PER=$(( (CASES + PROPERTIES - 1) / PROPERTIES ))
echo "fuzz: $PROPERTIES properties x $PER cases = $((PROPERTIES * PER)) cases"
start=$SECONDS
if PROPTEST_CASES=$PER cargo test --release --quiet --test fuzz 2>&1 | tee /tmp/fuzz.$$.log | grep -E '^test result|panicked|minimal failing'; then :; fi
status=0
grep -q '^test result: ok' /tmp/fuzz.$$.log || status=1
rm -f /tmp/fuzz.$$.log
echo "fuzz: $((PROPERTIES * PER)) cases in $((SECONDS - start)) s: $([ $status = 0 ] && echo 'no failure' || echo FAILED)"
exit $status
