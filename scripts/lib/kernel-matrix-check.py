#!/usr/bin/env python3
"""kernel-matrix-check.py KERNEL MAIN_DIR FALLBACK_DIR

Checks what the guests of scripts/kernel-matrix.sh brought back (their /out)
and prints one `RESULT KERNEL CHECK PASS|FAIL DETAIL` line per check."""
import json
import os
import sys

kernel, main_dir, fb_dir = sys.argv[1:4]

# (laddr, lport, raddr, rport, client->server bytes) of connhelper's connections
ONCE = [("127.0.0.1", 40001, "127.0.0.1", 5001, 1000),
        ("127.0.0.1", 40002, "127.0.0.1", 5001, 20000),
        ("::1", 40003, "::1", 5002, 300)]
WINDOW = [("127.0.0.1", 40011, "127.0.0.1", 5011, 4321),
          ("::1", 40012, "::1", 5012, 1234)]


def result(check, ok, detail):
    detail = " ".join(str(detail).split())
    if len(detail) > 300:
        detail = detail[:297] + "..."
    print(f"RESULT {kernel} {check} {'PASS' if ok else 'FAIL'} {detail}")


def read(d, name):
    try:
        with open(os.path.join(d, name), errors="replace") as f:
            return f.read()
    except OSError:
        return None


def rc(d, name):
    s = read(d, name)
    try:
        return int(s.strip())
    except (AttributeError, ValueError):
        return None


def report(d, name):
    """The last JSON document with "groups" in the file, or an error string."""
    s = read(d, name)
    if s is None:
        return f"no {name} from the guest"
    dec, i, last = json.JSONDecoder(), 0, None
    try:
        while True:
            while i < len(s) and s[i].isspace():
                i += 1
            if i >= len(s):
                break
            doc, i = dec.raw_decode(s, i)
            if isinstance(doc, dict) and "groups" in doc:
                last = doc
    except ValueError as e:
        return f"{name} does not parse ({e}): {s[:120]!r}"
    return last if last is not None else f"{name} has no report: {s[:120]!r}"


def groups(rep):
    out = {}
    for g in rep.get("groups", []):
        k = g.get("key", {})
        out[(k.get("laddr"), k.get("lport"), k.get("raddr"), k.get("rport"))] = g
    return out


def counter(g, section, name):
    return (g or {}).get("counters", {}).get(section, {}).get(name, 0)


def sides(conns):
    """(tuple, role, bytes) for the client and the server side of each connection."""
    for la, lp, ra, rp, n in conns:
        yield (la, lp, ra, rp), "client", n
        yield (ra, rp, la, lp), "server", n


def tup(t):
    a = lambda addr, port: f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"
    return f"{a(t[0], t[1])}->{a(t[2], t[3])}"


def bytes_check(check, rep, conns):
    bad = []
    g = groups(rep)
    for t, role, n in sides(conns):
        key = "BytesSent" if role == "client" else "BytesReceived"
        got = counter(g.get(t), "Socket", key)
        if t not in g:
            bad.append(f"{tup(t)} missing")
        elif got != n:
            bad.append(f"{tup(t)} {key}={got} want {n}")
    if rep.get("notices"):
        bad.append(f"notices: {rep['notices']}")
    result(check, not bad, "; ".join(bad) or
           f"{len(conns) * 2} tuples exact (" + ", ".join(str(c[4]) for c in conns) + " bytes)")


