"""Counts real-time signals (they queue, never merge) while burning CPU in Python.

Every signal sent must be counted, also while a profiler keeps stopping the
thread: a signal that arrives during a ptrace stop must be delivered when the
thread is resumed. The truth file holds the count, rewritten whenever it grows;
the sender waits for each count before the next signal (Python runs one handler
call for several signals that arrive before it looks, so they must not pile up).
"""
import signal
import time

from _harness import native_id, parse_args, write_truth

SIG = signal.SIGRTMIN + 1
count = 0


def on_signal(signum, frame):
    global count
    count += 1


def burn():
    acc = 0
    for i in range(2000):
        acc += i * i
    return acc


def main():
    args = parse_args(__doc__, duration=60.0)
    signal.signal(SIG, on_signal)
    written = -1
    end = time.perf_counter() + args.duration
    while time.perf_counter() < end:
        burn()
        if count != written:
            written = count
            write_truth(args.truth, {"tid": native_id(), "signal": int(SIG), "count": written})


if __name__ == "__main__":
    main()
