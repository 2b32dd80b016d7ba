#!/bin/bash
# record-trace-testdata.sh - records precision mode's raw material for the
# decoder's unit tests: every opened event's tracefs format file and its
# first raw samples (`tcpipstat --record-trace DIR`), on this machine's
# kernel (tracepoints) and on Debian 5.10, 6.1 and 6.12 under qemu (both
# tracepoints and kprobes), into testdata/trace/<series>/<mode>/.
#
# Usage (root): scripts/record-trace-testdata.sh [5.10 6.1 6.12] [--no-host]
# Traffic while recording: loopback connections with known ports and bytes
# (client ports 21001.. for tracepoint mode, 22001.. for kprobe mode, to
# servers on 31001../32001..: below the ephemeral range), connects to a closed port (resets answering
# no socket, NO_SOCKET drops), and on this machine an SO_LINGER 0 close and
# 20% netem loss on lo (retransmits, SYN-ACK retransmits).
# Env: BED=/tmp/tcpipstat-kbed (shared with kernel-matrix.sh)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC2034  # used by lib/kernels.sh
KERN_NAME=record-trace
. "$ROOT/scripts/lib/kernels.sh"
OUT=$ROOT/testdata/trace
DO_HOST=1
GUESTS=()
for a in "$@"; do
  case $a in
    --no-host) DO_HOST=0 ;;
    *) kern_target "$a" || { echo "unknown target $a" >&2; exit 2; }; GUESTS+=("$a") ;;
  esac
done
if [ ${#GUESTS[@]} -eq 0 ]; then
  for t in 5.10 6.1 6.12; do kern_target "$t"; GUESTS+=("$t"); done
fi
[ "$(id -u)" = 0 ] || { echo "record-trace: needs root"; exit 1; }
kern_build "$ROOT"

install_mode() {  # SRC DEST: keeps formats and samples only
  local src=$1 dest=$2
  rm -rf "$dest"; mkdir -p "$dest"
  if ! ls "$src"/*.format >/dev/null 2>&1; then kern_log "no formats in $src"; return 0; fi
  cp "$src"/*.format "$dest/"
  cp "$src"/*.bin "$dest/" 2>/dev/null || true
  kern_log "$dest: $(ls "$dest"/*.format | wc -l) formats, $(ls "$dest"/*.bin 2>/dev/null | wc -l) samples"
}

record_guests() {
  [ ${#GUESTS[@]} -gt 0 ] || return 0
  if ! kern_prepare; then echo "record-trace: SKIP qemu kernels: $KERN_SKIP"; return 0; fi
  local body=$BED/record-trace-body.sh series tmp
  cat > "$body" <<'BODY'
k=1   # not n: the guest's helper() sets n
for mode in tracepoint kprobe; do
  /tcpipstat --timeout 8 --poll 1 --precision $mode --record-trace /out/$mode --format json \
      > /out/$mode.json 2> /out/$mode.err &
  pid=$!
  # Creating kprobes under qemu TCG takes seconds.
  sleep 4
  helper conn$mode 4:2${k}001:3${k}001:3000 4:2${k}002:3${k}001:20000 6:2${k}003:3${k}002:300
  nc 127.0.0.1 9 < /dev/null > /dev/null 2>&1
  nc 127.0.0.1 9 < /dev/null > /dev/null 2>&1
  wait $pid
  echo $? > /out/$mode.rc
  k=$((k+1))
done
BODY
  for series in "${GUESTS[@]}"; do
    tmp=$(mktemp -d "$BED/trace.XXXX")
    kern_boot "$series" trace "$body" "$tmp" || continue
    for mode in tracepoint kprobe; do
      kern_log "$series $mode: rc=$(cat "$tmp/$mode.rc" 2>/dev/null) $(tr '\n' ' ' < "$tmp/$mode.err" 2>/dev/null)"
      install_mode "$tmp/$mode" "$OUT/$series/$mode"
    done
  done
}

record_host() {
  local series ns tmp
  series=$(uname -r | cut -d. -f1,2)
  ns=tcpipstat-trace-$$
  tmp=$(mktemp -d /tmp/record-trace.XXXX)
  ip netns add "$ns"
  trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
  ip -n "$ns" link set lo up
  ip netns exec "$ns" tc qdisc add dev lo root netem loss 20% 2>/dev/null || kern_log "no netem: no retransmits recorded"
  ip netns exec "$ns" "$KERN_TCPIPSTAT" --timeout 6 --poll 1 --precision tracepoint --record-trace "$tmp/tracepoint" \
      --format json > "$tmp/out.json" 2> "$tmp/err.txt" &
  local pid=$!
  sleep 1
  ip netns exec "$ns" python3 - <<'PY'
import socket, struct, threading
l = socket.socket(); l.bind(("127.0.0.1", 51001)); l.listen(16)
def serve():
    for _ in range(3):
        c, _ = l.accept()
        while True:
            try:
                d = c.recv(65536)
            except OSError:
                break
            if not d:
                break
        c.close()
t = threading.Thread(target=serve); t.start()
for port, size, abort in ((41001, 3000, False), (41002, 20000, False), (41003, 500, True)):
    s = socket.socket(); s.bind(("127.0.0.1", port)); s.connect(("127.0.0.1", 51001))
    s.sendall(b"x" * size)
    if abort:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
t.join()
for _ in range(2):
    try:
        socket.create_connection(("127.0.0.1", 9), timeout=2)
    except OSError:
        pass
PY
  wait "$pid" || kern_log "host tcpipstat failed: $(cat "$tmp/err.txt")"
  install_mode "$tmp/tracepoint" "$OUT/$series/tracepoint"
  ip netns del "$ns"; trap - EXIT
}

record_guests
[ "$DO_HOST" = 1 ] && record_host
echo "record-trace: $(find "$OUT" -name '*.format' | wc -l) formats, $(find "$OUT" -name '*.bin' | wc -l) samples under $OUT"
