#!/bin/bash
# bench-export.sh - the Prometheus exporter under load, in a private
# namespace (loopback only; every load is bounded in count and time). Cases
# (MODES, all by default):
#   scale     N loopback connections (2N sockets, default N=10000) opened
#             after `tcpipstat --listen --index tuple --poll 5s` started, so
#             every socket is a series, with a series limit below and above
#             the socket count: the exporter's CPU per second of wall time
#             (utime+stime over the run), the scrape latency (median and max
#             of curl's time_total over SCRAPES scrapes, one a second), the
#             exposition's size and the exporter's RSS after them.
#   parallel  the same N connections with --max-series 4N: ROUNDS rounds of
#             PARALLEL scrapes at once (each round after the previous ended),
#             every scrape's time (min/median/max), RSS before the first
#             round, after the last and 5 s later, and the peak (VmHWM).
#             N=30000 is the issue's 60k series at --max-series 120000.
#   self      an exporter with the default --index tuple and no other load,
#             scraped RATE times a second for DURATION seconds by new
#             connections (each waits up to 10 s): answered/sent, median and
#             max latency, and the series held at the end (its own scrapes'
#             connections are series unless left out).
#   fds       an exporter under `ulimit -n 16` with 100 idle connections to
#             it: its CPU over 5 s (a busy accept loop is ~100%), then how
#             long a scrape takes, and the accept backoffs it counted.
#   cpu       scrape CPU per sample: N connections (2N series, --index
#             tuple, --poll 1s; N=20000 is the issue's 40,000 series), the
#             exporter's utime+stime (/proc/PID/stat) over CPU_SECONDS with
#             no scrape, then over as long with one plain scrape a second,
#             then one gzip scrape a second; each scraping phase's CPU
#             minus the idle phase's, over (scrapes x samples a scrape), is
#             its scrape CPU per sample. Scrapes a second apart each find a
#             new poll, so nearly every one pays an encoding (the count of
#             encodings, from tcpipstat_expositions_encoded_total, is
#             printed): this is the cost of a scrape that encodes, not of a
#             cached one.
# Root (namespaces). Prints one line per measurement.
#
# Usage: scripts/bench-export.sh [N] [SCRAPES]
# Env:   BIN=target/release/tcpipstat  MODES="scale parallel self fds cpu"
#        PARALLEL=8 ROUNDS=3  RATE=50 DURATION=60  CPU_SECONDS=20
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
N=${1:-10000}
SCRAPES=${2:-10}
BIN=${BIN:-$HERE/../target/release/tcpipstat}
MODES=${MODES:-scale parallel self fds cpu}
CPU_SECONDS=${CPU_SECONDS:-20}
PARALLEL=${PARALLEL:-8}
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-50}
DURATION=${DURATION:-60}
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

in_ns() { ip netns exec "$NS" "$@"; }
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ms() { echo "$1 * 1000" | bc -l; }
# median and max of the numbers in file $1, one a line
median_max() {
  sort -n "$1" > "$1.sorted"
  awk '{a[NR]=$1} END {printf "%s %s %s\n", a[1], a[int((NR+1)/2)], a[NR]}' "$1.sorted"
}

# Starts the exporter with the given options; sets $pid.
start_exporter() {
  # Not through in_ns: $! must be the exporter (ip netns exec execs it).
  ip netns exec "$NS" "$BIN" --listen ":$port" "$@" 2>"$TMP/exporter.err" &
  pid=$!
  for _ in $(seq 50); do
    in_ns curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && return 0
    sleep 0.2
  done
  echo "the exporter did not come up: $(cat "$TMP/exporter.err")" >&2
  exit 1
}

stop_exporter() {
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  port=$((port + 1))
}

# Holds N connections until release_connections; waits for two windows.
hold_connections() {
  (in_ns python3 "$HERE/conngen.py" "$N" --tune < "$TMP/hold" > "$TMP/gen.out" 2> "$TMP/gen.err" &)
  exec 7>"$TMP/hold"
  for _ in $(seq 600); do grep -q READY "$TMP/gen.out" 2>/dev/null && break; sleep 0.5; done
  grep -q READY "$TMP/gen.out" || { echo "conngen failed: $(cat "$TMP/gen.err")" >&2; exit 1; }
  sleep 11   # two windows with every connection in them
}

