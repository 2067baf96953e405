# SPDX-License-Identifier: MIT
"""crux --native: how long is one thread stopped, what does an unwind cost, and does a
many-threaded target keep running while crux takes native stacks (against py-spy, which
stops the whole process for each dump)?

Part 1 (costs): `crux dump --native --stats --repeat R` on a target of T threads at Python
depth D (bench/workloads/native_threads.py); crux prints how long each thread was stopped
(median, p99: from before PTRACE_SEIZE/INTERRUPT to the PTRACE_DETACH call) and the CPU
time of the walk, symbols and merge that follow once the thread runs again.

Part 2 (throughput): the same target's units of work per second with no profiler; while
native stacks of every thread are taken 100 times a second (`crux dump --native --repeat
--interval 0.01`, one crux process, as a sampler would; against `py-spy record --native
--rate 100`); and while dumps run back to back (`crux dump --native` against `py-spy dump
--native`, a new process each). Modes interleaved and repeated, each reported as a ratio to
the no-profiler run of the same repetition, with the longest gap between two units of work
of one thread (a stall shows there) and the rate the tool achieved.

python3 bench/native.py [--threads 1,64] [--depth 50] [--duration 3] [--reps 3] [--quick]
"""
import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

WORKLOAD = os.path.join(common.WORKLOADS, "native_threads.py")
STATS_RE = re.compile(
    r"thread stopped median (?P<stop_med>[\d.]+) us, p99 (?P<stop_p99>[\d.]+) us, "
    r"max (?P<stop_max>[\d.]+) us \(mean (?P<to_stop>[\d.]+) us to stop, "
    r"(?P<to_read>[\d.]+) us to read\); unwind CPU median (?P<cpu_med>[\d.]+) us, "
    r"p99 (?P<cpu_p99>[\d.]+) us, mean (?P<cpu_mean>[\d.]+) us per sample; "
    r"(?P<frames>[\d.]+) native frames")
SAMPLES_RE = re.compile(r"native: (\d+) thread samples, (\d+) merged, (\d+) mismatched")


def pyspy_path():
    """py-spy from the tools venv bench/compare.py creates; created here when missing."""
    venv = os.path.join(common.OUT, "venv-tools")
    exe = os.path.join(venv, "bin", "py-spy")
    if os.path.exists(exe):
        return exe
    try:
        subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "py-spy"],
                       check=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as e:
        print("bench: py-spy unavailable (%s): its column is left out" % e)
        return None
    return exe if os.path.exists(exe) else None


