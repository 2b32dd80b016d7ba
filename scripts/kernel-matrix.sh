#!/bin/bash
# kernel-matrix.sh - run tcpipstat on real Debian kernels (5.10, 6.1, 6.12)
# under qemu TCG and check what it reports, for CI.
#
# Usage: scripts/kernel-matrix.sh [TARGET ...]
#   TARGET: 5.10 | 6.1 | 6.12 | SERIES=debian-kernel-package  (default: all three)
# Env:  BED=/tmp/tcpipstat-kbed (downloads, kernels, logs; shared with
#       record-kernel-testdata.sh)  BOOT_TIMEOUT=120 (seconds per guest)
#       STATIC_TARGET=/tmp/static-target
#
# Builds a static tcpipstat from the tree this script lives in, then boots two
# guests per kernel (busybox initramfs, scripts/lib/kernels.sh) with the static
# helper scripts/lib/connhelper.c for loopback connections:
#   main guest (inet_diag + tcp_diag inserted):
#     once-bytes    `tcpipstat --once --format json` with 127.0.0.1:40001->:5001
#                   1000 bytes, 127.0.0.1:40002->:5001 20000, [::1]:40003->:5002
#                   300: BytesSent on each client tuple, BytesReceived on each
#                   server tuple, exact
#     window-opens  `tcpipstat --timeout 3 --poll 250ms --format json` started
#                   first; 1 s later 127.0.0.1:40011->:5011 sends 4321 bytes and
#                   [::1]:40012->:5012 1234, both stay open: ActiveOpens 1 on
#                   each client tuple, PassiveOpens 1 on each server tuple
#     window-bytes  same window: BytesSent (client) / BytesReceived (server) exact
#     window-old    same window: the once-bytes connections, open but idle, show
#                   no opens and no bytes
#     error-exit    `tcpipstat --index bogus`: exit 2, one stderr line
#                   "tcpipstat: error: ..."
#     prec-MODE-*   MODE = kprobe, tracepoint, auto: `tcpipstat --timeout 9
#                   --poll 8500ms --precision=MODE` filtered on one port; 4 s
#                   in, `connhelper churn` opens 20 connections (700 bytes
#                   each, client closes first) and a 21st closed with
#                   SO_LINGER 0, all inside one poll period:
#                   -opens ActiveOpens = PassiveOpens = 21 (sum), exact
#                   -rsts  OutRsts 1 on the aborting client's tuple, InRsts 1
#                          on its server end, none elsewhere
#                   -lost  events_lost 0, exit 0
#                   -source sources.ActiveOpens names the kprobe (kprobe) or
#                          the tracepoint (tracepoint, auto)
#                   -msgs  MessagesSent 1 and MessageBytesSent 700 on each
#                          client tuple (kprobe everywhere; tracepoint and
#                          auto where the kernel has sock:sock_send_length,
#                          else auto's kprobes)
#     closes-*      the same churn (client ports 44101.., server :44100)
#                   in plain polling mode (`--timeout 7 --poll 6500ms`),
#                   inside one poll period: counted from close notices alone
#                   -opens ActiveOpens = PassiveOpens = 21, exact
#                   -bytes BytesSent 700 on each graceful client tuple,
#                          BytesReceived 700 on each server tuple
#                   -resets EstabResets: 1 on the aborting client (its
#                          notice has cleared counters and lost the peer
#                          port the filter tests: counted apart, under
#                          unplaced_by_filters), 0 on every graceful
#                          connection's ends
#                   (-opens counts unplaced_by_filters too)
#                   -lost  closes_lost 0, exit 0
#     udp-*         `tcpipstat -u --timeout 5 --system` while `connhelper
#                   udpflood` sends 2000 datagrams to a receiver on :46100
#                   with a 2 KiB buffer that never reads (udp_diag inserted):
#                   -drops its RcvDrops equal the namespace's Udp
#                          RcvbufErrors and InErrors deltas (> 0), residual 0
#                   -rc    exit 0
#     udpprec-*     `tcpipstat -u --precision --timeout 12 --system` while
#                   `connhelper udprate 1000 2 46200` sends and reads 2000
#                   datagrams, `udpflood 500 46300` floods a receiver that
#                   never reads and `udpnoport 20 46400` sends to a closed
#                   port. Each counter is exact where the report names its
#                   source, and named in `missing` where the kernel lacks
#                   one (then it must not claim it):
#                   -rc      exit 0, events_lost 0
#                   -in      :46200's InDatagrams/InBytes = what it read
#                   -out     the senders' OutDatagrams, and the calls counted
#                            as not placed (a socket that lived between two
#                            polls, named by inode: its notice has none),
#                            = what they sent
#                   -rcvbuf  :46300's RcvbufErrors (events) = the namespace's
#                            Udp RcvbufErrors delta (> 0)
#                   -noports NoPorts 20 = the namespace's, residual 0; by
#                            port 46400 and sender :46401 where told
#   fallback guest (no diag modules):
#     fallback      `tcpipstat --once --format json` with the once-bytes
#                   connections: exit 0, a notice naming /proc/net/tcp on
#                   stderr, all six tuples listed
# Prints `RESULT <kernel> <check> PASS|FAIL <detail>` per check and
# `kernel-matrix: N passed, M failed` last; exits 1 if any check failed.
# If qemu or the kernels cannot be installed or downloaded: `SKIP: <reason>`,
# exit 0. Guest console logs: $BED/logs/, guest outputs: $BED/matrix/.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC2034  # used by lib/kernels.sh
KERN_NAME=kernel-matrix
BOOT_TIMEOUT=${BOOT_TIMEOUT:-120}
# shellcheck source=scripts/lib/kernels.sh
. "$ROOT/scripts/lib/kernels.sh"

TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(5.10 6.1 6.12)
for t in "${TARGETS[@]}"; do
  kern_target "$t" || { echo "kernel-matrix: unknown target '$t' (5.10, 6.1, 6.12, SERIES=package)" >&2; exit 2; }
done
START=$SECONDS
mkdir -p "$BED"

# the build runs while qemu and the kernels are installed/downloaded
BUILD_LOG=$BED/matrix-build.log
( KERN_QUIET=1 kern_build "$ROOT" ) > "$BUILD_LOG" 2>&1 &
BUILD_PID=$!
PREP_OK=1
kern_prepare || PREP_OK=0
BUILD_RC=0
wait "$BUILD_PID" || BUILD_RC=$?
if [ "$PREP_OK" = 0 ]; then
  echo "SKIP: $KERN_SKIP"; exit 0
fi
if [ "$BUILD_RC" != 0 ]; then
  tail -20 "$BUILD_LOG" >&2
  echo "kernel-matrix: static build failed (see $BUILD_LOG)"
  echo "kernel-matrix: 0 passed, 1 failed"; exit 1
fi

MAIN_BODY=$BED/matrix-main.sh FALLBACK_BODY=$BED/matrix-fallback.sh
cat > "$MAIN_BODY" <<'EOF'
t() { echo "$1 $(cut -d' ' -f1 /proc/uptime)" >> /out/times.txt; }
# once-bytes
helper once
t once
/tcpipstat --once --format json > /out/once.json 2> /out/once.err
echo $? > /out/once.rc
# window-*: new connections 1 s into a 3 s window
t window-start
/tcpipstat --timeout 3 --poll 250ms --format json > /out/window.json 2> /out/window.err &
pid=$!
sleep 1
t window-connect
helper window 4:40011:5011:4321 6:40012:5012:1234
t window-connected
wait $pid
echo $? > /out/window.rc
t window-end
# error-exit
/tcpipstat --index bogus > /out/bogus.out 2> /out/bogus.err
echo $? > /out/bogus.rc
# qemu TCG (not real hardware) can crash patching __schedule's jump labels,
# which ftrace's task-name recording does when the delayed-ACK timer's
# ftrace instance starts: the guest turns that recording off.
mkdir -p /sys/kernel/tracing
mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
echo 0 > /sys/kernel/tracing/options/record-cmd
# prec-*: 20 connections and a reset inside one 8.5 s poll period, with
# kprobes and with tracepoints (kprobes take seconds to create under TCG)
b=41
for mode in kprobe tracepoint auto; do
  arg=--precision=$mode
  /tcpipstat --timeout 9 --poll 8500ms --format json $arg "127.0.0.1:${b}100-*" "*-127.0.0.1:${b}100" \
      > /out/prec-$mode.json 2> /out/prec-$mode.err &
  pid=$!
  sleep 4
  /connhelper churn 20 ${b}101 ${b}100 700 > /out/churn-$mode.log 2>&1
  [ -e /sys/kernel/tracing/events/sock/sock_send_length ] && echo yes > /out/send-length-tracepoint
  wait $pid
  echo $? > /out/prec-$mode.rc
  b=$((b+1))
done
# closes-*: the same churn in plain polling mode, inside one poll period:
# only the kernel's close notices can count it
/tcpipstat --timeout 7 --poll 6500ms --format json "127.0.0.1:44100-*" "*-127.0.0.1:44100" \
    > /out/closes.json 2> /out/closes.err &
