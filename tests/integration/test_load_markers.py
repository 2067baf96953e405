"""record --load keeps each request the load generator sent: Firefox Profiler markers, Chrome
trace slices, and the saved recording's load_requests table (so `crux report` gives them too).

A loopback server (load_server.py, mode broken, run by the interpreter under test and
attached to with --pid) answers /ok with 200 and /503 with 503; a requests file alternates
the two. The markers and slices must number the load's own count, lie within the recording,
and carry the statuses the server gave.
"""
import json
import sqlite3

from load_helpers import SERVER
from test_chrome_trace import check_trace
from test_gecko import check_gecko

RPS, SECONDS = 20, 2
LOAD_TID = 1100000000


def start_broken_server(crux, interp):
    """load_server.py broken under `interp`; returns (Popen, base URL)."""
    crux.seq += 1
    ready = crux.tmp / ("server-%d.ready" % crux.seq)
    popen = crux.spawn([interp.path, SERVER, "broken", "--ready", ready, "--log",
                        crux.tmp / "server.jsonl"], log_name="server")
    crux.wait_truth(ready, popen)
    return popen, "http://127.0.0.1:%d" % json.loads(ready.read_text())["port"]


def record(crux, interp):
    """Records the server under load; returns (gecko doc, load stats, saved recording)."""
    server, url = start_broken_server(crux, interp)
    reqs = crux.tmp / "requests.jsonl"
    reqs.write_text('{"path": "/ok"}\n{"path": "/503"}\n')
    db = crux.tmp / "run.db"
    gecko = crux.tmp / "run.gecko.json"
    result = crux.run("record", "--pid", server.pid, "--load", url + "/ok", "--load-rate", RPS,
                      "--load-duration", SECONDS, "--load-requests-file", reqs, "--save", db,
                      "-o", gecko)
    assert result.returncode == 0, result.describe()
    with open(str(gecko), encoding="utf-8") as f:
        doc = check_gecko(json.load(f))
    con = sqlite3.connect(str(db))
    meta = dict(con.execute("SELECT key, value FROM meta"))
    con.close()
    stats = json.loads(meta["load_json"])["stats"]
    return doc, stats, db


def check_counts(outcomes, stats):
    """outcomes: [(status, outcome)] of every request shown."""
    total = stats["ok"] + stats["errors"] + stats.get("cancelled", 0)
    assert len(outcomes) == total == stats["sent"] == RPS * SECONDS, (len(outcomes), stats)
    assert outcomes.count((200, "ok")) == stats["ok"] == RPS * SECONDS // 2, outcomes
    assert outcomes.count((503, "http")) == RPS * SECONDS // 2, outcomes


def test_load_requests_as_gecko_markers(crux, one_interp):
    doc, stats, _ = record(crux, one_interp)
    strings = doc["shared"]["stringArray"]
    schema = [s for s in doc["meta"]["markerSchema"] if s["name"] == "CruxLoadRequest"]
    assert schema and {f["key"] for f in schema[0]["fields"]} >= {"status", "outcome", "bytes"}
    cats = [c["name"] for c in doc["meta"]["categories"]]
    end_ms = doc["meta"]["profilingEndTime"]
    found = []
    for thread in doc["threads"]:
        m = thread["markers"]
        for i in range(m["length"]):
            data = m["data"][i]
            if not data or data["type"] != "CruxLoadRequest":
                continue
            # on the recorded process's main thread, the one the profiler opens on
            assert thread["isMainThread"] and thread["pid"] == str(crux_pid(doc)), thread["name"]
            assert strings[m["name"][i]] == "load request"
            assert cats[m["category"][i]] == "Load" and m["phase"][i] == 1
            start, end = m["startTime"][i], m["endTime"][i]
            assert 0 <= start <= end <= end_ms, (start, end, end_ms)
            assert data["bytes"] >= 0 and "ttft" not in data, data
            found.append((data["status"], data["outcome"]))
    check_counts(found, stats)


def crux_pid(doc):
    """The recorded process: the pid of the first thread (tracks put it first)."""
    return int(doc["threads"][0]["pid"])


def test_load_requests_as_chrome_slices_from_saved_recording(crux, one_interp):
    doc, stats, db = record(crux, one_interp)
    end_us = doc["meta"]["profilingEndTime"] * 1e3
    out = crux.tmp / "saved.trace.json"
    result = crux.run("report", db, "-o", out)
    assert result.returncode == 0, result.describe()
    with open(str(out), encoding="utf-8") as f:
        trace = json.load(f)
    threads = check_trace(trace)  # slices of one track do not overlap: lanes
    pid = crux_pid(doc)
    lanes = dict((k, v) for k, v in threads.items() if k[1] >= LOAD_TID)
    assert lanes and all(k[0] == pid for k in lanes), sorted(threads)
    names = dict((e["tid"], e["args"]["name"]) for e in trace["traceEvents"]
                 if e["ph"] == "M" and e["name"] == "thread_name" and e["tid"] >= LOAD_TID)
    assert sorted(names.values()) == ["load generator %d" % (i + 1) for i in range(len(lanes))]
    found = []
    for events in lanes.values():
        for e in events:
            assert e["cat"] == "load", e
            assert 0 <= e["ts"] and e["ts"] + e["dur"] <= end_us + 1, (e, end_us)
            assert e["name"] == "HTTP %d" % e["args"]["status"], e
            found.append((e["args"]["status"], e["args"]["outcome"]))
    check_counts(found, stats)
    # the saved recording's gecko export has the same markers as the live one
    again = crux.tmp / "saved.gecko.json"
    assert crux.run("report", db, "-o", again).returncode == 0
    with open(str(again), encoding="utf-8") as f:
        saved = json.load(f)
    assert [t["markers"] for t in saved["threads"]] == [t["markers"] for t in doc["threads"]]
