#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""How often does each profiler report a stack the program cannot have? crux, py-spy and
Austin, per interpreter and sampling rate, on the trust targets.

Every tool launches the same target (tests/integration/targets/trust/churn.py: one
thread of tiny calls along fixed paths; mix.py: four threads and an asyncio loop through
generators, coroutines, methods, closures, calls through C) for the same duration, one
tool after the other, and tests/integration/trust_check.py judges every sampled stack
against the stacks the target's source allows. No tool pauses the target:

  crux record -q --no-summary -r RATE -f collapsed -o OUT -- PYTHON TARGET   (default mode)
  py-spy record --nonblocking -r RATE -f raw --full-filenames -o OUT -- PYTHON TARGET
  austin -s -i 1e6/RATE -o OUT PYTHON TARGET       (-s drops idle samples, as the others do)

Reported per cell: impossible samples / all samples of the tool's output, as a percentage;
with none impossible, the 95% upper bound 3/n ("rule of three") is given instead, and a
cell with fewer than --min-samples samples holding a target frame is marked "few". A tool
that runs the target but reports none of its frames "cannot read" that interpreter; a run
that ends before the target starts (Austin 3.7 now and then exits 32, not finding the
runtime of the process it launched) is tried up to three times and shown as "failed" if
every try fails; neither is ever shown as 0. Each tool's own dropped-sample figure is reported too
(crux: errors; py-spy: Errors; Austin: invalid samples), since a tool can trade impossible
stacks for dropped ones; samples Austin writes with an `:INVALID:` frame are among its
invalid ones and are left out of the impossible count.

    python3 bench/trust.py                  # all 7 interpreters, 100/1000/10000 Hz, 3 s
    python3 bench/trust.py --pythons 3.12,3.13 --rates 1000 --duration 2 --tools crux