release_connections() {
  exec 7>&-   # conngen ends with its stdin
  sleep 2
  : > "$TMP/gen.out"
}

scale() {
  for limit in $((N)) $((4 * N)); do
    start_exporter --index tuple --poll 5s --max-series "$limit"
    hold_connections
    start=$(date +%s.%N)
    cpu0=$(cpu_ticks "$pid")
    : > "$TMP/times"
    for _ in $(seq "$SCRAPES"); do
      in_ns curl -s -o "$TMP/body" -w '%{time_total}\n' "http://127.0.0.1:$port/metrics" >> "$TMP/times"
      sleep 1
    done
    cpu1=$(cpu_ticks "$pid")
    end=$(date +%s.%N)
    # The same poll's exposition as Prometheus gets it (gzip), after the
    # CPU sample: its one compression is not in the figure above.
    gzip_time=$(in_ns curl -s -H 'Accept-Encoding: gzip' -o "$TMP/body.gz" -w '%{time_total}' "http://127.0.0.1:$port/metrics")
    rss=$(status_kb "$pid" VmRSS)
    stop_exporter
    release_connections
    series=$(grep -c '^tcpipstat_' "$TMP/body" || true)
    folded=$(awk '/^tcpipstat_series_folded_total/ {print $2}' "$TMP/body")
    read -r _ median max < <(median_max "$TMP/times")
    cpu_ms=$(echo "($cpu1 - $cpu0) * 1000 / $ticks / ($end - $start)" | bc -l)
    printf 'scale: sockets=%d max-series=%d: exporter CPU %.1f ms/s; scrape median %.1f ms, max %.1f ms; %d samples, %s bytes (gzip %s bytes, scraped in %.1f ms), folded windows %s; RSS %d MB\n' \
      $((2 * N)) "$limit" "$cpu_ms" "$(ms "$median")" "$(ms "$max")" \
      "$series" "$(stat -c %s "$TMP/body")" "$(stat -c %s "$TMP/body.gz")" "$(ms "$gzip_time")" \
      "${folded:-0}" $((rss / 1024))
  done
}

parallel() {
  start_exporter --index tuple --poll 5s --max-series $((4 * N))
  hold_connections
  rss0=$(status_kb "$pid" VmRSS)
  : > "$TMP/times"
  for _ in $(seq "$ROUNDS"); do
    for i in $(seq "$PARALLEL"); do
      in_ns curl -s -m 60 -o "$TMP/body.$i" -w '%{time_total}\n' "http://127.0.0.1:$port/metrics" >> "$TMP/times" &
    done
    wait $(jobs -p | grep -v "^$pid\$") 2>/dev/null || true
  done
  rss1=$(status_kb "$pid" VmRSS)
  sleep 5
  rss2=$(status_kb "$pid" VmRSS)
  hwm=$(status_kb "$pid" VmHWM)
  series=$(awk '/^tcpipstat_series / {print $2}' "$TMP/body.1")
  stop_exporter
  release_connections
  read -r min median max < <(median_max "$TMP/times")
  printf 'parallel: sockets=%d series=%s, %d rounds of %d scrapes at once: each %.0f / %.0f / %.0f ms (min/median/max), %s bytes; RSS %d MB before, %d MB after, %d MB 5 s later, peak %d MB\n' \
    $((2 * N)) "${series:-?}" "$ROUNDS" "$PARALLEL" "$(ms "$min")" "$(ms "$median")" "$(ms "$max")" \
    "$(stat -c %s "$TMP/body.1")" $((rss0 / 1024)) $((rss1 / 1024)) $((rss2 / 1024)) $((hwm / 1024))
}

