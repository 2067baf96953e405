"""Four threads and an asyncio loop running the same shared functions, in every shape a frame takes.

Each worker thread repeats mixed_round(): generators (a for loop over a generator
pipeline, a generator expression, `yield from`, a send()-driven generator), coroutines
driven by a plain send() loop, methods and __init__ (3.13 runs it under an
_Py_InitCleanup shim frame) with super(), a closure, Python functions called from C
(map, sorted(key=...), a lambda), exceptions raised deep and caught at several levels,
and recursion. Meanwhile the main thread runs two asyncio tasks calling the same
coroutines. The threads hand the GIL to each other all the time, so a sampled stack may
belong to a thread that is running or to one that just stopped.

Every generator is run to its end (or closed by the program), so no generator frame is
ever resumed by the garbage collector at an arbitrary line: the possible stacks follow
from the source (tests/integration/trust_check.py). Python 3.8 syntax.
"""
import asyncio
import os
import sys
import threading
import time
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _harness import native_id, parse_args, write_truth  # noqa: E402

N_THREADS = 4


# -- generators -----------------------------------------------------------------------

def numbers(n):
    for i in range(n):
        yield i * 3


def evens(source):
    for x in source:
        if x % 2 == 0:
            yield x


def delegate(n):
    yield from numbers(n)
    yield -1


def averager():
    total = 0.0
    count = 0
    average = None
    while True:
        value = yield average
        if value is None:
            return average
        total += value
        count += 1
        average = total / count


def use_generators(n):
    acc = 0
    for x in evens(numbers(n)):
        acc += x
    acc += sum(x * x for x in numbers(n))
    acc += len([y for y in delegate(n)])
    avg = averager()
    next(avg)
    for v in range(n):
        avg.send(v)
    try:
        avg.send(None)
    except StopIteration as stop:
        acc += stop.value
    return acc


# -- coroutines -----------------------------------------------------------------------

@types.coroutine
def pause():
    yield


async def square_later(x):
    await pause()
    return x * x


async def sum_squares(n):
    total = 0
    for i in range(n):
        total += await square_later(i)
    return total


def drive(coro):
    try:
        while True:
            coro.send(None)
    except StopIteration as stop:
        return stop.value


# -- objects --------------------------------------------------------------------------

class Accumulator(object):
    def __init__(self, start):
        self.total = start
        self.steps = 0

    def add(self, value):
        self.total += value
        self.steps += 1
        return self.total

    def add_many(self, values):
        for v in values:
            self.add(v)
        return self.total


class Scaled(Accumulator):
    def __init__(self, start, factor):
        super().__init__(start)
        self.factor = factor

    def add(self, value):
        return Accumulator.add(self, value * self.factor)


def use_objects(n):
    acc = Accumulator(0)
    for i in range(n):
        acc.add(i)
    scaled = Scaled(1, 2)
    scaled.add_many(range(n))
    return acc.total + scaled.total


# -- closures and calls through C -----------------------------------------------------

def make_scaler(factor):
    def scale(x):
        return x * factor
    return scale


def use_closures(n):
    triple = make_scaler(3)
    total = 0
    for i in range(n):
        total += triple(i)
    return total


def double(x):
    return x * 2


def key_of(x):
    return -x


def use_c_calls(n):
    data = list(map(double, range(n)))
    data = sorted(data, key=key_of)
    data = sorted(data, key=lambda v: v % 7)
    return sum(map(double, data))


# -- exceptions and recursion ---------------------------------------------------------

class Boom(Exception):
    pass


def explode(depth):
    if depth == 0:
        raise Boom()
    return explode(depth - 1) + 1


def recover(depth):
    try:
        return explode(depth)
    except Boom:
        return depth


def shield(depth, at):
    if depth == at:
        try:
            return explode(depth)
        except Boom:
            return -depth
    return shield(depth - 1, at) + 1


def climb(n):
    if n:
        return climb(n - 1) + 1
    return 0


# -- drivers --------------------------------------------------------------------------

def mixed_round(n):
    total = use_generators(n)
    total += drive(sum_squares(n))
    total += use_objects(n)
    total += use_closures(n)
    total += use_c_calls(n)
    total += recover(12)
    total += shield(15, 5)
    total += climb(30)
    return total


def worker(end, index, tids, rounds):
    tids[index] = native_id()
    done = 0
    while time.perf_counter() < end:
        mixed_round(12)
        done += 1
    rounds[index] = done


async def ticker(end):
    done = 0
    while time.perf_counter() < end:
        done += await sum_squares(5)
        use_objects(3)
        await asyncio.sleep(0)
    return done


async def amain(end):
    counts = await asyncio.gather(ticker(end), ticker(end))
    return sum(counts)


def main():
    args = parse_args(__doc__.splitlines()[0])
    end = time.perf_counter() + args.duration
    tids = {}
    rounds = {}
    threads = [threading.Thread(target=worker, args=(end, i, tids, rounds))
               for i in range(N_THREADS)]
    for t in threads:
        t.start()
    write_truth(args.truth, {"phase": "running"})
    ticks = asyncio.run(amain(end))
    for t in threads:
        t.join()
    write_truth(args.truth, {"phase": "done", "workers": dict((str(i), tids[i]) for i in tids),
                             "rounds": dict((str(i), rounds[i]) for i in rounds),
                             "async_rounds": ticks})


if __name__ == "__main__":
    main()
