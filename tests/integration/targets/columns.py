"""Two calls on one line: a known column and a known share for each.

main calls slow_a and slow_b from the same line, spinning about 1:3 of the
time between them; the truth holds that line, the 1-based column where each
call starts in the source text (CPython's col_offset + 1), and the time each
function measured for itself, so that a profiler's per-column split of the
caller can be checked exactly (columns) and against the truth (shares).
"""
import sys
import time

from _harness import parse_args, write_truth

SPENT = {"slow_a": 0.0, "slow_b": 0.0}


def spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def slow_a():
    t = time.perf_counter()
    spin(0.005)
    SPENT["slow_a"] += time.perf_counter() - t
    return 1


def slow_b():
    t = time.perf_counter()
    spin(0.015)
    SPENT["slow_b"] += time.perf_counter() - t
    return 2


def run(duration):
    stop = time.perf_counter() + duration
    total = 0
    line = sys._getframe().f_lineno + 2
    while time.perf_counter() < stop:
        total += slow_a() + slow_b()  # the line with two calls
    return line, total


def main():
    args = parse_args(__doc__.splitlines()[0])
    line, total = run(args.duration)
    with open(__file__, encoding="utf-8") as f:
        text = f.read().splitlines()[line - 1]
    write_truth(args.truth, {
        "line": line,
        "cols": {"slow_a": text.index("slow_a()") + 1, "slow_b": text.index("slow_b()") + 1},
        "spent": SPENT,
        "total": total,
        "file": run.__code__.co_filename,
    })


if __name__ == "__main__":
    main()
