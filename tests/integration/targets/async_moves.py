"""asyncio target for test_async.py: tasks whose await chains change while crux keeps them
between rounds (docs/async.md "Cost"). Among 300 idle tasks (so that each round re-checks
only a share of them):

- mover: awaits phase_a() for --switch seconds, then phase_b() until killed;
- doomed: awaits doomed_wait(), cancelled after --switch seconds;
- short: awaits short_wait() and returns after --switch seconds.

Prints "ready" once the tasks run; runs until killed.
"""
import argparse
import asyncio
import sys


async def phase_a(seconds):
    await asyncio.sleep(seconds)


async def phase_b():
    await asyncio.sleep(3600)


async def mover(seconds):
    await phase_a(seconds)
    await phase_b()


async def doomed_wait():
    await asyncio.sleep(3600)


async def short_wait(seconds):
    await asyncio.sleep(seconds)


async def idle():
    await asyncio.sleep(3600)


async def main(args):
    idlers = [asyncio.create_task(idle(), name="idle-%d" % i) for i in range(300)]
    m = asyncio.create_task(mover(args.switch), name="mover")
    d = asyncio.create_task(doomed_wait(), name="doomed")
    s = asyncio.create_task(short_wait(args.switch), name="short")
    print("ready", flush=True)
    await asyncio.sleep(args.switch)
    d.cancel()
    await asyncio.gather(m, s, *idlers, return_exceptions=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--switch", type=float, default=1.0)
    try:
        asyncio.run(main(p.parse_args()))
    except KeyboardInterrupt:
        sys.exit(0)
