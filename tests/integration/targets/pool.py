"""Child processes: a multiprocessing.Pool whose workers send large results
back, and a subprocess.run of another Python.

Workers run work() (pure Python, building 200,000 small tuples) and return the
list, which is pickled back to the parent, whose result thread unpickles it in
multiprocessing.connection. Then the parent runs a second Python with
subprocess.run that spins in child_spin(). The truth file has every pid.
"""
import multiprocessing
import os
import subprocess
import sys
import time

from _harness import parse_args, write_truth

CHILD = """
import os, time
def child_spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(1000))
print(os.getpid(), flush=True)
child_spin(%f)
"""


def work(seed):
    out = []
    for i in range(200000):
        out.append((seed, i, i * 0.5))
    return os.getpid(), out


def main():
    args = parse_args(__doc__, lambda p: p.add_argument("--method", default="fork"),
                      duration=1.5)
    ctx = multiprocessing.get_context(args.method)
    workers = set()
    end = time.perf_counter() + args.duration
    with ctx.Pool(2) as pool:
        while time.perf_counter() < end:
            for pid, result in pool.imap_unordered(work, range(4)):
                workers.add(pid)
    child = subprocess.run([sys.executable, "-c", CHILD % 0.8], stdout=subprocess.PIPE,
                           check=True, universal_newlines=True)
    write_truth(args.truth, {"workers": sorted(workers), "child": int(child.stdout.split()[0])})


if __name__ == "__main__":
    main()
