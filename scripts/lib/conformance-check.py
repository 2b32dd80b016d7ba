#!/usr/bin/env python3
"""Judges packetdrill conformance results (scripts/conformance.sh).

usage: conformance-check.py [--failed-out FILE] [--known DEFECTS.tsv] ALLOWED.tsv MODE=RESULTS.jsonl ...

RESULTS.jsonl is run-packetdrill.py's output: one JSON object per script
with `differs` (counter -> {namespace, sockets}) or `error`, then a SUMMARY
line. ALLOWED.tsv has one line per allowance, tab-separated:
    mode  script-glob  counters  class  reason
mode is poll, precision or both; counters a comma-separated list. A
difference is allowed only where the namespace counted more than the
sockets (the kernel counted it on a path no socket owns), and never for the
counters that name a connection's life (opens, fails, resets).

DEFECTS.tsv lists tcpipstat's own open miscounts, tab-separated:
    mode  script-glob  counters  what-is-wrong
A difference listed there is said KNOWN-DEFECT and does not fail the run
(it is no kernel's reason, and stays in the summary until it is fixed);
an entry whose script no longer differs on it is said to be stale.
Several RESULTS files of one mode (a first run, then reruns of the scripts
that failed) are read in order: a script's last result counts, and one that
failed before and passes now is said FLAKY. Prints RESULT lines and
`conformance: N passed, M failed`; exit 1 on any failure or a malformed
allow-list. --failed-out writes `mode<TAB>script` per failure.
"""
import fnmatch, json, sys

NEVER_ALLOWED = {"ActiveOpens", "PassiveOpens", "AttemptFails", "EstabResets"}
# cleared: segments a socket counted before tcp_disconnect zeroed its
# counters (a child its listener's close reset before accept), when no poll
# saw them first: the notice carries zeros, and the kernel keeps no record.
CLASSES = {"syn-to-listener", "time-wait", "no-socket", "request-socket", "cleared"}


def read_rows(path, fields):
    """(line number, [mode, script, {counters}, ...rest]) per row of a
    tab-separated list whose columns are `fields`; exits on a malformed one."""
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            parts = [p.strip() for p in line.split("\t")]
            if len(parts) != len(fields) or not all(parts):
                sys.exit(f"{path}:{number}: want {len(fields)} tab-separated fields "
                         f"({', '.join(fields)}): {line!r}")
            if parts[0] not in ("poll", "precision", "both"):
                sys.exit(f"{path}:{number}: mode {parts[0]!r} is not poll, precision or both")
            parts[2] = set(parts[2].split(","))
            yield number, parts


def load_allowed(path):
    allowed = []
    for number, row in read_rows(path, ("mode", "script", "counters", "class", "reason")):
        counters, klass = row[2], row[3]
        if counters & NEVER_ALLOWED:
            sys.exit(f"{path}:{number}: {sorted(counters & NEVER_ALLOWED)} must be exact, "
                     "never allowed")
        if klass not in CLASSES:
            sys.exit(f"{path}:{number}: class {klass!r} is not one of {sorted(CLASSES)}")
        allowed.append(tuple(row))
    return allowed


def load_known(path):
    fields = ("mode", "script", "counters", "what is wrong")
    return [tuple(row) for _, row in read_rows(path, fields)]


def known_defect(known, mode, script, counter):
    for k_mode, glob, counters, what in known:
        if k_mode in (mode, "both") and fnmatch.fnmatchcase(script, glob) and counter in counters:
            return what
    return None


def allowance(allowed, mode, script, counter):
    for a_mode, glob, counters, klass, _ in allowed:
        if a_mode in (mode, "both") and fnmatch.fnmatchcase(script, glob) and counter in counters:
            return klass
    return None


def judge(allowed, known, mode, row):
    """(passed, detail) of one script's result."""
    if "error" in row:
        return False, row["error"]
    bad, classes, defects = [], [], []
    for counter, v in sorted(row.get("differs", {}).items()):
        klass = allowance(allowed, mode, row["script"], counter)
        shown = f"{counter} namespace {v['namespace']} sockets {v['sockets']}"
        if klass and v["namespace"] > v["sockets"]:
            classes.append(f"{shown} ({klass})")
        elif known_defect(known, mode, row["script"], counter):
            defects.append(shown)
        else:
            bad.append(shown)
    if bad:
        return False, "; ".join(bad)
    if defects:
        return True, "KNOWN-DEFECT " + "; ".join(defects + classes)
    return True, ("ALLOWED " + "; ".join(classes)) if classes else "PASS"


def main():
    args = sys.argv[1:]
    failed_out = None
    known = []
    while args[:1] in (["--failed-out"], ["--known"]):
        if args[0] == "--failed-out":
            failed_out = args[1]
        else:
            known = load_known(args[1])
        args = args[2:]
    if len(args) < 2:
        sys.exit(__doc__)
    allowed = load_allowed(args[0])
    # (mode, script) -> list of (passed, detail), in run order.
    verdicts = {}
    for arg in args[1:]:
        mode, _, path = arg.partition("=")
        rows = []
        with open(path) as f:
            for line in f:
                if line.startswith("{"):
                    rows.append(json.loads(line))
        if not rows:
            verdicts.setdefault((mode, "-"), []).append(
                (False, f"the runner reported no script ({path})"))
        for row in rows:
            verdicts.setdefault((mode, row["script"]), []).append(
                judge(allowed, known, mode, row))
    passed = failed = defective = 0
    failures = []
    for (mode, script), runs in verdicts.items():
        ok, detail = runs[-1]
        defective += detail.startswith("KNOWN-DEFECT")
        if ok:
            if len(runs) > 1:
                earlier = "; ".join(d for good, d in runs[:-1] if not good)
                detail = f"FLAKY {detail} (an earlier run: {earlier})"
            print(f"RESULT {mode} {script} {detail}")
            passed += 1
        else:
            print(f"RESULT {mode} {script} FAIL {detail}")
            failed += 1
            failures.append(f"{mode}\t{script}")
    if failed_out:
        with open(failed_out, "w") as f:
            f.write("".join(line + "\n" for line in failures))
    for k_mode, glob, counters, what in known:
        played = any(
            k_mode in (mode, "both") and fnmatch.fnmatchcase(script, glob)
            for mode, script in verdicts)
        if not played:
            continue  # a run of some scripts says nothing of the others
        still = any(
            d.startswith("KNOWN-DEFECT") and any(c in d for c in counters)
            for (mode, script), runs in verdicts.items()
            for _, d in runs[-1:]
            if k_mode in (mode, "both") and fnmatch.fnmatchcase(script, glob))
        if not still:
            print(f"NOTE stale known defect, now exact: {k_mode} {glob} {sorted(counters)}")
    print(f"conformance: {defective} scripts pass only with a known tcpipstat defect listed")
    print(f"conformance: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
