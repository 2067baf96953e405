"""Fast calls: callers that do nothing call callees that do the work, a few microseconds each.

use_prop reads a property (3.11 runs its getter through C, in a nested eval loop;
3.12+ pushes it inline) and use_item subscripts (__getitem__, inlined on 3.11+).
Each caller is one line and returns what its callee computed, so nearly every
sample's leaf must be Box.total, Box.__getitem__ or main's loop, and hardly any
the callers. The calls are shorter than a profiler's read of the stack: a reader
that drops or cuts the stacks it cannot prove shows the callers instead.
"""
import time

from _harness import parse_args, write_truth


class Box:
    def __init__(self):
        self.v = list(range(50))

    @property
    def total(self):
        s = 0
        for x in self.v:
            s += x
        return s

    def __getitem__(self, i):
        s = 0
        for x in self.v:
            s += x * i
        return s


def use_prop(b):
    return b.total


def use_item(b):
    return b[3]


def main():
    args = parse_args(__doc__.splitlines()[0])
    b = Box()
    calls = 0
    end = time.time() + args.duration
    while time.time() < end:
        use_prop(b)
        use_item(b)
        calls += 2
    write_truth(args.truth, {"callers": ["use_prop", "use_item"],
                             "callees": ["Box.total", "Box.__getitem__"], "calls": calls})


main()
