"""A pipeline whose four steps take equal time: cleaning text in Python, a numpy projection
(BLAS), JSON encoding of the results, and a call to a lookup service that answers after
20 ms. No kind of work holds 40% of the time: "no clear bottleneck".
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import http.client  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import _backend  # noqa: E402
from _timing import Clock, parse_args  # noqa: E402

STEP = 0.02


def until(deadline, work):
    while time.perf_counter() < deadline:
        work()


def main():
    args = parse_args(__doc__)
    rng = np.random.default_rng(5)
    weights = rng.standard_normal((256, 256))
    batch = rng.standard_normal((256, 256))
    text = "Order #%d shipped to Lyon, FR; 3 items; total EUR 129.90. " * 40
    records = [{"id": i, "vector": [round(x, 4) for x in batch[i % 256, :16]]}
               for i in range(200)]
    server, port = _backend.start(delay_ms=20)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    clock = Clock()
    rounds = 0
    try:
        while clock.elapsed() < args.duration:
            t = time.perf_counter()
            with clock("host"):
                until(t + STEP, lambda: [w.strip(".,;#").lower() for w in text.split()])
            with clock("model"):
                until(t + 2 * STEP, lambda: batch @ weights)
            with clock("serialization"):
                until(t + 3 * STEP, lambda: json.loads(json.dumps(records)))
            with clock("io"):
                conn.request("GET", "/lookup?size=200")
                conn.getresponse().read()
            rounds += 1
    finally:
        conn.close()
        server.kill()
    clock.write(args.truth, expect="none", rounds=rounds)


if __name__ == "__main__":
    main()
