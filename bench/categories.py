#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Time categories next to Scalene's, and the overhead of each tool.

1. Shares: bench/workloads/kinds.py runs one function per kind of time (py_loop: Python,
   native_hash: OpenSSL, np_matmul: BLAS, do_sleep and do_recv: off CPU). It is profiled
   once by crux (record --idle, lines JSON) and once by Scalene (run --cpu-only, JSON);
   for each function the table shows the split of its time into python / native / system
   as each tool reports it (each tool's per-function percentages renormalized to the
   function's own total, so the two are comparable; crux's gil counts as system, its
   "cpu" (python and native not told apart) is shown on its own).
2. Overhead: fixed-work workloads (bench/workloads/cpu.py, numpy_work.py) with no profiler
   and under crux (default mode at 100 Hz and 1 kHz; plain mode at 1 kHz), Scalene, and
   py-spy record --native at 100 Hz, and A/A (no tool against no tool: the noise floor).
   Each repetition runs every tool, in an order rotated between repetitions, in an
   adjacent pair with a no-tool run (which goes first alternating); the ratios are the
   workload's self-timed wall time (and CPU time) with the tool over without.

Scalene and py-spy come from PyPI into bench/out/venv-scalene (created with Debian's
python3 and its system site packages, for numpy); every workload runs under that venv's
python so all tools profile the same interpreter.

    python3 bench/categories.py [--reps 5] [--scale 2] [--skip-shares] [--skip-overhead]
                                [--tools crux@100,scalene,...]
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from overhead import prepare_crux  # noqa: E402

VENV = os.path.join(C.OUT, "venv-scalene")
FUNCS = ["py_loop", "native_hash", "np_matmul", "do_sleep", "do_recv"]


