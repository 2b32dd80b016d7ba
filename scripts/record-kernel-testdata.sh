#!/bin/bash
# record-kernel-testdata.sh - record real sock_diag and /proc/net data from
# older Linux kernels (Debian 5.10, 6.1, 6.12 under qemu TCG) and from this
# machine's kernel (in a private network namespace) into testdata/kernels/.
#
# Usage: scripts/record-kernel-testdata.sh [TARGET ...]
#   TARGET: 5.10 | 6.1 | 6.12 | host | SERIES=debian-kernel-package
#   default: 5.10 6.1 6.12 host
#   host records this machine's kernel into testdata/kernels/<major.minor>/
#   (needs root for `ip netns`; skipped if that directory is also a qemu
#   target of the same run).
# Env:  BED=/tmp/tcpipstat-kbed (downloads, initramfs, logs)  BOOT_TIMEOUT=300
# The qemu/kernel/initramfs part lives in scripts/lib/kernels.sh (shared with
# scripts/kernel-matrix.sh).
#
# Needs: cargo, gcc with static libc, python3 (checks only), and for the qemu
# kernels: qemu-system-x86_64 + cpio (installed with apt-get if missing) and
# the Debian archive (bookworm, bookworm-security, bullseye). If the kernels
# cannot be downloaded it says why, prints SKIP and exits 0.
#
# The scenario (see manifest.txt of each kernel): a static helper
# (scripts/lib/connhelper.c, without arguments) listens on
# 127.0.0.1:5001 and [::1]:5002, connects from fixed source ports
# 40001, 40002 (IPv4) and 40003 (IPv6), sends 1000, 20000 and 300 bytes
# client->server, reads them fully on the server side, waits until they are
# all acked and keeps every socket open. Then
# `tcpipstat --once --format json --record DIR` runs and the raw datagrams,
# its JSON and /proc/net/{snmp,netstat,snmp6,tcp,tcp6} are saved.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/testdata/kernels
# shellcheck disable=SC2034  # used by lib/kernels.sh
KERN_NAME=record-kernel-testdata
# shellcheck source=scripts/lib/kernels.sh
. "$ROOT/scripts/lib/kernels.sh"   # BED, BOOT_TIMEOUT, STATIC_TARGET, kern_*

TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(5.10 6.1 6.12 host)
DO_HOST=0
for t in "${TARGETS[@]}"; do
  case $t in
    host) DO_HOST=1 ;;
    *) kern_target "$t" || { echo "record-kernel-testdata: unknown target '$t' (5.10, 6.1, 6.12, host, SERIES=package)" >&2; exit 2; } ;;
  esac
done
GUESTS=("${KERN_SERIES[@]}")

mkdir -p "$BED" "$OUT"
log() { kern_log "$@"; }

# --- 1. static binaries (tcpipstat, scripts/lib/connhelper.c) --------------------
kern_build "$ROOT" || exit 1
REV=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
TCPIPSTAT=$KERN_TCPIPSTAT
HELPER=$KERN_HELPER

