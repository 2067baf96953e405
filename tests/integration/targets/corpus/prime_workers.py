"""Hands ranges of numbers to two worker processes over a multiprocessing Queue and collects
their prime counts from another.

The workers do the computing; the parent only waits for their (small) answers in
results.get(): waiting on other processes, queue.
"""
import multiprocessing as mp

from _timing import Clock, parse_args

SPAN = 20000


def count_primes(lo, hi):
    count = 0
    for n in range(max(lo, 2), hi):
        if all(n % d for d in range(2, int(n ** 0.5) + 1)):
            count += 1
    return count


def worker(tasks, results):
    for lo, hi in iter(tasks.get, None):
        results.put((lo, count_primes(lo, hi)))


def main():
    args = parse_args(__doc__)
    ctx = mp.get_context("fork")
    tasks, results = ctx.Queue(), ctx.Queue()
    workers = [ctx.Process(target=worker, args=(tasks, results)) for _ in range(2)]
    for w in workers:
        w.start()
    clock = Clock()
    start = primes = pending = 0
    while clock.elapsed() < args.duration or pending:
        while pending < 4 and clock.elapsed() < args.duration:
            tasks.put((start, start + SPAN))
            start += SPAN
            pending += 1
        with clock("queue"):
            _, found = results.get(timeout=30)
        primes += found
        pending -= 1
    for w in workers:
        tasks.put(None)
    for w in workers:
        w.join()
    clock.write(args.truth, expect="queue", primes=primes, upto=start)


if __name__ == "__main__":
    main()
