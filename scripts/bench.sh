#!/usr/bin/env bash
# bench.sh - owns the dump benchmark: CPU (user+sys), wall and peak RSS of
#   A) tcpipstat --once --format json          vs  ss -tin
#   B) tcpipstat --once --format json NO-MATCH vs  bare-dump.c (bare sock_diag dump)
# at N established loopback connections (2N sockets) in a private netns;
# steady polling there (CPU per poll of 6 s more polling) against the bare
# dump (24 dumps 250 ms apart, as a poller makes them), by tuple and with
# --index lport (a lean dump); and
#   C) churn: steady CPU per second of polling without close notices
#      (--close-buffer 0), polling alone (notices read) and --precision
#      tracepoint while churn.py opens and closes RATE conn/s, per 1,000
#      conn/s and precision over polling; events lost and undelivered; and
#      with --system how much of the unattributed residual (InSegs,
#      OutSegs) each leaves;
#   D) TIME_WAIT: CPU per steady poll with TW_SOCKETS TIME_WAIT sockets in
#      the namespace, close notices read (TIME_WAIT not dumped) against
#      --close-buffer 0 (TIME_WAIT dumped, as before notices), and the bare
#      dump of every socket.
# Helpers: conngen.py (holds the connections), measure.py (alternates runs,
# medians) + rusage-run.c (times one run), bare-dump.c; the C ones are built
# here with gcc. Prints markdown tables, also to $OUT if set.
#
# Usage (root):  scripts/bench.sh
# Env: SIZES="1000 10000 50000" (connections), RUNS=5 (median of), OUT=file,
#      CHURN_RATES="1000 3000" (conn/s; empty: no case C), CHURN_SECONDS=7 and
#      CHURN_SHORT=2 (the long and short runs whose difference is measured),
#      TCPIPSTAT=path (skip cargo build and use that binary),
#      TW_SOCKETS=50000 (TIME_WAIT sockets for case D; empty: no case D).
# Leaves nothing behind: the namespace and generator go away on exit, error or ^C.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
    echo "SKIP: bench.sh needs root (ip netns, sysctls inside the namespace)"
    exit 0
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
SIZES=${SIZES-1000 10000 50000}
RUNS=${RUNS:-5}
CHURN_RATES=${CHURN_RATES-1000 3000}
CHURN_SECONDS=${CHURN_SECONDS:-7}
CHURN_SHORT=${CHURN_SHORT:-2}
TW_SOCKETS=${TW_SOCKETS-50000}
FILTER='*.*.*.*:1-*.*.*.*:*'   # local port 1: matches no socket
NS=tcpipstat-bench-$$
TMP=$(mktemp -d /tmp/tcpipstat-bench.XXXXXX)
GEN_PID=

log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 1; }

stop_ns() {
    exec 3>&-   # keep-alive pipe: the generator sees EOF
    if [[ -n $GEN_PID ]]; then
        kill "$GEN_PID" 2>/dev/null || true
        wait "$GEN_PID" 2>/dev/null || true
        GEN_PID=
    fi
    ip netns del "$NS" 2>/dev/null || true
}
trap 'stop_ns; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM HUP   # runs the EXIT trap

