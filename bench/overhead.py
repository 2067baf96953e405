#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Overhead of crux on the profiled program: wall time of a fixed-work workload launched
under `crux record` divided by the same workload without a profiler, in the same run.

Configurations per workload (--configs): crux's default mode (time categories and the
memory timeline on) at 100 Hz, 1 kHz and 10 kHz, the plain mode (--no-categories
--no-memory) at 100 Hz and 1 kHz, --blocking at 100 Hz, --native, and "A/A" (no profiler
against no profiler: the noise floor). Each
repetition runs, for every configuration in an order rotated between repetitions, an
adjacent pair (no profiler, configuration) with the order inside the pair alternating; the
ratio is taken within the pair. Reported: median [min..max] over repetitions, for the
target's wall time and for its CPU time (time.process_time, all threads), which load from
other processes on a shared machine disturbs less. The workload times itself around the
work, so interpreter start-up and crux's launch and output writing do not count.

    python3 bench/overhead.py [--reps 5] [--workloads cpu,numpy,numpy-2blas,threads64]
    python3 bench/overhead.py --pool bench/out/overhead-1.json bench/out/overhead-2.json

Prints a table and writes bench/out/overhead.json (or --out NAME). On a noisy machine,
several runs can be pooled (--pool) into one table of all their pairs."""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

WORKLOADS = {
    # name: (script, args, extra environment, description)
    "cpu": ("cpu.py", ["--units", "24000", "--depth", "20"], {},
            "pure Python, 1 thread, stack depth ~23"),
    "numpy": ("numpy_work.py", ["--rounds", "800"], {"OPENBLAS_NUM_THREADS": "1"},
              "numpy matmul 192x192 + rfft 32k + tanh, 1 BLAS thread"),
    "numpy-2blas": ("numpy_work.py", ["--rounds", "800"], {"OPENBLAS_NUM_THREADS": "2"},
                    "same, 2 BLAS threads (both cores busy: crux competes for CPU)"),
    "threads64": ("threads.py", ["--threads", "64", "--rounds", "90"], {},
                  "64 threads: Python work then 2 ms sleep, 90 rounds each"),
    "threads8+idle56": ("threads.py", ["--threads", "8", "--rounds", "400", "--idle-threads", "56"],
                        {}, "8 threads as threads64 (400 rounds) beside 56 waiting on an Event"),
}

PLAIN = ["--no-categories", "--no-memory"]
ALL_CONFIGS = [
    # name, rate, blocking, extra record options (rate None: no profiler, the A/A pair that
    # shows the noise floor). "crux" is the default mode: time categories and memory on.
    ("A/A (noise)", None, False, []),
    ("plain@100", 100, False, PLAIN),
    ("crux@100", 100, False, []),
    ("plain@1k", 1000, False, PLAIN),
    ("crux@1k", 1000, False, []),
    ("crux@10k", 10000, False, []),
    ("crux-blocking@100", 100, True, []),
    ("native@100", 100, False, ["--native"]),
    ("native@1k", 1000, False, ["--native"]),
    # The default mode without perf events (CRUX_NO_PERF=1: python and native reported
    # together as cpu; off-CPU categories and memory stay): what the perf sampling costs.
    ("noperf@1k", 1000, False, ["ENV:CRUX_NO_PERF=1"]),
]
DEFAULT_CONFIGS = "A/A (noise),plain@100,crux@100,plain@1k,crux@1k,crux@10k,crux-blocking@100"
CONFIGS = [c for c in ALL_CONFIGS if c[0] in DEFAULT_CONFIGS.split(",")]
BASE = ("none", None, False, [])

GOALS = {"crux@100": 0.01, "crux@1k": 0.02, "crux@10k": 0.03, "native@100": 0.10}


def prepare_crux(path, build, tag):
    """Like common.prepare_crux, but copies the binary to bench/out/crux-under-test-TAG:
    another benchmark running at the same time keeps bench/out/crux-under-test busy
    (ETXTBSY), and each script should test its own fixed copy anyway."""
    src = path or os.path.join(C.ROOT, "build", "crux")
    if build and not path:
        r = C.subprocess.run(["make", "-C", C.ROOT, "build/crux"], capture_output=True,
                             text=True)
        if r.returncode != 0:
            sys.exit("bench: make build/crux failed:\n" + r.stdout[-2000:] + r.stderr[-2000:])
    if not os.path.exists(src):
        sys.exit("bench: no crux binary at %s (run make build/crux)" % src)
    C.ensure_out()
    dst = os.path.join(C.OUT, "crux-under-test-" + tag)
    tmp = dst + ".tmp%d" % os.getpid()
    C.shutil.copy2(src, tmp)
    os.replace(tmp, dst)  # a new inode: a copy still running elsewhere is not disturbed
    info = {"binary": src, "copy": dst,
            "mtime": C.time.strftime("%Y-%m-%d %H:%M:%S",
                                     C.time.localtime(os.path.getmtime(src)))}
    info.update(C.git_state())
    return dst, info


def run_one(crux, python, wl, cfg, rep):
    script, args, extra_env, _ = WORKLOADS[wl]
    name, rate, blocking, extra = cfg
    env = dict(os.environ)
    env.update(extra_env)
    target = [python, os.path.join(C.WORKLOADS, script)] + args
    for opt in extra:
        if opt.startswith("ENV:"):
            k, _, v = opt[4:].partition("=")
            env[k] = v
    extra = [opt for opt in extra if not opt.startswith("ENV:")]
    if rate is None:
        argv = target
    else:
        out = os.path.join(C.OUT, "overhead", "%s-%s-%d.txt" % (wl, name.replace("@", "-"), rep))
        argv = [crux, "record", "-q", "--stats", "--rate", str(rate), "-o", out]
        if blocking:
            argv.append("--blocking")
        argv += extra + ["--"] + target
    rc, out, err, _ = C.run_cmd(argv, env=env)
    res = C.parse_result(out)
    if rc != 0 or not res:
        C.log("  %s %s rep %d failed (rc=%s): %s" % (wl, name, rep, rc, err[-500:]))
        return None
    res["stats"] = C.parse_crux_stats(err) if rate is not None else {}
    return res


def run_workload(crux, python, wl, reps):
    """Each repetition runs, for every configuration in a rotated order, an adjacent pair
    (no profiler, configuration), which of the two goes first alternating per configuration
    between repetitions. A pair's ratio
    is configuration / no profiler, for wall time and for the target's CPU time."""
    runs = {c[0]: [] for c in CONFIGS}
    wall = {c[0]: [] for c in CONFIGS}
    cpu = {c[0]: [] for c in CONFIGS}
    base = []
    for rep in range(reps):
        order = CONFIGS[rep % len(CONFIGS):] + CONFIGS[:rep % len(CONFIGS)]
        line = []
        for cfg in order:
            # Which run of the pair goes first alternates per configuration from one
            # repetition to the next, so order effects cancel within each configuration.
            pair = [BASE, cfg] if (rep + CONFIGS.index(cfg)) % 2 == 0 else [cfg, BASE]
            got = [run_one(crux, python, wl, c, rep) for c in pair]
            b, x = (got[0], got[1]) if pair[0] is BASE else (got[1], got[0])
            if not b or not x:
                continue
            base.append(b)
            runs[cfg[0]].append(x)
            wall[cfg[0]].append(x["elapsed_s"] / b["elapsed_s"])
            cpu[cfg[0]].append(x["cpu_s"] / b["cpu_s"])
            line.append("%s %s" % (cfg[0], C.pct(wall[cfg[0]][-1])))
        C.log("  %s rep %d: %s" % (wl, rep + 1, "  ".join(line)))
    return runs, wall, cpu, base


