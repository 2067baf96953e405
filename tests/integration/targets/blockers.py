"""Threads parked at known lines, for checking the line numbers of a stack dump.

Each thread records, on the line just before, the line number where it then
blocks: on a Lock.acquire (the blocking call is C, so the frame is the leaf),
on an Event.wait (our frame is the caller of threading.py's frames) or in
time.sleep; one more thread spins on a one-line loop. Once every thread is in
place the truth {tid: {function, line}} is written; threads stay put for
--duration seconds.
"""
import sys
import threading
import time

from _harness import native_id, parse_args, write_truth

SPIN = [True]


def block_on_lock(lock, report):
    line = sys._getframe().f_lineno + 2
    report("block_on_lock", line)
    lock.acquire()


def block_on_event(event, report):
    line = sys._getframe().f_lineno + 2
    report("block_on_event", line)
    event.wait()


def block_in_sleep(seconds, report):
    line = sys._getframe().f_lineno + 2
    report("block_in_sleep", line)
    time.sleep(seconds)


def spin_on_line(unused, report):
    line = sys._getframe().f_lineno + 2
    report("spin_on_line", line)
    while SPIN[0]: pass  # noqa: E701 -- one line on purpose: every instruction is here


def main():
    args = parse_args(__doc__.splitlines()[0], duration=30.0)
    lock = threading.Lock()
    lock.acquire()
    event = threading.Event()
    truth = {}
    guard = threading.Lock()

    def reporter(name, line):
        with guard:
            truth[str(native_id())] = {"function": name, "line": line}

    plan = [(block_on_lock, lock), (block_on_event, event), (block_in_sleep, args.duration),
            (block_on_lock, lock), (block_on_event, event), (block_in_sleep, args.duration),
            (spin_on_line, None)]
    threads = []
    for i, (fn, arg) in enumerate(plan):
        t = threading.Thread(target=fn, args=(arg, reporter), name="blocker-%d" % i)
        t.daemon = True
        t.start()
        threads.append(t)
    while len(truth) < len(plan):
        time.sleep(0.01)
    time.sleep(0.3)  # let every thread get from its report into the blocking call
    write_truth(args.truth, {"threads": truth, "main_tid": native_id()})
    time.sleep(args.duration)
    SPIN[0] = False
    event.set()


if __name__ == "__main__":
    main()
