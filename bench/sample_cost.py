#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What one sample costs crux, and how fast it can sample.

1. Floor: bench/pvr_floor.c (compiled here) times process_vm_readv of 64 B, 4 KiB, 16 KiB
   and of several pages in one call against a child process, plus a pread of
   /proc/PID/task/TID/stat and the two clocks crux reads, so the figures below can be read
   against what the kernel charges.
2. Cost per thread-sample: crux attached (--stats) to bench/workloads/spin.py, whose threads
   sit at an exact Python stack depth (50 and 100) in a CPU loop, for each interpreter;
   one thread and 64 threads. Figures are crux's own: cpu_us_per_thread_sample (crux's
   thread CPU inside rounds) and the part spent reading stacks.
3. Highest sustained rate, one thread and 64 threads at depth 50: the rate is raised until
   the achieved rate (ticks / elapsed) falls below 95% of the request (a failing trial is
   retried once); the highest rate that also had at most 2% of its ticks late is reported
   next to it (scheduling noise on a shared machine makes a few late at any rate);
   thread-samples per second = thread-samples / elapsed at that rate. A last trial at
   100 kHz, which no round keeps up with, gives the saturated throughput (crux sampling
   back to back).

    python3 bench/sample_cost.py [--quick] [--pythons 3.11,3.12,...]

Prints tables and writes bench/out/sample_cost.json."""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

GOAL_US = 2.0
GOAL_TS_PER_S = 500000
PYTHONS = {
    "3.8": C.pyenv_python("3.8.18"),
    "3.9": C.pyenv_python("3.9.18"),
    "3.10": C.pyenv_python("3.10.13"),
    "3.11": C.DEFAULT_PYTHON,  # Debian's, shared libpython
    "3.12": C.pyenv_python("3.12.1"),
    "3.13": C.pyenv_python("3.13.0"),
}
RATE_LADDER_1 = [1000, 2000, 3000, 5000, 7000, 10000, 20000, 50000]
RATE_LADDER_64 = [100, 200, 300, 500, 700, 1000, 2000, 5000]


def floor(calls, batches):
    exe = os.path.join(C.OUT, "pvr_floor")
    src = os.path.join(C.BENCH, "pvr_floor.c")
    subprocess.run(["cc", "-O2", "-Wall", "-o", exe, src], check=True)
    r = subprocess.run([exe, str(calls), str(batches)], capture_output=True, text=True,
                       check=True)
    return json.loads(r.stdout)


def measure(crux, python, depth, threads, rate, duration, tag):
    """Attaches crux to a fresh spin.py for `duration` seconds; returns the parsed stats
    plus the stack depth seen in the output (the most common number of frames)."""
    target = C.start_target([python, os.path.join(C.WORKLOADS, "spin.py"), "--depth",
                             str(depth), "--threads", str(threads)])
    try:
        time.sleep(0.3)
        out = os.path.join(C.OUT, "sample_cost", tag + ".txt")
        rc, _, err, _ = C.run_cmd([crux, "record", "-q", "--stats", "--pid", str(target.pid),
                                   "--rate", str(rate), "--duration", str(duration),
                                   "-o", out], timeout=duration + 60)
    finally:
        C.stop_target(target)
    st = C.parse_crux_stats(err)
    if rc != 0 or not st:
        C.log("  %s: crux failed (rc=%s): %s" % (tag, rc, err[-400:]))
        return None
    st["depth_seen"] = depth_seen(out)
    return st


def depth_seen(path):
    counts = {}
    try:
        with open(path) as f:
            for line in f:
                stack, _, n = line.rstrip("\n").rpartition(" ")
                d = stack.count(";") + 1
                counts[d] = counts.get(d, 0) + int(n)
    except (OSError, ValueError):
        return None
    return max(counts, key=counts.get) if counts else None


def cost_table(crux, pythons, depths, reps, duration, rate):
    """Per-thread-sample cost for every (python, depth, threads), repetitions interleaved."""
    cells = [(py, d, t) for py in pythons for d in depths for t in (1, 64)
             if t == 1 or d == depths[0]]
    got = {c: [] for c in cells}
    for rep in range(reps):
        for py, d, t in cells:
            tag = "cost-py%s-d%d-t%d-r%d" % (py, d, t, rep)
            st = measure(crux, PYTHONS[py], d, t, rate, duration, tag)
            if st:
                got[(py, d, t)].append(st)
                C.log("  %s: %.2f us cpu/thread-sample, read %.2f, %.2f syscalls/round, "
                      "%.0f Hz" % (tag, st.get("cpu_us_per_thread_sample", 0),
                                   st.get("read_us", 0), st["syscalls"] / max(1, st["ticks"]),
                                   st.get("achieved_hz", 0)))
    res = []
    for (py, d, t), sts in got.items():
        def s(key):
            return C.summarize([x.get(key) for x in sts])
        res.append({
            "python": py, "depth": d, "threads": t, "rate_hz": rate,
            "depth_seen": C.summarize([x.get("depth_seen") for x in sts]),
            "cpu_us_per_thread_sample": s("cpu_us_per_thread_sample"),
            "read_us_per_thread_sample": s("read_us"),
            "read_kind": sts[0].get("read_kind") if sts else None,
            "wall_us_per_thread_sample": s("us_per_thread_sample"),
            "us_per_round": s("us_per_round"),
            "syscalls_per_round": C.summarize([x["syscalls"] / max(1, x["ticks"])
                                               for x in sts]),
            "errors": C.summarize([x.get("errors") for x in sts]),
            "achieved_hz": s("achieved_hz"), "runs": sts})
    return res


LATE_ALLOWED = 0.02  # scheduling noise on a shared machine makes a few ticks late anyway


def passes(st, rate):
    """The ladder's criterion: the achieved rate is within 5% of the request."""
    return bool(st and st.get("achieved_hz", 0) >= 0.95 * rate)


