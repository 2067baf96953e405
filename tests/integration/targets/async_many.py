"""asyncio target for test_async.py and bench/async_cost.py: N live tasks (default 1000),
each awaiting a chain of three coroutines down to asyncio.sleep; with --churn, tasks are
cancelled and replaced all the time (a task cancelled while crux reads it). Prints "ready"
when all tasks are started; runs until killed, or --seconds, then prints the loop's
iterations per second (the work rate a profiler's overhead would lower).
"""
import argparse
import asyncio
import random
import sys
import time


async def leaf(i):
    await asyncio.sleep(0.05 + (i % 10) * 0.01)


async def middle(i):
    await leaf(i)


async def worker(i):
    while True:
        await middle(i)


async def churn(tasks):
    while True:
        await asyncio.sleep(0.001)
        k = random.randrange(len(tasks))
        tasks[k].cancel()
        tasks[k] = asyncio.create_task(worker(k), name="worker-%d" % k)


async def spin(seconds):
    """CPU work on the loop thread: asyncio.sleep(0) steps, counted."""
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        await asyncio.sleep(0)
        n += 1
    return n


async def main(args):
    tasks = [asyncio.create_task(worker(i), name="worker-%d" % i) for i in range(args.tasks)]
    if args.churn:
        asyncio.create_task(churn(tasks), name="churn")
    await asyncio.sleep(0.1)
    print("ready", flush=True)
    if args.seconds:
        n = await spin(args.seconds)
        print("steps_per_s %.1f" % (n / args.seconds), flush=True)
        return
    while True:
        await asyncio.sleep(1)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", type=int, default=1000)
    p.add_argument("--churn", action="store_true")
    p.add_argument("--seconds", type=float, default=0)
    try:
        asyncio.run(main(p.parse_args()))
    except KeyboardInterrupt:
        sys.exit(0)
