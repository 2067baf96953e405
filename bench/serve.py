#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""crux serve: what the endpoint costs the target, and whether crux's memory stays flat.

Overhead: the fixed-work workload workloads/cpu.py launched under `crux record` and under
`crux serve` (with a client scraping /debug/pprof/profile?seconds=5 back to back and /metrics
every second, as a continuous profiler and Prometheus would), each against the workload with
no profiler in an adjacent pair, the order alternating. Reported: the ratio of the target's
wall and CPU time, median [min..max] and geometric mean with a 95% interval.

Soak: `crux serve` on tests/integration/targets/serve_work.py --churn (a new function every
few ms, so the stacks never repeat) with four scrapers (three profile windows of 2 s back to
back, one /metrics loop) for --soak-minutes; crux's resident memory is read from /proc every
10 s. Reported: RSS after the first minute and at the end, the maximum, profiles served,
stack-table resets.

    python3 bench/serve.py [--reps 5] [--rate 100] [--soak-minutes 3] [--soak-max-stacks N]
                           [--python 3.12.1]

Writes bench/out/serve.json."""
import argparse
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SERVING_RE = re.compile(r"crux: serving pid \d+ at (http://\S+?)/debug/pprof/profile")


def fetch(url, timeout=60):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except Exception as e:  # noqa: BLE001 (a bench counts failures, whatever they are)
        return None, str(e).encode()


def wait_url(proc, timeout=30):
    """The base URL crux serve printed on stderr (read line by line)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        m = SERVING_RE.search(line)
        if m:
            return m.group(1)
    raise RuntimeError("crux serve did not print its address")


class Scrapers(object):
    """Threads that fetch profile windows back to back (and /metrics) until stopped."""

    def __init__(self, url, proc, profiles=1, seconds=5, metrics_every=1.0):
        self.url, self.proc, self.stop, self.ok, self.failed = url, proc, False, 0, 0
        self.threads = [threading.Thread(target=self.profiles, args=(seconds,))
                        for _ in range(profiles)]
        self.threads.append(threading.Thread(target=self.metrics, args=(metrics_every,)))
        for t in self.threads:
            t.daemon = True
            t.start()

    def count(self, got):
        status, body = got
        if status == 200:
            self.ok += 1
        elif status is None and (b"refused" in body or b"reset" in body):
            time.sleep(0.05)  # crux is stopping (its backlog is reset) or gone: not a failure
        else:
            self.failed += 1

    def profiles(self, seconds):
        while not self.stop:
            self.count(fetch("%s/debug/pprof/profile?seconds=%g" % (self.url, seconds)))

    def metrics(self, every):
        while not self.stop:
            self.count(fetch(self.url + "/metrics", 10))
            time.sleep(every)

    def finish(self):
        self.stop = True
        for t in self.threads:
            t.join(30)


def run_workload(python, crux, mode, rate, units):
    argv = [python, os.path.join(HERE, "workloads", "cpu.py"), "--units", str(units)]
    scrapers = None
    if mode == "record":
        argv = [crux, "record", "--rate", str(rate), "--quiet", "--no-summary", "-o",
                os.devnull, "--format", "collapsed", "--"] + argv
    elif mode == "serve":
        argv = [crux, "serve", "--rate", str(rate), "--listen", "127.0.0.1:0", "--"] + argv
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if mode == "serve":
        scrapers = Scrapers(wait_url(p), p)
    out, err = p.communicate(timeout=900)
    if scrapers:
        scrapers.finish()
    res = C.parse_result(out)
    if not res:
        raise RuntimeError("%s: no result\n%s" % (mode, err[-2000:]))
    if scrapers:
        res["scrapes_ok"], res["scrapes_failed"] = scrapers.ok, scrapers.failed
    return res