def passes_strict(st, rate):
    """Also no more than LATE_ALLOWED of the ticks late."""
    return passes(st, rate) and st.get("late", 0) <= LATE_ALLOWED * max(1, st.get("ticks", 1))


def max_rate(crux, python, threads, depth, ladder, duration, bisect_steps, flat_out=100000):
    """Raises the rate along the ladder until a trial fails (twice), then bisects
    (geometrically) between the last passing and the first failing rate; finally one trial
    at `flat_out` Hz gives the throughput when crux samples back to back."""
    trials = []

    def trial(rate, retry=True):
        st = measure(crux, python, depth, threads, rate, duration,
                     "maxrate-t%d-%d" % (threads, rate))
        ok = passes(st, rate)
        trials.append({"rate_hz": rate, "pass": ok, "pass_strict": passes_strict(st, rate),
                       "stats": st})
        if st:
            C.log("  %d threads @ %d Hz: achieved %.0f Hz, late %d/%d, %.0f thread-samples/s"
                  " -> %s" % (threads, rate, st["achieved_hz"], st.get("late", 0),
                              st.get("ticks", 0), st["thread_samples_per_s"],
                              "pass" if ok else "FAIL"))
        if not ok and retry:  # one retry: a burst of other load should not decide it
            return trial(rate, retry=False)
        return ok

    good, bad = None, None
    for rate in ladder:
        if trial(rate):
            good = rate
        else:
            bad = rate
            break
    if good and bad:
        for _ in range(bisect_steps):
            mid = int(round((good * bad) ** 0.5, -1))
            if mid in (good, bad):
                break
            if trial(mid):
                good = mid
            else:
                bad = mid
    # Flat out: a request no round can keep up with, so crux samples back to back.
    trial(flat_out, retry=False)
    best = max((t for t in trials if t["pass"]), key=lambda t: t["rate_hz"], default=None)
    strict = max((t for t in trials if t["pass_strict"]), key=lambda t: t["rate_hz"],
                 default=None)
    sat = max((t for t in trials if t["stats"]),
              key=lambda t: t["stats"]["thread_samples_per_s"], default=None)
    return {
        "threads": threads, "depth": depth,
        "criterion": "achieved >= 95% of requested (a failure is retried once)",
        "strict_criterion": "also late ticks <= 2% of ticks",
        "max_rate_hz_strict": strict["rate_hz"] if strict else None,
        "max_rate_hz": best["rate_hz"] if best else None,
        "achieved_hz_at_max": best["stats"]["achieved_hz"] if best else None,
        "thread_samples_per_s_at_max": best["stats"]["thread_samples_per_s"] if best else None,
        "first_failing_rate_hz": bad,
        "peak_thread_samples_per_s": sat["stats"]["thread_samples_per_s"] if sat else None,
        "peak_at_requested_hz": sat["rate_hz"] if sat else None,
        "trials": trials}


def report_floor(result):
    C.log("floor: system call costs")
    fl = floor(20000, 7)
    result["floor"] = fl
    print("System call floor on this machine (median of %d batches of %d calls; wall and "
          "CPU per call)" % (fl["batches"], fl["calls_per_batch"]))
    print(C.table(["operation", "us/call (wall)", "[min..max]", "us/call (CPU)"],
                  [[k, "%.2f" % v["us_per_call"], "%.2f..%.2f" % (v["us_per_call_min"],
                                                             v["us_per_call_max"]),
                    "%.2f" % v["cpu_us_per_call"]] for k, v in fl["ops"].items()]))
    ov = fl["sleep_100us_overshoot_us"]
    print("clock_nanosleep to a deadline 100 us ahead wakes late by a median %.1f us (default "
          "timer slack), %.1f us (PR_SET_TIMERSLACK 1 ns)" % (ov["default_slack"],
                                                              ov["slack_1ns"]))


