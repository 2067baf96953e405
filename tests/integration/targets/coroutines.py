"""asyncio with nested awaits: coro_main awaits coro_outer, which awaits coro_inner.

coro_inner burns CPU in crunch() between `await asyncio.sleep(0)` yields, so
most samples show event loop -> coro_main -> coro_outer -> coro_inner -> crunch.
A second task (coro_side) runs the same kind of work beside it.
"""
import asyncio
import time

from _harness import parse_args, write_truth


def crunch(n):
    acc = 0
    for k in range(n):
        acc += k * k
    return acc


async def coro_inner(end):
    rounds = 0
    while time.perf_counter() < end:
        crunch(2000)
        rounds += 1
        await asyncio.sleep(0)
    return rounds


async def coro_outer(end):
    return await coro_inner(end)


async def coro_side(end):
    rounds = 0
    while time.perf_counter() < end:
        crunch(500)
        rounds += 1
        await asyncio.sleep(0)
    return rounds


async def coro_main(end):
    side = asyncio.ensure_future(coro_side(end))
    rounds = await coro_outer(end)
    return rounds, await side


def main():
    args = parse_args(__doc__.splitlines()[0])
    rounds, side = asyncio.run(coro_main(time.perf_counter() + args.duration))
    write_truth(args.truth, {"rounds": rounds, "side_rounds": side,
                             "order": ["coro_main", "coro_outer", "coro_inner", "crunch"]})


if __name__ == "__main__":
    main()
