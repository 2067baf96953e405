#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""False positives and power of crux diff and crux gate at 5 repeats, and diff's speed.

How often crux diff and crux gate call an unchanged job changed, how small a change they
find at 5 repeats a side, and how fast crux diff reads large recordings, measured on this
machine's own noise.

The job is tests/integration/targets/loop/work.py (six steps; SLOW=F makes tokenize, and
only tokenize, F times the work), recorded with

    crux record -r RATE --save FILE.db -o /dev/null --format collapsed -q --no-summary \\
        -- python work.py BATCHES

--runs times unchanged and --effect-runs times for each SLOW factor of --effects, all in
one interleaved sequence (unchanged runs spread evenly among the changed ones, the SLOW
factors rotated) so that drift in the machine's speed hits every group alike. Then:

1. False positives (A/A): --splits seeded random 5-vs-5 splits of the unchanged runs;
   the share where `crux diff A B -f json` flags any function or line
   (functions[]/lines[] self_time.flagged), where `crux gate B --baseline A -t TH` exits 1
   (TH: time, tokenize, embed and parse at +5%), and where a Welch t-test on the runs' wall
   time (meta duration_ns) gives p < 0.05. 95% Wilson intervals.
2. Power: for each SLOW factor, --splits seeded draws of 5 unchanged against 5 changed
   runs; the share where diff flags tokenize slower (self_time.flagged and diff > 0), and,
   as hyperfine users would judge it, where Welch's t-test on wall time alone says slower at
   p < 0.05. The minimum detectable effect (MDE) is the smallest factor with >= 80%.
3. Speed: `crux diff a.db b.db -f json` of two recordings of >= --speed-samples samples
   each (two real recordings whose samples are doubled with SQL, stack_counts and meta
   scaled alike); the median wall time of 5, against the goal of under 1 s.

    python3 bench/loop.py [--runs 16] [--effect-runs 8] [--effects 1.01,...] [--splits 300]
    python3 bench/loop.py --quick            # smoke test, under 2 minutes
    python3 bench/loop.py --reuse            # judge the recordings of the last run again

Prints the figures and writes bench/out/loop.json (--quick: loop-quick.json; --out NAME);
the recordings go to the folder of the same name (bench/out/loop/, loop-quick/). The splits
reuse a few recordings, so they are not independent draws: the Wilson intervals say how
exactly the rate over these recordings is known, not how far another set of recordings
could move it."""
import argparse
import json
import math
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

WORK = os.path.join(C.ROOT, "tests", "integration", "targets", "loop", "work.py")
DEFAULT_EFFECTS = "1.01,1.02,1.03,1.05,1.10,1.20,1.40"
THRESHOLDS = "time +5%\nfunction tokenize +5%\nfunction embed +5%\nfunction parse +5%\n"
SEC_PER_BATCH = 0.055  # work.py on pyenv 3.12 at SLOW=1, for the first estimate only
SIDE = 5


# ---- statistics -------------------------------------------------------------------------

def wilson(k, n, z=1.959964):
    """95% Wilson score interval of a proportion k/n."""
    if n == 0:
        return [0.0, 1.0]
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return [max(0.0, c - h), min(1.0, c + h)]


def _betacf(a, b, x):
    """Continued fraction of the regularized incomplete beta (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1 + aa * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1 + aa * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + aa / c
        c = c if abs(c) > tiny else tiny
        de = d * c
        h *= de
        if abs(de - 1) < 1e-14:
            break
    return h


def betainc(a, b, x):
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    lbt = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) +
           b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1 - math.exp(lbt) * _betacf(b, a, 1 - x) / b


def t_two_sided_p(t, df):
    """Two-sided p-value of Student's t with df degrees of freedom (exact, via I_x)."""
    if not math.isfinite(t):
        return 0.0
    return betainc(df / 2, 0.5, df / (df + t * t))


