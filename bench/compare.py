#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""crux side by side with py-spy and Austin, on the same workload at the same rate.

The tools come from PyPI into a throwaway venv this script creates (bench/out/venv-tools:
py-spy, austin-dist). Every tool is attached with --pid / -p, so its own CPU time is its
process's alone (os.wait4 rusage of the tool process) and never mixed with the target's.

A. Overhead: bench/workloads/cpu.py waits on stdin; the tool attaches, and 0.7 s later
   the work starts; the target times the work itself. Each configuration runs in an
   adjacent pair with a no-profiler run (order alternating, configurations rotated between
   repetitions); ratio = with tool / without, for wall and the target's CPU time. Samples
   achieved = samples counted in the tool's output / (rate x work time). A tool that slows
   the target more than 5x in one repetition is not run again at that rate.
B. Cost per sample at stack depth 50 and 100: bench/workloads/spin.py (one thread, exact
   depth, CPU loop); each tool attached for D1 and D2 seconds; cost = (CPU(D2) - CPU(D1)) /
   (samples(D2) - samples(D1)), which cancels start-up and output writing; the plain
   CPU / samples of the longer run is reported too.

Modes compared (all drop idle threads, as crux does by default): crux (non-blocking),
py-spy --nonblocking, py-spy (default: pauses the target for each sample), Austin -s
(sleepless; Austin never pauses the target).

    python3 bench/compare.py [--rates 100,1000,10000] [--reps 3] [--quick]

