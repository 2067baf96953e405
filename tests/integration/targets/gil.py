"""Two threads: gil_spinner burns Python CPU (holds the GIL), gil_sleeper sleeps.

With --gil a profiler must show (almost) only gil_spinner; without --gil but
with --idle both threads appear (the control).
"""
import threading
import time

from _harness import native_id, parse_args, write_truth


def gil_spinner(end, tids):
    tids["gil_spinner"] = native_id()
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def gil_sleeper(end, tids):
    tids["gil_sleeper"] = native_id()
    while time.perf_counter() < end:
        time.sleep(min(0.25, max(0.0, end - time.perf_counter())))


def main():
    args = parse_args(__doc__.splitlines()[0])
    end = time.perf_counter() + args.duration
    tids = {}
    threads = [threading.Thread(target=fn, args=(end, tids), name=fn.__name__)
               for fn in (gil_spinner, gil_sleeper)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    write_truth(args.truth, {"tids": tids, "main_tid": native_id()})


if __name__ == "__main__":
    main()
