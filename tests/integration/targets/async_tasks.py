"""asyncio target for test_async.py: named tasks with known await chains.

handler-N tasks: handler -> fetch_features -> asyncio.sleep (about 80% of each request),
then cpu_step (a busy loop, about 20%). A fan-out task gathers three named children that
sleep. Runs until killed; prints "ready" once the tasks run.
"""
import asyncio
import sys
import time


def cpu_step(seconds):
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


async def fetch_features(delay):
    await asyncio.sleep(delay)
    return 1


async def handler(i):
    while True:
        await fetch_features(0.08)
        cpu_step(0.02)


async def child(delay):
    while True:
        await asyncio.sleep(delay)


async def fan_out():
    await asyncio.gather(
        asyncio.create_task(child(0.5), name="child-a"),
        asyncio.create_task(child(0.5), name="child-b"),
        asyncio.create_task(child(0.5), name="child-c"),
    )


async def main():
    tasks = [asyncio.create_task(handler(0), name="handler-0")]
    tasks.append(asyncio.create_task(fan_out(), name="fanout"))
    await asyncio.sleep(0.05)
    print("ready", flush=True)
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
