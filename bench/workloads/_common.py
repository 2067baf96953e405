# SPDX-License-Identifier: MIT
"""Shared bits of the benchmark workloads: argument helpers and the result line.

Every workload prints exactly one line starting with WORKLOAD_RESULT followed by JSON, with
elapsed_s measured inside the target around the fixed amount of work (interpreter start-up
and the profiler's launch are outside it)."""
import json
import resource
import sys
import time


def wait_for_go(enabled):
    """With --wait-go: announce readiness, then block until a line arrives on stdin, so a
    profiler can attach before the timed work starts."""
    if not enabled:
        return
    print("WORKLOAD_READY", flush=True)
    sys.stdin.readline()


def start():
    """The clocks at the start of the timed work: (wall, this process's CPU time, rusage)."""
    return time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_SELF)


def report(name, t0, **extra):
    """Prints the result line; t0 is what start() returned. cpu_s is the whole process's
    CPU time (all threads), which other load on the machine disturbs less than wall time."""
    elapsed = time.perf_counter() - t0[0]
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out = {"workload": name, "elapsed_s": elapsed, "cpu_s": time.process_time() - t0[1],
           "python": "%d.%d.%d" % sys.version_info[:3],
           # context switches: voluntary (blocked) and involuntary (preempted)
           "nvcsw": ru.ru_nvcsw - t0[2].ru_nvcsw, "nivcsw": ru.ru_nivcsw - t0[2].ru_nivcsw,
           "minflt": ru.ru_minflt - t0[2].ru_minflt}
    out.update(extra)
    print("WORKLOAD_RESULT " + json.dumps(out), flush=True)