self_load() {
  start_exporter
  in_ns python3 - "$port" "$RATE" "$DURATION" > "$TMP/self.out" <<'EOF'
import socket, sys, threading, time
port, rate, duration = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
total = int(rate * duration) + 1
lat, lock = [], threading.Lock()
def scrape():
    t = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.settimeout(10)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        if data.startswith(b"HTTP/1.1 200"):
            with lock:
                lat.append(time.monotonic() - t)
    except OSError:
        pass
threads, t0 = [], time.monotonic()
for i in range(total):
    delay = t0 + i / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    th = threading.Thread(target=scrape)
    th.start()
    threads.append(th)
for th in threads:
    th.join()
lat.sort()
med = lat[len(lat) // 2] if lat else 0
mx = lat[-1] if lat else 0
print(f"{len(lat)} {total} {med * 1000:.1f} {mx * 1000:.1f}")
EOF
  read -r ok total median max < "$TMP/self.out"
  series=$(in_ns curl -s "http://127.0.0.1:$port/metrics" | awk '/^tcpipstat_series / {print $2}')
  stop_exporter
  printf 'self: %s scrapes/s for %s s at the default --index tuple: %d of %d answered, median %s ms, max %s ms; %s series held after\n' \
    "$RATE" "$DURATION" "$ok" "$total" "$median" "$max" "${series:-?}"
}

fds() {
  ip netns exec "$NS" sh -c "ulimit -n 16 && exec \"\$0\" --listen :$port --poll 1s" "$BIN" 2>"$TMP/exporter.err" &
  pid=$!
  sleep 2
  in_ns python3 -c "
import socket, sys, time
held = [socket.create_connection(('127.0.0.1', $port)) for _ in range(100)]
sys.stdin.read()
" < "$TMP/hold" &
  exec 7>"$TMP/hold"
  sleep 1
  cpu0=$(cpu_ticks "$pid")
  sleep 5
  cpu1=$(cpu_ticks "$pid")
  scrape=$(in_ns curl -s -m 30 -o "$TMP/body" -w '%{http_code} %{time_total}' "http://127.0.0.1:$port/metrics" || true)
  exec 7>&-
  backoffs=$(awk '/^tcpipstat_http_accept_backoffs_total/ {print $2}' "$TMP/body" 2>/dev/null || true)
  stop_exporter
  printf 'fds: ulimit -n 16, 100 idle connections: exporter CPU %d%% of a core; a scrape: %s (HTTP status, seconds); accept backoffs %s\n' \
    $(( (cpu1 - cpu0) * 100 / ticks / 5 )) "${scrape:-none}" "${backoffs:-not reported}"
}

# The exporter's CPU ticks over CPU_SECONDS while `scrape` (a function
# name, or `true`) runs once a second.
cpu_over() {
  local c0 c1
  c0=$(cpu_ticks "$pid")
  for _ in $(seq "$CPU_SECONDS"); do
    "$1"
    sleep 1
  done
  c1=$(cpu_ticks "$pid")
  echo $((c1 - c0))
}
scrape_plain() { in_ns curl -s -o "$TMP/body" "http://127.0.0.1:$port/metrics"; }
scrape_gzip() { in_ns curl -s -H 'Accept-Encoding: gzip' -o "$TMP/body.gz" "http://127.0.0.1:$port/metrics"; }
encodings() { in_ns curl -s "http://127.0.0.1:$port/metrics" | awk '/^tcpipstat_expositions_encoded_total/ {print $2}'; }

cpu() {
  start_exporter --index tuple --poll 1s --max-series $((4 * N))
  hold_connections
  idle=$(cpu_over true)
  e0=$(encodings)
  plain=$(cpu_over scrape_plain)
  e1=$(encodings)
  gzip=$(cpu_over scrape_gzip)
  e2=$(encodings)
  stop_exporter
  release_connections
  samples=$(grep -vc '^#' "$TMP/body" || true)
  series=$(awk '/^tcpipstat_series / {print $2}' "$TMP/body")
  # Each phase's scrapes: CPU_SECONDS, plus the encodings() probe before it.
  for phase in plain gzip; do
    ticks_used=${!phase}
    encoded=$([ "$phase" = plain ] && echo $((e1 - e0 - 1)) || echo $((e2 - e1 - 1)))
    us=$(echo "($ticks_used - $idle) * 1000000 / $ticks / ($CPU_SECONDS * $samples)" | bc -l)
    printf 'cpu: sockets=%d series=%s, %d samples a scrape, %s scrapes (%s, one a second, %s encodings): scrape CPU %.3f us a sample (%d ticks against %d idle over %d s)
' \
      $((2 * N)) "${series:-?}" "$samples" "$CPU_SECONDS" "$phase" "$encoded" "$us" "$ticks_used" "$idle" "$CPU_SECONDS"
  done
}

for mode in $MODES; do
  case $mode in
    scale) scale ;;
    parallel) parallel ;;
    self) self_load ;;
    fds) fds ;;
    cpu) cpu ;;
    *) echo "unknown mode $mode (scale, parallel, self, fds, cpu)" >&2; exit 2 ;;
  esac
done
