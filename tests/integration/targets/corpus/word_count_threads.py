"""Counts word frequencies of four document shards in four threads of pure Python.

Only one thread holds the GIL at a time: each thread is on CPU about a quarter of its
wall time and waits for the GIL the rest. GIL bound.
"""
import collections
import random
import threading
import time

from _timing import Clock, parse_args

WORDS = ["model", "token", "batch", "queue", "tensor", "layer", "cache", "shard", "index"]


def make_shard(seed):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) + str(rng.randrange(30)) for _ in range(40))
            for _ in range(400)]


def count_words(shard, clock, duration, out):
    counts = collections.Counter()
    # the thread's CPU time is Python work; the rest of its wall time it waited for the GIL
    # (it never blocks otherwise; a GIL waiter wakes every 5 ms and may queue for a CPU
    # then, which is still waiting for the GIL)
    with clock("host", wait="gil", cpu=time.thread_time):
        while clock.elapsed() < duration:
            for line in shard:
                for word in line.split():
                    counts[word.rstrip("0123456789")] += 1
    out.append(counts)


def main():
    args = parse_args(__doc__)
    shards = [make_shard(seed) for seed in range(4)]
    clock = Clock()
    out = []
    threads = [threading.Thread(target=count_words, args=(s, clock, args.duration, out))
               for s in shards]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = sum(out, collections.Counter())
    clock.write(args.truth, expect="gil", words=sum(total.values()))


if __name__ == "__main__":
    main()
