#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What the consistency checks of a 3.11+ round cost: crux CPU per thread-sample at depth 50
for two crux binaries side by side (the one before the checks, --base, and the one under
test), attached to the same kind of target (bench/workloads/spin.py), in interleaved pairs.

    python3 bench/check_cost.py --base /path/to/old/crux [--crux build/crux] [--reps 5]

Prints, per interpreter and thread count, the median CPU per thread-sample of each binary and
the ratio new/old (median of the per-pair ratios, with their [min..max]); writes
bench/out/check_cost.json. Ratios, not times: the machine is shared."""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
import sample_cost as S  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the crux binary to compare against")
    ap.add_argument("--crux", help="the crux under test (default: build/crux, rebuilt)")
    ap.add_argument("--pythons", default="3.11,3.12,3.13")
    ap.add_argument("--threads", default="1,16")
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--duration", type=float, default=2.0)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    new, info = C.prepare_crux(args.crux)
    old = os.path.join(C.OUT, "crux-base")
    C.ensure_out()
    os.makedirs(os.path.join(C.OUT, "sample_cost"), exist_ok=True)
    with open(args.base, "rb") as src, open(old, "wb") as dst:
        dst.write(src.read())
    os.chmod(old, 0o755)
    rows, out = [], {"crux": info, "base": args.base, "machine": C.machine(), "cells": []}
    for py in args.pythons.split(","):
        for threads in [int(t) for t in args.threads.split(",")]:
            pairs = []
            for rep in range(args.reps):
                order = [("old", old), ("new", new)] if rep % 2 == 0 else [("new", new),
                                                                            ("old", old)]
                got = {}
                for name, binary in order:
                    tag = "check-%s-py%s-t%d-r%d" % (name, py, threads, rep)
                    st = S.measure(binary, S.PYTHONS[py], args.depth, threads, args.rate,
                                   args.duration, tag)
                    if st:
                        got[name] = st
                if len(got) == 2:
                    pairs.append(got)
            if not pairs:
                continue
            o = [p["old"]["cpu_us_per_thread_sample"] for p in pairs]
            n = [p["new"]["cpu_us_per_thread_sample"] for p in pairs]
            r = [b / a for a, b in zip(o, n) if a > 0]
            sc_o = [p["old"]["syscalls"] / max(1, p["old"]["ticks"]) for p in pairs]
            sc_n = [p["new"]["syscalls"] / max(1, p["new"]["ticks"]) for p in pairs]
            cell = {"python": py, "threads": threads, "depth": args.depth, "rate": args.rate,
                    "old_us": statistics.median(o), "new_us": statistics.median(n),
                    "ratio": statistics.median(r), "ratio_min": min(r), "ratio_max": max(r),
                    "old_syscalls_per_round": statistics.median(sc_o),
                    "new_syscalls_per_round": statistics.median(sc_n),
                    "new_errors": [p["new"].get("errors") for p in pairs], "pairs": len(pairs)}
            out["cells"].append(cell)
            rows.append([py, str(threads), "%.1f" % cell["old_us"], "%.1f" % cell["new_us"],
                         "%.2f [%.2f..%.2f]" % (cell["ratio"], cell["ratio_min"],
                                                cell["ratio_max"]),
                         "%.2f / %.2f" % (cell["old_syscalls_per_round"],
                                          cell["new_syscalls_per_round"])])
            C.log("%s threads=%d: old %.1f us, new %.1f us, ratio %.2f" %
                  (py, threads, cell["old_us"], cell["new_us"], cell["ratio"]))
    print(C.table(["python", "threads", "base µs/thread-sample", "new µs/thread-sample",
                   "new/base", "syscalls/round base/new"], rows))
    C.write_json("check_cost.json", out)


if __name__ == "__main__":
    main()
