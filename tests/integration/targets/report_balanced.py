"""A balanced loop: four kinds of work take equal wall-time slices in turn (pure-Python
tokenizing, numpy linear algebra, pickling, waiting on an empty queue), so no type of work
dominates and the only right answer is "no clear bottleneck"."""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pickle  # noqa: E402
import queue  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from _harness import parse_args, write_truth  # noqa: E402

SLICE = 0.02


def tokenize_text(text, until):
    n = 0
    while time.perf_counter() < until:
        n += len([w.lower() for w in text.split()])
    return n


def linalg(a, until):
    n = 0
    while time.perf_counter() < until:
        np.linalg.solve(a, a[:, :4])
        n += 1
    return n


def serialize(obj, until):
    n = 0
    while time.perf_counter() < until:
        n += len(pickle.loads(pickle.dumps(obj)))
    return n


def wait(q, until):
    try:
        q.get(timeout=max(until - time.perf_counter(), 0))
    except queue.Empty:
        pass


def main():
    args = parse_args(__doc__)
    text = "the quick brown fox jumps over the lazy dog " * 50
    a = np.random.default_rng(1).standard_normal((120, 120)) + 120 * np.eye(120)
    obj = [{"id": i, "text": "chunk %d" % i, "score": i * 0.5} for i in range(300)]
    q = queue.Queue()
    write_truth(args.truth, {"phase": "ready"})  # tests attach now, after imports
    end = time.perf_counter() + args.duration
    rounds = 0
    while time.perf_counter() < end:
        t = time.perf_counter()
        tokenize_text(text, t + SLICE)
        linalg(a, t + 2 * SLICE)
        serialize(obj, t + 3 * SLICE)
        wait(q, t + 4 * SLICE)
        rounds += 1
    write_truth(args.truth, {"phase": "done", "rounds": rounds, "expect": None})


if __name__ == "__main__":
    main()
