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
#
# Needs: cargo, gcc with static libc, python3 (checks only), and for the qemu
# kernels: qemu-system-x86_64 + cpio (installed with apt-get if missing) and
# the Debian archive (bookworm, bookworm-security, bullseye). If the kernels
# cannot be downloaded it says why, prints SKIP and exits 0.
#
# The scenario (see manifest.txt of each kernel): a static helper listens on
# 127.0.0.1:5001 and [::1]:5002, connects from fixed source ports
# 40001, 40002 (IPv4) and 40003 (IPv6), sends 1000, 20000 and 300 bytes
# client->server, reads them fully on the server side, waits until they are
# all acked and keeps every socket open. Then
# `tcpipstat --once --format json --record DIR` runs and the raw datagrams,
# its JSON and /proc/net/{snmp,netstat,snmp6,tcp,tcp6} are saved.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/testdata/kernels
BED=${BED:-/tmp/tcpipstat-kbed}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-300}
STATIC_TARGET=${STATIC_TARGET:-/tmp/static-target}
DIAG_MODULES="inet_diag tcp_diag"

# series -> pinned package (reproducible) and the pattern of its successors
declare -A PINNED=(
  [5.10]=linux-image-5.10.0-32-cloud-amd64-unsigned          # bullseye, 5.10.223
  [6.1]=linux-image-6.1.0-56-cloud-amd64-unsigned            # bookworm-security
  [6.12]=linux-image-6.12.117+deb12-cloud-amd64-unsigned     # bookworm-security
)
declare -A PATTERN=(
  [5.10]='^linux-image-5\.10\.0-[0-9]+-cloud-amd64-unsigned$'
  [6.1]='^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$'
  [6.12]='^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64-unsigned$'
)

TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(5.10 6.1 6.12 host)
GUESTS=() ; DO_HOST=0
declare -A WANT_PKG=()
for t in "${TARGETS[@]}"; do
  case $t in
    host) DO_HOST=1 ;;
    *=*) GUESTS+=("${t%%=*}"); WANT_PKG[${t%%=*}]=${t#*=} ;;
    5.10|6.1|6.12) GUESTS+=("$t") ;;
    *) echo "record-kernel-testdata: unknown target '$t' (5.10, 6.1, 6.12, host, SERIES=package)" >&2; exit 2 ;;
  esac
done

mkdir -p "$BED" "$OUT"
log() { echo "record-kernel-testdata: $*" >&2; }

# --- 1. static binaries --------------------------------------------------------
log "building static tcpipstat in $STATIC_TARGET"
(cd "$ROOT" && RUSTFLAGS='-C target-feature=+crt-static' CARGO_TARGET_DIR=$STATIC_TARGET \
   cargo build --release --target x86_64-unknown-linux-gnu)
REV=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
TCPIPSTAT=$BED/tcpipstat
cp "$STATIC_TARGET/x86_64-unknown-linux-gnu/release/tcpipstat" "$TCPIPSTAT"
strip "$TCPIPSTAT" 2>/dev/null || true
if readelf -l "$TCPIPSTAT" | grep -q 'program interpreter'; then
  log "$TCPIPSTAT is not static"; exit 1
fi

