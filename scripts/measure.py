#!/usr/bin/env python3
"""measure.py - owned by scripts/bench.sh: alternate commands, report medians.

Usage:  measure.py RUSAGE_RUN RUNS 'LABEL=CMD ARGS...' ['LABEL=CMD ARGS...' ...]

RUSAGE_RUN is the compiled scripts/rusage-run.c; every run goes through it
(stdout to /dev/null, stderr kept). CMD is split like shell words (shlex), no
shell is run. Each command runs once untimed (warm-up), then RUNS rounds, the
commands alternating inside every round. Prints one line per label:
    LABEL ok|fail CPU_MS WALL_MS MAXRSS_KIB
the medians over RUNS of user+sys CPU, wall time and peak RSS ("fail" and "-"
if any timed run exited non-zero). Python 3.11 stdlib only.
"""
import shlex
import statistics
import subprocess
import sys


def run(runner, argv):
    """Run argv once through rusage-run; return (ok, cpu_ms, wall_ms, maxrss_kib)."""
    out = subprocess.run([runner, *argv], stdout=subprocess.PIPE, check=True, text=True).stdout
    code, cpu_us, wall_us, rss = (int(x) for x in out.split())
    return code == 0, cpu_us / 1e3, wall_us / 1e3, rss


def main():
    runner, runs = sys.argv[1], int(sys.argv[2])
    cmds = [arg.split("=", 1) for arg in sys.argv[3:]]
    res = {label: [] for label, _ in cmds}
    for rnd in range(runs + 1):  # round 0 is the warm-up
        for label, cmd in cmds:
            r = run(runner, shlex.split(cmd))
            if rnd:
                res[label].append(r)
    for label, rs in res.items():
        if all(r[0] for r in rs):
            cpu, wall, rss = (statistics.median(r[i] for r in rs) for i in (1, 2, 3))
            print(f"{label} ok {cpu:.2f} {wall:.2f} {rss:.0f}")
        else:
            print(f"{label} fail - - -")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
