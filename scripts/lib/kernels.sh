# shellcheck shell=bash disable=SC2034
# scripts/lib/kernels.sh - Debian kernels under qemu TCG with a busybox
# initramfs; sourced by scripts/record-kernel-testdata.sh and
# scripts/kernel-matrix.sh (bash, set -euo pipefail).
#
# The caller sets KERN_NAME (prefix of log lines) and may set, before
# sourcing: BED=/tmp/tcpipstat-kbed (downloads, kernels, initramfs, logs),
# BOOT_TIMEOUT=300 (seconds per guest), STATIC_TARGET=/tmp/static-target.
#
#   kern_target T        T = 5.10 | 6.1 | 6.12 | SERIES=debian-kernel-package:
#                        appends SERIES to KERN_SERIES (returns 1 if unknown)
#   kern_build ROOT      static tcpipstat of the tree ROOT -> $KERN_TCPIPSTAT,
#                        static scripts/lib/connhelper.c -> $KERN_HELPER
#   kern_prepare         qemu + cpio (apt-get install if missing), the Debian
#                        archive (private apt configuration in $BED/apt), the
#                        kernel package of each series in KERN_SERIES and
#                        busybox-static. Returns 1 with the reason in KERN_SKIP
#                        if something cannot be installed or downloaded.
#   kern_boot SERIES TAG BODY OUTDIR [MODULES]
#                        boots the kernel of SERIES with an initramfs whose
#                        /init sets up /proc, /sys, /dev and lo, inserts
#                        MODULES (default: $DIAG_MODULES; "none": none), runs
#                        the guest shell script BODY and powers off; the
#                        guest's /out comes back into OUTDIR. Returns 1 (with
#                        the end of the console log on stderr) if it does not.
#                        In BODY: /tcpipstat, /connhelper, busybox in /bin,
#                        and `helper NAME [SPEC...]`: starts /connhelper with
#                        READY /tmp/NAME.ready, log /out/NAME.log, and waits
#                        (up to 60 s) until its connections are up.
#                        /out/uname.txt and /out/modules.txt are added.

KERN_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BED=${BED:-/tmp/tcpipstat-kbed}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-300}
STATIC_TARGET=${STATIC_TARGET:-/tmp/static-target}
KERN_NAME=${KERN_NAME:-kernels}
DIAG_MODULES="inet_diag tcp_diag udp_diag"

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
KERN_SERIES=()
declare -A WANT_PKG=()   # series -> package asked for on the command line
declare -A KERN_PKG=()   # series -> package used (set by kern_prepare)
KERN_SKIP=""
KERN_TCPIPSTAT=$BED/tcpipstat
KERN_HELPER=$BED/connhelper

kern_log() { echo "$KERN_NAME: $*" >&2; }

kern_target() {
  case $1 in
    ?*=?*) KERN_SERIES+=("${1%%=*}"); WANT_PKG[${1%%=*}]=${1#*=} ;;
    5.10|6.1|6.12) KERN_SERIES+=("$1") ;;
    *) return 1 ;;
  esac
}

# --- static binaries -----------------------------------------------------------
kern_build() {
  local root=$1 q=()
  [ "${KERN_QUIET:-0}" = 1 ] && q=(-q)
  mkdir -p "$BED"
  kern_log "building static tcpipstat in $STATIC_TARGET"
  (cd "$root" && RUSTFLAGS='-C target-feature=+crt-static' CARGO_TARGET_DIR=$STATIC_TARGET \
     cargo build "${q[@]}" --release --target x86_64-unknown-linux-gnu) || return 1
  cp "$STATIC_TARGET/x86_64-unknown-linux-gnu/release/tcpipstat" "$KERN_TCPIPSTAT"
  strip "$KERN_TCPIPSTAT" 2>/dev/null || true
  if readelf -l "$KERN_TCPIPSTAT" | grep -q 'program interpreter'; then
    kern_log "$KERN_TCPIPSTAT is not static"; return 1
  fi
  if ! cmp -s "$KERN_LIB/connhelper.c" "$BED/connhelper.c" || [ ! -x "$KERN_HELPER" ]; then
    gcc -static -O2 -Wall -o "$KERN_HELPER.tmp" "$KERN_LIB/connhelper.c" || return 1
    mv "$KERN_HELPER.tmp" "$KERN_HELPER"
    cp "$KERN_LIB/connhelper.c" "$BED/connhelper.c"
  fi
}

