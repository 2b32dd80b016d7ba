#!/usr/bin/env python3
"""measure.py - owned by scripts/bench.sh: precise per-run CPU, wall and peak RSS.

Usage:  measure.py RUNS 'LABEL=CMD ARGS...' ['LABEL=CMD ARGS...' ...]

CMD is split like a shell word list (shlex), no shell is run. Each command is
run once untimed (warm-up), then RUNS timed rounds, alternating the commands
inside every round. stdout goes to /dev/null, stderr is kept. Per run it takes
user+sys CPU and peak RSS from wait4()'s rusage (microsecond precision; GNU
time's -f %U/%S/%e print only 10 ms steps, too coarse for small dumps) and
wall time from a monotonic clock around spawn+wait. Prints one line per label:
    LABEL ok|fail CPU_MS WALL_MS MAXRSS_KIB
with the medians over RUNS ("fail" if any run exited non-zero; then values
are "-"). Python 3.11 stdlib only.
"""
import os
import shlex
import statistics
import sys
import time


def run(argv):
    """Run argv once; return (exit_ok, cpu_ms, wall_ms, maxrss_kib)."""
    t0 = time.perf_counter_ns()
    pid = os.posix_spawnp(argv[0], argv, os.environ,
                          file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
    _, status, ru = os.wait4(pid, 0)
    wall = (time.perf_counter_ns() - t0) / 1e6
    return os.waitstatus_to_exitcode(status) == 0, (ru.ru_utime + ru.ru_stime) * 1e3, wall, ru.ru_maxrss


def main():
    runs, cmds = int(sys.argv[1]), [a.split("=", 1) for a in sys.argv[2:]]
    res = {label: [] for label, _ in cmds}
    for rnd in range(runs + 1):  # round 0 is the warm-up
        for label, cmd in cmds:
            r = run(shlex.split(cmd))
            if rnd:
                res[label].append(r)
    for label, rs in res.items():
        if all(r[0] for r in rs):
            med = [statistics.median(r[i] for r in rs) for i in (1, 2, 3)]
            print(f"{label} ok {med[0]:.2f} {med[1]:.2f} {med[2]:.0f}")
        else:
            print(f"{label} fail - - -")


if __name__ == "__main__":
    main()
