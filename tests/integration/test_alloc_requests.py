"""record --allocations with the crux agent's request spans: bytes retained per request.

targets/serve_retain.py answers GET inside crux.request(), building a 48 KiB temporary it frees
within the request; with --leak-kb 48 it also appends 48 KiB per request to a global list.
crux launches it, loads it (100 req/s for 3 s) and must name the append line as retaining about
48 KiB per request (never freed), and the server that does not leak as retaining little; the
saved recording gives the same view.
"""
import json
import os

import pytest

from conftest import TARGETS, target_env
from crux_helpers import free_port, load_truth
from test_stages import agent_dir

KB = 1024
AGENT = os.path.join(os.path.dirname(__file__), "..", "..", "build", "agent")


def record(crux, interp, leak_kb, *options):
    if not os.path.isdir(os.path.join(AGENT, interp.id, "crux")):
        pytest.skip("no agent built for %s (make agent)" % interp.id)
    port = free_port()
    argv, truth = crux.target_argv(interp, "serve_retain.py", "--port", port, "--leak-kb",
                                   leak_kb)
    env = target_env()
    env["PYTHONPATH"] = "%s:%s" % (agent_dir(interp.id), TARGETS)
    out = crux.tmp / ("retain-%d.json" % leak_kb)
    result = crux.run("record", "--rate", "50", "--allocations=65536", "--load",
                      "http://127.0.0.1:%d/" % port, "--load-rate", "100", "--load-duration",
                      "3", "--format", "lines", "-o", out, *options, "--", *argv, env=env)
    assert result.returncode == 0, result.describe()
    with open(str(out), encoding="utf-8") as f:
        data = json.load(f)
    return data["allocations"], load_truth(truth), result


def at_line(reqs, line):
    return [s for s in reqs["lines"] if s["line"] == line and
            (s["file"] or "").endswith("serve_retain.py")]


def test_leaking_handler_named_per_request(crux, interp):
    db = crux.tmp / "retain.db"
    allocs, truth, result = record(crux, interp, 48, "--save", db)
    reqs = allocs["requests"]
    assert reqs is not None and reqs["count"] >= 250, (reqs, result.describe())
    top = reqs["lines"][0]
    assert top["line"] == truth["lines"]["LEAK"], reqs["lines"][:4]
    # 48 KiB a request, sampled every 64 KiB on average over ~300 requests: within 25%
    assert abs(top["retained_bytes_per_request"] - 48 * KB) <= 0.25 * 48 * KB, top
    assert abs(top["never_freed_bytes_per_request"] - 48 * KB) <= 0.25 * 48 * KB, top
    assert reqs["allocated_bytes_per_request"] >= 0.75 * 96 * KB, reqs
    assert not at_line(reqs, truth["lines"]["TEMP"]), reqs["lines"][:4]
    # the saved recording gives the same view
    out = crux.tmp / "saved.json"
    r = crux.run("report", db, "--format", "lines-json", "-o", out)
    assert r.returncode == 0, r.describe()
    with open(str(out), encoding="utf-8") as f:
        assert json.load(f)["allocations"]["requests"] == reqs
    html = crux.tmp / "retain.html"
    r = crux.run("report", db, "-o", html)
    assert r.returncode == 0, r.describe()
    page = html.read_text(encoding="utf-8")
    assert 'id="memreq"' in page and "serve_retain.py:%d" % truth["lines"]["LEAK"] in page


def test_handler_that_frees_retains_little(crux, interp):
    allocs, truth, result = record(crux, interp, 0)
    reqs = allocs["requests"]
    assert reqs is not None and reqs["count"] >= 250, (reqs, result.describe())
    # the 48 KiB temporary is allocated in every request and freed within it
    assert reqs["allocated_bytes_per_request"] >= 0.75 * 48 * KB, reqs
    assert reqs["retained_bytes_per_request"] <= 8 * KB, reqs
    assert not at_line(reqs, truth["lines"]["TEMP"]), reqs["lines"][:4]
