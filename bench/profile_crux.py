#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Where crux's own CPU time goes: `perf record` on crux attached to spin.py, then the
share of crux's on-CPU samples under each system call it makes per round, converted to
microseconds per round with crux's total CPU time (os.wait4 rusage).

    python3 bench/profile_crux.py [--threads 1] [--depth 50] [--rate 2000] [--duration 4]

Needs perf (linux-perf) and permission to use it. Prints a table and writes
bench/out/profile_crux-tT-dD.json; the perf data stays in bench/out/ for `perf report`."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

# Category -> symbols whose "children" share (the symbol and everything it calls) counts.
# Each is the libc entry point of one kind of call crux makes, so they do not nest.
CATEGORIES = [
    ("process_vm_readv (target memory)", ["process_vm_readv"]),
    ("pread /proc/PID/task/TID/stat (thread states)", ["__libc_pread", "__pread64", "pread64"]),
    ("clock_gettime (timestamps, CPU clocks for --stats)",
     ["clock_gettime@@GLIBC_2.17", "clock_gettime", "__clock_gettime"]),
    ("kill(pid, 0) / waitpid (liveness)", ["__GI___kill", "kill", "__waitpid", "waitpid",
                                           "__wait4", "wait4"]),
    ("clock_nanosleep (sleeping between ticks: timer, context switches)",
     ["clock_nanosleep@GLIBC_2.2.5", "clock_nanosleep", "__clock_nanosleep"]),
    ("open/close (stat files of new threads)", ["__libc_open64", "open64", "__open64",
                                                "__close", "close"]),
]

LINE = re.compile(r"^\s*([\d.]+)%\s+([\d.]+)%\s+\[([.k])\]\s+(.*?)\s*$")


def perf_report(data):
    r = subprocess.run(["perf", "report", "-i", data, "--children", "--stdio", "--sort", "sym",
                       "-g", "none"], capture_output=True, text=True)
    rows = {}
    for line in r.stdout.splitlines():
        m = LINE.match(line)
        if m:
            rows[m.group(4)] = (float(m.group(1)), float(m.group(2)), m.group(3))
    return rows


def perf_dso_self(data):
    r = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio", "--sort",
                        "dso", "-g", "none"], capture_output=True, text=True)
    out = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^\s*([\d.]+)%\s+(\S+)", line)
        if m:
            out[m.group(2)] = float(m.group(1))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--python", default=C.DEFAULT_PYTHON)
    ap.add_argument("--crux")
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    if not shutil.which("perf"):
        sys.exit("bench: perf is not installed (apt-get install linux-perf)")
    crux, crux_info = C.prepare_crux(a.crux, build=not a.no_build)
    data = os.path.join(C.OUT, "perf-crux-t%d-d%d.data" % (a.threads, a.depth))
    target = C.start_target([a.python, os.path.join(C.WORKLOADS, "spin.py"), "--depth",
                             str(a.depth), "--threads", str(a.threads)])
    try:
        time.sleep(0.5)
        p = subprocess.Popen(["perf", "record", "-q", "-F", "4999", "-g", "-o", data, "--",
                              crux, "record", "-q", "--stats", "--pid", str(target.pid),
                              "--rate", str(a.rate), "--duration", str(a.duration), "-o",
                              os.path.join(C.OUT, "profile_crux.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # perf's rusage covers crux too (perf waits for it); crux's share is what the
        # stats and the samples say, so take the CPU total from crux's own stats below.
        _, err = p.communicate()
    finally:
        C.stop_target(target)
    st = C.parse_crux_stats(err)
    rows = perf_report(data)
    dsos = perf_dso_self(data)
    cats = []
    for name, syms in CATEGORIES:
        share = max((rows[s][0] for s in syms if s in rows), default=0.0)
        cats.append({"category": name, "share_pct": share})
    own = sum(v for k, v in dsos.items() if "crux" in k)
    cats.append({"category": "crux's own code (walk, caches, profile)", "share_pct": own})
    cats.append({"category": "other (page faults, libc, exit, output writing)",
                 "share_pct": max(0.0, 100.0 - sum(c["share_pct"] for c in cats))})
    in_round_us = st.get("us_per_round", 0)
    cpu_per_ts = st.get("cpu_us_per_thread_sample", 0)
    ts = st.get("thread_samples", 0) + st.get("errors", 0)
    cpu_in_rounds_us = cpu_per_ts * ts
    print("perf profile of crux attached to spin.py (%d thread(s), depth %d) at %d Hz for "
          "%.0f s" % (a.threads, a.depth, a.rate, a.duration))
    print("crux --stats: %.2f us CPU per thread-sample in rounds, %.1f us wall per round, "
          "%.0f Hz achieved" % (cpu_per_ts, in_round_us, st.get("achieved_hz", 0)))
    print(C.table(["where crux's on-CPU samples are", "share"],
                  [[c["category"], "%.1f%%" % c["share_pct"]] for c in cats]))
    out = {"benchmark": "profile_crux", "machine": C.machine(), "crux": crux_info,
           "threads": a.threads, "depth": a.depth, "rate_hz": a.rate, "duration_s": a.duration,
           "stats": st, "cpu_in_rounds_us_total": cpu_in_rounds_us, "categories": cats,
           "perf_data": data,
           "top_symbols": sorted(((k, v[0], v[1]) for k, v in rows.items()),
                                 key=lambda x: -x[1])[:60]}
    path = C.write_json("profile_crux-t%d-d%d.json" % (a.threads, a.depth), out)
    print("\nwrote %s (perf report -i %s --children --sort sym)" % (path, data))


if __name__ == "__main__":
    main()