Prints a markdown table; writes bench/out/trust.json and bench/out/trust.md (--out NAME.json:
bench/out/NAME.json and NAME.md)."""
import argparse
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
import compare  # noqa: E402  (ensure_tools: bench/out/venv-tools with py-spy, austin)

sys.path.insert(0, os.path.join(C.ROOT, "tests", "integration"))
import trust_check  # noqa: E402

TARGET_DIR = os.path.join(C.ROOT, "tests", "integration", "targets", "trust")
PYTHONS = [("3.8", C.pyenv_python("3.8.18")), ("3.9", C.pyenv_python("3.9.18")),
           ("3.10", C.pyenv_python("3.10.13")), ("3.11", C.pyenv_python("3.11.7")),
           ("3.12", C.pyenv_python("3.12.1")), ("3.13", C.pyenv_python("3.13.0")),
           ("debian3.11", "/usr/bin/python3")]
TOOLS = ["crux", "py-spy", "austin"]
CRUX_ERRORS = re.compile(r"(\d+) errors? \(([\d.]+)% of (\d+) thread-samples\)")
PYSPY_ERRORS = re.compile(r"Samples: (\d+) Errors: (\d+)")
AUSTIN_ERRORS = re.compile(r"Error rate\s*:\s*(\d+)/(\d+)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def repo_state(binary):
    """The commit of the checkout a given binary was built in, and whether its src/ differs
    (common.git_state describes this checkout, not that one)."""
    def git(*args):
        r = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(binary))] + list(args),
                           capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""
    top = git("rev-parse", "--show-toplevel")
    if not top:
        return {"commit": "?", "src_dirty": False}
    status = subprocess.run(["git", "-C", top, "status", "--porcelain", "--", "src", "Makefile"],
                            capture_output=True, text=True).stdout.strip()
    return {"commit": git("rev-parse", "--short", "HEAD"), "checkout": top,
            "src_dirty": bool(status)}


def tool_argv(tool, paths, rate, out, target_argv):
    crux, pyspy, austin = paths
    if tool == "crux":
        return [crux, "record", "-q", "--no-summary", "-r", str(rate), "-f", "collapsed",
                "-o", out, "--"] + target_argv
    if tool == "py-spy":
        return [pyspy, "record", "--nonblocking", "-r", str(rate), "-f", "raw",
                "--full-filenames", "-o", out, "--"] + target_argv
    if tool == "austin":
        return [austin, "-s", "-i", str(max(1, int(round(1e6 / rate)))), "-o", out] + target_argv
    raise ValueError(tool)


def dropped(tool, err):
    """(dropped, attempted) as the tool counts them, or None."""
    err = ANSI.sub("", err)
    if tool == "crux":
        m = CRUX_ERRORS.findall(err)
        return (int(m[-1][0]), int(m[-1][2])) if m else None
    if tool == "py-spy":
        m = PYSPY_ERRORS.findall(err)
        return (int(m[-1][1]), int(m[-1][0]) + int(m[-1][1])) if m else None
    m = AUSTIN_ERRORS.findall(err)
    return (int(m[-1][0]), int(m[-1][1])) if m else None


def run_case(tool, paths, python, script, rate, duration, tag):
    out = os.path.join(C.OUT, "trust", tag + ".txt")
    truth = os.path.join(C.OUT, "trust", tag + ".truth.json")
    for p in (out, truth):
        if os.path.exists(p):
            os.unlink(p)
    target = os.path.join(TARGET_DIR, script + ".py")
    argv = tool_argv(tool, paths, rate, out,
                     [python, target, "--duration", str(duration), "--truth", truth])
    t0 = time.monotonic()
    rc, sout, err, _ = C.run_cmd(argv, timeout=duration * 20 + 60)
    err = sout + err  # py-spy prints its "Samples: N Errors: M" on stdout
    res = {"tool": tool, "script": script, "rate": rate, "rc": rc,
           "wall_s": round(time.monotonic() - t0, 2), "dropped": dropped(tool, err),
           "stderr_tail": ANSI.sub("", err)[-600:]}
    if not os.path.exists(truth):
        res["failure"] = "exit %s before the target started" % rc
        return res
    if not os.path.exists(out):
        res["failure"] = "exit %s, no output" % rc
        return res
    version = trust_check.version_from_truth(truth)
    model = trust_check.Model(target, version)
    rep = trust_check.check_file(model, out, "austin" if tool == "austin" else "collapsed")
    res.update(rep.as_dict(5))
    res["python_version"] = ".".join(map(str, version))
    if rep.target == 0:
        res["failure"] = "no target frames (rc %s)" % rc
    return res


def cell(res, min_samples):
    if res is None:
        return "-"
    if res.get("failure"):
        # the tool ran the target and found none of it: it cannot read this interpreter;
        # otherwise this run failed (see stderr_tail in the JSON)
        if res["failure"].startswith("no target frames"):
            return "cannot read (%s)" % res["failure"]
        return "failed (%s)" % res["failure"]
    n, bad = res["samples"], res["impossible"]
    if bad:
        text = "**%.2f%%** (%d/%d)" % (100.0 * bad / n, bad, n)
    else:
        text = "0 (<%.2f%%, n=%d)" % (300.0 / n, n) if n else "0 (n=0)"
    if res["target_samples"] < min_samples:
        text += " few"
    return text


def drop_cell(res):
    if res is None or res.get("failure") or not res.get("dropped"):
        return "-" if res is None or not res.get("failure") else "n/a"
    d, n = res["dropped"]
    return "%.2f%% (%d/%d)" % (100.0 * d / n if n else 0.0, d, n)


def markdown(results, pythons, rates, scripts, tools, min_samples):
    heads = ["python", "rate"] + ["%s %s" % (t, s) for t in tools for s in scripts]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    drops = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for py, _ in pythons:
        for rate in rates:
            row = [py, "%d Hz" % rate]
            drow = [py, "%d Hz" % rate]
            for t in tools:
                for s in scripts:
                    r = results.get((py, rate, t, s))
                    row.append(cell(r, min_samples))
                    drow.append(drop_cell(r))
            lines.append("| " + " | ".join(row) + " |")
            drops.append("| " + " | ".join(drow) + " |")
    return ("Impossible stacks: impossible samples / samples in the tool's output (0: 95%% upper "
            "bound 3/n; few: under %d samples with a target frame)\n\n" % min_samples
            + "\n".join(lines)
            + "\n\nDropped by the tool itself (crux errors, py-spy Errors, Austin invalid samples)"
            "\n\n" + "\n".join(drops) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pythons", default=",".join(p for p, _ in PYTHONS),
                    help="ids among %s" % ",".join(p for p, _ in PYTHONS))
    ap.add_argument("--rates", default="100,1000,10000")
    ap.add_argument("--duration", type=float, default=3.0, help="seconds per recording")
    ap.add_argument("--targets", default="churn,mix")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--min-samples", type=int, default=300)
    ap.add_argument("--crux")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--out", default="trust.json", help="JSON file name in bench/out/")
    ap.add_argument("--render", metavar="JSON",
                    help="only print the tables of an earlier run's trust.json")
    a = ap.parse_args()
    wanted = a.pythons.split(",")
    pythons = [p for p in PYTHONS if p[0] in wanted]
    rates = [int(r) for r in a.rates.split(",")]
    scripts = a.targets.split(",")
    tools = a.tools.split(",")
    if a.render:
        with open(a.render) as f:
            data = json.load(f)
        results = dict(((r["python"], r["rate"], r["tool"], r["script"]), r)
                       for r in data["results"])
        print(markdown(results, pythons, rates, scripts, tools, data["min_samples"]))
        return
    machine = C.machine()
    crux, crux_info = C.prepare_crux(a.crux, build=not a.no_build)
    if a.crux:
        crux_info.update(repo_state(a.crux))
    versions = {}
    pyspy = austin = None
    if "py-spy" in tools or "austin" in tools:
        pyspy, austin, versions = compare.ensure_tools()
    os.makedirs(os.path.join(C.OUT, "trust"), exist_ok=True)
    paths = (crux, pyspy, austin)
    print("crux %s%s (%s, built %s), %s; %s s per recording" % (
        crux_info["commit"], " + uncommitted src changes" if crux_info["src_dirty"] else "",
        crux_info["binary"], crux_info["mtime"],
        ", ".join(versions.get(t, t) for t in tools if t != "crux") or "crux only", a.duration))
    results = {}
    for py, python in pythons:
        if not os.path.exists(python):
            C.log("%s: %s not installed, skipped" % (py, python))
            continue
        for rate in rates:
            for k, script in enumerate(scripts):
                # rotate the tool order so that none always runs first (machine warm-up)
                order = tools[k % len(tools):] + tools[:k % len(tools)]
                for tool in order:
                    tag = "%s-%s-%d-%s" % (py, script, rate, tool)
                    r = run_case(tool, paths, python, script, rate, a.duration, tag)
                    failed = []
                    while (r.get("failure", "").endswith("before the target started")
                           and len(failed) < 2):
                        # Austin 3.7 now and then gives up finding the runtime of a
                        # process it launched (exit 32): up to three tries, and say so
                        C.log("  %s: %s, again" % (tag, r["failure"]))
                        failed.append(r)
                        r = run_case(tool, paths, python, script, rate, a.duration, tag)
                    if failed:
                        r["failed_tries"] = failed
                    r["python"] = py
                    results[(py, rate, tool, script)] = r
                    C.log("  %s: %s" % (tag, r.get("failure") or "%d samples, %d impossible" % (
                        r["samples"], r["impossible"])))
    data = {"benchmark": "trust", "machine": machine, "crux": crux_info, "tools": versions,
            "duration_s": a.duration, "min_samples": a.min_samples,
            "results": list(results.values())}
    data["machine"]["loadavg_at_end"] = os.getloadavg()
    path = C.write_json(a.out, data)
    md = markdown(results, pythons, rates, scripts, tools, a.min_samples)
    print()
    print(md)
    md_path = os.path.splitext(path)[0] + ".md"
    with open(md_path, "w") as f:
        f.write(md)
    print("wrote %s and %s" % (path, md_path))


if __name__ == "__main__":
    main()