cat > "$BED/connhelper.c" <<'EOF'
/* connhelper: the fixed loopback TCP scenario of testdata/kernels.
 * Listeners 127.0.0.1:5001 and [::1]:5002 (IPV6_V6ONLY); clients bound to
 * fixed source ports (SO_REUSEADDR, bind before connect):
 *   127.0.0.1:40001 -> 127.0.0.1:5001   1000 bytes client->server
 *   127.0.0.1:40002 -> 127.0.0.1:5001  20000 bytes client->server
 *   [::1]:40003     -> [::1]:5002        300 bytes client->server
 * The server side reads every byte; nothing goes server->client. Each client
 * then waits until its bytes are all acked (SIOCOUTQ == 0). Then the helper
 * creates the file argv[1] and keeps every socket open until killed. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) { perror(what); exit(1); }

static void addr(struct sockaddr_storage *s, socklen_t *l, int v6, int port) {
  memset(s, 0, sizeof *s);
  if (v6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)s;
    a->sin6_family = AF_INET6; a->sin6_port = htons(port); a->sin6_addr = in6addr_loopback;
    *l = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)s;
    a->sin_family = AF_INET; a->sin_port = htons(port); a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *l = sizeof *a;
  }
}

static int sock_bound(int v6, int port) {
  struct sockaddr_storage ss; socklen_t len; int one = 1;
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one)) die("SO_REUSEADDR");
  if (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one)) die("IPV6_V6ONLY");
  addr(&ss, &len, v6, port);
  if (bind(fd, (struct sockaddr *)&ss, len)) die("bind");
  return fd;
}

static int drain(int fd, int flags) {
  char rb[65536];
  ssize_t r = recv(fd, rb, sizeof rb, flags);
  if (r < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
  if (r <= 0) die("recv");
  return (int)r;
}

int main(int argc, char **argv) {
  static const struct { int v6, sport, dport, bytes; } c[3] = {
      {0, 40001, 5001, 1000}, {0, 40002, 5001, 20000}, {1, 40003, 5002, 300}};
  static char buf[20000];
  if (argc != 2) { fprintf(stderr, "usage: connhelper READY_FILE\n"); return 2; }
  int l4 = sock_bound(0, 5001), l6 = sock_bound(1, 5002);
  if (listen(l4, 16) || listen(l6, 16)) die("listen");
  memset(buf, 'x', sizeof buf);
  for (int i = 0; i < 3; i++) {
    struct sockaddr_storage peer; socklen_t plen;
    int fd = sock_bound(c[i].v6, c[i].sport);
    addr(&peer, &plen, c[i].v6, c[i].dport);
    if (connect(fd, (struct sockaddr *)&peer, plen)) die("connect");
    int srv = accept(c[i].v6 ? l6 : l4, NULL, NULL);
    if (srv < 0) die("accept");
    int sent = 0, got = 0;
    while (sent < c[i].bytes) {
      ssize_t n = send(fd, buf + sent, c[i].bytes - sent, MSG_DONTWAIT);
      if (n > 0) sent += n;
      else if (n < 0 && errno != EAGAIN && errno != EINTR) die("send");
      got += drain(srv, MSG_DONTWAIT);
    }
    while (got < c[i].bytes) got += drain(srv, 0);
    if (got != c[i].bytes) { fprintf(stderr, "conn %d: got %d\n", i, got); return 1; }
    for (int tries = 0;; tries++) {   /* every sent byte acked */
      int outq = -1;
      if (ioctl(fd, SIOCOUTQ, &outq)) die("SIOCOUTQ");
      if (outq == 0) break;
      if (tries > 10000) { fprintf(stderr, "conn %d: outq stays %d\n", i, outq); return 1; }
      struct timespec ts = {0, 1000000};
      nanosleep(&ts, NULL);
    }
    printf("connhelper: %d -> %d: %d bytes sent and read\n", c[i].sport, c[i].dport, got);
    /* fd and srv stay open */
  }
  fflush(stdout);
  int rf = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (rf < 0) die(argv[1]);
  close(rf);
  for (;;) pause();
}
EOF
HELPER=$BED/connhelper
[ "$HELPER" -nt "$BED/connhelper.c" ] || gcc -static -O2 -Wall -o "$HELPER" "$BED/connhelper.c"

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

# --- 4. qemu guests --------------------------------------------------------------
skip() { echo "record-kernel-testdata: SKIP qemu kernels: $*"; }

