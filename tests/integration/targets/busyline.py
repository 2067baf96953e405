"""One busy loop on one known line, called from a known line.

hot_loop spins on a single line (only C calls, so its frame is the leaf) for
--duration seconds; the truth holds that line and the line of the call in
run_hot, so a profiler's leaf line and call-site line can be checked exactly.
"""
import sys
import time

from _harness import parse_args, write_truth

LINES = {}


def hot_loop(end):
    n = 0
    LINES["hot_loop"] = sys._getframe().f_lineno + 1
    while time.perf_counter() < end: n += 1  # noqa: E701 -- the one hot line
    return n


def run_hot(duration):
    LINES["run_hot"] = sys._getframe().f_lineno + 1
    return hot_loop(time.perf_counter() + duration)


def main():
    args = parse_args(__doc__.splitlines()[0])
    iterations = run_hot(args.duration)
    write_truth(args.truth, {"lines": LINES, "iterations": iterations,
                             "file": hot_loop.__code__.co_filename})


if __name__ == "__main__":
    main()
