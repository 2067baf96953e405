#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""crux, py-spy and Austin 3.7 side by side in one run, over interpreters x threads x rates
(issue 14, "Measure").

A. Tool CPU per thread-sample. bench/workloads/spin.py --depth 50 --threads N (every
   thread on CPU at an exact stack depth) is started once per (python, threads,
   repetition); each tool attaches to it by PID for D1 and then D2 seconds (order
   alternating), in an order of tools rotated between repetitions:
     crux    record -q --stats --pid PID --rate R --duration D -o OUT.txt
     py-spy  record --nonblocking --idle -f raw -r R -o OUT --pid PID   (SIGINT after D s)
     austin  -i 1e6/R -o OUT -p PID                                     (SIGINT after D s)
   py-spy gets --idle and Austin no -s so that all three sample every thread each tick
   (a thread waiting for the GIL sleeps in a futex: py-spy and Austin -s would drop it,
   crux counts it). Tool CPU is the rusage of the tool process (os.wait4); thread-samples
   are the tool's own count: crux --stats thread_samples, the counts of py-spy's raw
   output, one line per sample in Austin's. Cost = (CPU(D2) - CPU(D1)) / (samples(D2) -
   samples(D1)), so attaching, start-up and writing the output drop out. Achieved =
   (samples(D2) - samples(D1)) / (R x N x (D2 - D1)): under 100% the tool did not keep
   the rate asked.