record_guests() {
  [ ${#GUESTS[@]} -gt 0 ] || return 0
  if ! command -v qemu-system-x86_64 >/dev/null || ! command -v cpio >/dev/null; then
    log "installing qemu-system-x86 and cpio"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        qemu-system-x86 cpio xz-utils zstd; } >&2 || { skip "cannot install qemu-system-x86/cpio"; return 0; }
  fi
  # private apt configuration from the machine's own Debian sources
  mkdir -p "$BED"/{apt/lists/partial,apt/cache/archives/partial,debs,k,logs}
  local K=/usr/share/keyrings/debian-archive-keyring.gpg uris main_uri sec_uri
  uris=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
         | grep -v '^[[:space:]]*#' | grep -oE '[a-z]+://[^ ]+' || true)
  main_uri=$(printf '%s\n' "$uris" | grep -E '/debian/?$' | sed -n 1p)
  sec_uri=$(printf '%s\n' "$uris" | grep -E '/debian-security/?$' | sed -n 1p)
  if [ -z "$main_uri" ] || [ -z "$sec_uri" ] || [ ! -f "$K" ]; then
    skip "no Debian archive URI (or keyring $K) in the apt configuration"; return 0
  fi
  cat > "$BED/apt/sources.list" <<EOF
deb [signed-by=$K] $main_uri bookworm main
deb [signed-by=$K] $sec_uri bookworm-security main
deb [signed-by=$K] $main_uri bullseye main
deb [signed-by=$K] $sec_uri bullseye-security main
EOF
  cat > "$BED/apt/apt.conf" <<EOF
Dir::Etc::sourcelist "$BED/apt/sources.list";
Dir::Etc::sourceparts "/nonexistent";
Dir::State::Lists "$BED/apt/lists";
Dir::Cache "$BED/apt/cache";
Acquire::Languages "none";
APT::Sandbox::User "root";
EOF
  export APT_CONFIG=$BED/apt/apt.conf
  if [ -z "$(ls "$BED"/apt/lists/*_Packages* 2>/dev/null)" ]; then
    apt-get update -q >&2 || { skip "apt-get update of the bookworm/bullseye lists failed"; return 0; }
  fi
  # apt-get update may exit 0 after failing to fetch: check that lists came
  if [ -z "$(ls "$BED"/apt/lists/*_Packages* 2>/dev/null)" ]; then
    skip "apt-get update fetched no package lists (is the Debian archive reachable?)"; return 0
  fi
  local series pkg
  declare -A PKG=()
  for series in "${GUESTS[@]}"; do
    pkg=${WANT_PKG[$series]:-${PINNED[$series]}}
    if [ -z "${WANT_PKG[$series]:-}" ] && ! apt-cache show "$pkg" >/dev/null 2>&1; then
      pkg=$(apt-cache pkgnames linux-image- | grep -E "${PATTERN[$series]}" | sort -V | tail -1 || true)
      log "$series: ${PINNED[$series]} is gone, using ${pkg:-nothing}"
    fi
    [ -n "$pkg" ] || { skip "no kernel package for $series in the archive"; return 0; }
    PKG[$series]=$pkg
  done
  (cd "$BED/debs" && for p in busybox-static "${PKG[@]}"; do
     ls "${p}"_*.deb >/dev/null 2>&1 || apt-get download -q "$p" >&2; done) \
    || { skip "download of busybox-static/${PKG[*]} failed"; return 0; }
  [ -x "$BED/bb/bin/busybox" ] || dpkg -x "$BED"/debs/busybox-static_*.deb "$BED/bb"

  for series in "${GUESTS[@]}"; do
    record_guest "$series" "${PKG[$series]}"
  done
}

