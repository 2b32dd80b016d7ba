#!/bin/bash
# conformance.sh - hold tcpipstat's counters against the kernel's own TCP
# behaviour as google/packetdrill's scripts pin it.
#
# Usage: scripts/conformance.sh [poll|precision|both] [GLOB]
#   (default both modes, every script; GLOB is relative to gtests/net/tcp)
# Env:  CONFORMANCE_DIR=../shared/conformance (packetdrill's snapshot and its
#       runner, run-packetdrill.py; never copied into this project)
#       OUT=/tmp/tcpipstat-conformance (builds and results)
#
# The runner plays each script in a fresh namespace under
# `tcpipstat --system` and prints, per script, every counter where the
# sockets' sum differs from the namespace's MIB delta. A script passes when
# nothing differs, or when every difference is allowed by
# scripts/conformance-allowed.tsv: a counter the kernel counts on a path no
# socket owns (SYNs to a listener, TIME_WAIT segments, resets for no
# socket), named by class and reason, and only in that direction
# (namespace above sockets). Opens, fails and resets are never allowed.
# tcpipstat's own open miscounts are listed apart, in
# scripts/conformance-known-defects.tsv: said KNOWN-DEFECT until fixed.
#
# Prints one `RESULT mode script PASS|FAIL|ALLOWED detail` per script and
# `conformance: N passed, M failed` last; exits 1 if any failed. Without the
# conformance directory, root, or a build toolchain: `SKIP: <reason>`, exit 0.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
modes=${1:-both}
glob=${2:-**/*.pkt}
conf=${CONFORMANCE_DIR:-$root/../shared/conformance}
out=${OUT:-/tmp/tcpipstat-conformance}

case "$modes" in
  both) modes="poll precision" ;;
  poll|precision) ;;
  *) echo "conformance.sh: error: mode '$modes' is not poll, precision or both" >&2; exit 2 ;;
esac
[ -f "$conf/run-packetdrill.py" ] || { echo "SKIP: conformance: no $conf/run-packetdrill.py (packetdrill's snapshot is not on this machine)"; exit 0; }
[ "$(id -u)" = 0 ] || { echo "SKIP: conformance: needs root (ip netns, packetdrill's tun device)"; exit 0; }
for tool in gcc make bison flex python3 ip; do
  command -v "$tool" >/dev/null || { echo "SKIP: conformance: $tool is not installed"; exit 0; }
done

mkdir -p "$out"
# The runner builds packetdrill under $TMPDIR/packetdrill-build from a copy
# of the snapshot. The snapshot lost its symlinks and execute bits:
# tcp/common/defaults.sh, which every script runs first, is a file holding
# its link's target, so every script failed at its init before any packet
# (and, from a directory two deep, ran itself until no process could fork).
# Make the build copy here, writable, links restored, helpers executable.
export TMPDIR="$out/tmp"
build="$TMPDIR/packetdrill-build"
if [ ! -x "$build/gtests/net/packetdrill/packetdrill" ]; then
  rm -rf "$build"; mkdir -p "$TMPDIR"
  cp -r "$conf/packetdrill" "$build"
  chmod -R u+w "$build"
  # A lost symlink: a short file of one line with no newline, naming a
  # relative path that exists beside it.
  find "$build" -type f -size -256c | while read -r file; do
    [ "$(wc -l < "$file")" = 0 ] || continue
    target=$(cat "$file")
    case "$target" in ../*|./*) ;; *) continue ;; esac
    [ -e "$(dirname "$file")/$target" ] && ln -sfn "$target" "$file"
  done
  find "$build" -name '*.sh' -exec chmod +x {} +
  (cd "$build/gtests/net/packetdrill" && ./configure >/dev/null && make -s -j2 packetdrill >/dev/null 2>&1) \
    || { echo "conformance: building packetdrill failed" >&2; exit 1; }
fi

(cd "$root" && cargo build --release --quiet)
bin="$root/target/release/tcpipstat"

# The two modes run side by side: each script mostly waits on timers.
pids=()
for mode in $modes; do
  python3 "$conf/run-packetdrill.py" "$bin" "$mode" "$glob" > "$out/$mode.jsonl" 2> "$out/$mode.err" &
  pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
[ $rc = 0 ] || { echo "conformance: the runner failed (rc $rc):"; tail -5 "$out"/*.err; exit 1; }

args=()
for mode in $modes; do args+=("$mode=$out/$mode.jsonl"); done
check() {
  python3 "$here/lib/conformance-check.py" --failed-out "$out/failed.tsv" \
    --known "$here/conformance-known-defects.tsv" \
    "$here/conformance-allowed.tsv" "${args[@]}"
}
# A script that fails is played again, alone, up to twice: a run whose
# timing the host disturbed is told from a miscount that repeats. The last
# run counts and a script that passed only on a rerun is said FLAKY.
for attempt in 1 2; do
  check > "$out/verdict.txt" && break
  while IFS=$'\t' read -r mode script; do
    [ "$script" = - ] && continue
    python3 "$conf/run-packetdrill.py" "$bin" "$mode" "$script" > "$out/$mode.rerun$attempt.$(echo "$script" | tr / _).jsonl" 2>> "$out/$mode.err" || true
    args+=("$mode=$out/$mode.rerun$attempt.$(echo "$script" | tr / _).jsonl")
  done < "$out/failed.tsv"
done
check