def main():
    booted = read(main_dir, "uname.txt") is not None
    # --- once-bytes
    if not booted:
        for check in ("once-bytes", "window-opens", "window-bytes", "window-old", "error-exit"):
            result(check, False, "the guest (diag modules) gave no data; see the console log")
    else:
        rep, code = report(main_dir, "once.json"), rc(main_dir, "once.rc")
        if isinstance(rep, str) or code != 0:
            result("once-bytes", False, f"exit {code}; {rep if isinstance(rep, str) else ''} "
                   f"stderr: {read(main_dir, 'once.err')!r}")
        else:
            bytes_check("once-bytes", rep, ONCE)
        # --- window-*
        rep, code = report(main_dir, "window.json"), rc(main_dir, "window.rc")
        times = (read(main_dir, "times.txt") or "").split()
        if isinstance(rep, str) or code != 0:
            why = (f"exit {code}; {rep if isinstance(rep, str) else ''} "
                   f"stderr: {read(main_dir, 'window.err')!r}")
            for check in ("window-opens", "window-bytes", "window-old"):
                result(check, False, why)
        else:
            g, bad = groups(rep), []
            for t, role, _ in sides(WINDOW):
                want = {"ActiveOpens": 1 if role == "client" else 0,
                        "PassiveOpens": 1 if role == "server" else 0}
                if t not in g:
                    bad.append(f"{tup(t)} missing")
                    continue
                for name, w in want.items():
                    got = counter(g[t], "Tcp", name)
                    if got != w:
                        bad.append(f"{tup(t)} {name}={got} want {w}")
            if bad:
                bad.append("guest uptimes: " + " ".join(times))
            result("window-opens", not bad, "; ".join(bad) or
                   "ActiveOpens 1 on 2 client tuples, PassiveOpens 1 on 2 server tuples")
            bytes_check("window-bytes", rep, WINDOW)
            bad = []
            for t, role, _ in sides(ONCE):
                for sec, name in (("Tcp", "ActiveOpens"), ("Tcp", "PassiveOpens"),
                                  ("Socket", "BytesSent"), ("Socket", "BytesReceived")):
                    got = counter(g.get(t), sec, name)
                    if got:
                        bad.append(f"{tup(t)} {name}={got} want 0")
            result("window-old", not bad, "; ".join(bad) or
                   "6 idle pre-existing tuples without opens or bytes")
        # --- error-exit
        code, err = rc(main_dir, "bogus.rc"), read(main_dir, "bogus.err") or ""
        lines = err.splitlines()
        ok = code == 2 and len(lines) == 1 and lines[0].startswith("tcpipstat: error:")
        result("error-exit", ok, f"exit {code}, stderr {err.strip()[:150]!r}"
               + ("" if ok else f" ({len(lines)} lines)"))
    # --- fallback
    if read(fb_dir, "uname.txt") is None:
        result("fallback", False, "the guest (no diag modules) gave no data; see the console log")
    else:
        code, err, bad = rc(fb_dir, "fallback.rc"), read(fb_dir, "fallback.err") or "", []
        rep = report(fb_dir, "fallback.json")
        if code != 0:
            bad.append(f"exit {code}")
        if "/proc/net/tcp" not in err:
            bad.append(f"no /proc/net/tcp notice on stderr: {err.strip()[:150]!r}")
        if isinstance(rep, str):
            bad.append(rep)
        else:
            g = groups(rep)
            missing = [tup(t) for t, _, _ in sides(ONCE) if t not in g]
            if missing:
                bad.append("tuples missing: " + ", ".join(missing))
        modules = read(fb_dir, "modules.txt") or ""
        if "inet_diag" in modules:
            bad.append("inet_diag was loaded in the fallback guest")
        result("fallback", not bad, "; ".join(bad) or
               f"exit 0, notice {err.strip().splitlines()[0][:100]!r}, 6 tuples from /proc/net/tcp{{,6}}")


main()


# --- precision mode (prec-MODE-*) ---------------------------------------------
def groups_by_tuple(rep):
    return {(g["key"]["laddr"], g["key"]["lport"], g["key"]["raddr"], g["key"]["rport"]): g
            for g in rep.get("groups", [])}


def count(g, section, name):
    return (g or {}).get("counters", {}).get(section, {}).get(name, 0)


