"""Code objects freed at start-up and their addresses reused.

site.py's module code object is freed once site has run; the user's function is
often allocated at the same address. A reader that trusts a cache keyed by
address names the user's hot function after site.py's <module>. `hot` runs for
--duration seconds from the first line of main, so nearly every sample must be
`hot` at the line recorded in the truth.
"""
import sys
import time

from _harness import parse_args, write_truth

LINES = {}


def hot(end):
    s = 0
    LINES["hot"] = sys._getframe().f_lineno + 1
    while time.perf_counter() < end: s += 1  # noqa: E701 -- the one hot line
    return s


def main():
    args = parse_args(__doc__.splitlines()[0])
    hot(time.perf_counter() + args.duration)
    write_truth(args.truth, {"lines": LINES, "file": __file__})


if __name__ == "__main__":
    main()
