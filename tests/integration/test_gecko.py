"""Firefox Profiler output (`-o FILE.gecko.json`, `--format gecko`): a processed profile.

The Firefox Profiler web app is not available offline, so check_gecko() checks the file
against the processed format's types at version 57 (src/types/profile.ts of
firefox-devtools/profiler when PROCESSED_PROFILE_VERSION was 57): every table has the
columns of its type and they have equal lengths, every index points inside its table,
categories are valid, times increase per thread. The tests then compare the content with
what the targets measured: targets/timeline.py (threads, the hot function, a hostile name,
memory) and targets/stages_sync.py under the crux agent (stage spans as markers).
"""
import json
import numbers

from conftest import TARGETS, target_env
from crux_helpers import RATE, load_truth
from test_stages import agent_dir

VERSION = 57
COLORS = {"transparent", "purple", "green", "orange", "yellow", "lightblue", "blue", "brown",
          "magenta", "red", "lightred", "darkgrey", "grey"}
TABLES = {
    "samples": {"stack", "time", "weight", "weightType", "length"},
    "markers": {"data", "name", "startTime", "endTime", "phase", "category", "length"},
    "stackTable": {"frame", "prefix", "length"},
    "frameTable": {"address", "inlineDepth", "category", "subcategory", "func", "nativeSymbol",
                   "innerWindowID", "line", "column", "length"},
    "funcTable": {"name", "isJS", "relevantForJS", "resource", "fileName", "lineNumber",
                  "columnNumber", "length"},
    "resourceTable": {"length", "lib", "name", "host", "type"},
    "nativeSymbols": {"libIndex", "address", "name", "functionSize", "length"},
}
THREAD_KEYS = {"processType": str, "processStartupTime": numbers.Real, "registerTime":
               numbers.Real, "pausedRanges": list, "name": str, "isMainThread": bool,
               "processName": str, "pid": str, "tid": int}


