#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Time categories next to Scalene's, and the overhead of each tool.

1. Shares: bench/workloads/kinds.py runs one function per kind of time (py_loop: Python,
   native_hash: OpenSSL, np_matmul: BLAS, do_sleep and do_recv: off CPU). It is profiled
   once by crux (record --idle, lines JSON) and once by Scalene (run --cpu-only, JSON);
   for each function the table shows the split of its time into python / native / system
   as each tool reports it (each tool's per-function percentages renormalized to the
   function's own total, so the two are comparable).
2. Overhead: fixed-work workloads (bench/workloads/cpu.py, numpy_work.py) with no profiler
   and under crux (default mode at 100 Hz and 1 kHz; plain mode at 1 kHz), Scalene, and
   py-spy record --native at 100 Hz, in adjacent pairs (tool, none), repeated; the ratio is
   the workload's self-timed wall time with the tool over without.

Scalene and py-spy come from PyPI into bench/out/venv-scalene (created with Debian's
python3 and its system site packages, for numpy); every workload runs under that venv's
python so all tools profile the same interpreter.

    python3 bench/categories.py [--reps 3] [--skip-overhead]
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

VENV = os.path.join(C.OUT, "venv-scalene")
FUNCS = ["py_loop", "native_hash", "np_matmul", "do_sleep", "do_recv"]


def ensure_venv():
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(os.path.join(VENV, "bin", "scalene")):
        subprocess.run([C.DEFAULT_PYTHON, "-m", "venv", "--system-site-packages", VENV],
                       check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", "scalene", "py-spy"], check=True)
    return py


def crux_shares(crux, py):
    out = os.path.join(C.OUT, "categories-crux.json")
    argv = [crux, "record", "-q", "--idle", "--rate", "100", "--format", "lines", "-o", out,
            "--", py, os.path.join(C.WORKLOADS, "kinds.py")]
    subprocess.run(argv, check=True, capture_output=True)
    with open(out) as f:
        data = json.load(f)
    res = {}
    for r in data["functions"]:
        if r["function"] in FUNCS and r["total"]:
            c = r["categories"]
            t = float(r["total"])
            res[r["function"]] = {"python": c["python"] / t, "native": c["native"] / t,
                                  "system": (c["system"] + c["gil"]) / t,
                                  "samples": r["total"]}
    return res, data.get("categories_note")


def scalene_shares(py):
    out = os.path.join(C.OUT, "categories-scalene.json")
    argv = [py, "-m", "scalene", "run", "--cpu-only", "-o", out,
            os.path.join(C.WORKLOADS, "kinds.py")]
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


def tools(crux, py):
    pyspy = os.path.join(VENV, "bin", "py-spy")
    out = os.path.join(C.OUT, "categories-overhead")
    os.makedirs(out, exist_ok=True)
    return [
        ("crux@100", lambda t: [crux, "record", "-q", "--rate", "100", "-o",
                                os.path.join(out, "c.txt"), "--"] + t),
        ("crux@1k", lambda t: [crux, "record", "-q", "--rate", "1000", "-o",
                               os.path.join(out, "c.txt"), "--"] + t),
        ("crux-plain@1k", lambda t: [crux, "record", "-q", "--rate", "1000", "--no-categories",
                                     "--no-memory", "-o", os.path.join(out, "c.txt"), "--"] + t),
        ("scalene", lambda t: [py, "-m", "scalene", "run", "--cpu-only", "-o",
                               os.path.join(out, "s.json"), t[1], "---"] + t[2:]),
        ("py-spy --native@100", lambda t: [pyspy, "record", "--native", "-r", "100", "-f", "raw",
                                           "-o", os.path.join(out, "p.txt"), "--"] + t),
    ]


def run_workload(argv, env):
    rc, out, err, _ = C.run_cmd(argv, env=env)
    res = C.parse_result(out)
    if rc != 0 or not res:
        C.log("  failed (rc=%s): %s" % (rc, (err or out)[-300:]))
        return None
    return res["elapsed_s"]


def overhead(crux, py, reps):
    table = {}
    for wl, (script, args, extra) in OVERHEAD_WORKLOADS.items():
        env = dict(os.environ)
        env.update(extra)
        target = [py, os.path.join(C.WORKLOADS, script)] + args
        for name, make in tools(crux, py):
            ratios = []
            for rep in range(reps):
                pair = [None, name] if rep % 2 == 0 else [name, None]
                got = {}
                for which in pair:
                    got[which] = run_workload(target if which is None else make(target), env)
                if got[None] and got[name]:
                    ratios.append(got[name] / got[None])
            table[(wl, name)] = C.summarize(ratios)
            C.log("  %s %s: %s" % (wl, name, C.fmt_spread(table[(wl, name)])))
    return table


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--crux", help="crux binary (default: build/crux, rebuilt)")
    ap.add_argument("--skip-overhead", action="store_true")
    a = ap.parse_args()
    crux, info = C.prepare_crux(a.crux, build=not a.crux)
    py = ensure_venv()
    cs, note = crux_shares(crux, py)
    ss, err = scalene_shares(py)
    rows = []
    for f in FUNCS:
        c = cs.get(f)
        s = (ss or {}).get(f)

        def fmt(d):
            return "%3.0f / %3.0f / %3.0f" % (100 * d["python"], 100 * d["native"],
                                              100 * d["system"]) if d else "-"
        rows.append([f, fmt(c), fmt(s)])
    print("\ntime split per function, python / native / system %% of the function's time "
          "(crux %s; %s)" % (info["commit"], note))
    print(C.table(["function", "crux", "scalene"], rows))
    if err:
        print(err)
    result = {"crux": info, "machine": C.machine(), "crux_shares": cs, "scalene_shares": ss}
    if not a.skip_overhead:
        ov = overhead(crux, py, a.reps)
        print("\noverhead: workload wall time with the tool / without, %d pairs" % a.reps)
        print(C.table(["workload", "tool", "median [min..max]"],
                      [[wl, name, C.fmt_spread(v)] for (wl, name), v in ov.items()]))
        result["overhead"] = {"%s %s" % k: v for k, v in ov.items()}
    print("\nwrote %s" % C.write_json("categories.json", result))


if __name__ == "__main__":
    main()
