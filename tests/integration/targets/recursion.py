"""Deep recursion: dive() calls itself --depth times, then spin_at_bottom burns CPU.

The truth (written once the bottom is reached) holds the real Python stack
depth there, so tests know the stack is deeper than crux's depth cap.
"""
import sys
import time

from _harness import parse_args, write_truth


def stack_depth():
    depth = 0
    frame = sys._getframe(1)
    while frame is not None:
        depth += 1
        frame = frame.f_back
    return depth


def spin_at_bottom(truth, end):
    write_truth(truth, {"depth": stack_depth(), "leaf": "spin_at_bottom"})
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def dive(n, truth, end):
    if n > 0:
        return dive(n - 1, truth, end)
    return spin_at_bottom(truth, end)


def add_arguments(parser):
    parser.add_argument("--depth", type=int, default=5000)


def main():
    args = parse_args(__doc__.splitlines()[0], add_arguments)
    sys.setrecursionlimit(args.depth + 1000)
    dive(args.depth, args.truth, time.perf_counter() + args.duration)


if __name__ == "__main__":
    main()
