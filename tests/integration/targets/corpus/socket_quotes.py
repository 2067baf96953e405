"""Asks a local quote service for prices over a raw TCP socket: sendall a request, then
sock.recv until the whole answer is in.

The service (a child process) answers after 20 ms; the program spends nearly all its
time blocked in recv on the socket: I/O bound.
"""
import json
import socket

import _backend
from _timing import Clock, parse_args

REQUEST = b"GET /quotes?size=3000 HTTP/1.1\r\nHost: quotes\r\n\r\n"


def read_answer(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return body


def main():
    args = parse_args(__doc__)
    server, port = _backend.start(delay_ms=20)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    clock = Clock()
    best = 0.0
    quotes = 0
    try:
        while clock.elapsed() < args.duration:
            with clock("io"):
                sock.sendall(REQUEST)
                body = read_answer(sock)
            with clock("host"):
                best = max(best, max(item["score"] for item in json.loads(body)["items"]))
            quotes += 1
    finally:
        sock.close()
        server.kill()
    clock.write(args.truth, expect="io", quotes=quotes, best=best)


if __name__ == "__main__":
    main()