# --- qemu, the archive, the kernels ------------------------------------------------
kern_skip() { KERN_SKIP=$*; return 1; }

kern_prepare() {
  [ ${#KERN_SERIES[@]} -gt 0 ] || return 0
  if ! command -v qemu-system-x86_64 >/dev/null || ! command -v cpio >/dev/null \
     || ! command -v xz >/dev/null || ! command -v zstd >/dev/null; then
    kern_log "installing qemu-system-x86, cpio, xz-utils, zstd"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        qemu-system-x86 cpio xz-utils zstd; } > "$BED/apt-install.log" 2>&1 \
      || { tail -5 "$BED/apt-install.log" >&2; kern_skip "cannot install qemu-system-x86/cpio (apt-get; see $BED/apt-install.log)"; return 1; }
  fi
  # private apt configuration from the machine's own Debian sources
  mkdir -p "$BED"/{apt/lists/partial,apt/cache/archives/partial,debs,k,logs}
  local K=/usr/share/keyrings/debian-archive-keyring.gpg uris main_uri sec_uri
  uris=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
         | grep -v '^[[:space:]]*#' | grep -oE '[a-z]+://[^ ]+' || true)
  main_uri=$(printf '%s\n' "$uris" | grep -E '/debian/?$' | sed -n 1p)
  sec_uri=$(printf '%s\n' "$uris" | grep -E '/debian-security/?$' | sed -n 1p)
  if [ -z "$main_uri" ] || [ -z "$sec_uri" ] || [ ! -f "$K" ]; then
    kern_skip "no Debian archive URI (or keyring $K) in the apt configuration"; return 1
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
  local -x APT_CONFIG=$BED/apt/apt.conf
  if [ -z "$(ls "$BED"/apt/lists/*_Packages* 2>/dev/null)" ]; then
    apt-get update -q > "$BED/apt-update.log" 2>&1 \
      || { kern_skip "apt-get update of the bookworm/bullseye lists failed (see $BED/apt-update.log)"; return 1; }
  fi
  # apt-get update may exit 0 after failing to fetch: check that lists came
  if [ -z "$(ls "$BED"/apt/lists/*_Packages* 2>/dev/null)" ]; then
    kern_skip "apt-get update fetched no package lists (is the Debian archive reachable?)"; return 1
  fi
  local series pkg
  for series in "${KERN_SERIES[@]}"; do
    pkg=${WANT_PKG[$series]:-${PINNED[$series]:-}}
    if [ -z "${WANT_PKG[$series]:-}" ] && ! apt-cache show "$pkg" >/dev/null 2>&1; then
      pkg=$(apt-cache pkgnames linux-image- | grep -E "${PATTERN[$series]}" | sort -V | tail -1 || true)
      kern_log "$series: ${PINNED[$series]} is gone, using ${pkg:-nothing}"
    fi
    [ -n "$pkg" ] || { kern_skip "no kernel package for $series in the archive"; return 1; }
    KERN_PKG[$series]=$pkg
  done
  local p
  for p in busybox-static "${KERN_PKG[@]}"; do
    ls "$BED/debs/${p}"_*.deb >/dev/null 2>&1 && continue
    kern_log "downloading $p"
    (cd "$BED/debs" && apt-get download -q "$p") > "$BED/apt-download.log" 2>&1 \
      || { kern_skip "download of $p failed: $(grep -m1 -E '^E:' "$BED/apt-download.log" || tail -1 "$BED/apt-download.log")"; return 1; }
  done
  if [ ! -x "$BED/bb/bin/busybox" ]; then
    rm -rf "$BED/bb.tmp"; dpkg -x "$BED"/debs/busybox-static_*.deb "$BED/bb.tmp" && mv "$BED/bb.tmp" "$BED/bb"
  fi
  # only what the guests need from each kernel package: vmlinuz, the diag modules
  local kdir
  for series in "${KERN_SERIES[@]}"; do
    p=${KERN_PKG[$series]}; kdir=$BED/k/$p
    # (a bed unpacked before udp_diag was asked for is unpacked again)
    [ -d "$kdir/boot" ] && [ -n "$(find "$kdir" -name 'udp_diag.ko*' | head -1)" ] && continue
    rm -rf "$kdir"
    rm -rf "$kdir.tmp"; mkdir -p "$kdir.tmp"
    dpkg-deb --fsys-tarfile "$BED/debs/${p}"_*.deb \
      | tar -x -C "$kdir.tmp" --wildcards '*/boot/vmlinuz-*' '*/inet_diag.ko*' '*/tcp_diag.ko*' '*/udp_diag.ko*' \
      || { kern_skip "cannot unpack $p"; return 1; }
    mv "$kdir.tmp" "$kdir"
  done
}

