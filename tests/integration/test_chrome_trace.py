"""Chrome trace output (`-o FILE.trace.json`, `--format chrome`): Trace Event Format JSON
for Perfetto's UI and chrome://tracing.

check_trace() holds the file to what both viewers need: every event has ph, ts, pid and tid;
complete ('X') events have a duration >= 0 and nest properly per thread (the viewers draw
one track per thread and drop or misdraw slices that overlap without nesting); counters
are numeric; metadata names processes and threads. Then against the targets' truth:
targets/timeline.py's hot function has the most self time among its thread's slices, each
thread's functions are on its own track, the hostile name arrives intact; the stages of
targets/stages_sync.py are slices on the span tracks as long as the target measured them,
and a saved recording reports the same trace.
"""
import json
import os

import pytest

from test_gecko import is_num, record_stages, record_timeline

SPAN_TID = 1000000000
META = {"process_name", "process_sort_index", "thread_name", "thread_sort_index"}


def ns(us):
    """Microseconds as written (ns precision) to integer ns, for exact nesting checks."""
    return int(round(us * 1000))


def check_nesting(events):
    """X events of one thread nest: each lies inside the innermost still open, or after it."""
    order = sorted(range(len(events)), key=lambda i: (ns(events[i]["ts"]),
                                                      -ns(events[i]["dur"]), i))
    stack = []
    for i in order:
        e = events[i]
        start, end = ns(e["ts"]), ns(e["ts"]) + ns(e["dur"])
        while stack and stack[-1][1] <= start:
            stack.pop()
        if stack:
            assert end <= stack[-1][1], "%r overlaps %r without nesting" % (e, stack[-1][2])
        stack.append((start, end, e))


def check_trace(doc):
    """Asserts the trace's shape; returns {(pid, tid): [X events]}."""
    assert isinstance(doc["traceEvents"], list) and doc["traceEvents"]
    threads = {}
    for e in doc["traceEvents"]:
        assert e["ph"] in ("X", "M", "C"), e
        assert is_num(e["ts"]) and e["ts"] >= 0, e
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int), e
        assert isinstance(e["name"], str), e
        if e["ph"] == "X":
            assert is_num(e["dur"]) and e["dur"] >= 0 and isinstance(e["cat"], str), e
            threads.setdefault((e["pid"], e["tid"]), []).append(e)
        elif e["ph"] == "C":
            assert e["args"] and all(is_num(v) for v in e["args"].values()), e
        else:
            assert e["name"] in META, e
            arg = e["args"].get("name", e["args"].get("sort_index"))
            assert isinstance(arg, (str, int)), e
    for events in threads.values():
        check_nesting(events)
    return threads


def self_times(events):
    """{slice name: its duration minus its children's} for one thread's nested slices."""
    out = {}
    order = sorted(events, key=lambda e: (ns(e["ts"]), -ns(e["dur"])))
    stack = []
    for e in order:
        start, end = ns(e["ts"]), ns(e["ts"]) + ns(e["dur"])
        while stack and stack[-1][1] <= start:
            stack.pop()
        out[e["name"]] = out.get(e["name"], 0) + (end - start)
        if stack:
            parent = stack[-1][2]["name"]
            out[parent] -= end - start
        stack.append((start, end, e))
    return out


def thread_names(doc):
    return dict(((e["pid"], e["tid"]), e["args"]["name"]) for e in doc["traceEvents"]
                if e["ph"] == "M" and e["name"] == "thread_name")


def test_chrome_trace_threads_and_hot_function(crux, interp):
    path, truth = record_timeline(crux, interp, "out.trace.json")
    with open(str(path), encoding="utf-8") as f:
        doc = json.load(f)
    threads = check_trace(doc)
    pid = truth["pid"]
    main, flusher = (pid, truth["main_tid"]), (pid, truth["flusher_tid"])
    assert main in threads and flusher in threads, sorted(threads)
    names = thread_names(doc)
    assert main in names and flusher in names, names
    assert any(e["ph"] == "M" and e["name"] == "process_name" and e["pid"] == pid
               for e in doc["traceEvents"])
    own = self_times(threads[main])
    hot = max(own, key=own.get)
    assert hot == truth["hot"], "most self time: %s, target says %s: %s" % (
        hot, truth["hot"], sorted(own.items(), key=lambda kv: -kv[1])[:5])
    assert all(e["cat"] in ("python", "native", "marker") for e in threads[main])
    flusher_names = set(e["name"] for e in threads[flusher])
    assert "flush" in flusher_names and "flush" not in own
    assert truth["hot"] not in flusher_names
    assert truth["hostile"] in own, "hostile name missing: %s" % sorted(own)[:20]
    rss = [e["args"]["rss"] for e in doc["traceEvents"] if e["ph"] == "C" and e["pid"] == pid]
    assert rss and min(rss) > 1 << 20, "no memory counter for the process"
    assert doc["otherData"]["producer"] == "crux"