record_guest() {
  local series=$1 p=$2 kdir vmlinuz kver root m f initrd tmp rc=0 data console
  kdir=$BED/k/$p
  [ -d "$kdir/boot" ] || dpkg -x "$BED/debs/${p}"_*.deb "$kdir"
  vmlinuz=$(ls "$kdir"/boot/vmlinuz-*)
  kver=${vmlinuz##*/vmlinuz-}
  root=$(mktemp -d "$BED/initrd.XXXX")
  mkdir -p "$root"/{bin,proc,sys,dev,tmp,out,lib/modules}
  cp "$BED/bb/bin/busybox" "$root/bin/"
  ln -s busybox "$root/bin/sh"
  cp "$TCPIPSTAT" "$root/tcpipstat"; cp "$HELPER" "$root/connhelper"
  for m in $DIAG_MODULES; do   # inet_diag/tcp_diag are modules in Debian kernels
    f=$(find "$kdir/lib/modules" -name "$m.ko*" | head -1)
    case $f in
      "") log "$series: no $m module in $p" ;;
      *.xz)  xz -dc "$f"  > "$root/lib/modules/$m.ko" ;;
      *.zst) zstd -qdc "$f" > "$root/lib/modules/$m.ko" ;;
      *)     cp "$f" "$root/lib/modules/$m.ko" ;;
    esac
  done
  printf '#!/bin/sh\nDIAG_MODULES="%s"\n' "$DIAG_MODULES" > "$root/init"
  cat >> "$root/init" <<'EOF'
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
ip link set lo up
for m in $DIAG_MODULES; do insmod /lib/modules/$m.ko || echo "insmod $m failed"; done
/connhelper /tmp/ready > /out/connhelper.log 2>&1 &
i=0; while [ ! -e /tmp/ready ] && [ $i -lt 600 ]; do usleep 100000; i=$((i+1)); done
/tcpipstat --once --format json --record /out/rec > /out/once.json 2> /out/stderr.txt
echo $? > /out/tcpipstat.rc
for f in snmp netstat snmp6 tcp tcp6; do cat /proc/net/$f > /out/$f; done
uname -r > /out/uname.txt
dev=/dev/ttyS1; [ -c $dev ] || dev=/dev/console
{ echo "=====BEGIN-TESTDATA====="; tar -czf - -C /out . | base64; echo "=====END-TESTDATA====="; } > $dev
sync; sleep 1
poweroff -f
EOF
  chmod +x "$root/init"
  initrd=$BED/initrd-$kver.cpio.gz
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$initrd"
  rm -rf "$root"
  console=$BED/logs/console-$kver.log; data=$BED/logs/data-$kver.txt
  rm -f "$console" "$data"
  log "$series: booting $p ($kver) under qemu TCG"
  timeout -k 10 "$BOOT_TIMEOUT" qemu-system-x86_64 -accel tcg -m 512 -smp 2 \
      -kernel "$vmlinuz" -initrd "$initrd" \
      -append 'console=ttyS0 panic=-1 loglevel=4' \
      -display none -monitor none -no-reboot -nic none \
      -serial "file:$console" -serial "file:$data" </dev/null >&2 || rc=$?
  tmp=$(mktemp -d "$BED/guest.XXXX")
  local src=$data
  grep -q '=====END-TESTDATA=====' "$data" 2>/dev/null || src=$console
  if ! tr -d '\r' < "$src" | sed -n '/=====BEGIN-TESTDATA=====/,/=====END-TESTDATA=====/p' \
       | grep -v '=====' | base64 -d | tar -xzf - -C "$tmp" 2>/dev/null; then
    log "$series: no data from the guest (qemu rc=$rc); console: $console"
    tr -d '\r' < "$console" | tail -20 >&2
    FAILED+=("$series"); return 0
  fi
  log "$series: guest: $(tr '\n' ' ' < "$tmp/connhelper.log") tcpipstat rc=$(cat "$tmp/tcpipstat.rc")"
  install_dir "$tmp" "$series" "Debian package $p under qemu TCG"
}

record_guests
[ "$DO_HOST" = 1 ] && record_host

echo "record-kernel-testdata: $OUT holds $(cat "$OUT"/*/* | wc -c) bytes"
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "record-kernel-testdata: FAILED: ${FAILED[*]}"; exit 1
fi