Prints tables and writes bench/out/compare.json."""
import argparse
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

VENV = os.path.join(C.OUT, "venv-tools")
# austin-dist 4.0.0's binary needs glibc 2.38 (Debian 12 has 2.36): pin the last 3.x.
PIP_PACKAGES = ["py-spy", "austin-dist==3.7.0"]
TOOLS = ["crux", "py-spy --nonblocking", "py-spy (blocking)", "austin -s"]
SLOW_RATIO = 5.0  # a tool that slows the target more than this is measured once per rate


def ensure_tools():
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(py):
        C.log("creating %s" % VENV)
        subprocess.run([C.DEFAULT_PYTHON, "-m", "venv", VENV], check=True)
    pyspy, austin = os.path.join(VENV, "bin", "py-spy"), os.path.join(VENV, "bin", "austin")
    if not (os.path.exists(pyspy) and os.path.exists(austin)):
        C.log("pip install %s" % " ".join(PIP_PACKAGES))
        subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "-q"] + PIP_PACKAGES,
                       check=True)
    versions = {}
    for name, argv in (("py-spy", [pyspy, "--version"]), ("austin", [austin, "--version"])):
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("bench: %s does not run: %s" % (name, r.stderr.strip()))
        versions[name] = (r.stdout + r.stderr).strip().splitlines()[-1]
    return pyspy, austin, versions


def tool_argv(tool, paths, pid, rate, out, duration=None):
    crux, pyspy, austin = paths
    if tool == "crux":
        argv = [crux, "record", "-q", "--stats", "--pid", str(pid), "--rate", str(rate),
                "-o", out]
        if duration:
            argv += ["--duration", str(duration)]
    elif tool.startswith("py-spy"):
        argv = [pyspy, "record", "--format", "raw", "-r", str(rate), "-o", out, "--pid",
                str(pid)]
        if "nonblocking" in tool:
            argv.append("--nonblocking")
        if duration:
            argv += ["-d", str(int(duration))]
    elif tool.startswith("austin"):
        argv = [austin, "-s", "-i", str(int(round(1e6 / rate))), "-o", out, "-p", str(pid)]
        if duration:
            argv += ["-x", str(int(duration))]
    else:
        raise ValueError(tool)
    return argv


def count_samples(tool, path):
    """Samples (thread stacks) in a tool's output: collapsed counts for crux and py-spy,
    one line per sample for Austin (lines with at least one frame)."""
    n = 0
    try:
        with open(path, errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                if not line or line.startswith("#"):
                    continue
                if tool.startswith("austin"):
                    stack = line.rpartition(" ")[0]
                    if stack.count(";") >= 2:  # P<pid>;T<tid>;frame...
                        n += 1
                else:
                    try:
                        n += int(line.rpartition(" ")[2])
                    except ValueError:
                        pass
    except OSError:
        return None
    return n


AUSTIN_SAMPLING = re.compile(r"Frame sampling \(min/avg/max\)\s*:\s*\S*?(\d+)/(\d+)/(\d+)")


def tool_self_report(tool, err):
    """What the tool says about its own costs, for the JSON (crux --stats, Austin's
    statistics block)."""
    if tool == "crux":
        return C.parse_crux_stats(err)
    if tool.startswith("austin"):
        plain = re.sub(r"\x1b\[[0-9;]*m", "", err)
        m = AUSTIN_SAMPLING.search(plain)
        if m:
            return {"frame_sampling_us_min_avg_max": [int(x) for x in m.groups()]}
    return {}


# --- A. overhead ---------------------------------------------------------------------------

def overhead_run(paths, python, units, tool, rate, tag, attach_wait):
    target = C.start_target([python, os.path.join(C.WORKLOADS, "cpu.py"), "--units",
                             str(units), "--wait-go"])
    prof, out = None, None
    try:
        if tool:
            out = os.path.join(C.OUT, "compare", tag + ".txt")
            if os.path.exists(out):
                os.unlink(out)
            prof = subprocess.Popen(tool_argv(tool, paths, target.pid, rate, out),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True)
            time.sleep(attach_wait)
        else:
            time.sleep(0.2)
        target.stdin.write("go\n")
        target.stdin.flush()
        stdout = target.stdout.read()
        target.wait()
        res = C.parse_result(stdout)
        if tool:
            rc, cpu = C.wait4_rusage(prof, 60)
            err = prof.stderr.read()
            prof.stderr.close()
            if res:
                res["tool_rc"] = rc
                res["tool_cpu_s"] = cpu
                res["samples"] = count_samples(tool, out)
                res["self_report"] = tool_self_report(tool, err)
        return res
    finally:
        C.stop_target(target)
        if prof and prof.poll() is None:
            prof.kill()
            prof.wait()


def overhead(paths, python, units, rates, reps, attach_wait):
    configs = [("A/A (noise)", None)] + [(t, t) for t in TOOLS]
    res = {}
    for rate in rates:
        wall = {c[0]: [] for c in configs}
        cpu = {c[0]: [] for c in configs}
        ach = {c[0]: [] for c in configs}
        tcpu = {c[0]: [] for c in configs}
        skip = set()
        for rep in range(reps):
            order = configs[rep % len(configs):] + configs[:rep % len(configs)]
            line = []
            for name, tool in order:
                if name in skip:
                    continue
                # the first of the pair alternates per configuration between repetitions
                first = (rep + [c[0] for c in configs].index(name)) % 2 == 0
                pair = [None, tool] if first else [tool, None]
                got = []
                for t in pair:
                    tag = "ovh-%s-%d-%d" % ((t or "none").replace(" ", "").replace("(", "")
                                            .replace(")", ""), rate, rep)
                    got.append(overhead_run(paths, python, units, t, rate, tag, attach_wait))
                bi = 0 if pair[0] is None else 1
                b, x = got[bi], got[1 - bi]
                if not b or not x:
                    C.log("  %s @ %d Hz rep %d: a run failed" % (name, rate, rep))
                    continue
                wall[name].append(x["elapsed_s"] / b["elapsed_s"])
                cpu[name].append(x["cpu_s"] / b["cpu_s"])
                if tool:
                    ach[name].append(x["samples"] / (rate * x["elapsed_s"])
                                     if x.get("samples") is not None else None)
                    tcpu[name].append(x["tool_cpu_s"] / x["elapsed_s"])
                line.append("%s %s" % (name, C.pct(wall[name][-1])))
                if wall[name][-1] > SLOW_RATIO:
                    skip.add(name)  # one run says enough; keep the benchmark's time bounded
            C.log("  %d Hz rep %d: %s" % (rate, rep + 1, "  ".join(line)))
        res[str(rate)] = {name: {"wall_ratio": C.summarize(wall[name]),
                                 "cpu_ratio": C.summarize(cpu[name]),
                                 "samples_achieved_fraction": C.summarize(ach[name]),
                                 "tool_cpu_per_work_second": C.summarize(tcpu[name])}
                          for name, _ in configs}
    return res


# --- B. cost per sample --------------------------------------------------------------------

def cost_run(paths, python, depth, tool, rate, duration, tag):
    target = C.start_target([python, os.path.join(C.WORKLOADS, "spin.py"), "--depth",
                             str(depth), "--threads", "1"])
    try:
        time.sleep(0.3)
        out = os.path.join(C.OUT, "compare", tag + ".txt")
        if os.path.exists(out):
            os.unlink(out)
        prof = subprocess.Popen(tool_argv(tool, paths, target.pid, rate, out, duration),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        t0 = time.monotonic()
        rc, cpu = C.wait4_rusage(prof, duration + 60)
        wall = time.monotonic() - t0
        err = prof.stderr.read()
        prof.stderr.close()
    finally:
        C.stop_target(target)
    n = count_samples(tool, out)
    if rc != 0 or not n:
        C.log("  %s: %s failed (rc=%s, samples=%s): %s" % (tag, tool, rc, n, err[-300:]))
        return None
    return {"cpu_s": cpu, "samples": n, "wall_s": wall, "rc": rc,
            "self_report": tool_self_report(tool, err)}


def cost(paths, python, depths, rate, durations, reps):
    d1, d2 = durations
    res = {}
    for depth in depths:
        runs = {t: {d1: [], d2: []} for t in TOOLS}
        for rep in range(reps):
            order = TOOLS[rep % len(TOOLS):] + TOOLS[:rep % len(TOOLS)]
            for tool in order:
                for dur in ((d1, d2) if rep % 2 == 0 else (d2, d1)):
                    tag = "cost-%s-d%d-%ds-%d" % (tool.replace(" ", "").replace("(", "")
                                                  .replace(")", ""), depth, dur, rep)
                    r = cost_run(paths, python, depth, tool, rate, dur, tag)
                    runs[tool][dur].append(r)
                    if r:
                        C.log("  %s: %.3f s CPU, %d samples, %.1f us/sample" % (
                            tag, r["cpu_s"], r["samples"], r["cpu_s"] * 1e6 / r["samples"]))
        res[str(depth)] = {}
        for tool in TOOLS:
            diff, plain, got = [], [], []
            for a, b in zip(runs[tool][d1], runs[tool][d2]):
                if a and b and b["samples"] > a["samples"]:
                    diff.append((b["cpu_s"] - a["cpu_s"]) * 1e6 / (b["samples"] - a["samples"]))
            for b in runs[tool][d2]:
                if b:
                    plain.append(b["cpu_s"] * 1e6 / b["samples"])
                    # over the tool's wall time: py-spy's -d counts samples, not seconds, so
                    # when it falls behind it runs longer instead of taking fewer samples
                    got.append(b["samples"] / (rate * b["wall_s"]))
            res[str(depth)][tool] = {
                "us_per_sample_differential": C.summarize(diff),
                "us_per_sample_plain": C.summarize(plain),
                "samples_achieved_fraction": C.summarize(got),
                "runs": runs[tool]}
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="100,1000,10000")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--units", type=int, default=16000, help="cpu.py work units (~1.6 s)")
    ap.add_argument("--cost-rate", type=int, default=1000)
    ap.add_argument("--cost-reps", type=int, default=2)
    ap.add_argument("--durations", default="2,5", help="D1,D2 seconds of the cost runs")
    ap.add_argument("--attach-wait", type=float, default=0.7)
    ap.add_argument("--python", default=C.DEFAULT_PYTHON)
    ap.add_argument("--parts", default="overhead,cost")
    ap.add_argument("--crux")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--quick", action="store_true",
                    help="2 repetitions, rates 100 and 1000, cost durations 1,3")
    a = ap.parse_args()
    if a.quick:
        a.reps, a.rates, a.durations, a.cost_reps = 2, "100,1000", "1,3", 1
    crux, crux_info = C.prepare_crux(a.crux, build=not a.no_build)
    pyspy, austin, versions = ensure_tools()
    paths = (crux, pyspy, austin)
    os.makedirs(os.path.join(C.OUT, "compare"), exist_ok=True)
    rates = [int(r) for r in a.rates.split(",")]
    durations = tuple(int(x) for x in a.durations.split(","))
    result = {"benchmark": "compare", "machine": C.machine(), "crux": crux_info,
              "tools": versions, "python": a.python,
              "python_version": C.python_version(a.python)}
    print("crux %s%s, %s, %s; target python %s" % (
        crux_info["commit"], " + uncommitted src changes" if crux_info["src_dirty"] else "",
        versions["py-spy"], versions["austin"], result["python_version"]))
    parts = a.parts.split(",")
    if "overhead" in parts:
        C.log("A. overhead")
        ov = overhead(paths, a.python, a.units, rates, a.reps, a.attach_wait)
        result["overhead"] = {"units": a.units, "reps": a.reps, "rates": ov}
        rows = []
        for rate, by in ov.items():
            for name, v in by.items():
                rows.append([rate, name, C.fmt_spread(v["wall_ratio"]),
                             C.fmt_spread(v["cpu_ratio"]),
                             "%.0f%%" % (v["samples_achieved_fraction"]["median"] * 100)
                             if v["samples_achieved_fraction"] else "-",
                             "%.1f%%" % (v["tool_cpu_per_work_second"]["median"] * 100)
                             if v["tool_cpu_per_work_second"] else "-"])
        print()
        print("A. Overhead on the target (cpu.py, pure Python), with tool / without, adjacent "
              "pairs; median [min..max] of %d" % a.reps)
        print(C.table(["rate Hz", "tool", "wall overhead", "target CPU overhead",
                       "samples achieved", "tool CPU (of a core)"], rows))
    if "cost" in parts:
        C.log("B. cost per sample")
        co = cost(paths, a.python, [50, 100], a.cost_rate, durations, a.cost_reps)
        result["cost"] = {"rate_hz": a.cost_rate, "durations_s": durations,
                          "reps": a.cost_reps, "depths": co}
        rows = []
        for depth, by in co.items():
            for tool, v in by.items():
                def f(key, fmt="%.1f"):
                    s = v[key]
                    return (fmt % s["median"] + (" [%s..%s]" % (fmt % s["min"], fmt % s["max"])
                                                 if s["n"] > 1 else "")) if s else "-"
                rows.append([depth, tool, f("us_per_sample_differential"),
                             f("us_per_sample_plain"),
                             "%.0f%%" % (v["samples_achieved_fraction"]["median"] * 100)
                             if v["samples_achieved_fraction"] else "-"])
        print()
        print("B. Tool CPU per sample, attached to spin.py (1 thread) at %d Hz for %d s and %d "
              "s (rusage of the tool process)" % (a.cost_rate, durations[0], durations[1]))
        print(C.table(["depth", "tool", "us/sample (D2-D1)", "us/sample (CPU/samples)",
                       "samples achieved"], rows))
    result["machine"]["loadavg_at_end"] = os.getloadavg()
    path = C.write_json("compare.json", result)
    print("\nwrote %s" % path)


if __name__ == "__main__":
    main()
