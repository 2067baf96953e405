# SPDX-License-Identifier: MIT
"""Allocation-heavy workloads for bench/alloc_cost.py; prints WORKLOAD_RESULT with the
seconds of the timed part (start-up and the profiler's own start are left out).

    python alloc_work.py churn|numpy|tokenizer [--scale S]

churn: many small dicts and lists built and dropped (object churn). numpy: repeated array
expressions making temporaries (a*b + c*d - e on 1M floats). tokenizer: a pure-Python
split/normalise/join loop over text, like a pre-tokenizer.
"""
import json
import sys
import time


def churn(scale):
    keep = []
    for i in range(int(300_000 * scale)):
        d = {"id": i, "name": "item%d" % i, "tags": [i, i + 1, i + 2]}
        lst = [d, (i, i * 2), str(i)]
        if i % 100 == 0:
            keep.append(lst)
        if len(keep) > 1000:
            keep.clear()
    return len(keep)


def numpy_temps(scale):
    import numpy as np
    rng = np.random.default_rng(0)
    a, b, c, d, e = (rng.random(1_000_000) for _ in range(5))
    s = 0.0
    for _ in range(int(60 * scale)):
        r = a * b + c * d - e
        s += float(r[::1000].sum())
    return s


TEXT = ("The quick brown fox, jumping over 13 lazy dogs! Isn't it grand? "
        "Tokenizers split on whitespace and punctuation; then they normalise. ") * 20


def tokenizer(scale):
    n = 0
    for i in range(int(3_000 * scale)):
        words = TEXT.split()
        toks = []
        for w in words:
            w = w.lower().strip(".,!?;")
            if "'" in w:
                toks.extend(w.split("'"))
            else:
                toks.append(w)
        n += len(" ".join(toks))
    return n


def main():
    mode = sys.argv[1]
    scale = float(sys.argv[sys.argv.index("--scale") + 1]) if "--scale" in sys.argv else 1.0
    fn = {"churn": churn, "numpy": numpy_temps, "tokenizer": tokenizer}[mode]
    if mode == "numpy":
        import numpy  # noqa: F401  (imported before the clock starts)
    t0, c0 = time.perf_counter(), time.process_time()
    fn(scale)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    # cpu_seconds: the process's own CPU time, steadier than wall time on a shared machine (it
    # leaves out the time the workload waited for a core, and the profiler's other processes)
    print("WORKLOAD_RESULT " + json.dumps({"mode": mode, "seconds": secs, "cpu_seconds": cpu}),
          flush=True)


if __name__ == "__main__":
    main()