def start_workload(python, threads, depth, duration, warmup):
    p = subprocess.Popen([python, WORKLOAD, "--threads", str(threads), "--depth", str(depth),
                          "--duration", str(duration), "--warmup", str(warmup)],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line.startswith("READY"):
        p.kill()
        sys.exit("bench: workload did not start: %r" % line)
    return p


def finish_workload(p):
    out = p.stdout.read()
    p.wait(60)
    return json.loads(out.strip().splitlines()[-1])


def part_costs(crux, python, threads, depth, rounds):
    p = start_workload(python, threads, depth, 60, 1.0)
    time.sleep(0.5)
    r = subprocess.run([crux, "dump", "--pid", str(p.pid), "--native", "--stats",
                        "--repeat", str(rounds)], capture_output=True, text=True, timeout=300)
    p.kill()
    p.wait()
    m = STATS_RE.search(r.stderr)
    s = SAMPLES_RE.search(r.stderr)
    if not m or not s:
        sys.exit("bench: no stats from crux:\n" + r.stderr[-2000:])
    out = dict((k, float(v)) for k, v in m.groupdict().items())
    out.update(samples=int(s.group(1)), merged=int(s.group(2)), mismatched=int(s.group(3)))
    return out


def loop_tool(argv_of_pid, p):
    """Runs a dump command back to back while workload p lives; returns dumps done."""
    n = 0
    while p.poll() is None:
        r = subprocess.run(argv_of_pid(p.pid), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        if p.poll() is None and r.returncode == 0:
            n += 1
    return n


def run_mode(mode, crux, pyspy, python, threads, depth, duration):
    p = start_workload(python, threads, depth, duration, 1.0)
    dumps = None
    t0 = time.monotonic()
    if mode == "crux-loop":
        dumps = loop_tool(lambda pid: [crux, "dump", "--pid", str(pid), "--native"], p)
    elif mode == "pyspy-loop":
        dumps = loop_tool(lambda pid: [pyspy, "dump", "--native", "--pid", str(pid)], p)
    elif mode == "crux-100hz":
        c = subprocess.Popen([crux, "dump", "--pid", str(p.pid), "--native", "--stats",
                              "--repeat", "1000000", "--interval", "0.01"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        p.wait()
        c.terminate()
        err = c.communicate(timeout=60)[1]
        s = SAMPLES_RE.search(err)
        dumps = int(s.group(1)) if s else 0  # thread samples (the workload's threads + main)
    elif mode == "pyspy-100hz":
        out = os.path.join(common.OUT, "native-pyspy.txt")
        c = subprocess.Popen([pyspy, "record", "--native", "--rate", "100", "--format", "raw",
                              "-o", out, "--pid", str(p.pid)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        p.wait()
        c.wait(60)  # py-spy stops when its target exits
    elapsed = time.monotonic() - t0
    res = finish_workload(p)
    if dumps is not None:
        res["dumps_per_s"] = dumps / elapsed
    return res


def fmt(values, pct=False):
    if not values:
        return "-"
    med = statistics.median(values)
    if pct:
        return "%.3f [%.3f..%.3f]" % (med, min(values), max(values))
    return "%.1f [%.1f..%.1f]" % (med, min(values), max(values))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default=common.DEFAULT_PYTHON)
    ap.add_argument("--threads", default="1,64")
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1 rep of 2 s")
    ap.add_argument("--crux", help="crux binary to test (default: build/crux)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--out", default="native.json")
    ap.add_argument("--parts", default="costs,throughput")
    a = ap.parse_args()
    if a.quick:
        a.reps, a.duration = 1, 2.0
    crux, info = common.prepare_crux(a.crux, build=not a.no_build)
    pyspy = pyspy_path()
    threads = [int(t) for t in a.threads.split(",")]
    result = {"crux": info, "python": a.python, "depth": a.depth, "costs": {}, "throughput": {}}
    print("crux %s (%s), %s, depth %d" % (info.get("commit"), info.get("binary"), a.python,
                                          a.depth))

    parts = a.parts.split(",")
    threads_costs = threads if "costs" in parts else []
    print("\n1. One thread stopped, and the unwind after it (crux dump --native --repeat)")
    print("%8s %10s %22s %22s %14s %10s" % ("threads", "samples", "stopped med / p99 us",
                                            "to stop / to read us", "unwind CPU us",
                                            "frames"))
    for t in threads_costs:
        c = part_costs(crux, a.python, t, a.depth, max(20, 1280 // t))
        result["costs"][t] = c
        print("%8d %10d %22s %22s %14s %10.1f" % (
            t, c["samples"], "%.1f / %.1f" % (c["stop_med"], c["stop_p99"]),
            "%.1f / %.1f" % (c["to_stop"], c["to_read"]),
            "%.1f / %.1f" % (c["cpu_med"], c["cpu_p99"]), c["frames"]))

    if "throughput" not in parts:
        threads = []
    modes = ["none", "crux-100hz"] + (["pyspy-100hz"] if pyspy else []) + ["crux-loop"] + (
        ["pyspy-loop"] if pyspy else [])
    print("\n2. Target throughput while native stacks are taken (ratio to no profiler, "
          "median [min..max] of %d reps of %.0f s)" % (a.reps, a.duration))
    for t in threads:
        runs = dict((m, []) for m in modes)
        for _ in range(a.reps):
            order = modes[:]
            random.shuffle(order)
            for m in order:
                runs[m].append(run_mode(m, crux, pyspy, a.python, t, a.depth, a.duration))
        result["throughput"][t] = runs
        base = [r["units_per_s"] for r in runs["none"]]
        print("  %d thread(s): %.0f units/s without a profiler, longest gap %.1f ms" % (
            t, statistics.median(base), statistics.median(r["max_gap_ms"] for r in runs["none"])))
        for m in modes[1:]:
            ratios = [r["units_per_s"] / b for r, b in zip(runs[m], base)]
            gaps = [r["max_gap_ms"] for r in runs[m]]
            dumps = [r.get("dumps_per_s") for r in runs[m] if r.get("dumps_per_s") is not None]
            print("    %-16s throughput %s  longest gap ms %s%s" % (
                m, fmt(ratios, True), fmt(gaps),
                ("  %s %s" % ("thread samples/s" if m == "crux-100hz" else "dumps/s",
                              fmt(dumps))) if dumps else ""))
    common.ensure_out()
    with open(os.path.join(common.OUT, a.out), "w") as f:
        json.dump(result, f, indent=1)
    print("\nwritten to bench/out/%s" % a.out)


if __name__ == "__main__":
    main()