send_length_tracepoint = read(main_dir, "send-length-tracepoint") is not None
for i, mode in enumerate(("kprobe", "tracepoint", "auto")):
    base = 41100 + 1000 * i
    rep = report(main_dir, f"prec-{mode}.json")
    err = (read(main_dir, f"prec-{mode}.err") or "").strip()
    if isinstance(rep, str):
        for check in ("opens", "rsts", "lost", "source", "msgs"):
            result(f"prec-{mode}-{check}", False, f"{rep}; stderr: {err}")
        continue
    groups = groups_by_tuple(rep)
    prec = rep.get("precision", {})
    total = lambda name: sum(count(g, "Tcp", name) for g in groups.values())
    opens = (total("ActiveOpens"), total("PassiveOpens"))
    result(f"prec-{mode}-opens", opens == (21, 21),
           f"ActiveOpens, PassiveOpens = {opens} (want 21, 21); stderr: {err}")
    abort = base + 21
    client = groups.get(("127.0.0.1", abort, "127.0.0.1", base))
    server = groups.get(("127.0.0.1", base, "127.0.0.1", abort))
    rsts = (count(client, "Tcp", "OutRsts"), count(server, "Tcp", "InRsts"),
            total("OutRsts"), total("InRsts"))
    result(f"prec-{mode}-rsts", rsts == (1, 1, 1, 1),
           f"client OutRsts, server InRsts, total OutRsts, InRsts = {rsts} (want 1, 1, 1, 1)")
    lost = prec.get("events_lost")
    result(f"prec-{mode}-lost", lost == 0 and rc(main_dir, f"prec-{mode}.rc") == 0,
           f"events_lost {lost}, exit {rc(main_dir, f'prec-{mode}.rc')}")
    source = prec.get("sources", {}).get("ActiveOpens", "")
    want = "kprobe" if mode == "kprobe" else "tracepoint"
    result(f"prec-{mode}-source", source.startswith(want), f"ActiveOpens from {source!r}")
    msg_source = prec.get("sources", {}).get("MessagesSent", "")
    if mode == "tracepoint" and not send_length_tracepoint:
        result(f"prec-{mode}-msgs", msg_source == "",
               f"n/a: no sock:sock_send_length tracepoint on this kernel (auto uses kprobes); source {msg_source!r}")
        continue
    bad = []
    for port in range(base + 1, base + 22):
        g = groups.get(("127.0.0.1", port, "127.0.0.1", base))
        got = (count(g, "Socket", "MessagesSent"), count(g, "Socket", "MessageBytesSent"))
        if got != (1, 700):
            bad.append((port, got))
    result(f"prec-{mode}-msgs", not bad,
           f"MessagesSent/MessageBytesSent per client from {msg_source!r}: " +
           (f"wrong: {bad[:4]}" if bad else "21 x (1, 700)"))


# --- close notices in plain polling mode (closes-*) ---------------------------
def check_closes():
    base = 44100
    rep = report(main_dir, "closes.json")
    err = (read(main_dir, "closes.err") or "").strip()
    if isinstance(rep, str):
        for check in ("opens", "bytes", "resets", "lost"):
            result(f"closes-{check}", False, f"{rep}; stderr: {err}")
        return
    groups = groups_by_tuple(rep)
    # The aborting client's notice lost the peer port the filter tests:
    # with no poll having seen it, it is counted apart, in no group.
    unplaced = {"counters": (rep.get("unplaced_by_filters") or {}).get("counters", {})}
    total = lambda name: (sum(count(g, "Tcp", name) for g in groups.values())
                          + count(unplaced, "Tcp", name))
    opens = (total("ActiveOpens"), total("PassiveOpens"))
    result("closes-opens", opens == (21, 21),
           f"ActiveOpens, PassiveOpens = {opens} (want 21, 21, with those no filter can place); stderr: {err}")
    bad = []
    for port in range(base + 1, base + 21):
        client = groups.get(("127.0.0.1", port, "127.0.0.1", base))
        server = groups.get(("127.0.0.1", base, "127.0.0.1", port))
        got = (count(client, "Socket", "BytesSent"), count(server, "Socket", "BytesReceived"))
        if got != (700, 700):
            bad.append((port, got))
    result("closes-bytes", not bad,
           "BytesSent/BytesReceived per connection: " + (f"wrong: {bad[:4]}" if bad else "20 x (700, 700)"))
    graceful_resets = sum(
        count(g, "Tcp", "EstabResets") for (la, lp, ra, rp), g in groups.items()
        if base + 1 <= lp <= base + 20 or base + 1 <= rp <= base + 20)
    # The aborted client's notice lost its peer port: it is keyed without it.
    aborted = sum(count(g, "Tcp", "EstabResets") for (la, lp, ra, rp), g in groups.items()
                  if lp == base + 21) + count(unplaced, "Tcp", "EstabResets")
    result("closes-resets", (graceful_resets, aborted) == (0, 1),
           f"EstabResets on graceful ends, on the aborting client = {(graceful_resets, aborted)} (want 0, 1)")
    lost = rep.get("closes_lost")
    result("closes-lost", lost == 0 and rc(main_dir, "closes.rc") == 0,
           f"closes_lost {lost}, exit {rc(main_dir, 'closes.rc')}")