def report_cost(result, crux, pythons, a):
    C.log("cost per thread-sample")
    cost = cost_table(crux, pythons, [50, 100], a.reps, a.duration, a.rate)
    result["cost"] = cost
    rows = []
    for c in cost:
        def m(key, f="%.2f"):
            return f % c[key]["median"] if c.get(key) else "-"
        cu = c["cpu_us_per_thread_sample"]
        rows.append(["%s (%s)" % (c["python"], result["pythons"][c["python"]]), c["depth"],
                     c["threads"], m("depth_seen", "%.0f"),
                     C.fmt_spread(cu, lambda v: "%.2f" % v),
                     m("read_us_per_thread_sample"), m("wall_us_per_thread_sample"),
                     m("syscalls_per_round", "%.1f"), m("errors", "%.0f"),
                     "%.0f" % (1e6 / cu["median"]) if cu and cu["median"] else "-",
                     ("%.1fx goal" % (cu["median"] / GOAL_US)) if cu and c["depth"] == 50
                     else ""])
    print()
    print("Cost per thread-sample, crux attached at %d Hz for %.1f s, median [min..max] of %d"
          % (a.rate, a.duration, a.reps))
    rk = cost[0]["read_kind"] if cost else "?"
    print(C.table(["python", "depth", "threads", "frames seen", "CPU us/thread-sample",
                   "read us (%s)" % rk, "wall us", "syscalls/round", "errors",
                   "capacity/s", "vs 2 us goal"], rows))
    print("capacity/s: thread-samples per second one core could take at this CPU cost "
          "(1e6 / CPU us); the 2 us goal is 500,000/s")


def report_maxrate(result, crux, a):
    C.log("highest sustained rate")
    py = PYTHONS[a.maxrate_python]
    mr = [max_rate(crux, py, 1, 50, RATE_LADDER_1, a.duration, 3),
          max_rate(crux, py, 64, 50, RATE_LADDER_64, a.duration, 3)]
    result["max_rate"] = {"python": a.maxrate_python, "results": mr}
    print()
    print("Highest sustained rate, python %s, depth 50 (%s)" % (a.maxrate_python,
                                                             mr[0]["criterion"]))
    print(C.table(["threads", "max rate Hz", "(late<=2%)", "achieved Hz",
                   "thread-samples/s at max",
                   "flat-out thread-samples/s (request Hz)", "vs 500k/s goal"],
                  [[r["threads"], r["max_rate_hz"] or "-", r["max_rate_hz_strict"] or "-",
                    "%.0f" % r["achieved_hz_at_max"] if r["achieved_hz_at_max"] else "-",
                    "%.0f" % r["thread_samples_per_s_at_max"]
                    if r["thread_samples_per_s_at_max"] else "-",
                    "%.0f (%s)" % (r["peak_thread_samples_per_s"], r["peak_at_requested_hz"])
                    if r["peak_thread_samples_per_s"] else "-",
                    "%.2fx" % (r["peak_thread_samples_per_s"] / GOAL_TS_PER_S)
                    if r["peak_thread_samples_per_s"] else "-"] for r in mr]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pythons", default="3.11,3.12,3.13,3.10,3.9,3.8")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=float, default=2.0)
    ap.add_argument("--rate", type=int, default=1000, help="rate of the cost runs")
    ap.add_argument("--maxrate-python", default="3.11")
    ap.add_argument("--parts", default="floor,cost,maxrate")
    ap.add_argument("--crux")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--quick", action="store_true",
                    help="2 repetitions, 1.5 s runs, pythons 3.11,3.12,3.13,3.9")
    a = ap.parse_args()
    if a.quick:
        a.reps, a.duration, a.pythons = 2, 1.5, "3.11,3.12,3.13,3.9"
    crux, crux_info = C.prepare_crux(a.crux, build=not a.no_build)
    os.makedirs(os.path.join(C.OUT, "sample_cost"), exist_ok=True)
    pythons = [p for p in a.pythons.split(",") if os.path.exists(PYTHONS[p])]
    result = {"benchmark": "sample_cost", "machine": C.machine(), "crux": crux_info,
              "pythons": {p: C.python_version(PYTHONS[p]) for p in pythons}}

    parts = a.parts.split(",")
    if "floor" in parts:
        report_floor(result)
    if "cost" in parts:
        report_cost(result, crux, pythons, a)
    if "maxrate" in parts:
        report_maxrate(result, crux, a)
    result["machine"]["loadavg_at_end"] = os.getloadavg()
    prev = os.path.join(C.OUT, "sample_cost.json")
    if set(parts) != {"floor", "cost", "maxrate"} and os.path.exists(prev):
        # A partial run updates its parts of the last full result.
        with open(prev) as f:
            old = json.load(f)
        old.update({k: v for k, v in result.items() if k in ("floor", "cost", "max_rate")})
        old.setdefault("partial_updates", []).append(
            {"parts": parts, "machine": result["machine"], "crux": result["crux"]})
        result = old
    path = C.write_json("sample_cost.json", result)
    print("\nwrote %s" % path)


if __name__ == "__main__":
    main()
