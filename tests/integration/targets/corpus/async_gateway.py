"""An asyncio JSON gateway and its clients in one event loop.

Clients send JSON orders over line-delimited connections; the gateway decodes each one,
asks a pricing service (a child process, 6 ms per answer) over HTTP, merges the answer
into the order and encodes the reply. The loop is busy with JSON about half the time,
with other loop work and socket waits sharing the rest: mostly JSON (serialization).
"""
import asyncio
import json
import random

import _backend
from _timing import Clock, parse_args

CLIENTS = 8
LINES = 300


async def fetch_prices(port, clock):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /prices?size=16000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    raw = await reader.read()
    with clock("serialization"):
        return json.loads(raw.partition(b"\r\n\r\n")[2])["items"]


def gateway(port, clock):
    async def handle(reader, writer):
        line = await reader.readline()
        while line:
            with clock("serialization"):
                order = json.loads(line)
            prices = await fetch_prices(port, clock)
            order["prices"] = prices[:len(order["lines"])]
            with clock("serialization"):
                writer.write(json.dumps(order).encode() + b"\n")
            await writer.drain()
            line = await reader.readline()
    return handle


async def client(gw_port, orders, clock, duration):
    reader, writer = await asyncio.open_connection("127.0.0.1", gw_port)
    sent = 0
    while clock.elapsed() < duration:
        order = orders[sent % len(orders)]
        with clock("serialization"):
            writer.write(json.dumps(order).encode() + b"\n")
        line = await reader.readline()
        with clock("serialization"):
            assert len(json.loads(line)["prices"]) == LINES
        sent += 1
    return sent


async def run(port, clock, duration):
    rng = random.Random(1)
    orders = [{"id": n, "lines": [{"sku": "sku-%d" % rng.randrange(5000), "qty": n % 9}
                                  for _ in range(LINES)]} for n in range(20)]
    server = await asyncio.start_server(gateway(port, clock), "127.0.0.1", 0)
    gw_port = server.sockets[0].getsockname()[1]
    # the loop's CPU outside JSON is host work; the rest of its time it waits on sockets
    with clock("host", wait="io"):
        counts = await asyncio.gather(*(client(gw_port, orders[i:] + orders[:i], clock,
                                               duration) for i in range(CLIENTS)))
    server.close()
    return sum(counts)


def main():
    args = parse_args(__doc__)
    backend, port = _backend.start(delay_ms=6)
    clock = Clock()
    orders = asyncio.run(run(port, clock, args.duration))
    backend.kill()
    clock.write(args.truth, expect="serialization", orders=orders)


if __name__ == "__main__":
    main()
