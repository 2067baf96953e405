#!/usr/bin/env python3
"""The whole real-GPU check of crux's GPU sampling and verdict, in one short run (~1 min).

Needs an NVIDIA GPU, its driver and torch with CUDA; without them it says so and exits 0.
Three workloads, each recorded by `crux record -f verdict` for --seconds:

  compute  large bf16 matmuls back to back             expect: compute_bound (busy without GPM)
  starved  a small batch per step, fed by slow Python  expect: starved, verdict naming the
           preprocessing (the GPU waits on the host)    host stage
  memory   a large elementwise loop (x * a + b)         expect: memory_bound (busy without GPM)

Prints crux's GPU line, verdict and `crux-gpu-stats` (crux's CPU per NVML round) per workload,
then PASS/FAIL; exit status 1 when a verdict is not the expected one. Like every script in
bench/, it reports what it measured; the expectations are the designed-in ones.

usage: python3 bench/gpu_check.py [--crux build/crux] [--seconds 8] [--python python3]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKLOADS = {
    "compute": r'''
import time, torch
x = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
y = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
end = time.time() + float(__import__("sys").argv[1])
while time.time() < end:
    for _ in range(10):
        z = x @ y
    torch.cuda.synchronize()
''',
    "starved": r'''
import random, time, torch
model = torch.nn.Linear(1024, 1024).cuda()
rng = random.Random(1)

def preprocess(n):
    # slow Python: builds a batch element by element
    rows = []
    for _ in range(n):
        row = [rng.random() for _ in range(1024)]
        rows.append(sorted(row))
    return rows

end = time.time() + float(__import__("sys").argv[1])
with torch.no_grad():
    while time.time() < end:
        batch = torch.tensor(preprocess(8), device="cuda")
        out = model(batch)
        out.sum().item()
''',
    "memory": r'''
import time, torch
x = torch.randn(1 << 28, device="cuda")
a, b = 1.0001, 0.5
end = time.time() + float(__import__("sys").argv[1])
while time.time() < end:
    for _ in range(20):
        x = x * a + b
    torch.cuda.synchronize()
''',
}

EXPECT = {"compute": ("compute_bound", "busy"), "starved": ("starved",),
          "memory": ("memory_bound", "busy")}


def have_cuda(python):
    probe = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)"
    try:
        return subprocess.run([python, "-c", probe], capture_output=True,
                              timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_one(crux, python, name, seconds, tmp):
    script = os.path.join(tmp, "gpu_%s.py" % name)
    with open(script, "w") as f:
        f.write(WORKLOADS[name])
    out = os.path.join(tmp, "%s.json" % name)
    argv = [crux, "record", "-d", str(seconds), "-f", "verdict", "--stats", "-o", out, "--",
            python, script, str(seconds + 30)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    if proc.returncode != 0 or not os.path.exists(out):
        return None, proc.stderr
    with open(out) as f:
        return json.load(f), proc.stderr


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--crux", default=os.path.join(REPO, "build", "crux"))
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    if not have_cuda(args.python):
        print("gpu_check: skipped: no CUDA device or no torch with CUDA in %s" % args.python)
        return 0
    if not os.access(args.crux, os.X_OK):
        print("gpu_check: %s not found: run `make build/crux`" % args.crux)
        return 2
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("compute", "starved", "memory"):
            v, err = run_one(args.crux, args.python, name, args.seconds, tmp)
            stats = [l for l in err.splitlines() if l.startswith("crux-gpu-stats")]
            if v is None or not v.get("gpu"):
                print("%-8s FAIL: no GPU verdict\n%s" % (name, err[-2000:]))
                failed += 1
                continue
            g = v["gpu"]
            kind_ok = g["kind"] in EXPECT[name]
            if name == "starved":
                kind_ok = kind_ok and v["verdict"] and v["verdict"]["type"] == "gpu"
            failed += not kind_ok
            print("%-8s %s: gpu %s (%s)" % (name, "PASS" if kind_ok else "FAIL", g["kind"],
                                             g["figures"]))
            print("         verdict: %s, stage %s; %s" % (
                v["verdict"]["type"] if v["verdict"] else "none",
                v["verdict"]["stage"] if v["verdict"] else "-", v["reason"]))
            if g.get("not_applied"):
                print("         not applied: %s" % g["not_applied"])
            if g.get("note"):
                print("         note: %s" % g["note"])
            for line in stats:
                print("         " + line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