# --- one guest -------------------------------------------------------------------
kern_boot() {
  local series=$1 tag=$2 body=$3 out=$4 modules=${5:-$DIAG_MODULES}
  local p=${KERN_PKG[$series]} kdir vmlinuz kver root m f initrd rc=0 data console src
  [ "$modules" = none ] && modules=""
  kdir=$BED/k/$p
  vmlinuz=$(ls "$kdir"/boot/vmlinuz-* | head -1)
  kver=${vmlinuz##*/vmlinuz-}
  root=$(mktemp -d "$BED/initrd.XXXX")
  mkdir -p "$root"/{bin,proc,sys,dev,tmp,out,lib/modules}
  cp "$BED/bb/bin/busybox" "$root/bin/"
  ln -s busybox "$root/bin/sh"
  cp "$KERN_TCPIPSTAT" "$root/tcpipstat"; cp "$KERN_HELPER" "$root/connhelper"
  for m in $modules; do   # inet_diag/tcp_diag/udp_diag are modules in Debian kernels
    f=$(find "$kdir" -name "$m.ko*" | head -1)
    case $f in
      "") kern_log "$series: no $m module in $p" ;;
      *.xz)  xz -dc "$f"  > "$root/lib/modules/$m.ko" ;;
      *.zst) zstd -qdc "$f" > "$root/lib/modules/$m.ko" ;;
      *)     cp "$f" "$root/lib/modules/$m.ko" ;;
    esac
  done
  printf '#!/bin/sh\nMODULES="%s"\n' "$modules" > "$root/init"
  cat >> "$root/init" <<'EOF'
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
ip link set lo up
for m in $MODULES; do insmod /lib/modules/$m.ko || echo "insmod $m failed" >> /out/modules.txt; done
cat /proc/modules >> /out/modules.txt
helper() {
  n=$1; shift
  /connhelper /tmp/$n.ready "$@" > /out/$n.log 2>&1 &
  i=0; while [ ! -e /tmp/$n.ready ] && [ $i -lt 600 ]; do usleep 100000; i=$((i+1)); done
}
EOF
  cat "$body" >> "$root/init"
  cat >> "$root/init" <<'EOF'

uname -r > /out/uname.txt
dev=/dev/ttyS1; [ -c $dev ] || dev=/dev/console
{ echo "=====BEGIN-TESTDATA====="; tar -czf - -C /out . | base64; echo "=====END-TESTDATA====="; } > $dev
sync; sleep 1
poweroff -f
EOF
  chmod +x "$root/init"
  initrd=$BED/initrd-$kver-$tag.cpio.gz
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$initrd"
  rm -rf "$root"
  console=$BED/logs/console-$kver-$tag.log; data=$BED/logs/data-$kver-$tag.txt
  rm -f "$console" "$data"
  timeout -k 10 "$BOOT_TIMEOUT" qemu-system-x86_64 -accel tcg -m 512 -smp "${KERN_SMP:-2}" \
      -kernel "$vmlinuz" -initrd "$initrd" \
      -append 'console=ttyS0 panic=-1 loglevel=4' \
      -display none -monitor none -no-reboot -nic none \
      -serial "file:$console" -serial "file:$data" </dev/null >&2 || rc=$?
  rm -f "$initrd"
  mkdir -p "$out"
  src=$data
  grep -q '=====END-TESTDATA=====' "$data" 2>/dev/null || src=$console
  if ! tr -d '\r' < "$src" | sed -n '/=====BEGIN-TESTDATA=====/,/=====END-TESTDATA=====/p' \
       | grep -v '=====' | base64 -d | tar -xzf - -C "$out" 2>/dev/null; then
    kern_log "$series: no data from the guest (qemu rc=$rc); console: $console"
    tr -d '\r' < "$console" | tail -20 >&2
    return 1
  fi
}