# --- 2. checks and manifest (shared by guest and host recordings) -------------
# check_and_manifest DIR WHAT: decodes sockdiag-once.nl (kernel truth), checks
# the scenario's byte counts there, compares tcpipstat's JSON with it (WARN
# lines on mismatch: tcpipstat bugs), writes manifest.txt.
check_and_manifest() {
  local dir=$1 what=$2
  python3 - "$dir" "$what" "$REV" <<'PY'
import json, struct, sys, ipaddress
d, what, rev = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(f"{d}/sockdiag-once.nl", "rb").read()
STATES = {1:"ESTAB",2:"SYN_SENT",3:"SYN_RECV",4:"FIN_WAIT1",5:"FIN_WAIT2",6:"TIME_WAIT",
          7:"CLOSE",8:"CLOSE_WAIT",9:"LAST_ACK",10:"LISTEN",11:"CLOSING"}
socks, off, dumps = [], 0, 0
while off + 16 <= len(data):
    ln, typ = struct.unpack_from("<IH", data, off)
    if ln < 16: break
    if typ == 3: dumps += 1                      # NLMSG_DONE
    if typ == 20:                                # SOCK_DIAG_BY_FAMILY
        fam, state = data[off+16], data[off+17]
        sport, dport = struct.unpack_from(">HH", data, off+20)
        n = 4 if fam == 2 else 16
        src = ipaddress.ip_address(data[off+24:off+24+n]); dst = ipaddress.ip_address(data[off+40:off+40+n])
        info = None
        a = off + 16 + 72
        while a + 4 <= off + ln:
            alen, atype = struct.unpack_from("<HH", data, a)
            if alen < 4: break
            if atype == 2: info = data[a+4:a+alen]   # INET_DIAG_INFO
            a += (alen + 3) & ~3
        socks.append(dict(fam=fam, state=STATES.get(state, state), l=(str(src), sport), r=(str(dst), dport), info=info))
    off += (ln + 3) & ~3
def u64(b, o): return struct.unpack_from("<Q", b, o)[0] if b is not None and len(b) >= o + 8 else None
scenario = [("127.0.0.1", 40001, "127.0.0.1", 5001, 1000),
            ("127.0.0.1", 40002, "127.0.0.1", 5001, 20000),
            ("::1", 40003, "::1", 5002, 300)]
errors, warns, lens = [], [], set()
json_groups = {}
try:
    rep = json.loads(open(f"{d}/once.json").readline())
    for g in rep["groups"]:
        k = g["key"]
        json_groups[(k["laddr"], k["lport"], k["raddr"], k["rport"])] = g
    if rep.get("notices"): warns.append(f"tcpipstat notices: {rep['notices']}")
except Exception as e:
    warns.append(f"once.json does not parse: {e}")
rows = []
for la, lp, ra, rp, nbytes in scenario:
    for (tl, tr, role) in (((la, lp), (ra, rp), "client"), ((ra, rp), (la, lp), "server")):
        s = [x for x in socks if x["l"] == tl and x["r"] == tr]
        if len(s) != 1:
            errors.append(f"{role} {tl}->{tr}: {len(s)} sockets in the dump"); continue
        s = s[0]; info = s["info"]
        if info is None:
            errors.append(f"{role} {tl}->{tr}: no INET_DIAG_INFO"); continue
        lens.add(len(info))
        sent, recvd, acked = u64(info, 200), u64(info, 128), u64(info, 120)
        want_sent, want_recv = (nbytes, 0) if role == "client" else (0, nbytes)
        if sent != want_sent or recvd != want_recv:
            errors.append(f"{role} {tl}->{tr}: kernel bytes_sent={sent} bytes_received={recvd}, want {want_sent}/{want_recv}")
        rows.append(f"  {role:6} {tl[0]}:{tl[1]} -> {tr[0]}:{tr[1]} {s['state']} tcp_info={len(info)} "
                    f"bytes_sent={sent} bytes_received={recvd} bytes_acked={acked}")
        g = json_groups.get((tl[0], tl[1], tr[0], tr[1]))
        if g is None:
            warns.append(f"tcpipstat JSON has no group {tl}->{tr}"); continue
        sock = g.get("counters", {}).get("Socket", {})
        for key, want in (("BytesSent", sent), ("BytesReceived", recvd), ("BytesAcked", acked)):
            got = sock.get(key, 0)
            if want is not None and got != want:
                warns.append(f"tcpipstat {tl}->{tr} {key}={got}, kernel says {want}")
listeners = [f"{x['l'][0]}:{x['l'][1]}" for x in socks if x["state"] == "LISTEN"]
for want in ("127.0.0.1:5001", "::1:5002"):
    if want not in listeners: errors.append(f"listener {want} missing from the dump")
uname = open(f"{d}/uname.txt").read().strip()
with open(f"{d}/manifest.txt", "w") as m:
    m.write(f"""kernel: {uname} ({what})
recorded by scripts/record-kernel-testdata.sh (tcpipstat {rev})

Scenario: loopback TCP, one static helper process (all sockets stay open).
  listeners: 127.0.0.1:5001, [::1]:5002 (IPV6_V6ONLY)
  client 127.0.0.1:40001 -> 127.0.0.1:5001   1000 bytes client->server
  client 127.0.0.1:40002 -> 127.0.0.1:5001  20000 bytes client->server
  client [::1]:40003     -> [::1]:5002        300 bytes client->server
  Only the clients send payload; the server side reads every byte; nothing
  goes server->client. Each client waited until SIOCOUTQ == 0 (all acked).
  Then: tcpipstat --once --format json --record DIR, then the /proc/net copies.

Files:
  sockdiag-once.nl  raw sock_diag datagrams of that poll (--record poll-0000.nl;
                    {dumps} dump(s), {len(socks)} sockets)
  once.json         tcpipstat's output of that run
  snmp netstat snmp6 tcp tcp6   /proc/net/* right after it
  uname.txt         uname -r

tcp_info length (INET_DIAG_INFO payload): {sorted(lens)}
Scenario sockets as decoded from sockdiag-once.nl (bytes_acked counts the SYN):
""" + "\n".join(rows) + "\n")
for w in warns: print(f"WARN [{uname}]: {w}")
for e in errors: print(f"ERROR [{uname}]: {e}")
print(f"[{uname}] {len(socks)} sockets, tcp_info length {sorted(lens)}, "
      f"{'scenario OK' if not errors else 'SCENARIO BROKEN'}")
sys.exit(1 if errors else 0)
PY
}

