# SPDX-License-Identifier: MIT
"""Helpers shared by the crux benchmarks: paths, the crux binary under test, running a
workload and reading its self-timed result, crux's --stats line, statistics and tables.

Every benchmark reports ratios measured side by side in one run, repeated and interleaved;
bare times are printed only to explain them."""
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
OUT = os.path.join(BENCH, "out")
WORKLOADS = os.path.join(BENCH, "workloads")
DEFAULT_PYTHON = "/usr/bin/python3"
PYENV = "/root/.pyenv/versions"


def pyenv_python(version):
    return os.path.join(PYENV, version, "bin", "python3")


def ensure_out():
    os.makedirs(OUT, exist_ok=True)


def git_state():
    """The commit and whether src/ differs from it (other engineers edit src/ live)."""
    def git(*args):
        try:
            return subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True,
                                  text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "src_dirty": bool(git("status", "--porcelain", "--", "src", "Makefile"))}


def prepare_crux(path=None, build=True):
    """Builds build/crux (unless told not to) and copies it to bench/out/crux-under-test so
    that a concurrent rebuild cannot swap the binary in the middle of a run. Returns the
    copy's path and a description of what it is."""
    ensure_out()
    src = path or os.path.join(ROOT, "build", "crux")
    if build and not path:
        r = subprocess.run(["make", "-C", ROOT, "build/crux"], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("bench: make build/crux failed:\n" + r.stdout[-2000:] + r.stderr[-2000:])
    if not os.path.exists(src):
        sys.exit("bench: no crux binary at %s (run make build/crux)" % src)
    dst = os.path.join(OUT, "crux-under-test")
    shutil.copy2(src, dst)
    info = {"binary": src, "mtime": time.strftime("%Y-%m-%d %H:%M:%S",
                                                  time.localtime(os.path.getmtime(src)))}
    info.update(git_state())
    return dst, info


def machine():
    """The machine, in words and numbers, for the report."""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = 0
    return {"cpus": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "mem_gib": round(mem_kb / 2**20, 1), "loadavg_at_start": os.getloadavg(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def python_version(python):
    r = subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                       capture_output=True, text=True)
    return r.stdout.strip()


STATS_RE = re.compile(r"crux-stats:(.*)")


def parse_crux_stats(text):
    """The key=value pairs of crux's --stats lines as numbers, or {} when absent. The read
    figure is exposed as read_us_per_thread_sample whichever name this crux prints
    (read_cpu_us_per_thread_sample: CPU time; read_us_per_thread_sample: wall time)."""
    pairs = []
    for m in STATS_RE.finditer(text):  # every crux-stats line: crux prints several
        pairs += m.group(1).split()
    if not pairs:
        return {}
    out = {}
    for kv in pairs:
        k, _, v = kv.partition("=")
        try:
            out[k] = float(v)
        except ValueError:
            out[k] = v
    if "read_cpu_us_per_thread_sample" in out:
        out["read_kind"] = "cpu"
        out["read_us"] = out["read_cpu_us_per_thread_sample"]
    elif "read_us_per_thread_sample" in out:
        out["read_kind"] = "wall"
        out["read_us"] = out["read_us_per_thread_sample"]
    if out.get("elapsed_ns"):
        secs = out["elapsed_ns"] / 1e9
        out["achieved_hz"] = out.get("ticks", 0) / secs
        out["thread_samples_per_s"] = (out.get("thread_samples", 0) + out.get("errors", 0)) / secs
    return out


RESULT_RE = re.compile(r"^WORKLOAD_RESULT (\{.*\})\s*$", re.M)


def parse_result(stdout):
    m = RESULT_RE.search(stdout)
    return json.loads(m.group(1)) if m else None


def run_cmd(argv, env=None, timeout=600):
    """Runs argv to completion; returns (returncode, stdout, stderr, None). The last field
    is kept for callers that unpack four values; tool CPU time comes from wait4_rusage."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return -9, out, err, None
    return p.returncode, out, err, None


def proc_cpu_s(pid):
    """utime + stime of a live process from /proc (clock-tick resolution)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def start_target(argv, env=None):
    """Starts a long-running workload with stdin/stdout pipes and waits for WORKLOAD_READY."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    line = p.stdout.readline()
    if "WORKLOAD_READY" not in line:
        p.kill()
        err = p.stderr.read()
        raise RuntimeError("workload did not start: %r %s" % (line, err[-1000:]))
    return p


def stop_target(p):
    if p.poll() is None:
        p.send_signal(signal.SIGKILL)
    p.wait()
    for f in (p.stdin, p.stdout, p.stderr):
        try:
            f.close()
        except OSError:
            pass


def wait4_rusage(p, timeout):
    """Waits for a Popen child with os.wait4 and returns (returncode, user+sys CPU seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            return p.returncode, ru.ru_utime + ru.ru_stime
        if time.monotonic() > deadline:
            p.kill()
            pid, status, ru = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            return None, ru.ru_utime + ru.ru_stime
        time.sleep(0.01)


def summarize(values):
    """Median, min, max and count of a list of numbers (None when empty); for positive
    numbers (ratios) also the geometric mean and a 95% bootstrap interval of it."""
    v = [x for x in values if x is not None]
    if not v:
        return None
    out = {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v),
           "values": v}
    if len(v) >= 3 and min(v) > 0:
        out["gmean"], out["gmean_ci95"] = gmean_ci(v)
    return out


def gmean_ci(v, rounds=2000):
    """Geometric mean of v and a percentile-bootstrap 95% interval (fixed seed)."""
    rng = random.Random(1)
    logs = [math.log(x) for x in v]
    means = sorted(sum(rng.choice(logs) for _ in logs) / len(logs) for _ in range(rounds))
    return (math.exp(sum(logs) / len(logs)),
            [math.exp(means[int(0.025 * rounds)]), math.exp(means[int(0.975 * rounds) - 1])])


def pct(ratio):
    """A ratio (1.012) as an overhead in percent (+1.2%)."""
    return "%+.1f%%" % ((ratio - 1) * 100)


def fmt_spread(s, f=pct):
    """median [min..max]"""
    if not s:
        return "-"
    return "%s [%s..%s]" % (f(s["median"]), f(s["min"]), f(s["max"]))


def fmt_ci(s, f=pct):
    """geometric mean (95% interval), for ratios"""
    if not s or "gmean" not in s:
        return "-"
    return "%s (%s..%s)" % (f(s["gmean"]), f(s["gmean_ci95"][0]), f(s["gmean_ci95"][1]))


def table(headers, rows):
    """Renders rows (lists of strings) as an aligned text table."""
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(str(c)))
    line = "  ".join(h.ljust(widths[i]) for i, h in enumerate(headers))
    out = [line, "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)))
    return "\n".join(out)


def write_json(name, data):
    ensure_out()
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False)
    return path


def log(msg):
    print(msg, file=sys.stderr, flush=True)