def welch(a, b):
    """Welch's unequal-variance t-test of mean(b) - mean(a) (scipy's ttest_ind with
    equal_var=False, which hyperfine's scripts/welch_ttest.py uses): (t, df, p two-sided)."""
    ma, mb = statistics.fmean(a), statistics.fmean(b)
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se2 = va + vb
    if se2 == 0:
        return 0.0, float(len(a) + len(b) - 2), 1.0
    t = (mb - ma) / math.sqrt(se2)
    df = se2 * se2 / (va * va / (len(a) - 1) + vb * vb / (len(b) - 1))
    return t, df, t_two_sided_p(t, df)


def self_check():
    """The t distribution against tabulated quantiles (t_{0.975}: df 4 2.776, df 10 2.228,
    df 30 2.042) so that a broken p-value cannot pass silently."""
    for t, df in ((2.776445, 4), (2.228139, 10), (2.042272, 30)):
        p = t_two_sided_p(t, df)
        if abs(p - 0.05) > 1e-4:
            sys.exit("bench: t distribution self-check failed: p(%g, df %d) = %g" % (t, df, p))


# ---- recording ----------------------------------------------------------------------------

def schedule(runs, effects, effect_runs):
    """The order of the recordings: the changed runs in rounds (each round every factor once,
    the order rotated), the unchanged runs spread evenly among them, starting with one."""
    changed = []
    for r in range(effect_runs):
        k = r % len(effects) if effects else 0
        rot = effects[k:] + effects[:k]
        changed += rot
    total = runs + len(changed)
    out, placed, ci = [], 0, 0
    for i in range(total):
        # place an unchanged run whenever the even spacing calls for one
        if placed < runs and (placed * total <= i * runs or ci >= len(changed)):
            out.append(None)
            placed += 1
        else:
            out.append(changed[ci])
            ci += 1
    return out


def read_meta(path, key):
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    finally:
        db.close()
    return row[0] if row else None


