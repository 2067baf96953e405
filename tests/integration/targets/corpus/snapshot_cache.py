"""Saves and restores a session cache: every round the cache is pickled (as a checkpoint)
and encoded as JSON (for the web view), and both are read back to check them.

Nearly all the time is in pickle and json: serialization bound.
"""
import json
import pickle
import random

from _timing import Clock, parse_args


def make_sessions(rng, n):
    return {"session-%d" % i: {"user": rng.randrange(10 ** 6),
                               "history": [rng.random() for _ in range(20)],
                               "tags": ["tag%d" % rng.randrange(50) for _ in range(5)],
                               "active": rng.random() < 0.5}
            for i in range(n)}


def update(sessions, rng):
    for key in rng.sample(sorted(sessions), 50):
        sessions[key]["history"].append(rng.random())
        del sessions[key]["history"][0]


def main():
    args = parse_args(__doc__)
    rng = random.Random(11)
    sessions = make_sessions(rng, 3000)
    clock = Clock()
    rounds = size = 0
    while clock.elapsed() < args.duration:
        with clock("host"):
            update(sessions, rng)
        with clock("serialization"):
            checkpoint = pickle.dumps(sessions, protocol=pickle.HIGHEST_PROTOCOL)
            view = json.dumps(sessions, sort_keys=True)
            assert pickle.loads(checkpoint).keys() == json.loads(view).keys()
        size = len(checkpoint) + len(view)
        rounds += 1
    clock.write(args.truth, expect="serialization", rounds=rounds, bytes=size)


if __name__ == "__main__":
    main()
