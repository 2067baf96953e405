"""An asyncio fan-out of 50 calls against a local server: the designed-in bottleneck is the
network wait (I/O bound).

The server runs in a child process and answers each request after 30 ms; the client
opens 50 connections at once with asyncio streams, sends a request on each and waits
for every answer, round after round. The client's thread spends nearly all its time
waiting in the event loop's selector for the answers.
"""
import asyncio
import socket
import subprocess
import sys
import time

from _harness import parse_args, write_truth

DELAY = 0.03
FANOUT = 50


async def handle(reader, writer):
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            await asyncio.sleep(DELAY)
            writer.write(b"ok " + line)
            await writer.drain()
    finally:
        writer.close()


async def serve(port):
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


async def call(port, i):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"request %d\n" % i)
    await writer.drain()
    answer = await reader.readline()
    writer.close()
    return len(answer)


async def client(port, duration):
    end = time.perf_counter() + duration
    rounds = 0
    while time.perf_counter() < end:
        results = await asyncio.gather(*(call(port, i) for i in range(FANOUT)))
        assert all(results)
        rounds += 1
    return rounds


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        asyncio.run(serve(int(sys.argv[2])))
        return
    args = parse_args(__doc__)
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.02)
        rounds = asyncio.run(client(port, args.duration))
    finally:
        server.kill()
        server.wait()
    write_truth(args.truth, {"rounds": rounds, "expect": "io"})


if __name__ == "__main__":
    main()
