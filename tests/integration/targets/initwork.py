"""Work done inside __init__ of a class instantiated in a loop.

On 3.13 the instantiation is specialized (CALL_ALLOC_AND_ENTER_INIT): the caller's frame,
then a shim frame waiting for __init__ to return, then __init__. A profiler must show
run -> Parser.__init__ -> crunch, each at its call line (a regression once cut these
stacks at run, the shim read as a running frame).
"""
import sys
import time

from _harness import parse_args, write_truth

LINES = {}


def crunch(n):
    s = 0
    for i in range(n):
        s += i * i
    return s


class Parser:
    def __init__(self, n):
        LINES.setdefault("init", sys._getframe().f_lineno + 1)
        self.total = crunch(n)


def run(end):
    made = 0
    LINES["run"] = sys._getframe().f_lineno + 2
    while time.perf_counter() < end:
        Parser(3000)
        made += 1
    return made


def main():
    args = parse_args(__doc__.splitlines()[0])
    made = run(time.perf_counter() + args.duration)
    write_truth(args.truth, {"lines": LINES, "made": made})


if __name__ == "__main__":
    main()