pid=$!
sleep 3
/connhelper churn 20 44101 44100 700 > /out/churn-closes.log 2>&1
wait $pid
echo $? > /out/closes.rc
# seed-*: accept-queue overflows on a listener that never accepts, then a
# receiver that reads late (delayed ACKs), in precision mode with the
# namespace's own deltas to compare with
/tcpipstat --timeout 16 --poll 500ms --system --precision --format json \
    > /out/seed.json 2> /out/seed.err &
pid=$!
sleep 6
/connhelper overflow 20 45100 1500 > /out/overflow.log 2>&1
/connhelper delack 30 45200 > /out/delack.log 2>&1
wait $pid
echo $? > /out/seed.rc
# udp-*: a flooded UDP receiver's drops against the namespace's Udp MIB
/tcpipstat -u --timeout 5 --poll 500ms --system --format json > /out/udp.json 2> /out/udp.err &
pid=$!
sleep 2
/connhelper udpflood 2000 46100 4000 > /out/udpflood.log 2>&1
wait $pid
echo $? > /out/udp.rc
# udpprec-*: UDP in precision mode (kprobes take seconds to create under TCG)
/tcpipstat -u --precision --timeout 12 --poll 500ms --system --format json \
    > /out/udpprec.json 2> /out/udpprec.err &
pid=$!
sleep 6
/connhelper udprate 1000 2 46200 > /out/udprate.log 2>&1
/connhelper udpflood 500 46300 500 >> /out/udprate.log 2>&1
/connhelper udpnoport 20 46400 >> /out/udprate.log 2>&1
wait $pid
echo $? > /out/udpprec.rc
EOF
cat > "$FALLBACK_BODY" <<'EOF'
helper once
/tcpipstat --once --format json > /out/fallback.json 2> /out/fallback.err
echo $? > /out/fallback.rc
cat /proc/net/tcp /proc/net/tcp6 > /out/proc-net-tcp.txt
EOF

RESULTS=$BED/matrix/results.txt
rm -rf "$BED/matrix"; mkdir -p "$BED/matrix"
for series in "${KERN_SERIES[@]}"; do
  d=$BED/matrix/$series
  kern_log "$series: ${KERN_PKG[$series]} ($((SECONDS - START)) s)"
  # both guests of a kernel at once (2 cores; the main guest mostly sleeps)
  kern_boot "$series" fallback "$FALLBACK_BODY" "$d/fallback" none &
  fb_pid=$!
  kern_boot "$series" matrix "$MAIN_BODY" "$d/main" || true
  wait "$fb_pid" || true
  python3 "$ROOT/scripts/lib/kernel-matrix-check.py" "$series" "$d/main" "$d/fallback" > "$d/checks.txt"
  if grep -q '^RESULT [^ ]* [^ ]* FAIL' "$d/checks.txt"; then
    # qemu TCG now and then loses a guest's event or timing (one check in
    # about four full runs here): the main guest boots once more (and the
    # fallback guest, if its check failed) and the second answer counts. The first one stays in the log, marked.
    sed 's/^RESULT /FIRST-BOOT /' "$d/checks.txt"
    kern_log "$series: $(grep -c ' FAIL ' "$d/checks.txt") check(s) failed on the first boot; booting the main guest again"
    # A guest's kernel can also panic at boot under TCG (seen once: the
    # fallback guest, in enqueue_timer): its guest boots again too.
    fb_pid=
    if grep -q '^RESULT [^ ]* fallback FAIL' "$d/checks.txt"; then
      mv "$d/fallback" "$d/fallback.first"
      kern_boot "$series" fallback "$FALLBACK_BODY" "$d/fallback" none &
      fb_pid=$!
    fi
    mv "$d/main" "$d/main.first"
    kern_boot "$series" matrix "$MAIN_BODY" "$d/main" || true
    [ -z "$fb_pid" ] || wait "$fb_pid" || true
    python3 "$ROOT/scripts/lib/kernel-matrix-check.py" "$series" "$d/main" "$d/fallback" > "$d/checks.txt"
  fi
  tee -a "$RESULTS" < "$d/checks.txt"
done

PASSED=$(grep -c '^RESULT [^ ]* [^ ]* PASS' "$RESULTS" || true)
FAILED=$(grep -c '^RESULT [^ ]* [^ ]* FAIL' "$RESULTS" || true)
if [ $((PASSED + FAILED)) = 0 ]; then FAILED=1; fi
kern_log "done in $((SECONDS - START)) s"
echo "kernel-matrix: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
