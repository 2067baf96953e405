"""Scores document shards in a ProcessPoolExecutor; each shard's result is a long list of
(doc id, title, score, tags) records that the parent gets back through pickling.

The workers only filter a table they built when they started; the parent's executor
thread is busy receiving and unpickling the results most of the time, and the main thread
waits for futures: serialization bound.
"""
import concurrent.futures as cf
import multiprocessing as mp
import random

from _timing import Clock, parse_args, thread_busy

TABLE = []


def load_table(seed):
    rng = random.Random(seed)
    TABLE.extend(("doc-%d" % i, "title %d" % rng.randrange(10 ** 6), rng.random(),
                  ("en", "news") if i % 3 else ("fr",)) for i in range(5000))


def score_shard(shard):
    cutoff = (shard % 10) / 20.0
    return [row for row in TABLE if row[2] >= cutoff]


def main():
    args = parse_args(__doc__)
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("fork"),
                                initializer=load_table, initargs=(5,)) as pool:
        list(pool.map(score_shard, range(2)))  # workers started and warm
        manager = pool._executor_manager_thread.native_id
        clock = Clock()
        shards = records = 0
        while clock.elapsed() < args.duration:
            # the executor thread's computing (receive, unpickle) is serialization; the
            # rest of the wall time the parent waits for the workers
            with clock("serialization", wait="queue",
                       cpu=lambda: thread_busy(manager)):
                futures = [pool.submit(score_shard, s) for s in range(shards, shards + 20)]
                for future in cf.as_completed(futures):
                    records += len(future.result())
            shards += 20
    clock.write(args.truth, expect="serialization", shards=shards, records=records)


if __name__ == "__main__":
    main()
