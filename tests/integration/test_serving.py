"""Real servers from Debian's packages under crux load and crux record --load.

- targets/serve_torch.py: FastAPI under uvicorn, a small torch MLP behind a
  dynamic-batching queue (up to 8 requests or 5 ms), crux agent stages (parse, queue,
  model, serialize); the server measures the same spans itself.
- targets/serve_flask.py: a threaded Flask server whose handler takes ~12 ms and logs
  its own service time.
Rates, percentiles and stage latencies must agree with what the servers measured.
Debian's python3 only (python3-torch, python3-fastapi, python3-uvicorn, python3-flask).
"""
import json
import socket
import sqlite3
import statistics

import pytest

from conftest import TARGETS, target_env
from crux_helpers import RATE, free_port
from test_record_load import stage_rows
from test_report import debian, has_module  # noqa: F401  (the Debian python3 fixture)
from test_stages import agent_dir

SECONDS = 3


def test_fastapi_torch_batching_under_record_load(crux, debian):
    for module in ("torch", "fastapi", "uvicorn"):
        if not has_module(debian, module):
            pytest.skip("%s is not installed for %s" % (module, debian.path))
    port, rps = free_port(), 60
    argv, truth = crux.target_argv(debian, "serve_torch.py", "--port", port)
    env = target_env()
    env["PYTHONPATH"] = "%s:%s" % (agent_dir(debian.id), TARGETS)
    db, load_json = crux.tmp / "run.db", crux.tmp / "load.json"
    result = crux.run("record", "--rate", RATE, "--load",
                      "http://127.0.0.1:%d/predict?x=3" % port, "--load-rate", rps,
                      "--load-duration", SECONDS, "--load-json", load_json, "--save", db,
                      "-o", crux.tmp / "report.html", "--", *argv, env=env, timeout=120)
    assert result.returncode == 0, result.describe()
    served = [json.loads(l) for l in open(str(truth))]
    n = rps * SECONDS
    stats = json.load(open(str(load_json)))["stats"]
    assert stats["ok"] == n == len(served), (stats["ok"], len(served))
    assert abs(stats["throughput"] - rps) <= rps * 0.05, stats["throughput"]

    def own(key):
        return statistics.median(r[key] for r in served) * 1e3

    rows = stage_rows(result.stderr)
    # parse and model are timed the same way by the agent and by the server
    assert abs(rows["parse"][1] - own("parse")) <= 1.0, (rows["parse"], own("parse"))
    assert abs(rows["model"][1] - own("model")) <= 1.0, (rows["model"], own("model"))
    # the agent's queue stage spans the wait and the batch's model run
    queue_own = statistics.median(r["queue"] + r["model"] for r in served) * 1e3
    assert abs(rows["queue"][1] - queue_own) <= 2.0, (rows["queue"], queue_own)
    assert rows["queue"][0] >= n - 2 and rows["parse"][0] >= n - 2, rows
    # the client saw at least the server's time for each request, and not much more
    raw_p50 = stats["latency_raw_us"]["p50"] / 1e3
    request_own = statistics.median(sum(r[k] for k in ("parse", "queue", "model",
                                                       "serialize")) for r in served) * 1e3
    assert request_own - 0.5 <= raw_p50 <= request_own + 10, (raw_p50, request_own)
    con = sqlite3.connect(str(db))
    tagged = dict(con.execute(
        "SELECT s.s, COUNT(*) FROM samples JOIN strings s ON s.id = samples.stage "
        "WHERE samples.stage != 0 GROUP BY samples.stage"))
    con.close()
    assert tagged.get("model", 0) >= 3 and tagged.get("queue", 0) >= 10, tagged


def test_flask_latency_and_rate_match_the_server(crux, debian):
    if not has_module(debian, "flask"):
        pytest.skip("flask is not installed for %s" % debian.path)
    port, rps = free_port(), 50
    truth = crux.tmp / "flask-truth.txt"
    server = crux.spawn([debian.path, str(TARGETS / "serve_flask.py"), "--truth", truth,
                         "--port", port], log_name="flask")
    try:
        for _ in range(200):  # until it listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail("flask server exited: %s" % server.log_path.read_text())
                __import__("time").sleep(0.05)
        out = crux.tmp / "load.json"
        result = crux.run("load", "http://127.0.0.1:%d/work" % port, "--rate", rps,
                          "--duration", SECONDS, "--json", out, "-q")
        assert result.returncode == 0, result.describe()
    finally:
        server.terminate()
        server.wait(10)
    own = [float(l) * 1e3 for l in open(str(truth))]
    stats = json.load(open(str(out)))["stats"]
    n = rps * SECONDS
    assert stats["ok"] == n == len(own), (stats["ok"], len(own))
    assert abs(stats["throughput"] - rps) <= rps * 0.05, stats["throughput"]
    raw, corrected = stats["latency_raw_us"], stats["latency_us"]
    assert statistics.median(own) <= raw["p50"] / 1e3 <= statistics.median(own) + 5, \
        (raw["p50"], statistics.median(own))
    assert max(own) <= raw["max"] / 1e3 + 0.5, (raw["max"], max(own))
    assert corrected["p99"] >= raw["p99"], (corrected, raw)