def record(crux, python, rate, batches, slow, path):
    env = dict(os.environ)
    for var in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONEXECUTABLE", "SLOW"):
        env.pop(var, None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if slow is not None:
        env["SLOW"] = "%g" % slow
    argv = [crux, "record", "-r", str(rate), "--save", path, "-o", "/dev/null", "--format",
            "collapsed", "-q", "--no-summary", "--", python, WORK, str(batches)]
    t0 = time.monotonic()
    rc, out, err, _ = C.run_cmd(argv, env=env, timeout=max(600, batches * 2))
    wall = time.monotonic() - t0
    if rc != 0 or not os.path.exists(path):
        sys.exit("bench: crux record failed (%s): %s" % (rc, err[-2000:]))
    return {"file": path, "slow": slow, "duration_ns": int(read_meta(path, "duration_ns")),
            "samples": int(read_meta(path, "total") or 0), "wall_s": wall,
            "loadavg": os.getloadavg(), "checksum": out.strip()}


def record_all(args, crux, python, rdir):
    order = schedule(args.runs, args.effects, args.effect_runs)
    per_run = [args.batches * SEC_PER_BATCH * (1 + ((s or 1.0) - 1) / 7) + 0.4 for s in order]
    C.log("loop: %d recordings (%d unchanged, %d x %d changed), work.py %d at %d Hz; "
          "estimated %.1f min" % (len(order), args.runs, args.effect_runs, len(args.effects),
                                  args.batches, args.rate, sum(per_run) / 60))
    if os.path.isdir(rdir):
        shutil.rmtree(rdir)
    os.makedirs(rdir)
    runs, t_start, counts = [], time.monotonic(), {}
    for i, slow in enumerate(order):
        key = "base" if slow is None else "%g" % slow
        counts[key] = counts.get(key, 0) + 1
        path = os.path.join(rdir, "r%03d-%s-%d.db" % (i, key, counts[key]))
        got = record(crux, python, args.rate, args.batches, slow, path)
        runs.append(got)
        if i == 0:
            scale = got["wall_s"] / per_run[0]
            C.log("loop: first run %.1f s; re-estimated total %.1f min" %
                  (got["wall_s"], sum(per_run) * scale / 60))
        if (i + 1) % 8 == 0 or i + 1 == len(order):
            done = time.monotonic() - t_start
            C.log("loop: %d/%d recorded, %.1f min so far, load %.2f" %
                  (i + 1, len(order), done / 60, os.getloadavg()[0]))
        with open(os.path.join(rdir, "runs.json"), "w") as f:
            json.dump({"args": vars(args), "runs": runs}, f, indent=1)
    return runs


# ---- judging ------------------------------------------------------------------------------

def diff_json(crux, base, new):
    t0 = time.monotonic()
    r = subprocess.run([crux, "diff", ",".join(base), ",".join(new), "-f", "json"],
                       capture_output=True, text=True, timeout=300)
    dt = time.monotonic() - t0
    if r.returncode != 0:
        sys.exit("bench: crux diff failed (%d): %s" % (r.returncode, r.stderr[-2000:]))
    return json.loads(r.stdout), dt


def flagged(doc):
    return [(t, f["name"]) for t in ("functions", "lines") for f in doc.get(t, [])
            if f["self_time"]["flagged"]]


def tokenize_est(doc):
    for f in doc.get("functions", []):
        if f["name"].startswith("tokenize ("):
            return f["self_time"]
    return None


def durations(runs):
    return [r["duration_ns"] / 1e9 for r in runs]


def aa_part(crux, base_runs, splits, seed, thfile):
    rng = random.Random(seed)
    diff_fp = gate_reg = gate_inc = wall_fp = 0
    names, gate_rules, diff_s = {}, {}, []
    for _ in range(splits):
        pick = rng.sample(base_runs, 2 * SIDE)
        a, b = pick[:SIDE], pick[SIDE:]
        doc, dt = diff_json(crux, [r["file"] for r in a], [r["file"] for r in b])
        diff_s.append(dt)
        fl = flagged(doc)
        if fl:
            diff_fp += 1
            for t, n in fl:
                k = "%s: %s" % (t, n.split(" (")[0] if t == "functions" else n)
                names[k] = names.get(k, 0) + 1
        gj = os.path.join(os.path.dirname(thfile), "gate.json")
        g = subprocess.run([crux, "gate", ",".join(r["file"] for r in b), "--baseline",
                            ",".join(r["file"] for r in a), "-t", thfile, "--json", gj],
                           capture_output=True, text=True, timeout=300)
        if g.returncode not in (0, 1, 2):
            sys.exit("bench: crux gate failed (%d): %s" % (g.returncode, g.stderr[-2000:]))
        gate_reg += g.returncode == 1
        gate_inc += g.returncode == 2
        if g.returncode:
            with open(gj) as f:
                for t in json.load(f).get("thresholds", []):
                    if t["status"] != "pass":
                        k = "%s: %s" % (t["status"], t["rule"])
                        gate_rules[k] = gate_rules.get(k, 0) + 1
        _, _, p = welch(durations(a), durations(b))
        wall_fp += p < 0.05
    return {"splits": splits, "seed": seed, "thresholds": THRESHOLDS.strip().split("\n"),
            "diff_flagged": diff_fp, "diff_rate": diff_fp / splits,
            "diff_ci95": wilson(diff_fp, splits),
            "gate_regression": gate_reg, "gate_rate": gate_reg / splits,
            "gate_ci95": wilson(gate_reg, splits),
            "gate_inconclusive": gate_inc, "gate_inconclusive_rate": gate_inc / splits,
            "wall_welch_p05": wall_fp, "wall_rate": wall_fp / splits,
            "wall_ci95": wilson(wall_fp, splits),
            "flagged_names": dict(sorted(names.items(), key=lambda kv: -kv[1])),
            "gate_rules_not_passing": dict(sorted(gate_rules.items(), key=lambda kv: -kv[1])),
            "diff_seconds_median": statistics.median(diff_s)}


def power_part(crux, base_runs, changed, effects, splits, seed):
    cells = []
    for k, eff in enumerate(effects):
        runs = changed.get(eff, [])
        if len(runs) < SIDE or len(base_runs) < SIDE:
            C.log("loop: SLOW=%g: fewer than %d runs a side, skipped" % (eff, SIDE))
            continue
        rng = random.Random(seed + 1000 * (k + 1))
        tok = wall = other = 0
        rels, names = [], {}
        for _ in range(splits):
            a, b = rng.sample(base_runs, SIDE), rng.sample(runs, SIDE)
            doc, _ = diff_json(crux, [r["file"] for r in a], [r["file"] for r in b])
            est = tokenize_est(doc)
            if est and est["flagged"] and est["diff"] > 0:
                tok += 1
            if est and est.get("rel") is not None:
                rels.append(est["rel"])
            others = [n.split(" (")[0] for t, n in flagged(doc)
                      if t == "functions" and not n.startswith("tokenize (")]
            other += bool(others)
            for n in others:
                names[n] = names.get(n, 0) + 1
            t, _, p = welch(durations(a), durations(b))
            wall += p < 0.05 and t > 0
        cell = {"slow": eff, "runs": len(runs), "splits": splits,
                "diff_detects": tok, "diff_power": tok / splits,
                "diff_ci95": wilson(tok, splits),
                "wall_detects": wall, "wall_power": wall / splits,
                "wall_ci95": wilson(wall, splits),
                "other_function_flagged": other, "other_flagged_names": names,
                "tokenize_rel_median": statistics.median(rels) if rels else None,
                "wall_rel": (statistics.fmean(durations(runs)) /
                             statistics.fmean(durations(base_runs)) - 1),
                "wall_rel_median": (statistics.median(durations(runs)) /
                                    statistics.median(durations(base_runs)) - 1),
                "wall_rel_expected": (eff - 1) / 7}
        cells.append(cell)
        C.log("loop: SLOW=%g: diff %.0f%%, wall-time Welch %.0f%%" %
              (eff, 100 * cell["diff_power"], 100 * cell["wall_power"]))

    def mde(key):
        hit = [c["slow"] for c in cells if c[key] >= 0.8]
        return min(hit) if hit else None
    return {"cells": cells, "seed": seed, "mde_diff": mde("diff_power"),
            "mde_wall": mde("wall_power")}


def inflate(src, dst, target):
    """Copies a recording and doubles its samples (each copy shifted in time by the length
    so far, so the result reads as one longer run) until it has at least target rows, keeps
    the first target of them, and makes the rest agree: stack_counts recomputed from the
    samples (sum of weight by stack and category, as crux writes it), meta total and ticks
    the sample count, duration_ns and the processes row scaled alike."""
    shutil.copyfile(src, dst)
    db = sqlite3.connect(dst)
    n0 = n = db.execute("SELECT count(*) FROM samples").fetchone()[0]
    dur = int(db.execute("SELECT value FROM meta WHERE key = 'duration_ns'").fetchone()[0])
    if n == 0:
        sys.exit("bench: %s has no samples (record with --save keeps them)" % src)
    k = 1
    while n < target:
        db.execute("INSERT INTO samples SELECT t_ns + ?, stack, tid, pid, stage, state, flags, "
                   "cat, weight, ev FROM samples", (dur * k,))
        n *= 2
        k *= 2
    db.execute("DELETE FROM samples WHERE rowid > (SELECT rowid FROM samples ORDER BY rowid "
               "LIMIT 1 OFFSET ?)", (target - 1,))
    n = db.execute("SELECT count(*) FROM samples").fetchone()[0]
    db.execute("DELETE FROM stack_counts")
    db.execute("INSERT INTO stack_counts SELECT stack, cat, sum(weight) FROM samples "
               "GROUP BY stack, cat")
    for key in ("total", "ticks"):
        db.execute("UPDATE meta SET value = ? WHERE key = ?", (n, key))
    db.execute("UPDATE meta SET value = ? WHERE key = 'duration_ns'", (dur * n // n0,))
    db.execute("UPDATE processes SET samples = ?, last_ns = (SELECT max(t_ns) FROM samples)",
               (n,))
    db.commit()
    db.execute("VACUUM")
    db.close()
    return n


def speed_part(crux, base_runs, target, reps, sdir):
    os.makedirs(sdir, exist_ok=True)
    a, b = os.path.join(sdir, "speed-a.db"), os.path.join(sdir, "speed-b.db")
    na = inflate(base_runs[0]["file"], a, target)
    nb = inflate(base_runs[1]["file"], b, target)
    walls, cpus, rss = [], [], []
    for _ in range(reps):
        t0 = time.monotonic()
        p = subprocess.Popen([crux, "diff", a, b, "-f", "json"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        _, status, ru = os.wait4(p.pid, 0)
        walls.append(time.monotonic() - t0)
        p.returncode = os.waitstatus_to_exitcode(status)
        err = p.stderr.read().decode(errors="replace")
        p.stderr.close()
        if p.returncode != 0:
            sys.exit("bench: crux diff of the large recordings failed: %s" % err[-2000:])
        cpus.append(ru.ru_utime + ru.ru_stime)
        rss.append(ru.ru_maxrss)
    return {"samples": [na, nb], "reps": reps, "wall_s": walls,
            "wall_median_s": statistics.median(walls), "cpu_median_s": statistics.median(cpus),
            "max_rss_mib": max(rss) / 1024, "goal_s": 1.0,
            "bytes": [os.path.getsize(a), os.path.getsize(b)]}


# ---- report -------------------------------------------------------------------------------

def pc(x):
    return "%.1f%%" % (100 * x)


def ci(v):
    return "[%.1f, %.1f]%%" % (100 * v[0], 100 * v[1])


def report(res):
    out = []
    rec = res["recordings"]
    out.append("crux %s (%s%s), %s; work.py %d batches at %d Hz, %d unchanged runs, "
               "%s runs per SLOW factor" %
               (res["crux"]["commit"], res["crux"]["binary"],
                ", src dirty" if res["crux"]["src_dirty"] else "", res["python"],
                res["args"]["batches"], res["args"]["rate"], rec["unchanged"],
                res["args"]["effect_runs"]))
    out.append("recording: %.1f min, run wall time median %.2f s [%.2f..%.2f] (unchanged), "
               "samples per run median %d; load average (1 min) during it: median %.2f "
               "[%.2f..%.2f]" %
               (rec["minutes"], rec["unchanged_s"]["median"], rec["unchanged_s"]["min"],
                rec["unchanged_s"]["max"], rec["samples_median"], rec["load1"]["median"],
                rec["load1"]["min"], rec["load1"]["max"]))
    if "aa" in res:
        aa = res["aa"]
        out.append("")
        out.append("1. A/A false positives over %d seeded 5-vs-5 splits of %d unchanged runs" %
                   (aa["splits"], rec["unchanged"]))
        out.append(C.table(["judge", "splits saying 'changed'", "rate", "95% Wilson"], [
            ["crux diff flags a function or line", str(aa["diff_flagged"]),
             pc(aa["diff_rate"]), ci(aa["diff_ci95"])],
            ["crux gate exits 1 (%s)" % ", ".join(aa["thresholds"]),
             str(aa["gate_regression"]), pc(aa["gate_rate"]), ci(aa["gate_ci95"])],
            ["Welch t on wall time, p < 0.05", str(aa["wall_welch_p05"]),
             pc(aa["wall_rate"]), ci(aa["wall_ci95"])]]))
        out.append("gate inconclusive (exit 2): %d (%s); diff flagged: %s; gate rules not "
                   "passing: %s" % (aa["gate_inconclusive"], pc(aa["gate_inconclusive_rate"]),
                                    aa["flagged_names"] or "none",
                                    aa["gate_rules_not_passing"] or "none"))
    if "power" in res:
        pw = res["power"]
        out.append("")
        out.append("2. Power at 5 runs a side (5 unchanged vs 5 changed, %d seeded draws per "
                   "factor)" % (pw["cells"][0]["splits"] if pw["cells"] else 0))
        rows = []
        for c in pw["cells"]:
            rows.append(["%+.0f%%" % (100 * (c["slow"] - 1)), str(c["runs"]),
                         "%s %s" % (pc(c["diff_power"]), ci(c["diff_ci95"])),
                         "%+.1f%%" % (100 * c["tokenize_rel_median"])
                         if c["tokenize_rel_median"] is not None else "-",
                         "%s %s" % (pc(c["wall_power"]), ci(c["wall_ci95"])),
                         "%+.1f%% / %+.1f%% (%+.1f%%)" % (100 * c["wall_rel"],
                                                         100 * c["wall_rel_median"],
                                                         100 * c["wall_rel_expected"]),
                         "%d %s" % (c["other_function_flagged"],
                                    ",".join(sorted(c["other_flagged_names"])))])
        out.append(C.table(["tokenize work", "runs", "diff flags tokenize slower",
                            "diff's tokenize estimate (median)", "Welch on wall time p<0.05",
                            "wall change: mean / median (work)",
                            "splits flagging another function"], rows))

        def m(x):
            return "%+.0f%%" % (100 * (x - 1)) if x else "none of the factors measured"
        out.append("MDE at 80%% power, 5 repeats: crux diff (tokenize): %s; wall-time Welch: "
                   "%s" % (m(pw["mde_diff"]), m(pw["mde_wall"])))
    if "speed" in res:
        sp = res["speed"]
        out.append("")
        out.append("3. crux diff -f json of two recordings of %d and %d samples (%.0f and "
                   "%.0f MB): median wall %.2f s of %d [%.2f..%.2f], CPU %.2f s, max RSS "
                   "%.0f MiB; goal under %.0f s: %s" %
                   (sp["samples"][0], sp["samples"][1], sp["bytes"][0] / 1e6,
                    sp["bytes"][1] / 1e6, sp["wall_median_s"], sp["reps"], min(sp["wall_s"]),
                    max(sp["wall_s"]), sp["cpu_median_s"], sp["max_rss_mib"], sp["goal_s"],
                    "met" if sp["wall_median_s"] < sp["goal_s"] else "missed"))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, help="unchanged runs (default 16; --quick 10)")
    ap.add_argument("--effect-runs", type=int,
                    help="runs per SLOW factor (default runs/2; --quick 5)")
    ap.add_argument("--effects", help="SLOW factors (default %s; --quick 1.05,1.40)" %
                    DEFAULT_EFFECTS)
    ap.add_argument("--batches", type=int, help="work.py BATCHES (default 200, ~10 s; "
                                                "--quick 20)")
    ap.add_argument("--rate", type=int, default=100, help="crux record -r (default 100)")
    ap.add_argument("--splits", type=int, help="splits per question (default 300; --quick 40)")
    ap.add_argument("--seed", type=int, default=20261207, help="of the splits")
    ap.add_argument("--speed-samples", type=int,
                    help="samples per recording for the speed part (default 10^6; --quick "
                         "2*10^5)")
    ap.add_argument("--speed-reps", type=int, default=5, help="timed diffs (median)")
    ap.add_argument("--parts", default="aa,power,speed", help="which of aa,power,speed")
    ap.add_argument("--python", help="the target interpreter (default pyenv 3.12.1)")
    ap.add_argument("--quick", action="store_true", help="a smoke test: few, short runs")
    ap.add_argument("--reuse", action="store_true",
                    help="judge the recordings of the last run (its runs.json) again")
    ap.add_argument("--crux", help="the crux binary (default: build/crux, rebuilt)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--out", help="JSON file name under bench/out (default loop.json)")
    args = ap.parse_args()
    q = args.quick
    args.runs = args.runs or (10 if q else 16)
    args.effect_runs = args.effect_runs or (5 if q else max(SIDE, args.runs // 2))
    args.effects = [float(x) for x in (args.effects or ("1.05,1.40" if q else
                                                        DEFAULT_EFFECTS)).split(",") if x]
    args.batches = args.batches or (20 if q else 200)
    args.splits = args.splits or (40 if q else 300)
    args.speed_samples = args.speed_samples or (200000 if q else 1000000)
    args.out = args.out or ("loop-quick.json" if q else "loop.json")
    parts = set(args.parts.split(","))
    if args.runs < 2 * SIDE:
        sys.exit("bench: --runs must be at least %d (two sides of %d)" % (2 * SIDE, SIDE))
    self_check()
    python = args.python or C.pyenv_python("3.12.1")
    if not os.path.exists(python):
        sys.exit("bench: no interpreter at %s (--python PATH)" % python)
    crux_src, info = C.prepare_crux(args.crux, build=not args.no_build)
    crux = os.path.join(C.OUT, "crux-under-test-loop")
    shutil.copy2(crux_src, crux)
    rdir = os.path.join(C.OUT, os.path.splitext(os.path.basename(args.out))[0])
    res = {"crux": info, "python": "%s %s" % (python, C.python_version(python)),
           "machine": C.machine(), "args": {k: v for k, v in vars(args).items()}}
    t0 = time.monotonic()
    if args.reuse:
        with open(os.path.join(rdir, "runs.json")) as f:
            saved = json.load(f)
        runs = saved["runs"]
        for k in ("runs", "effect_runs", "effects", "batches", "rate"):
            res["args"][k] = saved["args"][k]
        rec_minutes = sum(r["wall_s"] for r in runs) / 60
    else:
        runs = record_all(args, crux, python, rdir)
        rec_minutes = (time.monotonic() - t0) / 60
    base_runs = [r for r in runs if r["slow"] is None]
    changed = {}
    for r in runs:
        if r["slow"] is not None:
            changed.setdefault(r["slow"], []).append(r)
    loads = [r["loadavg"][0] for r in runs]
    base_s = durations(base_runs)
    res["recordings"] = {
        "unchanged": len(base_runs), "changed": {"%g" % k: len(v) for k, v in changed.items()},
        "minutes": rec_minutes,
        "unchanged_s": {"median": statistics.median(base_s), "min": min(base_s),
                        "max": max(base_s), "cv": statistics.stdev(base_s) /
                        statistics.fmean(base_s)},
        "samples_median": int(statistics.median(r["samples"] for r in runs)),
        "load1": {"median": statistics.median(loads), "min": min(loads), "max": max(loads)},
        "runs": runs}
    thfile = os.path.join(rdir, "thresholds.txt")
    with open(thfile, "w") as f:
        f.write(THRESHOLDS)
    if "aa" in parts:
        C.log("loop: A/A, %d splits" % args.splits)
        res["aa"] = aa_part(crux, base_runs, args.splits, args.seed, thfile)
    if "power" in parts:
        C.log("loop: power, %d splits per factor" % args.splits)
        res["power"] = power_part(crux, base_runs, changed, sorted(changed), args.splits,
                                  args.seed)
    if "speed" in parts:
        C.log("loop: speed, %d samples a side" % args.speed_samples)
        res["speed"] = speed_part(crux, base_runs, args.speed_samples, args.speed_reps, rdir)
    res["minutes_total"] = (time.monotonic() - t0) / 60
    res["loadavg_at_end"] = os.getloadavg()
    text = report(res)
    print(text)
    res["text"] = text
    path = C.write_json(args.out, res)
    C.log("loop: wrote %s (%.1f min in all)" % (path, res["minutes_total"]))


if __name__ == "__main__":
    main()
