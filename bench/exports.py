#!/usr/bin/env python3
"""How long do the pprof and pstats exports take for 10^4 .. 10^6 kept samples?

Two measurements per size:

  writer   bench/export_cost.c, compiled against the release objects (make build/crux):
           a profile built in memory (8 threads, 3,000 distinct stacks of depth 8-40 over
           600 functions, four time categories, two stages), export_write timed alone, best
           of --reps, for pprof, pstats and, as references, collapsed and speedscope
  report   `crux report DB -o FILE` end to end (read the SQLite recording + write), median of
           --reps runs interleaved across formats, on bench/report.py's synthetic recording
           (the same shape; every sample kept); and, when `go` is installed, how long
           `go tool pprof -top` takes to read the .pb.gz

Figures and the command are in docs/formats.md. Output: bench/out/exports.json.

  python3 bench/exports.py [--crux build/crux] [--sizes 10000,100000,1000000] [--reps 3]
"""
import argparse
import glob
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))

from report import make_recording  # noqa: E402  (bench/report.py: the synthetic recording)

LIBS = ["-ldw", "-lelf", "-lsqlite3", "-lz", "-lm", "-lcjson", "-lssl", "-lcrypto"]


def build_export_cost():
    objs = [o for o in sorted(glob.glob(str(REPO / "build/rel/src/*/*.o")))
            if not o.endswith("/main.o")]
    if not objs:
        sys.exit("exports.py: no release objects: run `make build/crux` first")
    exe = OUT / "export_cost"
    subprocess.run(["cc", "-O2", "-std=c17", "-D_GNU_SOURCE", "-I" + str(REPO / "src"), "-o",
                    str(exe), str(HERE / "export_cost.c")] + objs + LIBS, check=True)
    return exe


def timed(argv):
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crux", default=str(REPO / "build" / "crux"))
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    exe = build_export_cost()
    go = shutil.which("go")
    results = []
    for n in [int(float(x)) for x in args.sizes.split(",")]:
        r = json.loads(subprocess.run([str(exe), str(n), str(args.reps)], check=True,
                                      capture_output=True, text=True).stdout)
        print("%9d samples, writer alone: pprof %.3f s (%.1f MB), pstats %.3f s (%.1f MB), "
              "collapsed %.3f s, speedscope %.3f s" % (
                  n, r["pprof_s"], r["pprof_bytes"] / 1e6, r["pstats_s"],
                  r["pstats_bytes"] / 1e6, r["collapsed_s"], r["speedscope_s"]), flush=True)
        db = OUT / ("exports-%d.db" % n)
        make_recording(db, n)
        files = {"pprof": OUT / "exports.pb.gz", "pstats": OUT / "exports.pstats",
                 "collapsed": OUT / "exports.txt"}
        times = dict((k, []) for k in files)
        for _ in range(args.reps):  # interleaved, so drift hits every format alike
            for fmt, path in files.items():
                times[fmt].append(timed([args.crux, "report", str(db), "-o", str(path)]))
        for fmt in files:
            r["report_%s_s" % fmt] = statistics.median(times[fmt])
            r["report_%s_range" % fmt] = [min(times[fmt]), max(times[fmt])]
        r["report_pprof_bytes"] = files["pprof"].stat().st_size
        line = "%9d samples, crux report end to end: pprof %.3f s [%.3f..%.3f], pstats %.3f s, " \
               "collapsed %.3f s" % (n, r["report_pprof_s"], min(times["pprof"]),
                                     max(times["pprof"]), r["report_pstats_s"],
                                     r["report_collapsed_s"])
        if go:
            r["go_pprof_top_s"] = statistics.median(
                timed([go, "tool", "pprof", "-top", str(files["pprof"])])
                for _ in range(args.reps))
            line += ", go tool pprof -top %.3f s" % r["go_pprof_top_s"]
        print(line, flush=True)
        results.append(r)
    with open(str(OUT / "exports.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
