#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Two crux binaries side by side: the target's wall and CPU time under crux BASE and crux
NEW over no profiler, for (workload, rate, extra options) configurations of overhead.py's
workloads. Each repetition runs no profiler, BASE and NEW in an order rotated between
repetitions; the ratios are taken within the repetition. Prints median [min..max].

    python3 bench/ab_overhead.py OLD_CRUX NEW_CRUX PYTHON REPS \
        '[["cpu",10000,[]],["threads64",1000,[]],["threads64",100,["--native"]]]'"""
import json, os, sys, statistics
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C
from overhead import WORKLOADS

def run(crux, python, wl, rate, extra):
    script, args, env_x, _ = WORKLOADS[wl]
    env = dict(os.environ); env.update(env_x)
    target = [python, os.path.join(C.WORKLOADS, script)] + args
    argv = target if crux is None else [crux, "record", "-q", "--stats", "--rate", str(rate),
                                        "-o", os.path.join(C.OUT, "ab-out.txt")] + extra + ["--"] + target
    rc, out, err, _ = C.run_cmd(argv, env=env)
    res = C.parse_result(out)
    if rc or not res:
        print("fail", argv, err[-300:]); return None
    res["stats"] = C.parse_crux_stats(err) if crux else {}
    return res

def main():
    base, new, python, reps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    cfgs = json.loads(sys.argv[5])
    out = {}
    for wl, rate, extra in cfgs:
        key = "%s@%d %s" % (wl, rate, " ".join(extra))
        r = {"base": [], "new": [], "base_cpu": [], "new_cpu": [], "stats_base": [], "stats_new": []}
        for rep in range(reps):
            order = [("none", None), ("base", base), ("new", new)]
            order = order[rep % 3:] + order[:rep % 3]
            got = {n: run(c, python, wl, rate, extra) for n, c in order}
            if not all(got.values()):
                continue
            for n in ("base", "new"):
                r[n].append(got[n]["elapsed_s"] / got["none"]["elapsed_s"])
                r[n + "_cpu"].append(got[n]["cpu_s"] / got["none"]["cpu_s"])
                r["stats_" + n].append(got[n]["stats"])
        out[key] = r
        def f(v):
            return "%+.1f%% [%+.1f..%+.1f]" % ((statistics.median(v) - 1) * 100, (min(v) - 1) * 100, (max(v) - 1) * 100) if v else "-"
        print("%-28s wall base %s new %s | cpu base %s new %s" % (key, f(r["base"]), f(r["new"]), f(r["base_cpu"]), f(r["new_cpu"])), flush=True)
    C.ensure_out()
    with open(os.path.join(C.OUT, "ab_overhead.json"), "w") as f:
        json.dump(out, f, indent=1)

main()
