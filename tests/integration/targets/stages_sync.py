"""Stage target: requests with three stages of known sleep lengths, timed by crux's agent.

Waits until a recorder attaches (crux stages --pid), then runs --requests requests of
parse (10 ms), model (50 ms) and serialize (5 ms, through the decorator), with a mark
between model and serialize, and writes each stage's own measured durations as truth.
"""
import time

import crux
from _harness import parse_args, write_truth

DURATIONS = {"parse": 0.010, "model": 0.050, "serialize": 0.005}


def add_arguments(p):
    p.add_argument("--requests", type=int, default=20)


@crux.stage("serialize")
def serialize(measured):
    t0 = time.monotonic_ns()
    time.sleep(DURATIONS["serialize"])
    measured["serialize"].append(time.monotonic_ns() - t0)


def main():
    args = parse_args(__doc__, add_arguments)
    write_truth(args.truth, {"phase": "ready", "ring": crux.ring_path()})
    deadline = time.monotonic() + 30
    while not crux.attached() and time.monotonic() < deadline:
        time.sleep(0.005)
    measured = {"parse": [], "model": [], "serialize": [], "request": []}
    for i in range(args.requests):
        r0 = time.monotonic_ns()
        with crux.request(i + 1):
            for name in ("parse", "model"):
                with crux.stage(name):
                    t0 = time.monotonic_ns()
                    time.sleep(DURATIONS[name])
                    measured[name].append(time.monotonic_ns() - t0)
            crux.mark("model-done")
            serialize(measured)
        measured["request"].append(time.monotonic_ns() - r0)
    write_truth(args.truth, {"phase": "done", "attached": True, "measured_ns": measured})


if __name__ == "__main__":
    main()
