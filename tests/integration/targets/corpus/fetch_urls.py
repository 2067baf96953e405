"""Fetches product pages from a local HTTP service with urllib and totals their scores.

The service (a child process) takes 25 ms per answer, like a remote API; the client
spends most of its time waiting for the answers: I/O bound.
"""
import json
import urllib.request

import _backend
from _timing import Clock, parse_args


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def summarize(body):
    page = json.loads(body)
    return sum(item["score"] for item in page["items"])


def main():
    args = parse_args(__doc__)
    server, port = _backend.start(delay_ms=25)
    clock = Clock()
    total = 0.0
    pages = 0
    try:
        while clock.elapsed() < args.duration:
            url = "http://127.0.0.1:%d/products?page=%d&size=2000" % (port, pages)
            with clock("io"):
                body = fetch(url)
            with clock("host"):
                total += summarize(body)
            pages += 1
    finally:
        server.kill()
    clock.write(args.truth, expect="io", pages=pages, total=total)


if __name__ == "__main__":
    main()