FAILED=()

# --- 3. this machine's kernel, in a private netns ------------------------------
HOST_NS="" HOST_PID=""
cleanup_host() {   # the helper we started (by pid) and our netns
  if [ -n "$HOST_PID" ]; then kill "$HOST_PID" 2>/dev/null || true; wait "$HOST_PID" 2>/dev/null || true; fi
  if [ -n "$HOST_NS" ]; then ip netns del "$HOST_NS" 2>/dev/null || true; fi
  HOST_PID="" HOST_NS=""
}
record_host() {
  local series tmp
  series=$(uname -r | cut -d. -f1,2)
  for g in "${GUESTS[@]}"; do
    if [ "$g" = "$series" ]; then log "host kernel $series is also a qemu target: not recording the host"; return 0; fi
  done
  if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
    log "SKIP host: needs root and iproute2 for a private netns"; return 0
  fi
  HOST_NS=tcpipstat-rec-$$
  tmp=$(mktemp -d "$BED/host.XXXX")
  ip netns add "$HOST_NS"
  trap cleanup_host EXIT
  ip netns exec "$HOST_NS" ip link set lo up
  ip netns exec "$HOST_NS" "$HELPER" "$tmp/ready" > "$tmp/connhelper.log" 2>&1 &
  HOST_PID=$!
  for _ in $(seq 100); do [ -e "$tmp/ready" ] && break; kill -0 "$HOST_PID" 2>/dev/null || break; sleep 0.1; done
  if [ ! -e "$tmp/ready" ]; then log "host: helper failed: $(cat "$tmp/connhelper.log")"; cleanup_host; trap - EXIT; FAILED+=(host); return 0; fi
  ip netns exec "$HOST_NS" "$TCPIPSTAT" --once --format json --record "$tmp/rec" > "$tmp/once.json" 2> "$tmp/stderr.txt" \
    || log "host: tcpipstat exit $?: $(cat "$tmp/stderr.txt")"
  for f in snmp netstat snmp6 tcp tcp6; do ip netns exec "$HOST_NS" cat "/proc/net/$f" > "$tmp/$f"; done
  uname -r > "$tmp/uname.txt"
  cleanup_host; trap - EXIT
  install_dir "$tmp" "$series" "this machine's kernel, private netns"
}

# install_dir TMP SERIES WHAT: copies the fixed names into testdata/kernels/SERIES
install_dir() {
  local tmp=$1 series=$2 what=$3 dir=$OUT/$2
  [ -s "$tmp/stderr.txt" ] && log "$series: tcpipstat stderr: $(cat "$tmp/stderr.txt")"
  if [ ! -f "$tmp/rec/poll-0000.nl" ]; then
    log "$series: tcpipstat wrote no recording"; FAILED+=("$series"); return 0
  fi
  rm -rf "$dir"; mkdir -p "$dir"
  cp "$tmp/rec/poll-0000.nl" "$dir/sockdiag-once.nl"
  for f in once.json snmp netstat snmp6 tcp tcp6 uname.txt; do cp "$tmp/$f" "$dir/$f"; done
  check_and_manifest "$dir" "$what" || FAILED+=("$series")
}

# --- 4. qemu guests (scripts/lib/kernels.sh) ---------------------------------------
record_guests() {
  [ ${#GUESTS[@]} -gt 0 ] || return 0
  if ! kern_prepare; then
    echo "record-kernel-testdata: SKIP qemu kernels: $KERN_SKIP"; return 0
  fi
  local series body tmp
  body=$BED/record-body.sh
  cat > "$body" <<'EOF'
helper connhelper
/tcpipstat --once --format json --record /out/rec > /out/once.json 2> /out/stderr.txt
echo $? > /out/tcpipstat.rc
for f in snmp netstat snmp6 tcp tcp6; do cat /proc/net/$f > /out/$f; done
EOF
  for series in "${GUESTS[@]}"; do
    log "$series: booting ${KERN_PKG[$series]} under qemu TCG"
    tmp=$(mktemp -d "$BED/guest.XXXX")
    if ! kern_boot "$series" record "$body" "$tmp"; then FAILED+=("$series"); continue; fi
    log "$series: guest: $(tr '\n' ' ' < "$tmp/connhelper.log") tcpipstat rc=$(cat "$tmp/tcpipstat.rc")"
    install_dir "$tmp" "$series" "Debian package ${KERN_PKG[$series]} under qemu TCG"
  done
}

record_guests
[ "$DO_HOST" = 1 ] && record_host

echo "record-kernel-testdata: $OUT holds $(cat "$OUT"/*/* | wc -c) bytes"
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "record-kernel-testdata: FAILED: ${FAILED[*]}"; exit 1
fi
