#!/usr/bin/env python3
"""mixed-check.py - run scripts/mixed.py under tcpipstat and compare (root).

Usage:  mixed-check.py MODE [--runs R] [--connections N] [--bin PATH] [--seed S]
                       [--keep DIR]

MODE is one of
  precision  tcpipstat --precision --index tuple --system --format json --timeout T
  polling    tcpipstat --index tuple --system --format json --timeout T
  onclose    tcpipstat --precision --onclose --format json --timeout T

Each run makes a private network namespace, starts tcpipstat in it, runs the
workload there once tcpipstat is up, and reads the namespace's MIB at the
end (a new namespace starts from zero, so the MIB is the run's delta). It
prints one line per run: the kernel's opens, fails and resets against the sum
of tcpipstat's sockets, how many sockets carry more than one open, and how
many non-aborted sockets' BytesReceived differ from what the workload's
applications read (each end: the client's is the bytes "down", the server's
the bytes "up"; BytesReceived is the byte counter that does not count the
SYN). With --system (precision, polling) it prints RetransSegs too, the
sockets' sum against the namespace's (loopback under load sends tail loss
probes); precision mode must match it. Exit status 1 when any run differs. --keep DIR keeps each run's
tcpipstat output and the workload's truth there.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OPENS = ["ActiveOpens", "PassiveOpens", "AttemptFails", "EstabResets"]
ARGS = {
    "precision": ["--precision", "--index", "tuple", "--system", "--format", "json"],
    "polling": ["--index", "tuple", "--system", "--format", "json"],
    "onclose": ["--precision", "--onclose", "--format", "json"],
}


def namespace_mib(ns):
    out = subprocess.run(["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    tcp = [line.split()[1:] for line in out if line.startswith("Tcp:")]
    return {k: int(v) for k, v in zip(tcp[0], tcp[1])}


def per_socket(records):
    """Counters summed per tuple over every report that lists groups."""
    sockets = {}
    for r in records:
        for g in r.get("groups", []):
            k = g["key"]
            key = (k["laddr"], k["lport"], k["raddr"], k["rport"])
            acc = sockets.setdefault(key, {})
            for section in g.get("counters", {}).values():
                for name, value in section.items():
                    acc[name] = acc.get(name, 0) + value
    return sockets


def one_run(a, i, tmp):
    ns = f"tis-mixed-{os.getpid()}-{i}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        window = a.spread + a.max_life + 6
        out_path = os.path.join(tmp, f"{a.mode}-{i}.json")
        err_path = os.path.join(tmp, f"{a.mode}-{i}.err")
        with open(out_path, "w") as out, open(err_path, "w") as err:
            tool = subprocess.Popen(["ip", "netns", "exec", ns, a.bin] + ARGS[a.mode]
                                    + ["--timeout", f"{window}s"], stdout=out, stderr=err)
            time.sleep(1.5)  # its probes and first poll
            seed = [] if a.seed is None else ["--seed", str(a.seed + i)]
            work = subprocess.run(["ip", "netns", "exec", ns, sys.executable,
                                   os.path.join(HERE, "mixed.py"), "--connections",
                                   str(a.connections), "--spread", str(a.spread),
                                   "--max-life", str(a.max_life)] + seed,
                                  capture_output=True, text=True)
            mib = namespace_mib(ns)
            tool.wait(timeout=window + 30)
        truth = json.loads(work.stdout)
        with open(os.path.join(tmp, f"{a.mode}-{i}.truth.json"), "w") as f:
            json.dump(truth, f)
        records = [json.loads(line) for line in open(out_path) if line.strip()]
        stderr = open(err_path).read()
    finally:
        subprocess.run(["ip", "netns", "del", ns])
    sockets = per_socket(records)
    totals = {name: sum(s.get(name, 0) for s in sockets.values()) for name in OPENS}
    lost = sum((r.get("precision") or {}).get("events_lost", 0) for r in records
               if r.get("type") != "close") or max(
        [(r.get("precision") or {}).get("events_lost", 0) for r in records] or [0])
    # A tuple can serve several lives (a client port taken again while the
    # server's end of the last life sits in TIME_WAIT): truth is per tuple.
    lives = {}
    for c in truth["connections"]:
        if c["lport"] is None:
            continue
        client = (c["laddr"], c["lport"], c["raddr"], c["rport"])
        server = (c["raddr"], c["rport"], c["laddr"], c["lport"])
        lives.setdefault(client, []).append((c, c["down"], "client"))
        if not c["refused"]:
            lives.setdefault(server, []).append((c, c["up"], "server"))
    # An abort's notice lost its peer port (key ... :0): no tuple to judge.
    double_opens = sum(1 for key, s in sockets.items()
                       if key[3] != 0 and s.get("ActiveOpens", 0) + s.get("PassiveOpens", 0)
                       > len(lives.get(key, [])))
    checked, wrong, examples = 0, 0, []
    for key, ends in lives.items():
        if any(c["aborted"] or c["refused"] for c, _, _ in ends):
            continue
        checked += 1
        want = sum(b for _, b, _ in ends)
        got = sockets.get(key, {}).get("BytesReceived", 0)
        if got != want:
            wrong += 1
            if len(examples) < 3:
                c, _, side = ends[0]
                examples.append(f"{c['end']} {side} {got} for {want}")
    # Segments sent again (loopback's tail loss probes, under load): the
    # sockets' sum against the namespace's, over the same window.
    retrans = next((r["system"]["unattributed"].get("RetransSegs") for r in records
                    if (r.get("system") or {}).get("unattributed")), None)
    retrans_off = retrans is not None and retrans["unattributed"] != 0
    differs = (any(totals[n] != mib[n] for n in OPENS) or wrong or double_opens
               or (retrans_off and a.mode == "precision"))
    line = "  ".join(f"{n} {totals[n]}/{mib[n]}" for n in OPENS)
    if retrans is not None:
        line += f"  RetransSegs {retrans['sockets']}/{retrans['system']}"

    print(f"{a.mode} run {i}: {line}  (tool/kernel)  sockets with more opens than lives {double_opens}  "
          f"BytesReceived wrong {wrong}/{checked}  events lost {lost}  "
          f"workload errors {len(truth['errors'])}"
          + (f"  e.g. {'; '.join(examples)}" if examples else ""), flush=True)
    if truth["errors"] or work.returncode:
        print("  workload: " + work.stderr.strip().replace("\n", "\n  "), flush=True)
    if "error" in stderr:
        print("  tcpipstat: " + stderr.strip(), flush=True)
    return not differs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=sorted(ARGS))
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--connections", type=int, default=500)
    ap.add_argument("--spread", type=float, default=3.0)
    ap.add_argument("--max-life", type=float, default=3.0)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "target", "release", "tcpipstat"))
    ap.add_argument("--keep", help="directory to keep each run's output in")
    a = ap.parse_args()
    tmp = a.keep or tempfile.mkdtemp(prefix="mixed-check-")
    os.makedirs(tmp, exist_ok=True)
    ok = all([one_run(a, i, tmp) for i in range(a.runs)])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
