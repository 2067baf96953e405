#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What allocation profiling costs the program, side by side in one run: no profiler,
crux record --allocations (sampled, default 512 KiB), tracemalloc (-X tracemalloc=1, every
allocation), memray (python -m memray run) and Scalene (python -m scalene run, CPU and
memory) on three allocation-heavy workloads (bench/workloads/alloc_work.py): object churn
(small dicts and lists), numpy temporaries (a*b + c*d - e on 1M floats), and a pure-Python
tokenizer (split, normalise, join).

Each run times only its workload's own loop (the workload prints the seconds), so tool
start-up and output writing are left out for every tool alike. Configurations are
interleaved and their order rotated each repetition; the slowdown of a run is its time over
the median no-profiler time of the same workload. Reported: median [min..max] per workload,
and the geometric mean over workloads of the medians.

memray and scalene come from PyPI (bench/requirements-alloc.txt), installed into the
interpreter that runs the workloads:

    python -m pip install -r bench/requirements-alloc.txt
    python3 bench/alloc_cost.py [--python /work/main/.venv/bin/python] [--reps 5]

--clock cpu times the workloads by their own CPU time (time.process_time), which a shared
machine's load disturbs far less than wall time; it leaves out the profiler's own processes
(crux's sampler), so it is the cost of the in-process hooks alone.

Before/after an agent change in one run: --baseline-agent DIR (a copy of an older build/agent)
adds the tool "crux-base", the same crux with that agent; --tools picks the tools.
"""
import argparse
import math
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

WORK = os.path.join(C.WORKLOADS, "alloc_work.py")
# scale per workload: about a second of work each without a profiler on the bench machine
SCALES = {"churn": 3.0, "numpy": 0.7, "tokenizer": 2.5}
TOOLS = ["none", "crux", "tracemalloc", "memray", "scalene"]
BASELINE_AGENT = None  # --baseline-agent: the agent directory of "crux-base"
CLOCK = "wall"  # --clock cpu: the workload's own CPU time (process_time) instead


def argv_for(tool, crux, python, mode, tmp):
    prog = [WORK, mode, "--scale", str(SCALES[mode])]
    if tool == "none":
        return [python] + prog
    if tool in ("crux", "crux-base"):
        return [crux, "record", "--allocations", "--format", "lines", "-o",
                os.path.join(tmp, "crux.txt"), "--", python] + prog
    if tool == "tracemalloc":
        return [python, "-X", "tracemalloc=1"] + prog
    if tool == "memray":
        return [python, "-m", "memray", "run", "-q", "-f", "-o",
                os.path.join(tmp, "memray.bin")] + prog
    return [python, "-m", "scalene", "run", "-o", os.path.join(tmp, "scalene.json")] + prog


def run(tool, crux, python, mode, tmp):
    # the crux under test is a copy in bench/out: point it at the agent built beside build/crux
    agent = BASELINE_AGENT if tool == "crux-base" else os.path.join(C.ROOT, "build", "agent")
    env = dict(os.environ, CRUX_AGENT_DIR=agent)
    rc, out, err, _ = C.run_cmd(argv_for(tool, crux, python, mode, tmp), env=env, timeout=300)
    res = C.parse_result(out) or C.parse_result(err)
    if not res:
        C.log("bench: %s %s gave no result (rc %s): %s" % (tool, mode, rc, err[-400:]))
        return None
    return res["cpu_seconds"] if CLOCK == "cpu" else res["seconds"]


def available(python, module):
    rc, _, _, _ = C.run_cmd([python, "-c", "import %s" % module], timeout=60)
    return rc == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default="/work/main/.venv/bin/python")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--crux", default=None, help="crux binary (default: build/crux, rebuilt)")
    ap.add_argument("--workloads", default="churn,numpy,tokenizer")
    ap.add_argument("--out", default="alloc_cost.json")
    ap.add_argument("--baseline-agent", default=None,
                    help="an older build/agent directory: adds the tool crux-base")
    ap.add_argument("--tools", default=None, help="comma-separated subset (none is always run)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: time the workload by its process's CPU time, which leaves out "
                    "waiting for a core on a shared machine (and the profiler's own processes)")
    args = ap.parse_args()
    global BASELINE_AGENT, CLOCK
    CLOCK = args.clock
    BASELINE_AGENT = args.baseline_agent and os.path.abspath(args.baseline_agent)
    crux, info = C.prepare_crux(args.crux, build=args.crux is None)
    all_tools = TOOLS[:1] + (["crux-base"] if BASELINE_AGENT else []) + TOOLS[1:]
    if args.tools:
        want = set(args.tools.split(",")) | {"none"}
        all_tools = [t for t in all_tools if t in want]
    tools = [t for t in all_tools if t not in ("memray", "scalene") or available(args.python, t)]
    modes = args.workloads.split(",")
    times = {(t, m): [] for t in tools for m in modes}
    with tempfile.TemporaryDirectory(prefix="crux-alloc-cost-") as tmp:
        for rep in range(args.reps):
            for m in modes:
                order = tools[rep % len(tools):] + tools[:rep % len(tools)]
                for t in order:
                    times[(t, m)].append(run(t, crux, args.python, m, tmp))
            C.log("bench: repetition %d/%d done" % (rep + 1, args.reps))
    ratios, rows = {}, []
    for m in modes:
        base = statistics.median([x for x in times[("none", m)] if x])
        for t in tools:
            r = [x / base for x in times[(t, m)] if x]
            ratios[(t, m)] = C.summarize(r)
    for t in tools[1:]:
        meds = [ratios[(t, m)]["median"] for m in modes if ratios[(t, m)]]
        g = math.exp(sum(math.log(x) for x in meds) / len(meds)) if meds else None
        rows.append([t] + [C.fmt_spread(ratios[(t, m)], lambda x: "%.2fx" % x) for m in modes] +
                    ["%.2fx (%s)" % (g, C.pct(g)) if g else "-"])
    base_row = ["(no profiler, s)"] + [
        "%.2f [%.2f..%.2f]" % (statistics.median(times[("none", m)]), min(times[("none", m)]),
                               max(times[("none", m)])) for m in modes] + [""]
    print("allocation profiling cost: slowdown of the workload's timed loop (%s time), median "
          "[min..max] of %d interleaved repetitions; python %s" %
          (args.clock, args.reps, C.python_version(args.python)))
    print(C.table(["tool"] + modes + ["geomean of medians"], [base_row] + rows))
    C.write_json(args.out, {"machine": C.machine(), "crux": info, "reps": args.reps,
                            "times": {"%s/%s" % k: v for k, v in times.items()},
                            "ratios": {"%s/%s" % k: v for k, v in ratios.items()}})


if __name__ == "__main__":
    main()
