"""Stage target for asyncio: concurrent requests in one thread keep their own request ids.

Request i (1..N) awaits "fetch" for 4 + 3*i ms and then runs "compute" for 2 ms; all N
run at once on one event loop, so their stages interleave. Each request's id is bound with
crux.request(i) (a ContextVar), so every stage must land in its own request.
"""
import asyncio
import time

import crux
from _harness import parse_args, write_truth


def add_arguments(p):
    p.add_argument("--requests", type=int, default=8)


async def handle(i, measured):
    with crux.request(i):
        with crux.stage("fetch"):
            t0 = time.monotonic_ns()
            await asyncio.sleep((4 + 3 * i) / 1000.0)
            measured[i] = {"fetch": time.monotonic_ns() - t0}
        with crux.stage("compute"):
            t0 = time.monotonic_ns()
            time.sleep(0.002)
            measured[i]["compute"] = time.monotonic_ns() - t0


async def run(n):
    measured = {}
    await asyncio.gather(*(handle(i, measured) for i in range(1, n + 1)))
    return measured


def main():
    args = parse_args(__doc__, add_arguments)
    write_truth(args.truth, {"phase": "ready"})
    deadline = time.monotonic() + 30
    while not crux.attached() and time.monotonic() < deadline:
        time.sleep(0.005)
    measured = asyncio.run(run(args.requests))
    write_truth(args.truth, {"phase": "done", "measured_ns": measured})


if __name__ == "__main__":
    main()