def crux_cpu_share(stats_list):
    """crux's own CPU inside sampling rounds as a fraction of one core."""
    v = []
    for s in stats_list:
        if s and s.get("elapsed_ns"):
            n = s.get("thread_samples", 0) + s.get("errors", 0)
            v.append(s.get("cpu_us_per_thread_sample", 0) * n * 1e3 / s["elapsed_ns"])
    return C.summarize(v)


def summarize_config(name, rate, blocking, wall, cpu, runs_x, elapsed):
    stats = [r for r in runs_x if r]
    return {
        "rate_hz": rate, "blocking": blocking,
        "wall_ratio": C.summarize(wall), "cpu_ratio": C.summarize(cpu),
        "achieved_hz": C.summarize([s.get("achieved_hz") for s in stats]),
        "late_fraction": C.summarize([s.get("late", 0) / max(1, s.get("ticks", 1))
                                      for s in stats]),
        "samples_kept": C.summarize([s.get("kept") for s in stats]),
        "crux_cpu_share": crux_cpu_share(stats), "goal_overhead": GOALS.get(name),
        "elapsed_s": elapsed, "stats": stats}


def render(result):
    rows = []
    for wl, entry in result["workloads"].items():
        base_t = entry["baseline_elapsed_s"]
        for name, c in entry["configs"].items():
            goal, ach, late = c["goal_overhead"], c["achieved_hz"], c["late_fraction"]
            kept, share = c["samples_kept"], c["crux_cpu_share"]
            note = ("goal <=%d%%" % round(goal * 100)) if goal else ""
            if c["rate_hz"] is None and base_t:
                note = "baseline %.2fs" % base_t["median"]
            rows.append([wl, name, C.fmt_spread(c["wall_ratio"]), C.fmt_ci(c["wall_ratio"]),
                         C.fmt_spread(c["cpu_ratio"]),
                         "%.0f" % ach["median"] if ach else "-",
                         "%.1f%%" % (late["median"] * 100) if late else "-",
                         "%.0f" % kept["median"] if kept else "-",
                         "%.1f%%" % (share["median"] * 100) if share else "-", note])
    print()
    print("crux overhead on the target: time with crux / without, adjacent pairs, %d "
          "repetitions%s" % (result["reps"], " (pooled from %d runs)" % len(result["pooled_from"])
                             if result.get("pooled_from") else ""))
    print("python %s, crux %s%s" % (result["python_version"], result["crux"]["commit"],
                                    " + uncommitted src changes"
                                    if result["crux"]["src_dirty"] else ""))
    print(C.table(["workload", "config", "wall: median [min..max]", "wall: gmean (95% CI)",
                   "target CPU: median [min..max]", "ach. Hz", "late", "samples",
                   "crux CPU", "note"], rows))
    print("wall/CPU: the target's wall (CPU) time with crux over without; crux CPU: crux's "
          "CPU time in rounds as a share of one core; A/A: no profiler vs no profiler")


