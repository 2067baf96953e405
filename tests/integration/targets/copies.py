"""Copy-volume targets for test_copies.py: MODE is numpy or pure.

numpy: a feature pipeline written the usual way. Whole-array copies (`.copy()`, `np.array` of an
array), a byte join of many small chunks, and the conversions that look like copies but are
element by element (`np.array(list)`, `.tolist()`): no memcpy there. pure: a pure-Python loop.
The truth file gives each line and the bytes the target copied there by memcpy/memmove.
"""
import json
import sys

MIB = 1 << 20


def features(rounds):
    import numpy as np
    base = np.random.default_rng(0).random(1 << 20)  # 8 MiB of float64
    rows = [float(i) for i in range(1 << 18)]
    chunks = [bytes(4096)] * 1024  # 4 MiB a join
    copied = {"COPY": 0, "ASARRAY": 0, "JOIN": 0, "FROMLIST": 0, "TOLIST": 0}
    for _ in range(rounds):
        snapshot = base.copy()  # COPY
        copied["COPY"] += base.nbytes
        again = np.array(snapshot)  # ASARRAY
        copied["ASARRAY"] += snapshot.nbytes
        blob = b"".join(chunks)  # JOIN
        copied["JOIN"] += len(blob)
        fromlist = np.array(rows)  # FROMLIST
        back = fromlist[:1024].tolist()  # TOLIST
    return copied


def pure(n):
    s = 0
    for i in range(n):
        s += i % 7  # PURE
    return {"PURE": 0}


def lines_of(tags):
    found = {}
    with open(__file__, encoding="utf-8") as f:
        for no, text in enumerate(f, 1):
            for tag in tags:
                if text.rstrip().endswith("# " + tag):
                    found[tag] = no
    return found


def main():
    mode = sys.argv[1]
    truth_path = sys.argv[sys.argv.index("--truth") + 1]
    copied = features(40) if mode == "numpy" else pure(3_000_000)
    with open(truth_path, "w", encoding="utf-8") as f:
        json.dump({"lines": lines_of(copied), "copied": copied}, f)


if __name__ == "__main__":
    main()