# --- tools -------------------------------------------------------------------
install() { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
need() { command -v "$1" >/dev/null || install "$2"; }
need ip iproute2
need ss iproute2
need gcc gcc
need python3 python3
[[ -e /usr/include/linux/inet_diag.h && -e /usr/include/stdio.h ]] || install libc6-dev linux-libc-dev

BARE=$TMP/bare-dump
RUSAGE=$TMP/rusage-run
gcc -O2 -Wall -o "$BARE" "$HERE/bare-dump.c" || die "cannot build bare-dump.c"
gcc -O2 -Wall -o "$RUSAGE" "$HERE/rusage-run.c" || die "cannot build rusage-run.c"

BIN=${TCPIPSTAT:-}
if [[ -z $BIN ]]; then
    BIN=$ROOT/target/release/tcpipstat
    if command -v cargo >/dev/null; then
        log "cargo build --release"
        (cd "$ROOT" && cargo build --release -q) || log "cargo build failed; using any existing $BIN"
    fi
fi

# --- one size ------------------------------------------------------------------
start_ns() {   # $1 = connections; sets GEN_PID, waits for READY
    ip netns add "$NS"
    ip -n "$NS" link set lo up
    mkfifo "$TMP/keep"
    ip netns exec "$NS" python3 "$HERE/conngen.py" "$1" --tune \
        <"$TMP/keep" >"$TMP/gen.out" 2>"$TMP/gen.err" &
    GEN_PID=$!
    exec 3>"$TMP/keep"   # if this shell dies, the generator's stdin hits EOF
    rm -f "$TMP/keep"
    local t
    for ((t = 0; t < 3000; t++)); do   # up to 300 s
        grep -q '^READY' "$TMP/gen.out" && return 0
        kill -0 "$GEN_PID" 2>/dev/null || break
        sleep 0.1
    done
    die "conngen $1 failed: $(cat "$TMP/gen.err")"
}

tcpipstat_usable() {   # prints why not, if not
    [[ -x $BIN ]] || { echo "no binary at $BIN"; return 1; }
    ip netns exec "$NS" "$BIN" --once --format json >"$TMP/probe" 2>"$TMP/probe.err" ||
        { echo "exit $?: $(head -c 200 "$TMP/probe.err")"; return 1; }
    local first
    first=$(head -c 256 "$TMP/probe" | tr -d '[:space:]')
    [[ ${first:0:1} == [\{\[] ]] ||
        { echo "output is not JSON: $(head -c 60 "$TMP/probe")"; return 1; }
    ip netns exec "$NS" "$BIN" --once --format json "$FILTER" >/dev/null 2>"$TMP/probe.err" ||
        { echo "filter run exit $?: $(head -c 200 "$TMP/probe.err")"; return 1; }
}

num() { [[ ${1:-} =~ ^[0-9.]+$ ]]; }
ms() { if num "${1:-}"; then echo "$1"; else echo "n/a"; fi; }
mib() { if num "${1:-}"; then awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; else echo "n/a"; fi; }
ratio() {   # $1 / $2 as "1.23x"
    if num "${1:-}" && num "${2:-}"; then
        awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else printf "n/a" }'
    else echo "n/a"; fi
}

CPU_ROWS=
WALL_ROWS=
POLL_ROWS=
NOTES=
cpu_busy() {   # % of all CPUs busy over 1 s, from /proc/stat
    local a b
    a=$(head -1 /proc/stat); sleep 1; b=$(head -1 /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x); split(b, y)
        for (i = 2; i <= 9; i++) t += y[i] - x[i]; idle = y[5] + y[6] - x[5] - x[6]
        printf "%.0f", t ? 100 * (t - idle) / t : 0 }'
}
q() { printf '%q' "$1"; }
for n in $SIZES; do
    log "N=$n: starting $n connections"
    start_ns "$n"
    socks=$(ip netns exec "$NS" "$BARE" | sed -n 's/^sockets=\([0-9]*\).*/\1/p')
    if why=$(tcpipstat_usable); then   # alternated in this order: A, A', B, B'
        cmds=("json=$(q "$BIN") --once --format json" "ss=ss -tin"
              "nomatch=$(q "$BIN") --once --format json $(q "$FILTER")" "bare=$(q "$BARE")")
    else
        NOTES+="- N=$n: tcpipstat n/a ($why)"$'\n'
        log "tcpipstat n/a: $why"
        cmds=("ss=ss -tin" "bare=$(q "$BARE")")
    fi
    busy=$(cpu_busy)
    if ((busy > 10)); then   # e.g. a cargo build next door
        NOTES+="- N=$n: CPUs were ${busy}% busy before measuring: wall times are noisy"$'\n'
    fi
    log "N=$n ($socks sockets, CPUs ${busy}% busy): measuring ${RUNS}x"
    declare -A C=() W=() R=()
    while read -r label status cpu wall rss; do
        [[ $status == ok ]] || { NOTES+="- N=$n: $label failed"$'\n'; continue; }
        C[$label]=$cpu W[$label]=$wall R[$label]=$rss
    done < <(ip netns exec "$NS" python3 "$HERE/measure.py" "$RUSAGE" "$RUNS" "${cmds[@]}")
    CPU_ROWS+="| $socks | $(ms "${C[json]:-}") | $(ms "${C[ss]:-}") | $(ratio "${C[json]:-}" "${C[ss]:-}") "
    CPU_ROWS+="| $(ms "${C[nomatch]:-}") | $(ms "${C[bare]:-}") | $(ratio "${C[nomatch]:-}" "${C[bare]:-}") |"$'\n'
    WALL_ROWS+="| $socks | $(ms "${W[json]:-}") | $(ms "${W[ss]:-}") | $(ms "${W[nomatch]:-}") | $(ms "${W[bare]:-}") "
    WALL_ROWS+="| $(mib "${R[json]:-}") | $(mib "${R[ss]:-}") | $(mib "${R[nomatch]:-}") | $(mib "${R[bare]:-}") |"$'\n'
    # Steady polling: one window polled every 250 ms for 3 s and for 9 s,
    # alternated, median of RUNS. Per poll with start-up (the 3 s run's CPU
    # over its polls) and steady: what 6 s more of polling cost, over the
    # polls they added, against the bare dump (what one poll cannot cost
    # less than). The default report (by tuple: the dump asks for each
    # socket's memory and congestion control) and --index lport (a lean
    # dump: tcp_info, and listeners' memory for their drops).
    if [[ -n ${C[json]:-} ]]; then
        polls_in() {   # $1 seconds: polls of one run
            ip netns exec "$NS" "$BIN" --timeout "$1s" --poll 250ms --format json |
                sed -n 's/.*"polls":\([0-9]*\).*/\1/p' | head -1
        }
        p3=$(polls_in 3); p9=$(polls_in 9)
        declare -A P=() M=()
        while read -r label status cpu _ rss; do
            [[ $status == ok ]] && P[$label]=$cpu M[$label]=$rss
        done < <(ip netns exec "$NS" python3 "$HERE/measure.py" "$RUSAGE" "$RUNS" \
            "t3=$(q "$BIN") --timeout 3s --poll 250ms --format json" \
            "t9=$(q "$BIN") --timeout 9s --poll 250ms --format json" \
            "l3=$(q "$BIN") --timeout 3s --poll 250ms --format json --index lport" \
            "l9=$(q "$BIN") --timeout 9s --poll 250ms --format json --index lport" \
            "bare24=env BARE_REPEAT=24 BARE_INTERVAL_MS=250 $(q "$BARE")")
        steady() {   # $1 $2 = CPU µs of the short and long run
            awk -v a="${1:-}" -v b="${2:-}" -v p="${p3:-0}" -v q="${p9:-0}" \
                'BEGIN { if (a != "" && b != "" && q > p) printf "%.2f", (b - a) / (q - p) }'
        }
        per_poll=$(awk -v c="${P[t3]:-}" -v p="${p3:-0}" 'BEGIN { if (c != "" && p > 0) printf "%.2f", c / p }')
        tuple_steady=$(steady "${P[t3]:-}" "${P[t9]:-}")
        lean_steady=$(steady "${P[l3]:-}" "${P[l9]:-}")
        bare_steady=$(awk -v c="${P[bare24]:-}" 'BEGIN { if (c != "") printf "%.2f", c / 24 }')
        per_socket=$(awk -v r="${M[t9]:-0}" -v n="${socks:-0}" 'BEGIN { if (n > 0) printf "%.0f", r * 1024 / n }')
        POLL_ROWS+="| $socks | ${p3:-n/a} / ${p9:-n/a} | $(ms "$per_poll") | $(ms "$tuple_steady") | $(ms "$lean_steady") "
        POLL_ROWS+="| $(ms "${C[bare]:-}") | $(ms "$bare_steady") | $(ratio "$tuple_steady" "$bare_steady") | $(ratio "$lean_steady" "$bare_steady") "
        POLL_ROWS+="| $(mib "${M[t9]:-}") | ${per_socket:-n/a} |"$'\n'
        unset P M
    fi
    unset C W R
    stop_ns
done

# --- C) churn: the cost of precision mode ---------------------------------------
# A steady RATE connections/s (churn.py) for the whole case; tcpipstat runs
# one window polling every second, for CHURN_SHORT and for CHURN_SECONDS
# seconds, alternating polling alone, polling with --close-buffer 0 and
# --precision tracepoint. CPU (user+sys, median of RUNS) per second is the
# steady cost: (CPU of the long run - CPU of the short one) / the seconds
# between them, so start-up (tracefs, /proc/kallsyms, BTF) and the final
# report cancel out; then per 1,000 conn/s, and precision over polling
# alone. One more untimed run of each with --system gives events lost and
# undelivered, and the residual (what the namespace's MIB counted that no
# socket row accounts for).
CHURN_ROWS=
RESIDUAL_ROWS=
CHURN_NOTE=
churn_case() {
    local rate=$1 long=$CHURN_SECONDS short=$CHURN_SHORT variants=() total out mode flags
    local -A FLAGS=([poll]="" [nonotices]="--close-buffer 0" [precision]="--precision tracepoint")
    for mode in poll nonotices precision; do
        for secs in "$short" "$long"; do
            variants+=("$mode-$secs=$(q "$BIN") --timeout ${secs}s --poll 1s --format json ${FLAGS[$mode]}")
        done
    done
    # warm-up + RUNS timed rounds, plus 2 residual runs, plus slack
    total=$(( (RUNS + 1) * 3 * (short + long + 2) + 2 * (long + 1) + 10 ))
    ip netns add "$NS"
    ip -n "$NS" link set lo up
    ip netns exec "$NS" sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
    ip netns exec "$NS" python3 "$HERE/churn.py" "$rate" "$total" >"$TMP/churn.out" 2>"$TMP/churn.err" &
    GEN_PID=$!
    sleep 1
    declare -A C=()
    while read -r label status cpu _ _; do
        [[ $status == ok ]] && C[$label]=$cpu
    done < <(ip netns exec "$NS" python3 "$HERE/measure.py" "$RUSAGE" "$RUNS" "${variants[@]}")
    local -A per_s=()
    for mode in poll nonotices precision; do
        per_s[$mode]=$(awk -v a="${C[$mode-$short]:-}" -v b="${C[$mode-$long]:-}" -v s="$short" -v l="$long" \
            'BEGIN { if (a != "" && b != "" && l > s) printf "%.1f", (b - a) / (l - s) }')
    done
    local res=() lost=() undelivered=() opens=()
    for flags in "" "--precision tracepoint"; do
        out=$TMP/residual.json
        # shellcheck disable=SC2086
        ip netns exec "$NS" "$BIN" --timeout "${long}s" --poll 1s --format json --system $flags 2>/dev/null | tail -1 >"$out"
        res+=("$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1])); u = r.get("system", {}).get("unattributed", {})
cells = []
for k in ("InSegs", "OutSegs"):
    v = u.get(k, {}); s = v.get("system", 0); left = v.get("unattributed", 0)
    cells.append("%d of %d (%.0f%%)" % (left, s, 100.0 * left / s) if s else "n/a")
print(" | ".join(cells))' "$out" 2>/dev/null || echo "n/a | n/a")")
        lost+=("$(grep -o '"events_lost":[0-9]*' "$out" | head -1 | cut -d: -f2 || true)")
        undelivered+=("$(grep -o '"events_undelivered":[0-9]*' "$out" | head -1 | cut -d: -f2 || true)")
        opens+=("$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1])); a = r.get("system", {}).get("unattributed", {}).get("ActiveOpens", {})
print("%.0f" % (a.get("system", 0) / float(sys.argv[2])))' "$out" "$long" 2>/dev/null || echo n/a)")
    done
    kill "$GEN_PID" 2>/dev/null || true; wait "$GEN_PID" 2>/dev/null || true; GEN_PID=
    ip netns del "$NS"
    per_k() { awk -v p="${1:-}" -v r="$rate" 'BEGIN { if (p != "") printf "%.1f", p * 1000 / r }'; }
    local over
    over=$(awk -v a="${per_s[precision]:-}" -v b="${per_s[poll]:-}" 'BEGIN { if (a != "" && b != "") printf "%.1f", a - b }')
    CHURN_ROWS+="| $rate | ${opens[1]:-n/a} | ${per_s[nonotices]:-n/a} | ${per_s[poll]:-n/a} | ${per_s[precision]:-n/a} "
    CHURN_ROWS+="| $(ratio "${per_s[precision]:-}" "${per_s[poll]:-}") | $(per_k "${per_s[poll]:-}") | $(per_k "$over") "
    CHURN_ROWS+="| ${lost[1]:-n/a} | ${undelivered[1]:-n/a} |"$'\n'
    RESIDUAL_ROWS+="| $rate | polling alone | ${res[0]} |"$'\n'
    RESIDUAL_ROWS+="| $rate | precision | ${res[1]} |"$'\n'
}
if [[ ! -e /sys/kernel/tracing/events/sock/inet_sock_set_state ]] &&
    ! mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null; then
    CHURN_NOTE="SKIP churn case: no tracefs"
elif [[ ! -e /sys/kernel/tracing/events/sock/inet_sock_set_state ]]; then
    CHURN_NOTE="SKIP churn case: no sock:inet_sock_set_state tracepoint"
fi
if [[ -z $CHURN_NOTE ]]; then
    for rate in $CHURN_RATES; do
        log "churn: $rate connections/s, ${CHURN_SHORT}s and ${CHURN_SECONDS}s runs, ${RUNS}x"
        churn_case "$rate"
    done
else
    log "$CHURN_NOTE"
fi

# --- D) TIME_WAIT: what close notices save a poll ------------------------------
# TW_SOCKETS connections opened and closed client first (each client end
# stays in TIME_WAIT for 60 s); then steady polling (3 s, every 250 ms) with
# close notices (the dump asks for no TIME_WAIT) and without.
TW_ROWS=
tw_case() {
    local n=$1 tw polls
    ip netns add "$NS"
    ip -n "$NS" link set lo up
    ip netns exec "$NS" sysctl -qw net.ipv4.ip_local_port_range="1024 65535" \
        net.ipv4.tcp_max_tw_buckets=$((n * 2))
    ip netns exec "$NS" python3 -c '
import socket, sys
n = int(sys.argv[1])
l = socket.socket(); l.bind(("127.0.0.1", 7999)); l.listen(1024)
for _ in range(n):
    c = socket.create_connection(("127.0.0.1", 7999)); s, _ = l.accept()
    c.close(); s.close()
' "$n"
    tw=$(ip netns exec "$NS" ss -Htan state time-wait | wc -l)
    polls=$(ip netns exec "$NS" "$BIN" --timeout 3s --poll 250ms --format json |
        sed -n 's/.*"polls":\([0-9]*\).*/\1/p' | head -1)
    declare -A C=()
    while read -r label status cpu _ _; do
        [[ $status == ok ]] && C[$label]=$cpu
    done < <(ip netns exec "$NS" python3 "$HERE/measure.py" "$RUSAGE" "$RUNS" \
        "notices=$(q "$BIN") --timeout 3s --poll 250ms --format json" \
        "nonotices=$(q "$BIN") --timeout 3s --poll 250ms --format json --close-buffer 0" \
        "bare=$(q "$BARE")")
    ip netns del "$NS"
    local with without
    with=$(awk -v c="${C[notices]:-}" -v p="${polls:-0}" 'BEGIN { if (c != "" && p > 0) printf "%.2f", c / p }')
    without=$(awk -v c="${C[nonotices]:-}" -v p="${polls:-0}" 'BEGIN { if (c != "" && p > 0) printf "%.2f", c / p }')
    TW_ROWS+="| $tw | ${polls:-n/a} | $(ms "$with") | $(ms "$without") | $(ratio "$with" "$without") | $(ms "${C[bare]:-}") |"$'\n'
}
if [[ -n $TW_SOCKETS ]]; then
    log "TIME_WAIT: $TW_SOCKETS sockets, ${RUNS}x"
    tw_case "$TW_SOCKETS"
fi

report() {
    echo "## tcpipstat dump benchmark"
    echo
    echo "$(uname -sr), $(nproc) CPUs; loopback connections (2 sockets each) in a private netns;"
    echo "median of $RUNS runs, commands alternated, stdout to /dev/null; CPU = user+sys."
    echo
    if [[ -n $CPU_ROWS ]]; then
        echo "| sockets | tcpipstat json CPU ms | ss -tin CPU ms | ratio | tcpipstat no-match CPU ms | bare dump CPU ms | ratio |"
        echo "|--:|--:|--:|--:|--:|--:|--:|"
        printf '%s' "$CPU_ROWS"
        echo
        echo "| sockets | json wall ms | ss wall ms | no-match wall ms | bare wall ms | json RSS MiB | ss RSS MiB | no-match RSS MiB | bare RSS MiB |"
        echo "|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
        printf '%s' "$WALL_ROWS"
    fi
    if [[ -n $POLL_ROWS ]]; then
        echo
        echo "Steady polling (poll 250 ms, median of $RUNS): CPU ms per poll with start-up (3 s run), and steady,"
        echo "i.e. (CPU of 9 s - CPU of 3 s) / (polls of 9 s - polls of 3 s), by tuple and with --index lport;"
        echo "against the bare dump once, and steady (24 dumps 250 ms apart, CPU / 24; the ratios' reference):"
        echo
        echo "| sockets | polls 3 s / 9 s | per poll with start-up ms | steady ms | steady lport ms | bare dump once ms | bare dump steady ms | steady ratio | lport ratio | peak RSS MiB | RSS bytes per socket |"
        echo "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
        printf '%s' "$POLL_ROWS"
    fi
    if [[ -n $CHURN_ROWS ]]; then
        echo
        echo "Churn (C): steady CPU ms per second, (CPU of a ${CHURN_SECONDS} s run - CPU of a ${CHURN_SHORT} s run) / $((CHURN_SECONDS - CHURN_SHORT)) s,"
        echo "while churn.py opens and closes RATE connections/s (poll 1 s, servers close 5 ms after the client;"
        echo "median of $RUNS; 'measured' is the namespace's ActiveOpens per second in the --precision --system run):"
        echo
        echo "| conn/s | measured conn/s | polling, --close-buffer 0 ms/s | polling ms/s | --precision ms/s | ratio | polling per 1k conn/s | precision over polling per 1k conn/s | events lost | undelivered |"
        echo "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
        printf '%s' "$CHURN_ROWS"
        echo
        echo "Unattributed residual with --system over one window (namespace MIB delta minus the sockets' deltas):"
        echo
        echo "| conn/s | mode | InSegs unattributed | OutSegs unattributed |"
        echo "|--:|--|--:|--:|"
        printf '%s' "$RESIDUAL_ROWS"
    fi
    if [[ -n $TW_ROWS ]]; then
        echo
        echo "TIME_WAIT (D): CPU ms per poll (3 s, poll 250 ms) with close notices (no TIME_WAIT asked for)"
        echo "and with --close-buffer 0 (every TIME_WAIT dumped); bare dump of all sockets for reference:"
        echo
        echo "| TIME_WAIT sockets | polls | with notices ms/poll | without ms/poll | ratio | bare dump ms |"
        echo "|--:|--:|--:|--:|--:|--:|"
        printf '%s' "$TW_ROWS"
    fi
    [[ -z $CHURN_NOTE ]] || printf '\n- %s\n' "$CHURN_NOTE"
    [[ -z $NOTES ]] || printf '\n%s' "$NOTES"
}
report
if [[ -n ${OUT:-} ]]; then report >"$OUT"; fi