def is_num(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def index_or_none(v, n, what):
    assert v is None or (isinstance(v, int) and not isinstance(v, bool) and 0 <= v < n), \
        "%s: %r not an index below %d" % (what, v, n)


def check_table(thread, name):
    table = thread[name]
    assert set(table) == TABLES[name], "%s columns %s" % (name, sorted(table))
    n = table["length"]
    for col, values in table.items():
        if col not in ("length", "weightType", "weight"):
            assert isinstance(values, list) and len(values) == n, \
                "%s.%s has %d values, length %d" % (name, col, len(values), n)
    return n


def check_meta(meta):
    assert meta["preprocessedProfileVersion"] == VERSION and isinstance(meta["version"], int)
    assert is_num(meta["interval"]) and meta["interval"] > 0
    assert is_num(meta["startTime"]) and meta["processType"] == 0
    cats = meta["categories"]
    assert any(c["color"] == "grey" for c in cats), "no default (grey) category"
    for c in cats:
        assert isinstance(c["name"], str) and c["color"] in COLORS, c
        assert c["subcategories"] and c["subcategories"][0] == "Other", c
    for schema in meta["markerSchema"]:
        assert isinstance(schema["name"], str) and isinstance(schema["display"], list)
        assert all("key" in f and "format" in f for f in schema["fields"]), schema
    return cats


def check_thread(thread, cats, strings, schemas):
    for key, kind in THREAD_KEYS.items():
        assert isinstance(thread[key], kind), "thread.%s = %r" % (key, thread.get(key))
    assert thread["processShutdownTime"] is None or is_num(thread["processShutdownTime"])
    nstacks = check_table(thread, "stackTable")
    nframes = check_table(thread, "frameTable")
    nfuncs = check_table(thread, "funcTable")
    nres = check_table(thread, "resourceTable")
    nsamples = check_table(thread, "samples")
    nmarkers = check_table(thread, "markers")
    check_table(thread, "nativeSymbols")
    st, fr, fn, rs = (thread[k] for k in ("stackTable", "frameTable", "funcTable",
                                          "resourceTable"))
    for i in range(nstacks):
        index_or_none(st["frame"][i], nframes, "stack frame")
        assert st["frame"][i] is not None
        # parents before children: the table is in topological order
        index_or_none(st["prefix"][i], i, "stack prefix")
    for i in range(nframes):
        index_or_none(fr["func"][i], nfuncs, "frame func")
        index_or_none(fr["category"][i], len(cats), "frame category")
        cat = fr["category"][i]
        if cat is not None:
            index_or_none(fr["subcategory"][i], len(cats[cat]["subcategories"]), "subcategory")
        assert fr["line"][i] is None or (isinstance(fr["line"][i], int) and fr["line"][i] > 0)
        assert fr["address"][i] == -1 and fr["inlineDepth"][i] == 0
    for i in range(nfuncs):
        index_or_none(fn["name"][i], len(strings), "func name")
        assert fn["name"][i] is not None
        index_or_none(fn["fileName"][i], len(strings), "func file")
        assert fn["resource"][i] == -1 or 0 <= fn["resource"][i] < nres
        assert isinstance(fn["isJS"][i], bool) and isinstance(fn["relevantForJS"][i], bool)
    for i in range(nres):
        index_or_none(rs["name"][i], len(strings), "resource name")
    samples = thread["samples"]
    assert samples["weightType"] == "samples"
    assert samples["weight"] is None or (len(samples["weight"]) == nsamples and
                                         all(w >= 1 for w in samples["weight"]))
    times = samples["time"]
    assert all(is_num(t) and t >= 0 for t in times)
    assert times == sorted(times), "sample times go backwards in %s" % thread["name"]
    for s in samples["stack"]:
        index_or_none(s, nstacks, "sample stack")
    markers = thread["markers"]
    for i in range(nmarkers):
        index_or_none(markers["name"][i], len(strings), "marker name")
        index_or_none(markers["category"][i], len(cats), "marker category")
        phase = markers["phase"][i]
        assert phase in (0, 1, 2, 3)
        assert is_num(markers["startTime"][i])
        if phase == 1:
            assert markers["endTime"][i] >= markers["startTime"][i]
        data = markers["data"][i]
        assert data is None or data["type"] in schemas, data
    return nsamples


def check_gecko(doc):
    """Asserts the processed-profile shape; returns the document."""
    assert set(doc) >= {"meta", "libs", "threads", "shared"}, sorted(doc)
    cats = check_meta(doc["meta"])
    strings = doc["shared"]["stringArray"]
    assert all(isinstance(s, str) for s in strings)
    schemas = set(s["name"] for s in doc["meta"]["markerSchema"])
    assert doc["threads"], "no threads"
    for thread in doc["threads"]:
        check_thread(thread, cats, strings, schemas)
    for counter in doc.get("counters", []):
        assert isinstance(counter["pid"], str) and isinstance(counter["name"], str)
        thread = doc["threads"][counter["mainThreadIndex"]]
        assert thread["pid"] == counter["pid"]
        cs = counter["samples"]
        assert len(cs["time"]) == len(cs["count"]) == cs["length"] > 0
        assert cs["time"] == sorted(cs["time"])
        total = 0
        for c in cs["count"]:
            total += c
            assert total >= 0, "memory below zero"
    return doc


def thread_by_tid(doc, tid):
    found = [t for t in doc["threads"] if t["tid"] == tid]
    assert len(found) == 1, "threads for tid %d: %d of %s" % (
        tid, len(found), [(t["name"], t["tid"]) for t in doc["threads"]])
    return found[0]


def leaf_funcs(doc, thread):
    """{function name: samples whose leaf it is} for one thread."""
    strings = doc["shared"]["stringArray"]
    st, fr, fn = thread["stackTable"], thread["frameTable"], thread["funcTable"]
    weights = thread["samples"]["weight"] or [1] * thread["samples"]["length"]
    out = {}
    for s, w in zip(thread["samples"]["stack"], weights):
        if s is None:
            continue
        name = strings[fn["name"][fr["func"][st["frame"][s]]]]
        out[name] = out.get(name, 0) + w
    return out


def record_timeline(crux, interp, out, *options):
    result, path, truth_path = crux.record(interp, "timeline.py",
                                           options=["--rate", RATE] + list(options), out=out)
    assert result.returncode == 0, result.describe()
    return path, load_truth(truth_path)


def record_stages(crux, interp, tmp_path, out, *options):
    """record -o OUT of stages_sync.py (5 requests) with the agent importable; (path, truth)."""
    env = target_env()
    env["PYTHONPATH"] = "%s:%s" % (agent_dir(interp.id), TARGETS)
    truth = tmp_path / "stages-truth.json"
    path = tmp_path / out
    result = crux.run("record", "--rate", RATE, "-o", path, *options, "--", interp.path,
                      str(TARGETS / "stages_sync.py"), "--truth", truth, "--requests", "5",
                      env=env)
    assert result.returncode == 0, result.describe()
    done = json.loads(truth.read_text())
    assert done["phase"] == "done", done
    return path, done


def test_gecko_threads_and_hot_function(crux, interp):
    path, truth = record_timeline(crux, interp, "out.gecko.json")
    with open(str(path), encoding="utf-8") as f:
        doc = check_gecko(json.load(f))
    main = thread_by_tid(doc, truth["main_tid"])
    flusher = thread_by_tid(doc, truth["flusher_tid"])
    assert main["isMainThread"] and not flusher["isMainThread"]
    assert doc["meta"]["startTime"] > 1.5e12, "not the wall-clock start in ms"
    assert main["pid"] == flusher["pid"] == str(truth["pid"])
    assert doc["threads"][0] is main, "the main thread is not the first track"
    leaves = leaf_funcs(doc, main)
    hot = max(leaves, key=leaves.get)
    assert hot == truth["hot"], "hottest leaf %s, target says %s: %s" % (hot, truth["hot"],
                                                                       leaves)
    assert "flush" in leaf_funcs(doc, flusher) and "flush" not in leaves
    # hostile names arrive as the same string (quotes, backslash, </script>, U+FFFD)
    assert truth["hostile"] in leaves, sorted(leaves)
    assert truth["hostile"] in doc["shared"]["stringArray"]
    # the resident memory of the process, as a memory counter on its main thread
    counters = [c for c in doc.get("counters", []) if c["pid"] == str(truth["pid"])]
    assert len(counters) == 1 and counters[0]["category"] == "Memory", doc.get("counters")
    assert sum(counters[0]["samples"]["count"]) > 1 << 20, "under 1 MiB resident"


def test_gecko_format_flag_and_idle(crux, one_interp):
    """`--format gecko` whatever the extension; with --idle the napping flusher has samples
    in the System category (or none, without time categories)."""
    path, truth = record_timeline(crux, one_interp, "idle.json", "--format", "gecko", "--idle")
    with open(str(path), encoding="utf-8") as f:
        doc = check_gecko(json.load(f))
    flusher = thread_by_tid(doc, truth["flusher_tid"])
    assert flusher["samples"]["length"] > 0
    cats = [c["name"] for c in doc["meta"]["categories"]]
    assert cats[:6] == ["Other", "Python", "Native", "System", "GIL", "CPU"], cats


def test_gecko_stage_markers(crux, one_interp, tmp_path):
    """The agent's spans are interval markers on the thread that ran them (instants for
    marks), as long as the target measured them."""
    path, done = record_stages(crux, one_interp, tmp_path, "stages.gecko.json")
    with open(str(path), encoding="utf-8") as f:
        doc = check_gecko(json.load(f))
    strings = doc["shared"]["stringArray"]
    spans = {}
    for thread in doc["threads"]:
        m = thread["markers"]
        for i in range(m["length"]):
            name = strings[m["name"][i]]
            end = m["endTime"][i]
            spans.setdefault(name, []).append(
                (m["data"][i], None if end is None else end - m["startTime"][i], m["phase"][i]))
    for name in ("parse", "model", "serialize"):
        got = spans.get(name, [])
        assert len(got) == 5, "%s: %d markers: %s" % (name, len(got), sorted(spans))
        assert all(d["kind"] == "stage" and p == 1 for d, _, p in got)
        for (_, ms, _), ns in zip(sorted(got, key=lambda x: x[1]),
                                  sorted(done["measured_ns"][name])):
            assert abs(ms - ns / 1e6) < 2.0, "%s: marker %.3f ms, target %.3f ms" % (
                name, ms, ns / 1e6)
    requests = spans.get("request", [])
    assert sorted(int(d["request"]) for d, _, _ in requests) == [1, 2, 3, 4, 5]
    assert all(d["kind"] == "request" for d, _, _ in requests)
    marks = spans.get("model-done", [])
    assert len(marks) == 5 and all(p == 0 and d["kind"] == "mark" for d, _, p in marks)


def test_timelines_follow_subprocesses(crux, one_interp, tmp_path):
    """--subprocesses: a track per process in the Firefox profile and the Chrome trace, and
    speedscope's per-thread profiles named `Process PID Thread TID "NAME"`, as py-spy names
    them; all three from one saved recording."""
    db = tmp_path / "pool.db"
    result, path, truth_path = crux.record(
        one_interp, "pool.py", "--method", "fork", "--duration", "1.0",
        options=["--subprocesses", "--rate", RATE, "--save", db], out="pool.gecko.json")
    assert result.returncode == 0, result.describe()
    truth = load_truth(truth_path)
    with open(str(path), encoding="utf-8") as f:
        doc = check_gecko(json.load(f))
    strings = doc["shared"]["stringArray"]
    for pid in truth["workers"]:
        mains = [t for t in doc["threads"] if t["pid"] == str(pid) and t["isMainThread"]]
        assert len(mains) == 1 and mains[0]["tid"] == pid, "worker %d: %s" % (pid, mains)
        assert mains[0]["processName"], mains[0]
        funcs = set(strings[n].rsplit(".", 1)[-1] for n in mains[0]["funcTable"]["name"])
        assert "work" in funcs, (pid, sorted(funcs)[:20])
    assert doc["threads"][0]["pid"] == str(truth["pid"]), "the recorded process first"
    for out in ("pool.json", "pool.trace.json"):
        result = crux.run("report", db, "-o", tmp_path / out)
        assert result.returncode == 0, result.describe()
    with open(str(tmp_path / "pool.json"), encoding="utf-8") as f:
        names = [p["name"] for p in json.load(f)["profiles"][1:]]
    for pid in truth["workers"]:
        want = 'Process %d Thread %d "' % (pid, pid)
        assert any(n.startswith(want) for n in names), (want, names)
    with open(str(tmp_path / "pool.trace.json"), encoding="utf-8") as f:
        events = json.load(f)["traceEvents"]
    named = set(e["pid"] for e in events if e["ph"] == "M" and e["name"] == "process_name")
    assert set(truth["workers"]) <= named, (truth["workers"], named)