B. Target slowdown. overhead.py's workloads launched under each tool (and under none),
   rows: cpu @10 kHz default mode, threads64 @1 kHz default mode, threads64 @100 Hz
   --native (py-spy --native, which pauses the target per sample, py-spy refuses
   --native with --nonblocking; Austin's native build, austinp). Every repetition runs no
   profiler, no profiler again (A/A: the noise floor), crux, py-spy, Austin in an order
   rotated between repetitions; ratios of the target's self-timed wall and CPU time to
   the first no-profiler run of the same repetition.

The machine is shared and noisy: ratios and median [min..max] over repetitions only.

    python3 bench/matrix.py [--pythons 3.10,3.11,3.12] [--threads 1,16,64]
        [--rates 100,1000,10000] [--reps 3] [--a-reps 1] [--quick] [--out matrix.json]
        [--crux PATH] [--no-build] [--parts a,b]
    python3 bench/matrix.py --render bench/out/matrix.json

Prints markdown tables and writes bench/out/matrix.json (or --out NAME)."""
import argparse
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
import compare  # noqa: E402
from overhead import WORKLOADS, prepare_crux  # noqa: E402

PYTHONS = {
    "3.10": C.pyenv_python("3.10.13"),
    "3.11": C.DEFAULT_PYTHON,  # Debian 12's, stripped static executable
    "3.12": C.pyenv_python("3.12.1"),
}
TOOLS = ["crux", "py-spy", "austin"]
DEPTH = 50
# Part B rows: name, workload (overhead.WORKLOADS), rate, crux options, goal (slowdown)
ROWS_B = [
    ("cpu @10 kHz, default", "cpu", 10000, [], 0.03),
    ("threads64 @1 kHz, default", "threads64", 1000, [], 0.03),
    ("threads64 @100 Hz, --native", "threads64", 100, ["--native"], 0.10),
]
UNSAMPLED = 0.1  # part B: a tool run with fewer samples than 10% of rate x time is left out
EXTRA_CELLS = [(16, 200)]  # the per-thread-sample goal is stated at 16 threads, 200 Hz


def goal_a(py, threads, rate):
    """The issue's goal for crux's CPU per thread-sample in this cell, in words, or ''."""
    if py == "3.10" and (threads, rate) in ((1, 1000), (16, 200)):
        return "<=15 us (3.10)"
    if threads == 1 and rate == 1000 and py == "3.12":
        return "<=5 us per round"
    if threads == 16 and rate == 200:
        return "<=2 us"
    return ""


# --- A. tool CPU per thread-sample ---------------------------------------------------------

AUSTIN_LONG = re.compile(r"Long sampling rate\s*:\s*(\d+)/(\d+)")
PYSPY_SAMPLES = re.compile(r"Samples:\s*(\d+)\s+Errors:\s*(\d+)")


def attach_argv(tool, paths, pid, rate, out, duration):
    crux, pyspy, austin = paths[:3]
    if tool == "crux":
        return compare.tool_argv("crux", paths[:3], pid, rate, out, duration)
    if tool == "py-spy":
        return [pyspy, "record", "--nonblocking", "--idle", "--format", "raw", "-r",
                str(rate), "-o", out, "--pid", str(pid)]
    return [austin, "-i", str(int(round(1e6 / rate))), "-o", out, "-p", str(pid)]


def attach_once(tool, paths, pid, rate, duration, tag):
    """One attach of TOOL to PID for DURATION seconds: the tool's CPU (rusage), its
    thread-samples and what it says about itself."""
    out = os.path.join(C.OUT, "matrix", tag + ".txt")
    if os.path.exists(out):
        os.unlink(out)
    prof = subprocess.Popen(attach_argv(tool, paths, pid, rate, out, duration),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    signalled = False
    if tool != "crux":
        # py-spy's -d counts samples, not seconds, and Austin's -x is whole seconds: both
        # are stopped by SIGINT after DURATION seconds of wall time (both write their
        # output on SIGINT).
        time.sleep(duration)
        if prof.poll() is None:
            prof.send_signal(signal.SIGINT)
            signalled = True
    rc, cpu = C.wait4_rusage(prof, duration + 60)
    wall = time.monotonic() - t0
    err = prof.stderr.read()
    prof.stderr.close()
    rec = {"rc": rc, "cpu_s": cpu, "wall_s": wall, "stopped_by_sigint": signalled}
    if tool == "crux":
        st = C.parse_crux_stats(err)
        rec["self_report"] = {k: st.get(k) for k in (
            "ticks", "late", "thread_samples", "errors", "elapsed_ns",
            "cpu_us_per_thread_sample", "achieved_hz") if k in st}
        rec["samples"] = int(st["thread_samples"]) if "thread_samples" in st else None
        rec["samples_in_output"] = compare.count_samples("crux", out)
    else:
        rec["samples"] = compare.count_samples(tool, out)
        plain = re.sub(r"\x1b\[[0-9;]*m", "", err)
        m = (AUSTIN_LONG if tool == "austin" else PYSPY_SAMPLES).search(plain)
        if m:
            rec["self_report"] = ({"long_samples": int(m.group(1)), "ticks": int(m.group(2))}
                                  if tool == "austin" else
                                  {"ticks": int(m.group(1)), "errors": int(m.group(2))})
        rec["self_report"] = dict(rec.get("self_report", {}),
                                  **compare.tool_self_report(tool, err))
    try:
        os.unlink(out)  # Austin writes ~1.5 KB a thread-sample at depth 50
    except OSError:
        pass
    # Austin 3.7 exits 254 on SIGINT (after writing its output): any status is fine then
    if (rc != 0 and not signalled) or not rec["samples"]:
        rec["error"] = err.strip()[-300:]
        C.log("  %s: %s rc=%s samples=%s: %s" % (tag, tool, rc, rec["samples"],
                                                 rec["error"][-200:]))
    return rec


def part_a(paths, pythons, threads_list, cells, durations, reps):
    d1, d2 = durations
    raw = []
    for py in pythons:
        for n in threads_list:
            rates = [r for (t, r) in cells if t == n]
            if not rates:
                continue
            for rep in range(reps):
                target = C.start_target([PYTHONS[py], os.path.join(C.WORKLOADS, "spin.py"),
                                         "--depth", str(DEPTH), "--threads", str(n)])
                try:
                    time.sleep(0.3)
                    for rate in rates:
                        order = TOOLS[rep % 3:] + TOOLS[:rep % 3]
                        for i, tool in enumerate(order):
                            got = {}
                            for dur in ((d1, d2) if (rep + i) % 2 == 0 else (d2, d1)):
                                tag = "a-%s-%s-t%d-r%d-%ds-%d" % (py, tool, n, rate, dur, rep)
                                got[dur] = attach_once(tool, paths, target.pid, rate, dur, tag)
                            a, b = got[d1], got[d2]
                            row = {"python": py, "threads": n, "rate": rate, "tool": tool,
                                   "rep": rep, "d1": a, "d2": b}
                            if (a["samples"] and b["samples"] and b["samples"] > a["samples"]
                                    and "error" not in a and "error" not in b):
                                ds = b["samples"] - a["samples"]
                                row["us_per_thread_sample"] = (b["cpu_s"] - a["cpu_s"]) * 1e6 / ds
                                row["achieved"] = ds / (rate * n * (d2 - d1))
                                C.log("  %s %2d thr %5d Hz %-6s %6.1f us/thread-sample, "
                                      "achieved %3.0f%%" % (py, n, rate, tool,
                                                            row["us_per_thread_sample"],
                                                            row["achieved"] * 100))
                            raw.append(row)
                finally:
                    C.stop_target(target)
    return raw


def summarize_a(raw):
    cells = {}
    for r in raw:
        key = (r["python"], r["threads"], r["rate"])
        c = cells.setdefault(key, {t: {"us": [], "ach": [], "self_us": [], "failed": 0}
                                   for t in TOOLS})[r["tool"]]
        if "us_per_thread_sample" in r:
            c["us"].append(r["us_per_thread_sample"])
            c["ach"].append(r["achieved"])
            s = r["d2"].get("self_report", {}).get("cpu_us_per_thread_sample")
            if s is not None:
                c["self_us"].append(s)
        else:
            c["failed"] += 1
    out = []
    for (py, n, rate), by in sorted(cells.items()):
        out.append({"python": py, "threads": n, "rate": rate, "goal": goal_a(py, n, rate),
                    "tools": {t: {"us_per_thread_sample": C.summarize(v["us"]),
                                  "achieved": C.summarize(v["ach"]),
                                  "crux_self_us": C.summarize(v["self_us"]),
                                  "failed": v["failed"]} for t, v in by.items()}})
    return out


def spread(s, fmt):
    if not s:
        return "-"
    if s["n"] == 1:
        return fmt % s["median"]
    return "%s [%s..%s]" % (fmt % s["median"], fmt % s["min"], fmt % s["max"])


def render_a(cells, durations, reps):
    lines = ["A. Tool CPU per thread-sample (us), spin.py depth 50, all threads on CPU; "
             "(CPU(%d s) - CPU(%d s)) / (thread-samples(%d s) - thread-samples(%d s)); "
             "achieved = thread-samples / (rate x threads x s); median [min..max] of %d"
             % (durations[1], durations[0], durations[1], durations[0], reps), "",
             "| python | threads | rate Hz | crux us | py-spy us | austin us | crux achieved "
             "| py-spy achieved | austin achieved | crux --stats us | goal (crux) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        t = c["tools"]

        def us(name):
            v = t[name]
            s = spread(v["us_per_thread_sample"], "%.1f")
            return s + (" (%d failed)" % v["failed"] if v["failed"] else "")

        def ach(name):
            return _pct_spread(t[name]["achieved"])
        lines.append("| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            c["python"], c["threads"], c["rate"], us("crux"), us("py-spy"), us("austin"),
            ach("crux"), ach("py-spy"), ach("austin"),
            spread(t["crux"]["crux_self_us"], "%.1f"), c["goal"] or "-"))
    return "\n".join(lines)


def _pct_spread(s):
    if not s:
        return "-"
    if s["n"] == 1:
        return "%.0f%%" % (s["median"] * 100)
    return "%.0f%% [%.0f..%.0f]" % (s["median"] * 100, s["min"] * 100, s["max"] * 100)


def _ratio_spread(s):
    if not s:
        return "-"
    if s["n"] == 1:
        return C.pct(s["median"])
    return "%s [%s..%s]" % (C.pct(s["median"]), C.pct(s["min"]), C.pct(s["max"]))


# --- B. target slowdown --------------------------------------------------------------------

def launch_argv(tool, paths, rate, extra, out, target):
    crux, pyspy, austin, austinp = paths
    native = "--native" in extra
    if tool == "crux":
        return [crux, "record", "-q", "--stats", "--rate", str(rate), "-o", out] + extra + \
            ["--"] + target
    if tool == "py-spy":
        # py-spy refuses --native with --nonblocking: its native mode pauses the target
        mode = ["--native"] if native else ["--nonblocking", "--idle"]
        return [pyspy, "record"] + mode + ["--format", "raw", "-r", str(rate), "-o", out,
                                           "--"] + target
    return [austinp if native else austin, "-i", str(int(round(1e6 / rate))), "-o", out] + \
        target


def launch_once(tool, paths, python, wl, rate, extra, tag):
    script, args, env_x, _ = WORKLOADS[wl]
    env = dict(os.environ)
    env.update(env_x)
    target = [python, os.path.join(C.WORKLOADS, script)] + args
    out = os.path.join(C.OUT, "matrix", tag + ".txt")
    argv = target if tool is None else launch_argv(tool, paths, rate, extra, out, target)
    for attempt in range(3):
        rc, stdout, err, _ = C.run_cmd(argv, env=env, timeout=300)
        res = C.parse_result(stdout)
        # Austin 3.7 now and then exits 32 before the target starts, not finding the
        # runtime of the process it launched (as in trust.py): try again, up to 3 times
        if not (tool == "austin" and rc == 32 and not res):
            break
        C.log("  %s: austin exited 32 before the target ran; again" % tag)
    if tool is not None:
        res_samples = compare.count_samples(tool, out)
        try:
            os.unlink(out)
        except OSError:
            pass
    if rc != 0 or not res:
        C.log("  %s failed (rc=%s): %s" % (tag, rc, err.strip()[-300:]))
        return None
    if tool is not None:
        res["samples"] = res_samples
        if tool == "crux":
            res["stats"] = C.parse_crux_stats(err)
    return res


def part_b(paths, pythons, rows, reps):
    configs = ["none", "A/A", "crux", "py-spy", "austin"]
    out = []
    for py in pythons:
        for name, wl, rate, extra, goal in rows:
            r = {c: {"wall": [], "cpu": []} for c in configs[1:]}
            samples = {c: [] for c in configs[2:]}
            runs = {c: [] for c in configs}
            unsampled = {c: 0 for c in configs[2:]}
            for rep in range(reps):
                order = configs[rep % len(configs):] + configs[:rep % len(configs)]
                got = {}
                for c in order:
                    tool = None if c in ("none", "A/A") else c
                    tag = "b-%s-%s-%d-%s-%d" % (py, wl, rate, c.replace("/", ""), rep)
                    got[c] = launch_once(tool, paths, PYTHONS[py], wl, rate, extra, tag)
                for c in configs:
                    runs[c].append({k: got[c].get(k) for k in ("elapsed_s", "cpu_s", "samples")}
                                   if got[c] else None)
                base = got["none"]
                if not base:
                    continue
                line = []
                for c in configs[1:]:
                    x = got[c]
                    if not x:
                        continue
                    if c in samples and (x.get("samples") or 0) < UNSAMPLED * rate * x["elapsed_s"]:
                        # the tool ran the target but hardly sampled it (austinp on pyenv
                        # 3.12 writes a handful of samples): not a measure of its cost
                        unsampled[c] += 1
                        line.append("%s (%s samples: not counted)" % (c, x.get("samples")))
                        continue
                    r[c]["wall"].append(x["elapsed_s"] / base["elapsed_s"])
                    r[c]["cpu"].append(x["cpu_s"] / base["cpu_s"])
                    if c in samples:
                        samples[c].append(x.get("samples"))
                    line.append("%s %s/%s" % (c, C.pct(r[c]["wall"][-1]),
                                              C.pct(r[c]["cpu"][-1])))
                C.log("  %s %s rep %d (wall/CPU): %s" % (py, name, rep + 1, "  ".join(line)))
            out.append({"python": py, "row": name, "workload": wl, "rate": rate,
                        "crux_options": extra, "goal": goal,
                        "ratios": {c: {"wall": C.summarize(v["wall"]),
                                       "cpu": C.summarize(v["cpu"])} for c, v in r.items()},
                        "samples_in_output": samples, "unsampled_runs": unsampled,
                        "runs": runs})
    return out


def render_b(rows, reps):
    lines = ["B. Target slowdown, with tool / without (first no-profiler run of the same "
             "repetition), wall | target CPU; median [min..max] of %d" % reps, "",
             "| python | row | A/A (noise) | crux | py-spy | austin | goal (crux) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = []
        for c in ("A/A", "crux", "py-spy", "austin"):
            v = r["ratios"][c]
            bad = r.get("unsampled_runs", {}).get(c, 0)
            cells.append("%s \\| %s%s" % (_ratio_spread(v["wall"]), _ratio_spread(v["cpu"]),
                                           " (%d run(s) left out: hardly sampled)" % bad
                                           if bad else ""))
        lines.append("| %s | %s | %s | <=%d%% |" % (r["python"], r["row"], " | ".join(cells),
                                                   round(r["goal"] * 100)))
    lines.append("")
    lines.append("--native row: py-spy --native (pauses the target per sample), Austin's "
                 "austinp (native frames). A tool run with fewer samples in its output than "
                 "%d%% of rate x the target's time is left out of its ratios." % (UNSAMPLED * 100))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pythons", default="3.10,3.11,3.12")
    ap.add_argument("--threads", default="1,16,64")
    ap.add_argument("--rates", default="100,1000,10000")
    ap.add_argument("--reps", type=int, default=3, help="part B repetitions")
    ap.add_argument("--a-reps", type=int, default=1, help="part A repetitions")
    ap.add_argument("--durations", default="1,3", help="part A D1,D2 seconds")
    ap.add_argument("--rows", default="0,1,2", help="part B rows by index: %s" % ", ".join(
        "%d %s" % (i, r[0]) for i, r in enumerate(ROWS_B)))
    ap.add_argument("--parts", default="a,b")
    ap.add_argument("--no-extra", action="store_true",
                    help="skip the extra part A cell 16 threads @200 Hz (the issue's goal)")
    ap.add_argument("--quick", action="store_true",
                    help="3.12 only, 1 and 16 threads at 1 kHz (+16@200), durations 1,2; "
                         "part B cpu@10k and threads64@1k, 1 repetition")
    ap.add_argument("--out", default="matrix.json")
    ap.add_argument("--crux")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--render", metavar="JSON", help="print the tables of an earlier run again")
    a = ap.parse_args()
    if a.render:
        with open(a.render) as f:
            res = C.json.load(f)
        if "a" in res:
            print(render_a(res["a"]["cells"], res["a"]["durations_s"], res["a"]["reps"]))
        if "b" in res:
            print()
            print(render_b(res["b"]["rows"], res["b"]["reps"]))
        return
    if a.quick:
        a.pythons, a.threads, a.rates, a.durations = "3.12", "1,16", "1000", "1,2"
        a.reps, a.a_reps, a.rows = 1, 1, "0,1"
    t_start = time.monotonic()
    crux, crux_info = prepare_crux(a.crux, not a.no_build, "matrix")
    pyspy, austin, versions = compare.ensure_tools()
    austinp = os.path.join(os.path.dirname(austin), "austinp")
    paths = (crux, pyspy, austin, austinp)
    os.makedirs(os.path.join(C.OUT, "matrix"), exist_ok=True)
    pythons = a.pythons.split(",")
    for p in pythons:
        if p not in PYTHONS:
            sys.exit("bench: --pythons: %s is not one of %s" % (p, ",".join(PYTHONS)))
    threads = [int(x) for x in a.threads.split(",")]
    rates = [int(x) for x in a.rates.split(",")]
    cells = [(n, r) for n in threads for r in rates]
    if not a.no_extra:
        cells += [c for c in EXTRA_CELLS if c not in cells and c[0] in threads]
    durations = tuple(int(x) for x in a.durations.split(","))
    result = {"benchmark": "matrix", "argv": sys.argv[1:], "machine": C.machine(),
              "crux": crux_info, "tools": versions,
              "pythons": {p: C.python_version(PYTHONS[p]) for p in pythons}}
    print("crux %s (%s)%s, %s, %s; pythons %s; load average at start %.1f" % (
        crux_info["commit"], crux_info["binary"],
        " + uncommitted src changes" if crux_info["src_dirty"] else "",
        versions["py-spy"], versions["austin"],
        ", ".join(result["pythons"].values()), os.getloadavg()[0]))
    parts = a.parts.split(",")
    if "a" in parts:
        C.log("A. tool CPU per thread-sample")
        raw = part_a(paths, pythons, threads, cells, durations, a.a_reps)
        result["a"] = {"durations_s": durations, "reps": a.a_reps, "depth": DEPTH,
                       "cells": summarize_a(raw), "raw": raw}
        print()
        print(render_a(result["a"]["cells"], durations, a.a_reps))
        write_partial(a.out, result)
    if "b" in parts:
        C.log("B. target slowdown")
        rows = [ROWS_B[int(i)] for i in a.rows.split(",")]
        result["b"] = {"reps": a.reps, "rows": part_b(paths, pythons, rows, a.reps)}
        print()
        print(render_b(result["b"]["rows"], a.reps))
    result["machine"]["loadavg_at_end"] = os.getloadavg()
    result["wall_s"] = time.monotonic() - t_start
    path = C.write_json(a.out, result)
    print("\n%.0f s in all; wrote %s" % (result["wall_s"], path))


def write_partial(name, result):
    C.write_json(name, result)


if __name__ == "__main__":
    main()
