"""Helpers for the `crux load` tests: start a loopback server (load_server.py), read its log,
run crux load and read its JSON result."""
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVER = HERE / "load_server.py"


def start_server(runner, mode, *args):
    """Starts load_server.py MODE ARGS; returns (base URL, server log path)."""
    runner.seq += 1
    ready = runner.tmp / ("server-%d.ready" % runner.seq)
    log = runner.tmp / ("server-%d.jsonl" % runner.seq)
    popen = runner.spawn([sys.executable, SERVER, mode, "--ready", ready, "--log", log]
                         + [str(a) for a in args], log_name="server")
    deadline = time.monotonic() + 20
    while not ready.exists():
        assert popen.poll() is None, "server exited: %s" % popen.log_path.read_text()
        assert time.monotonic() < deadline, "server never became ready"
        time.sleep(0.02)
    port = json.loads(ready.read_text())["port"]
    return "http://127.0.0.1:%d" % port, log


def server_log(path):
    """The server's per-request entries, in the order it finished them."""
    with open(str(path), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def run_load(runner, *args, expect=0, timeout=None):
    """Runs `crux load ARGS --json OUT`; returns (Result, parsed JSON or None)."""
    runner.seq += 1
    out = runner.tmp / ("load-%d.json" % runner.seq)
    result = runner.run("load", *args, "--json", out, timeout=timeout)
    assert result.returncode == expect, result.describe()
    data = json.loads(out.read_text()) if out.exists() else None
    return result, data


def read_jsonl(path):
    with open(str(path), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def percentile(values, p):
    """The value at rank ceil(p% of n) of the sorted values (what crux's histogram reports)."""
    import math
    v = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(v)))
    return v[rank - 1]