# --- the seed's last counters (seed-*) ----------------------------------------
def check_seed():
    rep = report(main_dir, "seed.json")
    err = (read(main_dir, "seed.err") or "").strip()
    if isinstance(rep, str):
        for check in ("overflows", "delacks", "fails"):
            result(f"seed-{check}", False, f"{rep}; stderr: {err}")
        return
    groups = groups_by_tuple(rep)
    deltas = (rep.get("system") or {}).get("deltas", {})
    listener = groups.get(("127.0.0.1", 45100, "0.0.0.0", 0))
    ours = count(listener, "TcpExt", "ListenOverflows")
    mib = deltas.get("TcpExt:ListenOverflows")
    result("seed-overflows", listener is not None and mib is not None and mib > 0 and ours == mib,
           f"listener ListenOverflows {ours}, namespace {mib}; stderr: {err}")
    delacks = sum(count(g, "TcpExt", "DelayedACKs") for g in groups.values())
    mib = deltas.get("TcpExt:DelayedACKs")
    source = (rep.get("precision") or {}).get("sources", {}).get("DelayedACKs", "")
    ok = mib is not None and mib >= 10 and abs(delacks - mib) * 10 <= mib
    result("seed-delacks", ok and rc(main_dir, "seed.rc") == 0,
           f"sockets' DelayedACKs {delacks}, namespace {mib} (within 10%), from {source!r}; "
           f"exit {rc(main_dir, 'seed.rc')}; stderr: {err}")
    # The overflow's clients that never got through were closed by the
    # helper: no failed attempt to the kernel (only tcp_done counts one).
    residuals = (rep.get("system") or {}).get("unattributed", {})
    fails = residuals.get("AttemptFails") or {}
    opens = residuals.get("ActiveOpens") or {}
    synretrans = residuals.get("TCPSynRetrans") or {}
    ok = fails.get("system") is not None and fails.get("unattributed") == 0
    result("seed-fails", ok and opens.get("unattributed") == 0,
           f"AttemptFails sockets {fails.get('sockets')}, namespace {fails.get('system')}; "
           f"ActiveOpens sockets {opens.get('sockets')}, namespace {opens.get('system')}; "
           f"TCPSynRetrans sockets {synretrans.get('sockets')}, namespace {synretrans.get('system')}")


def check_udp():
    rep = report(main_dir, "udp.json")
    err = (read(main_dir, "udp.err") or "").strip()
    code = rc(main_dir, "udp.rc")
    result("udp-rc", code == 0, f"exit {code}; stderr: {err}")
    if isinstance(rep, str):
        result("udp-drops", False, f"{rep}; stderr: {err}")
        return
    udp = rep.get("udp") or {}
    receiver = [g for g in udp.get("groups", [])
                if (g.get("key") or {}).get("lport") == 46100]
    drops = sum(g.get("RcvDrops") or 0 for g in receiver)
    mib = (udp.get("system") or {}).get("Udp") or {}
    rcvbuf, inerr = mib.get("RcvbufErrors") or {}, mib.get("InErrors") or {}
    ok = (receiver and drops > 0 and rcvbuf.get("system") == drops
          and inerr.get("system") == drops and inerr.get("unattributed") == 0)
    result("udp-drops", bool(ok),
           f"receiver RcvDrops {drops}, namespace RcvbufErrors {rcvbuf.get('system')}, "
           f"InErrors {inerr.get('system')} (unattributed {inerr.get('unattributed')}); "
           f"{read(main_dir, 'udpflood.log')!r}; stderr: {err}")


