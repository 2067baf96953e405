"""A plain workload for attach, signal, exit and error tests.

The main thread alternates workload_cpu (Python CPU, ~10 ms) and workload_sleep
(~10 ms); --threads N adds N threads napping in helper_nap. The truth is written
at start ("phase": "running", the ready signal) and again at the end ("done").
--exit-code makes the process exit with that status after --duration.
"""
import sys
import threading
import time

from _harness import native_id, parse_args, write_truth


def workload_cpu(slice_s):
    end = time.perf_counter() + slice_s
    n = 0
    while time.perf_counter() < end:
        for i in range(100):
            n += i
    return n


def workload_sleep(slice_s):
    time.sleep(slice_s)


def helper_nap(stop):
    while not stop.is_set():
        time.sleep(0.02)


def add_arguments(parser):
    parser.add_argument("--threads", type=int, default=0, help="extra napping threads")
    parser.add_argument("--exit-code", type=int, default=0)


def main():
    args = parse_args(__doc__.splitlines()[0], add_arguments, duration=30.0)
    stop = threading.Event()
    helpers = [threading.Thread(target=helper_nap, args=(stop,), name="helper-%d" % i)
               for i in range(args.threads)]
    for t in helpers:
        t.daemon = True
        t.start()
    write_truth(args.truth, {"phase": "running", "main_tid": native_id(),
                             "threads": 1 + len(helpers)})
    rounds = 0
    end = time.perf_counter() + args.duration
    while time.perf_counter() < end:
        workload_cpu(0.01)
        workload_sleep(0.01)
        rounds += 1
    stop.set()
    for t in helpers:
        t.join()
    write_truth(args.truth, {"phase": "done", "rounds": rounds, "main_tid": native_id()})
    sys.exit(args.exit_code)


if __name__ == "__main__":
    main()