def overhead(args, python, crux):
    ratios = {"record": {"wall": [], "cpu": []}, "serve": {"wall": [], "cpu": []}}
    scrapes = [0, 0]
    for rep in range(args.reps):
        for mode in ("record", "serve") if rep % 2 == 0 else ("serve", "record"):
            pair = [("none", None), (mode, None)]
            if (rep // 2) % 2:
                pair.reverse()
            got = {}
            for m, _ in pair:
                got[m] = run_workload(python, crux, m, args.rate, args.units)
            ratios[mode]["wall"].append(got[mode]["elapsed_s"] / got["none"]["elapsed_s"])
            ratios[mode]["cpu"].append(got[mode]["cpu_s"] / got["none"]["cpu_s"])
            if mode == "serve":
                scrapes[0] += got[mode]["scrapes_ok"]
                scrapes[1] += got[mode]["scrapes_failed"]
            C.log("rep %d %s: wall %s cpu %s" % (rep, mode, C.pct(ratios[mode]["wall"][-1]),
                                                 C.pct(ratios[mode]["cpu"][-1])))
    rows, data = [], {}
    for mode in ("record", "serve"):
        s_wall, s_cpu = C.summarize(ratios[mode]["wall"]), C.summarize(ratios[mode]["cpu"])
        data[mode] = {"wall": s_wall, "cpu": s_cpu}
        rows.append([mode + "@%g" % args.rate, C.fmt_spread(s_wall), C.fmt_ci(s_wall),
                     C.fmt_spread(s_cpu), C.fmt_ci(s_cpu)])
    print(C.table(["mode", "wall median [min..max]", "wall gmean (95%)",
                   "cpu median [min..max]", "cpu gmean (95%)"], rows))
    print("serve: %d scrapes answered, %d failed" % tuple(scrapes))
    data["scrapes_ok"], data["scrapes_failed"] = scrapes
    return data


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def soak(args, python, crux):
    target = os.path.join(C.ROOT, "tests", "integration", "targets", "serve_work.py")
    truth = os.path.join(C.OUT, "serve-soak-truth.json")
    env = dict(os.environ, PYTHONPATH=os.path.join(C.ROOT, "tests", "integration", "targets"))
    argv = [crux, "serve", "--rate", str(args.rate), "--listen", "127.0.0.1:0",
            "--max-stacks", str(args.soak_max_stacks), "--", python, target, "--churn", "--truth", truth,
            "--duration", str(args.soak_minutes * 60 + 30)]
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env=env)
    url = wait_url(p)
    scrapers = Scrapers(url, p, profiles=3, seconds=2, metrics_every=0.2)
    points = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < args.soak_minutes * 60:
        time.sleep(10)
        points.append((round(time.monotonic() - t0), rss_kb(p.pid)))
        C.log("soak %4d s: crux RSS %d kB" % points[-1])
    status, body = fetch(url + "/metrics")
    resets = re.search(rb"^crux_profile_resets_total (\S+)", body or b"", re.M)
    scrapers.finish()
    p.terminate()
    p.wait(60)
    after_1min = [kb for t, kb in points if t >= 60][:1] or [points[0][1]]
    data = {"points": points, "rss_after_1min_kb": after_1min[0], "rss_end_kb": points[-1][1],
            "rss_max_kb": max(kb for _, kb in points), "scrapes_ok": scrapers.ok,
            "scrapes_failed": scrapers.failed,
            "resets": float(resets.group(1)) if resets else None}
    print("soak %.0f min: crux RSS %d kB after 1 min, %d kB at the end, max %d kB; "
          "%d scrapes answered, %d failed; %s stack-table resets"
          % (args.soak_minutes, data["rss_after_1min_kb"], data["rss_end_kb"],
             data["rss_max_kb"], data["scrapes_ok"], data["scrapes_failed"], data["resets"]))
    return data


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--units", type=int, default=12000)
    ap.add_argument("--soak-minutes", type=float, default=3)
    ap.add_argument("--soak-max-stacks", type=int, default=20000,
                    help="crux serve --max-stacks in the soak (default %(default)s: the churn "
                    "target reaches it within a minute, so the soak shows the level it keeps)")
    ap.add_argument("--python", default="3.12.1")
    ap.add_argument("--crux", help="crux binary (default: build/crux, rebuilt)")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    crux, info = C.prepare_crux(args.crux, build=not args.no_build)
    python = C.pyenv_python(args.python)
    data = {"crux": info, "machine": C.machine(), "python": args.python, "rate": args.rate}
    if args.reps:
        data["overhead"] = overhead(args, python, crux)
    if args.soak_minutes:
        data["soak"] = soak(args, python, crux)
    print("wrote", C.write_json("serve.json", data))


if __name__ == "__main__":
    main()