def pool(paths):
    """Pools the pairs of several saved runs into one result (same configurations)."""
    results = []
    for p in paths:
        with open(p) as f:
            results.append(json.load(f))
    out = dict(results[0])
    out["pooled_from"] = [{"path": p, "date": r["machine"]["date"], "crux": r["crux"]}
                          for p, r in zip(paths, results)]
    out["reps"] = sum(r["reps"] for r in results)
    out["workloads"] = {}
    # Runs may differ in workloads and configurations: each cell pools the runs that have it.
    wls = []
    for r in results:
        wls += [w for w in r["workloads"] if w not in wls]
    for wl in wls:
        have = [r["workloads"][wl] for r in results if wl in r["workloads"]]
        entry = dict(have[0])
        entry["baseline_elapsed_s"] = C.summarize(
            [x for h in have for x in (h["baseline_elapsed_s"] or {}).get("values", [])])
        entry["configs"] = {}
        names = [n for cfg in ALL_CONFIGS for n in [cfg[0]]
                 if any(n in h["configs"] for h in have)]
        for name in names:
            cs = [h["configs"][name] for h in have if name in h["configs"]]
            c = cs[0]

            def values(key):
                return [x for c2 in cs for x in (c2[key] or {}).get("values", [])]
            entry["configs"][name] = summarize_config(
                name, c["rate_hz"], c["blocking"], values("wall_ratio"), values("cpu_ratio"),
                [s for c2 in cs for s in c2["stats"]],
                [x for c2 in cs for x in c2["elapsed_s"]])
        out["workloads"][wl] = entry
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--workloads", default="cpu,numpy,numpy-2blas,threads64")
    ap.add_argument("--configs", default=DEFAULT_CONFIGS,
                    help="comma-separated, from: " + ", ".join(c[0] for c in ALL_CONFIGS))
    ap.add_argument("--python", default=C.DEFAULT_PYTHON)
    ap.add_argument("--crux", help="crux binary (default: build/crux, rebuilt)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--quick", action="store_true", help="3 repetitions")
    ap.add_argument("--out", default="overhead.json", help="file name under bench/out")
    ap.add_argument("--pool", nargs="+", metavar="JSON",
                    help="measure nothing: pool the pairs of saved runs (each cell from the "
                         "runs that have it), print, and write bench/out/overhead-pooled.json")
    a = ap.parse_args()
    if a.pool:
        result = pool(a.pool)
        render(result)
        print("\nwrote %s" % C.write_json("overhead-pooled.json", result))
        return
    reps = 3 if a.quick else a.reps
    CONFIGS[:] = [c for c in ALL_CONFIGS if c[0] in a.configs.split(",")]
    crux, crux_info = prepare_crux(a.crux, not a.no_build, "overhead")
    os.makedirs(os.path.join(C.OUT, "overhead"), exist_ok=True)
    result = {"benchmark": "overhead", "machine": C.machine(), "crux": crux_info,
              "python": a.python, "python_version": C.python_version(a.python),
              "reps": reps, "configs": [c[0] for c in CONFIGS], "workloads": {}}
    for wl in a.workloads.split(","):
        C.log("workload %s (%s)" % (wl, WORKLOADS[wl][3]))
        runs, wall, cpu, base = run_workload(crux, a.python, wl, reps)
        entry = {"description": WORKLOADS[wl][3], "args": WORKLOADS[wl][1],
                 "env": WORKLOADS[wl][2],
                 "baseline_elapsed_s": C.summarize([r["elapsed_s"] for r in base]),
                 "baseline_runs": base, "configs": {}}
        for name, rate, blocking, _ in CONFIGS:
            entry["configs"][name] = summarize_config(
                name, rate, blocking, wall[name], cpu[name],
                [r["stats"] for r in runs[name] if r and r["stats"]],
                [r["elapsed_s"] for r in runs[name] if r])
            entry["configs"][name]["runs"] = runs[name]
        result["workloads"][wl] = entry
    result["machine"]["loadavg_at_end"] = os.getloadavg()
    render(result)
    print("\nwrote %s" % C.write_json(a.out, result))


if __name__ == "__main__":
    main()
