"""Asks a local service for 20 user profiles at once with asyncio streams, round after round.

The service (a child process) answers each request after 30 ms; the event loop spends
nearly all its time waiting in its selector for answers: I/O bound.
"""
import asyncio
import json

import _backend
from _timing import Clock, parse_args

FANOUT = 20


async def get_json(port, path):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                  % path).encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:40]
    return json.loads(body)


async def crawl(port, clock, duration):
    rounds = 0
    while clock.elapsed() < duration:
        # the loop's CPU time is host work, the rest of the round is waiting on sockets
        with clock("host", wait="io"):
            pages = await asyncio.gather(*(get_json(port, "/users/%d?size=800" % i)
                                           for i in range(FANOUT)))
        assert all(page["items"] for page in pages)
        rounds += 1
    return rounds


def main():
    args = parse_args(__doc__)
    server, port = _backend.start(delay_ms=30)
    clock = Clock()
    try:
        rounds = asyncio.run(crawl(port, clock, args.duration))
    finally:
        server.kill()
    clock.write(args.truth, expect="io", rounds=rounds, fanout=FANOUT)


if __name__ == "__main__":
    main()
