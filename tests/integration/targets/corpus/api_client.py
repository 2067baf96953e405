"""Sends records to a local scoring service over one keep-alive http.client connection.

Each call posts a JSON batch and parses the JSON answer; the service (a child process)
takes 20 ms per call. About 90% of the client's time is waiting for answers: I/O bound,
whether or not a profiler keeps the samples of a waiting thread.
"""
import http.client
import json
import random

import _backend
from _timing import Clock, parse_args


def make_batch(rng, n):
    return [{"user": rng.randrange(10000), "text": "order %d" % rng.randrange(10 ** 6),
             "amount": round(rng.uniform(1, 500), 2)} for _ in range(n)]


def best(answer):
    items = json.loads(answer)["items"]
    return max(items, key=lambda item: item["score"])["id"]


def main():
    args = parse_args(__doc__)
    rng = random.Random(7)
    server, port = _backend.start(delay_ms=20)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    clock = Clock()
    calls = 0
    try:
        while clock.elapsed() < args.duration:
            with clock("host"):
                body = json.dumps(make_batch(rng, 400)).encode()
            with clock("io"):
                conn.request("POST", "/score?size=40000", body,
                             {"Content-Type": "application/json"})
                answer = conn.getresponse().read()
            with clock("host"):
                best(answer)
            calls += 1
    finally:
        conn.close()
        server.kill()
    clock.write(args.truth, expect="io", calls=calls)


if __name__ == "__main__":
    main()
