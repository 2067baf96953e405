"""Computes per-customer features in a multiprocessing Pool; each task returns a large list
of feature rows that the parent unpickles.

The workers are quick (they filter a table they built at start) and the results are
large: the pool's result thread in the parent is busy receiving and unpickling about 80%
of the time, and the rest of the time the parent waits for results. Serialization bound.
(While results are pending, Pool's worker-handler thread spins on the result pipe too.)
"""
import multiprocessing as mp
import random

from _timing import Clock, parse_args, thread_busy

ROWS = 4000


def init_worker(seed):
    global TEMPLATE
    rng = random.Random(seed)
    TEMPLATE = [("cust-%d" % i, rng.random(), rng.randrange(100), "segment-%d" % (i % 7))
                for i in range(ROWS)]


def features(shard):
    # the rows of customers seen often enough: most of the worker's table
    return [row for row in TEMPLATE if row[2] >= shard % 10]


def main():
    args = parse_args(__doc__)
    ctx = mp.get_context("fork")
    with ctx.Pool(2, initializer=init_worker, initargs=(1,)) as pool:
        pool.map(features, range(2))  # workers started and warm
        receiver = pool._result_handler.native_id
        # the pool's worker thread also waits on the result pipe: it spins while results
        # are pending (kept as a note; its time is overhead of the large results)
        spinner = pool._worker_handler.native_id
        spun = thread_busy(spinner)
        clock = Clock()
        rows = shards = 0
        while clock.elapsed() < args.duration:
            # the time the pool's result thread computes (receive, unpickle) is serialization;
            # the rest of the wall time the parent waits for the workers
            with clock("serialization", wait="queue", cpu=lambda: thread_busy(receiver)):
                for result in pool.imap_unordered(features, range(shards, shards + 40)):
                    rows += len(result)
            shards += 40
        spun = (thread_busy(spinner) - spun) / clock.elapsed()
    clock.write(args.truth, expect="serialization", rows=rows, shards=shards,
                worker_handler_busy=round(spun, 3))


if __name__ == "__main__":
    main()