def check_udp_precision():
    rep = report(main_dir, "udpprec.json")
    err = (read(main_dir, "udpprec.err") or "").strip()
    log = read(main_dir, "udprate.log") or ""
    code = rc(main_dir, "udpprec.rc")
    checks = ("in", "out", "rcvbuf", "noports")
    if isinstance(rep, str):
        result("udpprec-rc", False, f"exit {code}; {rep}; stderr: {err}")
        for c in checks:
            result(f"udpprec-{c}", False, rep)
        return
    udp = rep.get("udp") or {}
    prec = udp.get("precision") or {}
    lost = prec.get("events_lost_since_start")
    result("udpprec-rc", code == 0 and lost == 0, f"exit {code}, events lost {lost}; stderr: {err}")
    sources, missing = prec.get("sources") or {}, " ".join(prec.get("missing") or [])

    def told(counter):
        return any(counter in k for k in sources)

    groups = udp.get("groups", [])

    def events(port):
        return [g.get("events") or {} for g in groups if (g.get("key") or {}).get("lport") == port]

    def numbers(text, word):
        """The whole numbers of connhelper's line naming `word`."""
        for line in text.splitlines():
            if word in line:
                return [int(p) for p in line.split() if p.isdigit()]
        return []

    rate = numbers(log, "udprate")          # sent, read
    sent_read = (rate[0], rate[1]) if len(rate) >= 2 else (None, None)
    flood = numbers(log, "udpflood")        # sent of n
    noport = numbers(log, "udpnoport")      # sent of n
    detail = f"log {log!r}; missing {missing!r}"
    # -in
    if told("InDatagrams"):
        got = events(46200)
        dgrams = sum(e.get("InDatagrams") or 0 for e in got)
        octets = sum(e.get("InBytes") or 0 for e in got)
        result("udpprec-in", got and dgrams == sent_read[1] and octets == 200 * dgrams,
               f"InDatagrams {dgrams}, InBytes {octets}, read {sent_read[1]}; {detail}")
    else:
        result("udpprec-in", "InDatagrams" in missing, f"no source; {detail}")
    # -out
    if told("OutDatagrams"):
        # Calls of a socket that lived between two polls cannot be named
        # where its calls are named by inode (its notice has none): they
        # are counted as not placed, and must be.
        out = sum((g.get("events") or {}).get("OutDatagrams") or 0 for g in groups)
        unplaced = prec.get("unplaced_messages") or 0
        want = (sent_read[0] or 0) + (flood[0] if flood else 0) + (noport[0] if noport else 0)
        result("udpprec-out", out + unplaced == want and want > 0,
               f"OutDatagrams {out} + not placed {unplaced}, sent {want}; {detail}")
    else:
        result("udpprec-out", "OutDatagrams" in missing, f"no source; {detail}")
    # -rcvbuf
    mib = (udp.get("system") or {}).get("Udp") or {}
    rcvbuf = mib.get("RcvbufErrors") or {}
    if told("RcvbufErrors"):
        errs = sum(e.get("RcvbufErrors") or 0 for e in events(46300))
        result("udpprec-rcvbuf", errs > 0 and errs == rcvbuf.get("system"),
               f"RcvbufErrors {errs}, namespace {rcvbuf.get('system')}; {detail}")
    else:
        result("udpprec-rcvbuf", "RcvbufErrors" in missing, f"no source; {detail}")
    # -noports
    noports = mib.get("NoPorts") or {}
    want = noport[0] if noport else None
    if told("NoPorts"):
        ok = noports.get("system") == want and noports.get("unattributed") == 0
        by_port = prec.get("no_ports") or []
        if told("NoPorts by port"):
            ok = ok and any(p.get("lport") == 46400 and p.get("sender_port") == 46401
                            and p.get("datagrams") == want for p in by_port)
        result("udpprec-noports", ok, f"NoPorts {noports}, by port {by_port}, sent {want}; {detail}")
    else:
        result("udpprec-noports", "NoPorts" in missing, f"no source, namespace {noports}; {detail}")


check_closes()
check_seed()
check_udp()
check_udp_precision()