def ensure_venv():
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(os.path.join(VENV, "bin", "scalene")):
        subprocess.run([C.DEFAULT_PYTHON, "-m", "venv", "--system-site-packages", VENV],
                       check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", "scalene", "py-spy"], check=True)
    return py


def crux_shares(crux, py, scale, rate):
    """crux's split of each function's samples (total: the function and what it calls),
    with --idle so that off-CPU time (sleep, recv) is sampled as Scalene's wall clock is."""
    out = os.path.join(C.OUT, "categories-crux.json")
    argv = [crux, "record", "-q", "--idle", "--rate", str(rate), "--format", "lines", "-o",
            out, "--", py, os.path.join(C.WORKLOADS, "kinds.py"), str(scale)]
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("bench: crux failed: " + r.stderr[-1000:])
    with open(out) as f:
        data = json.load(f)
    res = {}
    for r in data["functions"]:
        if r["function"] in FUNCS and r["total"]:
            c = r["categories"]
            t = float(r["total"])
            res[r["function"]] = {"python": c["python"] / t, "native": c["native"] / t,
                                  "system": (c["system"] + c["gil"]) / t,
                                  "unsplit": c.get("cpu", 0) / t, "samples": r["total"]}
    return res, data.get("categories_note")


def scalene_shares(py, scale):
    out = os.path.join(C.OUT, "categories-scalene.json")
    argv = [py, "-m", "scalene", "run", "--cpu-only", "-o", out,
            os.path.join(C.WORKLOADS, "kinds.py"), "---", str(scale)]
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0 or not os.path.exists(out):
        return None, "scalene failed: " + (r.stderr or r.stdout)[-400:]
    with open(out) as f:
        data = json.load(f)
    res = {}
    for path, fdata in data.get("files", {}).items():
        for fn in fdata.get("functions", []):
            name = fn.get("line", "").strip()
            name = name.split(".")[-1]
            if name not in FUNCS:
                continue
            p = fn.get("n_cpu_percent_python", 0.0)
            n = fn.get("n_cpu_percent_c", 0.0)
            s = fn.get("n_sys_percent", 0.0)
            t = p + n + s
            if t > 0:
                res[name] = {"python": p / t, "native": n / t, "system": s / t,
                             "percent_of_run": t}
    return res, None


OVERHEAD_WORKLOADS = {
    "cpu": ("cpu.py", ["--units", "24000", "--depth", "20"], {}),
    "numpy": ("numpy_work.py", ["--rounds", "800"], {"OPENBLAS_NUM_THREADS": "1"}),
}
TOOL_NAMES = ["A/A (noise)", "crux@100", "crux@1k", "crux-plain@1k", "scalene",
              "py-spy --native@100"]


def tools(crux, py):
    """name -> function(target argv) -> argv with the tool (None: no tool, the A/A pair)."""
    pyspy = os.path.join(VENV, "bin", "py-spy")
    out = os.path.join(C.OUT, "categories-overhead")
    os.makedirs(out, exist_ok=True)
    return {
        "A/A (noise)": lambda t: t,
        "crux@100": lambda t: [crux, "record", "-q", "--rate", "100", "-o",
                               os.path.join(out, "c.txt"), "--"] + t,
        "crux@1k": lambda t: [crux, "record", "-q", "--rate", "1000", "-o",
                              os.path.join(out, "c.txt"), "--"] + t,
        "crux-plain@1k": lambda t: [crux, "record", "-q", "--rate", "1000", "--no-categories",
                                    "--no-memory", "-o", os.path.join(out, "c.txt"), "--"] + t,
        "scalene": lambda t: [py, "-m", "scalene", "run", "--cpu-only", "-o",
                              os.path.join(out, "s.json"), t[1], "---"] + t[2:],
        "py-spy --native@100": lambda t: [pyspy, "record", "--native", "-r", "100", "-f", "raw",
                                          "-o", os.path.join(out, "p.txt"), "--"] + t,
    }


def run_workload(argv, env):
    rc, out, err, _ = C.run_cmd(argv, env=env)
    res = C.parse_result(out)
    if rc != 0 or not res:
        C.log("  failed (rc=%s): %s: %s" % (rc, " ".join(argv[:6]), (err or out)[-300:]))
        return None
    return res


def overhead(crux, py, reps, names):
    """Each repetition runs, for every tool in an order rotated between repetitions, an
    adjacent pair (no tool, tool), which goes first alternating; ratios within the pair."""
    make = tools(crux, py)
    table = {}
    for wl, (script, args, extra) in OVERHEAD_WORKLOADS.items():
        env = dict(os.environ)
        env.update(extra)
        target = [py, os.path.join(C.WORKLOADS, script)] + args
        wall = {n: [] for n in names}
        cpu = {n: [] for n in names}
        for rep in range(reps):
            order = names[rep % len(names):] + names[:rep % len(names)]
            line = []
            for name in order:
                first_none = (rep + names.index(name)) % 2 == 0
                pair = [None, name] if first_none else [name, None]
                got = {}
                for which in pair:
                    got[which] = run_workload(target if which is None else make[which](target),
                                              env)
                if got[None] and got[name]:
                    wall[name].append(got[name]["elapsed_s"] / got[None]["elapsed_s"])
                    cpu[name].append(got[name]["cpu_s"] / got[None]["cpu_s"])
                    line.append("%s %s" % (name, C.pct(wall[name][-1])))
            C.log("  %s rep %d: %s" % (wl, rep + 1, "  ".join(line)))
        for name in names:
            table[(wl, name)] = {"wall": C.summarize(wall[name]), "cpu": C.summarize(cpu[name])}
    return table


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--scale", type=float, default=2.0,
                    help="kinds.py seconds per function (x1 s; sleep and recv x0.5 s)")
    ap.add_argument("--rate", type=int, default=100, help="crux's rate for the shares")
    ap.add_argument("--tools", default=",".join(TOOL_NAMES),
                    help="overhead tools, from: " + ", ".join(TOOL_NAMES))
    ap.add_argument("--crux", help="crux binary (default: build/crux, rebuilt)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--skip-shares", action="store_true")
    ap.add_argument("--skip-overhead", action="store_true")
    ap.add_argument("--out", default="categories.json", help="file name under bench/out")
    a = ap.parse_args()
    crux, info = prepare_crux(a.crux, not (a.crux or a.no_build), "categories")
    py = ensure_venv()
    result = {"crux": info, "machine": C.machine(), "python": py,
              "python_version": C.python_version(py), "scale": a.scale, "rate": a.rate}
    if not a.skip_shares:
        cs, note = crux_shares(crux, py, a.scale, a.rate)
        ss, err = scalene_shares(py, a.scale)
        rows = []
        for f in FUNCS:
            c = cs.get(f)
            s = (ss or {}).get(f)

            def fmt(d):
                return "%3.0f / %3.0f / %3.0f" % (100 * d["python"], 100 * d["native"],
                                                  100 * d["system"]) if d else "-"
            rows.append([f, fmt(c), "%.0f%%" % (100 * c["unsplit"]) if c else "-",
                         "%d" % c["samples"] if c else "-", fmt(s),
                         "%.1f%%" % s["percent_of_run"] if s else "-"])
        print("\ntime split per function, python / native / system %% of the function's time "
              "(crux %s at %d Hz with --idle; note: %s)" % (info["commit"], a.rate, note))
        print(C.table(["function", "crux", "crux unsplit", "crux samples", "scalene",
                       "scalene % of run"], rows))
        if err:
            print(err)
        result.update(crux_shares=cs, crux_note=note, scalene_shares=ss, scalene_error=err)
    if not a.skip_overhead:
        names = [n for n in TOOL_NAMES if n in a.tools.split(",")]
        ov = overhead(crux, py, a.reps, names)
        print("\noverhead: workload time with the tool / without, adjacent pairs, %d reps"
              % a.reps)
        print(C.table(["workload", "tool", "wall: median [min..max]", "wall: gmean (95% CI)",
                       "target CPU: median [min..max]"],
                      [[wl, name, C.fmt_spread(v["wall"]), C.fmt_ci(v["wall"]),
                        C.fmt_spread(v["cpu"])] for (wl, name), v in ov.items()]))
        result["overhead"] = {"%s %s" % k: v for k, v in ov.items()}
    result["machine"]["loadavg_at_end"] = os.getloadavg()
    print("\nwrote %s" % C.write_json(a.out, result))


if __name__ == "__main__":
    main()
