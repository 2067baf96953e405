# SPDX-License-Identifier: MIT
"""What does a stage cost the program? ns per `with crux.stage("x"): pass`, with no recorder
(detached: the common case in production) and with one attached, per interpreter, next to
contextlib.nullcontext() and a minimal pure-Python context manager that reads the clock.

Each interpreter runs in its own process with build/agent/<id> on its path. The recorder
is simulated by setting the ring's `attached` flag from inside the process, as crux does
(the writer's cost does not depend on the reader, which only preads the file). Detached
and attached rounds are interleaved; each figure is the best of --reps rounds of --n
iterations, minus the empty loop. Results: bench/out/agent.json.

    make agent && python3 bench/agent.py [--n 200000] [--reps 7] [--pythons py3.12,debian3.11]
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, ensure_out, git_state, machine, table, write_json  # noqa: E402

PYTHONS = [("py3.8", "3.8.18"), ("py3.9", "3.9.18"), ("py3.10", "3.10.13"),
           ("py3.11", "3.11.7"), ("py3.12", "3.12.1"), ("py3.13", "3.13.0"),
           ("debian3.11", "/usr/bin/python3")]

CHILD = r'''
import contextlib, json, struct, sys, time
import crux

N, REPS = int(sys.argv[1]), int(sys.argv[2])
ATTACHED_OFF, WRITE_IDX_OFF = 76, 120
ring = open(crux.ring_path(), "r+b")

def set_attached(v):
    ring.seek(ATTACHED_OFF)
    ring.write(struct.pack("<I", v))
    ring.flush()

def write_idx():
    ring.seek(WRITE_IDX_OFF)
    return struct.unpack("<Q", ring.read(8))[0]

class PyStage(object):
    """The least a pure-Python stage could do: keep the name, read the clock twice."""
    __slots__ = ("name", "t")
    def __init__(self, name):
        self.name = name
    def __enter__(self):
        self.t = time.perf_counter_ns()
        return self
    def __exit__(self, *exc):
        time.perf_counter_ns() - self.t

def empty(n):
    for _ in range(n):
        pass

def stage(n, stage=crux.stage):
    for _ in range(n):
        with stage("x"):
            pass

def nullctx(n, cm=contextlib.nullcontext()):
    for _ in range(n):
        with cm:
            pass

def pystage(n, cls=PyStage):
    for _ in range(n):
        with cls("x"):
            pass

def plain():
    pass

@crux.stage("dec")
def decorated():
    pass

def call(n, fn):
    for _ in range(n):
        fn()

def timed(fn, *args):
    t0 = time.perf_counter_ns()
    fn(N, *args)
    return (time.perf_counter_ns() - t0) / N

best = {}
def keep(key, v):
    best[key] = min(best.get(key, float("inf")), v)

for _ in range(REPS):
    set_attached(0)
    keep("empty", timed(empty))
    keep("nullcontext", timed(nullctx))
    keep("pystage", timed(pystage))
    keep("stage_detached", timed(stage))
    keep("plain_call", timed(call, plain))
    keep("decorated_detached", timed(call, decorated))
    before = write_idx()
    set_attached(1)
    keep("stage_attached", timed(stage))
    with crux.request():
        keep("stage_attached_request", timed(stage))
    keep("decorated_attached", timed(call, decorated))
    set_attached(0)
    written = write_idx() - before
set_attached(0)
print(json.dumps({"ns": best, "written_last_round": written,
                  "version": "%d.%d.%d" % sys.version_info[:3]}))
'''


def python_path(spec):
    if spec.startswith("/"):
        return spec
    return os.path.join("/root/.pyenv/versions", spec, "bin", "python3")


def run_one(ident, spec, n, reps):
    agent = os.path.join(ROOT, "build", "agent", ident)
    py = python_path(spec)
    if not os.path.exists(os.path.join(agent, "crux")) or not os.path.exists(py):
        return None
    env = dict(os.environ, PYTHONPATH=agent, PYTHONDONTWRITEBYTECODE="1")
    out = subprocess.run([py, "-c", CHILD, str(n), str(reps)], env=env, capture_output=True,
                         text=True, timeout=600)
    if out.returncode != 0:
        sys.exit("bench: %s failed:\n%s" % (ident, out.stderr[-2000:]))
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200000, help="iterations per round")
    ap.add_argument("--reps", type=int, default=7, help="rounds (best is kept)")
    ap.add_argument("--pythons", default="", help="ids, comma-separated (default: all)")
    args = ap.parse_args()
    wanted = set(x for x in args.pythons.split(",") if x)
    ensure_out()
    results = {}
    rows = []
    for ident, spec in PYTHONS:
        if wanted and ident not in wanted:
            continue
        r = run_one(ident, spec, args.n, args.reps)
        if r is None:
            print("bench: skipping %s (no interpreter or no build/agent/%s)" % (ident, ident))
            continue
        results[ident] = r
        ns = r["ns"]
        base = ns["empty"]

        def net(k):
            return ns[k] - base
        rows.append([ident, "%.0f" % base, "%.0f" % net("nullcontext"), "%.0f" % net("pystage"),
                     "%.0f" % net("stage_detached"), "%.0f" % net("stage_attached"),
                     "%.0f" % net("stage_attached_request"),
                     "%.0f" % (ns["decorated_detached"] - ns["plain_call"]),
                     "%.0f" % (ns["decorated_attached"] - ns["plain_call"]),
                     "%.1fx" % (net("stage_attached") / max(net("stage_detached"), 1e-9))])
    print("ns per operation, best of %d rounds of %d (the empty loop subtracted)" % (
        args.reps, args.n))
    print(table(["python", "empty loop", "nullcontext", "py stage", "stage detached",
                 "stage attached", "attached+request", "@stage detached",
                 "@stage attached", "attached/detached"], rows))
    write_json("agent.json", {"machine": machine(), "git": git_state(), "n": args.n,
                              "reps": args.reps, "results": results})


if __name__ == "__main__":
    main()
