#!/usr/bin/env python3
"""1,000 attach/detach cycles of `crux record --allocations --pid` on a busy HTTP server
(tests/integration/targets/alloc_server.py --busy), per interpreter: after every cycle the
server must answer byte-identical bodies; prints the attach time's median and 95th percentile
(crux's --stats attach_ms) and the cycles that failed. Ratios, not verdicts.

usage: bench/attach_cycles.py CRUX PYTHON [CYCLES]
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.path.join(HERE, "..", "tests", "integration", "targets", "alloc_server.py")


def get(port, n):
    with urllib.request.urlopen("http://127.0.0.1:%d/%d" % (port, n), timeout=10) as r:
        return r.read()


def main():
    crux, python = sys.argv[1], sys.argv[2]
    cycles = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    tmp = tempfile.mkdtemp()
    truth = os.path.join(tmp, "truth.json")
    server = subprocess.Popen([python, TARGET, "--truth", truth, "--busy"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not os.path.exists(truth):
            time.sleep(0.05)
        time.sleep(0.2)
        port = json.load(open(truth))["port"]
        before = [get(port, n) for n in range(5)]
        attach, failed = [], 0
        for i in range(cycles):
            r = subprocess.run([crux, "record", "--pid", str(server.pid), "--allocations",
                                "--duration", "0.05", "--rate", "20", "--stats", "-o",
                                os.path.join(tmp, "out.txt")], capture_output=True, text=True)
            m = re.search(r"attach_ms=([0-9.]+)", r.stderr)
            if r.returncode != 0 or not m:
                failed += 1
                print("cycle %d failed: %s" % (i, r.stderr.strip()[-300:]))
            else:
                attach.append(float(m.group(1)))
            assert server.poll() is None, "server died at cycle %d" % i
            assert get(port, i % 5) == before[i % 5], "wrong answer at cycle %d" % i
        attach.sort()
        p95 = attach[int(0.95 * (len(attach) - 1))] if attach else float("nan")
        print("%s: %d cycles, %d failed, server alive and correct; attach_ms median %.1f p95 %.1f"
              " max %.1f" % (python, cycles, failed, statistics.median(attach), p95, attach[-1]))
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
