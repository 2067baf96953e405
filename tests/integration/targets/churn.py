"""Four threads that enter and leave frames all the time, each with its own functions.

Thread i runs loop_i, which recurses down_i 30 deep and back, again and again.
On CPython 3.8-3.10 the frames come from a free list shared by all threads, so a
profiler walking one thread's frames while they are freed and reused by another
can cross into that thread's stack, or wander along the free list. A correct
profiler never shows two threads' functions in one stack, and every stack of a
worker starts at the thread's entry. The truth file maps loop_i to its tid.
"""
import sys
import threading
import time

from _harness import native_id, parse_args, write_truth

N_THREADS = 4
DEPTH = 30


def make(i, tids, started):
    # Distinct code objects per thread, so that a stack says which thread ran it.
    src = ("def down_%d(n):\n"
           "    if n:\n"
           "        return down_%d(n - 1) + 1\n"
           "    return 0\n"
           "def loop_%d(end):\n"
           "    tids[%d] = native_id()\n"
           "    started.release()\n"
           "    while time.perf_counter() < end:\n"
           "        down_%d(%d)\n") % (i, i, i, i, i, DEPTH)
    ns = {"time": time, "tids": tids, "native_id": native_id, "started": started}
    exec(compile(src, "churn_%d" % i, "exec"), ns)
    return ns["loop_%d" % i]


def main():
    args = parse_args(__doc__.splitlines()[0])
    sys.setrecursionlimit(1000)
    end = time.perf_counter() + args.duration
    tids = {}
    started = threading.Semaphore(0)
    threads = [threading.Thread(target=make(i, tids, started), args=(end,))
               for i in range(N_THREADS)]
    for t in threads:
        t.start()
    for _ in threads:
        started.acquire()
    write_truth(args.truth, {"loops": dict(("loop_%d" % i, tids[i]) for i in range(N_THREADS))})
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
