"""Keeps four requests in flight to a local service over four sockets, multiplexed by hand
with select.select (no selectors, no asyncio).

The service (a child process) answers after 25 ms; the program sits in select() waiting
for a socket to become readable almost all the time: I/O bound.
"""
import select
import socket

import _backend
from _timing import Clock, parse_args

REQUEST = b"GET /status?size=400 HTTP/1.1\r\nHost: local\r\n\r\n"


def answered(buffer):
    head, sep, body = buffer.partition(b"\r\n\r\n")
    if not sep:
        return False
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    return len(body) >= length


def main():
    args = parse_args(__doc__)
    server, port = _backend.start(delay_ms=25)
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    buffers = dict((s, b"") for s in socks)
    for s in socks:
        s.sendall(REQUEST)
    clock = Clock()
    answers = 0
    try:
        while clock.elapsed() < args.duration:
            with clock("io"):
                readable, _, _ = select.select(socks, [], [], 1.0)
            with clock("host"):
                for s in readable:
                    buffers[s] += s.recv(65536)
                    if answered(buffers[s]):
                        answers += 1
                        buffers[s] = b""
                        s.sendall(REQUEST)
    finally:
        for s in socks:
            s.close()
        server.kill()
    clock.write(args.truth, expect="io", answers=answers)


if __name__ == "__main__":
    main()
