#!/usr/bin/env python3
"""Judges packetdrill conformance results (scripts/conformance.sh).

usage: conformance-check.py ALLOWED.tsv MODE=RESULTS.jsonl ...

RESULTS.jsonl is run-packetdrill.py's output: one JSON object per script
with `differs` (counter -> {namespace, sockets}) or `error`, then a SUMMARY
line. ALLOWED.tsv has one line per allowance, tab-separated:
    mode  script-glob  counters  class  reason
mode is poll, precision or both; counters a comma-separated list. A
difference is allowed only where the namespace counted more than the
sockets (the kernel counted it on a path no socket owns), and never for the
counters that name a connection's life (opens, fails, resets).
Prints RESULT lines and `conformance: N passed, M failed`; exit 1 on any
failure or a malformed allow-list.
"""
import fnmatch, json, sys

NEVER_ALLOWED = {"ActiveOpens", "PassiveOpens", "AttemptFails", "EstabResets"}
CLASSES = {"syn-to-listener", "time-wait", "no-socket", "request-socket"}


def load_allowed(path):
    allowed = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 5 or not all(p.strip() for p in parts):
                sys.exit(f"{path}:{number}: want 5 tab-separated fields "
                         f"(mode, script, counters, class, reason): {line!r}")
            mode, script, counters, klass, reason = (p.strip() for p in parts)
            counters = set(counters.split(","))
            if mode not in ("poll", "precision", "both"):
                sys.exit(f"{path}:{number}: mode {mode!r} is not poll, precision or both")
            if counters & NEVER_ALLOWED:
                sys.exit(f"{path}:{number}: {sorted(counters & NEVER_ALLOWED)} must be exact, "
                         "never allowed")
            if klass not in CLASSES:
                sys.exit(f"{path}:{number}: class {klass!r} is not one of {sorted(CLASSES)}")
            allowed.append((mode, script, counters, klass, reason))
    return allowed


def allowance(allowed, mode, script, counter):
    for a_mode, glob, counters, klass, _ in allowed:
        if a_mode in (mode, "both") and fnmatch.fnmatchcase(script, glob) and counter in counters:
            return klass
    return None


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    allowed = load_allowed(sys.argv[1])
    passed = failed = 0
    for arg in sys.argv[2:]:
        mode, _, path = arg.partition("=")
        rows = []
        with open(path) as f:
            for line in f:
                if line.startswith("{"):
                    rows.append(json.loads(line))
        if not rows:
            print(f"RESULT {mode} - FAIL the runner reported no script ({path})")
            failed += 1
            continue
        for row in rows:
            script = row["script"]
            if "error" in row:
                print(f"RESULT {mode} {script} FAIL {row['error']}")
                failed += 1
                continue
            bad, classes = [], []
            for counter, v in sorted(row.get("differs", {}).items()):
                klass = allowance(allowed, mode, script, counter)
                shown = f"{counter} namespace {v['namespace']} sockets {v['sockets']}"
                if klass and v["namespace"] > v["sockets"]:
                    classes.append(f"{shown} ({klass})")
                else:
                    bad.append(shown)
            if bad:
                print(f"RESULT {mode} {script} FAIL {'; '.join(bad)}")
                failed += 1
            else:
                verdict = "ALLOWED " + "; ".join(classes) if classes else "PASS"
                print(f"RESULT {mode} {script} {verdict}")
                passed += 1
    print(f"conformance: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
