#!/usr/bin/env python3
"""How long does the report take to make, how large is it, and how fast does a browser open it?

For 10^4, 10^5 and 10^6 kept samples, writes a synthetic saved recording (the documented
SQLite schema: 8 threads, ~3,000 distinct stacks of depth 8-40 over 600 functions in 60
files, every sample with time, thread, state and category), then measures, median of --reps
runs side by side:

  load     `crux report DB -f summary -o -` (load the recording + analysis + summary)
  html     `crux report DB -o report.html` (the same + the HTML report); html - load is the
           report's own cost
  size     bytes of report.html
  open     Playwright + /usr/bin/chromium: from navigation start to the page's load event
           (the embedded JSON parsed, the flame graph and timelines drawn) - `performance`
           timing inside the page, so browser start-up is not counted

Figures and the exact command are in docs/report.md. Output: bench/out/report.json.

  python3 bench/report.py [--crux build/crux] [--sizes 10000,100000,1000000] [--reps 3]
                          [--no-browser]
"""
import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"


def make_recording(path, n_samples, seed=1):
    """A synthetic recording with `n_samples` kept samples (see the module docstring)."""
    rng = random.Random(seed)
    if path.exists():
        path.unlink()
    db = sqlite3.connect(str(path))
    db.executescript("""
        PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;
        CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
        CREATE TABLE strings(id INTEGER PRIMARY KEY, s TEXT NOT NULL);
        CREATE TABLE frames(id INTEGER PRIMARY KEY, name INTEGER NOT NULL,
          file INTEGER NOT NULL, line INTEGER NOT NULL, kind INTEGER NOT NULL);
        CREATE TABLE stacks(id INTEGER PRIMARY KEY, parent INTEGER NOT NULL,
          frame INTEGER NOT NULL, depth INTEGER NOT NULL);
        CREATE TABLE stack_counts(stack INTEGER NOT NULL, cat INTEGER NOT NULL,
          count INTEGER NOT NULL, PRIMARY KEY(stack, cat)) WITHOUT ROWID;
        CREATE TABLE stack_growth(stack INTEGER PRIMARY KEY, bytes INTEGER NOT NULL);
        CREATE TABLE samples(t_ns INTEGER NOT NULL, stack INTEGER NOT NULL,
          tid INTEGER NOT NULL, pid INTEGER NOT NULL, stage INTEGER NOT NULL,
          state INTEGER NOT NULL, flags INTEGER NOT NULL, cat INTEGER NOT NULL,
          weight INTEGER NOT NULL);
        CREATE TABLE memory(t_ns INTEGER NOT NULL, pid INTEGER NOT NULL, rss INTEGER NOT NULL);
        CREATE TABLE processes(pid INTEGER PRIMARY KEY, ppid INTEGER, name TEXT,
          python_version TEXT, first_ns INTEGER, last_ns INTEGER, samples INTEGER,
          peak_rss INTEGER, exit_status INTEGER);
    """)
    threads = 8
    rate = 1000
    ticks = n_samples // threads
    strings = [""]
    files = ["/srv/app/pkg%d/mod%d.py" % (i // 10, i) for i in range(50)] + [
        "/usr/lib/python3.11/json/encoder.py", "/usr/lib/python3.11/pickle.py",
        "/usr/lib/python3/dist-packages/numpy/linalg/linalg.py",
        "/usr/lib/python3.11/selectors.py", "/usr/lib/python3.11/threading.py",
        "/usr/lib/python3/dist-packages/torch/nn/modules/linear.py",
        "/srv/app/tokenizer.py", "/usr/lib/python3.11/socket.py",
        "/usr/lib/python3.11/queue.py", "/usr/lib/python3.11/copy.py"]
    for f in files:
        strings.append(f)
    frames = []
    for i in range(600):
        strings.append("func_%d" % i if i % 7 else "Class%d.method_%d" % (i % 13, i))
        frames.append((len(strings) - 1, 1 + rng.randrange(len(files)), 1 + rng.randrange(900)))
    db.executemany("INSERT INTO strings VALUES(?, ?)", list(enumerate(strings)))
    db.executemany("INSERT INTO frames VALUES(?, ?, ?, ?, 0)",
                   [(i, n, f, ln) for i, (n, f, ln) in enumerate(frames)])
    nodes = {}  # (parent, frame) -> id
    rows = []

    def push(parent, frame):
        key = (parent, frame)
        if key not in nodes:
            nodes[key] = len(nodes) + 1
            rows.append((nodes[key], parent, frame, 0))
        return nodes[key]

    leaves = []
    for _ in range(3000):
        s = push(0, rng.randrange(8))
        for _ in range(rng.randint(8, 40)):
            s = push(s, rng.randrange(len(frames)))
        leaves.append(s)
    db.executemany("INSERT INTO stacks VALUES(?, ?, ?, ?)", rows)
    weights = [1.0 / (k + 1) for k in range(len(leaves))]  # Zipf-like
    counts = {}
    batch = []
    picks = rng.choices(leaves, weights=weights, k=ticks * threads)
    for t in range(ticks):
        for th in range(threads):
            stack = picks[t * threads + th]
            cat = rng.choice((1, 1, 1, 2, 3, 4))
            state = 2 if cat == 3 else 1
            counts[(stack, cat)] = counts.get((stack, cat), 0) + 1
            batch.append((t * (10 ** 9 // rate), stack, 1000 + th, 4242, 0, state, 0, cat, 1))
        if len(batch) >= 100000:
            db.executemany("INSERT INTO samples VALUES(?,?,?,?,?,?,?,?,?)", batch)
            batch = []
    if batch:
        db.executemany("INSERT INTO samples VALUES(?,?,?,?,?,?,?,?,?)", batch)
    db.executemany("INSERT INTO stack_counts VALUES(?, ?, ?)",
                   [(s, c, n) for (s, c), n in counts.items()])
    db.executemany("INSERT INTO memory VALUES(?, 4242, ?)",
                   [(t * 10 ** 7, (200 + t // 10) << 20) for t in range(ticks // 10)])
    db.executemany("INSERT INTO meta VALUES(?, ?)", [
        ("format_version", 1), ("command", "python3 synthetic.py"),
        ("python_version", "3.11.2"), ("pid", 4242), ("rate_hz", float(rate)),
        ("duration_ns", ticks * 10 ** 9 // rate), ("ticks", ticks), ("errors", 0),
        ("categories", 1), ("keep_samples", 1)])
    db.commit()
    db.close()


def timed(argv):
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def open_times(paths, reps):
    """Load-event time of each page in Chromium (ms), median of reps, fresh page each time."""
    from playwright.sync_api import sync_playwright
    out = {}
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        for key, path in paths.items():
            ms = []
            for _ in range(reps):
                page = b.new_page(viewport={"width": 1280, "height": 900})
                page.goto(path.resolve().as_uri(), wait_until="load", timeout=120000)
                ms.append(page.evaluate(
                    "performance.getEntriesByType('navigation')[0].loadEventEnd"))
                assert page.locator("#verdict-title").is_visible()
                page.close()
            out[key] = statistics.median(ms)
        b.close()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crux", default=str(REPO / "build" / "crux"))
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    results = []
    pages = {}
    for n in [int(float(x)) for x in args.sizes.split(",")]:
        db = OUT / ("report-%d.db" % n)
        t = time.perf_counter()
        make_recording(db, n)
        made = time.perf_counter() - t
        html = OUT / ("report-%d.html" % n)
        load, full = [], []
        for _ in range(args.reps):  # interleaved, so drift hits both alike
            load.append(timed([args.crux, "report", str(db), "-f", "summary", "-o",
                               str(OUT / "report-summary.txt")]))
            full.append(timed([args.crux, "report", str(db), "-o", str(html)]))
        r = {"samples": n, "db_bytes": db.stat().st_size, "html_bytes": html.stat().st_size,
             "load_s": statistics.median(load), "html_s": statistics.median(full),
             "report_only_s": statistics.median(full) - statistics.median(load),
             "load_range": [min(load), max(load)], "html_range": [min(full), max(full)],
             "synthesis_s": made}
        results.append(r)
        pages[n] = html
        print("%9d samples: report %.3f s [%.3f..%.3f] (load+analysis %.3f s), "
              "html %.1f MB, db %.1f MB" % (n, r["html_s"], min(full), max(full), r["load_s"],
                                           r["html_bytes"] / 1e6, r["db_bytes"] / 1e6),
              flush=True)
    if not args.no_browser:
        try:
            ms = open_times(pages, args.reps)
        except Exception as e:  # no playwright or chromium: the other figures still count
            print("browser timing skipped: %s" % e, file=sys.stderr)
            ms = {}
        for r in results:
            if r["samples"] in ms:
                r["open_ms"] = ms[r["samples"]]
                print("%9d samples: chromium load event at %.0f ms" % (r["samples"],
                                                                    r["open_ms"]))
    with open(str(OUT / "report.json"), "w") as f:
        json.dump({"crux": args.crux, "reps": args.reps, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