def test_chrome_trace_spans_and_saved_recording(crux, one_interp, tmp_path):
    db = tmp_path / "run.db"
    path, done = record_stages(crux, one_interp, tmp_path, "stages.trace.json", "--save", db)
    with open(str(path), encoding="utf-8") as f:
        doc = json.load(f)
    threads = check_trace(doc)
    spans = [e for (pid, tid), evs in threads.items() if tid >= SPAN_TID for e in evs]
    by_name = {}
    for e in spans:
        by_name.setdefault(e["name"], []).append(e)
    for name in ("parse", "model", "serialize"):
        got = sorted(e["dur"] / 1e3 for e in by_name.get(name, []))
        want = sorted(v / 1e6 for v in done["measured_ns"][name])
        assert len(got) == len(want) == 5, "%s: %s slices; names %s" % (name, len(got),
                                                                         sorted(by_name))
        for g, w in zip(got, want):
            assert abs(g - w) < 2.0, "%s: slice %.3f ms, target %.3f ms" % (name, g, w)
        assert all(e["cat"] == "stage" and e["args"]["request"] for e in by_name[name])
    assert sorted(int(e["args"]["request"]) for e in by_name["request"]) == [1, 2, 3, 4, 5]
    assert len(by_name["model-done"]) == 5 and all(e["dur"] == 0 for e in by_name["model-done"])
    names = thread_names(doc)
    assert any(n.startswith("crux spans") for (pid, tid), n in names.items() if tid >= SPAN_TID)
    # the saved recording keeps the spans: the same trace again
    again = tmp_path / "again.trace.json"
    result = crux.run("report", db, "-o", again)
    assert result.returncode == 0, result.describe()
    with open(str(again), encoding="utf-8") as f:
        assert json.load(f) == doc, "crux report of the saved recording differs"


def test_chrome_trace_parses_in_chromium(crux, one_interp):
    """Chromium's own JSON.parse reads the file, and a check written in JavaScript finds the
    same events and every thread's slices nested (not required: skipped without Playwright)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    chromium = "/usr/bin/chromium"
    if not os.access(chromium, os.X_OK):
        pytest.skip("%s is not installed" % chromium)
    path, truth = record_timeline(crux, one_interp, "browser.trace.json")
    text = path.read_text(encoding="utf-8")
    script = """(text) => {
        const doc = JSON.parse(text);
        const byThread = new Map();
        for (const e of doc.traceEvents) {
            if (e.ph !== 'X') continue;
            const k = e.pid + ':' + e.tid;
            if (!byThread.has(k)) byThread.set(k, []);
            byThread.get(k).push(e);
        }
        let bad = 0;
        for (const evs of byThread.values()) {
            const ns = (us) => Math.round(us * 1000);
            evs.sort((a, b) => ns(a.ts) - ns(b.ts) || ns(b.dur) - ns(a.dur));
            const ends = [];
            for (const e of evs) {
                const s = ns(e.ts), end = s + ns(e.dur);
                while (ends.length && ends[ends.length - 1] <= s) ends.pop();
                if (ends.length && end > ends[ends.length - 1]) bad++;
                ends.push(end);
            }
        }
        const names = doc.traceEvents.map((e) => e.name);
        return {events: doc.traceEvents.length, bad: bad, names: names};
    }"""
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.set_content("<!doctype html><title>trace</title>")
            got = page.evaluate(script, text)
        finally:
            browser.close()
    doc = json.loads(text)
    assert got["events"] == len(doc["traceEvents"]) and got["bad"] == 0, got["bad"]
    assert truth["hostile"] in got["names"]


def test_chrome_trace_gpu_counters(crux, one_interp, tmp_path):
    """The GPUs as counter tracks (the NVML stand-in playing a constant step, tests/gpu/):
    per device any kernel running %, SM active % and memory used, on the target's process,
    with the trace's values; the saved recording gives the same trace again."""
    from test_gpu import H100, STANDIN, record
    if not (STANDIN / "libnvidia-ml.so.1").exists():
        pytest.fail("%s not built: run `make nvml-standin`" % STANDIN)
    db = tmp_path / "run.db"
    _, path = record(crux, one_interp, tmp_path, H100 + "step 40 20 30 25 10 15\n",
                     options=["--save", db, "-f", "chrome"], out="gpu.chrome", standin_dir=STANDIN)
    with open(str(path), encoding="utf-8") as f:
        doc = json.load(f)
    check_trace(doc)
    pids = set(e["pid"] for e in doc["traceEvents"] if e["ph"] == "M" and
               e["name"] == "process_name")
    counters = {}
    for e in doc["traceEvents"]:
        if e["ph"] == "C" and e["name"].startswith("GPU "):
            assert e["pid"] in pids, e  # on a process the trace names
            counters.setdefault(e["name"], []).append(e)
    assert set(counters) == {"GPU 0 any kernel running %", "GPU 0 SM active %",
                             "GPU 0 memory used"}, sorted(counters)
    n = len(counters["GPU 0 any kernel running %"])
    assert n >= 5, "10 a second over 2 s"
    assert all(e["args"] == {"percent": 40} for e in counters["GPU 0 any kernel running %"])
    assert all(e["args"] == {"percent": 30} for e in counters["GPU 0 SM active %"])
    total = 81559 << 20
    assert all(e["args"] == {"bytes": total // 100 * 20} for e in counters["GPU 0 memory used"])
    again = tmp_path / "again.trace.json"
    result = crux.run("report", db, "-o", again)
    assert result.returncode == 0, result.describe()
    with open(str(again), encoding="utf-8") as f:
        assert json.load(f) == doc, "crux report of the saved recording differs"
