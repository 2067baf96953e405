"""crux stages: request stages measured by the in-process agent (crux._agent, built per
interpreter into build/agent/<id> by `make agent`), OTLP/JSON files, and OpenTelemetry spans.

Every check compares crux's figures with what the target measured itself around the same
code (truth files), never with wall-clock thresholds.
"""
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import REPO, TARGETS, target_env

AGENT = REPO / "build" / "agent"
# The OpenTelemetry test runs under the test venv's interpreter (Debian's python3 with the
# SDK from PyPI): the one running pytest.
VENV_PY = sys.executable
VENV_TAG = "%s%d.%d" % ("debian" if sys.base_prefix == "/usr" else "py", sys.version_info[0],
                        sys.version_info[1])
TOL_MS = 2.0  # agent vs the target's own timing of the same block (a preemption between)


def agent_dir(ident):
    path = AGENT / ident
    if not (path / "crux" / "__init__.py").exists():
        pytest.fail("agent for %s not built in %s: run `make agent`" % (ident, path))
    return path


def start_with_agent(runner, python, ident, script, *args, extra_env=None, prefix=()):
    """Starts targets/SCRIPT under `python PREFIX` with the agent for `ident` importable.

    Returns (Popen, truth path)."""
    runner.seq += 1
    truth = runner.tmp / ("truth-%d.json" % runner.seq)
    env = target_env()
    env["PYTHONPATH"] = "%s:%s" % (agent_dir(ident), TARGETS)
    env.update(extra_env or {})
    log = runner.tmp / ("target-%d.log" % runner.seq)
    with open(str(log), "wb") as f:
        popen = subprocess.Popen([str(python)] + list(prefix) +
                                 [str(TARGETS / script), "--truth", str(truth)] +
                                 [str(a) for a in args], stdin=subprocess.DEVNULL, stdout=f,
                                 stderr=subprocess.STDOUT, env=env, cwd=str(runner.tmp),
                                 start_new_session=True)
    popen.log_path = log
    runner.popens.append(popen)
    return popen, truth


def percentile(values, p):
    """Nearest rank, as crux computes it."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, -(-len(s) * p // 100) - 1))
    return s[int(k)]


def stages_by_name(report):
    return dict((row["name"], row) for row in report["stages"])


def run_stages(crux, pid, out, *options):
    result = crux.run("stages", "--pid", pid, "-o", out, *options)
    assert result.returncode == 0, result.describe()
    with open(str(out), encoding="utf-8") as f:
        return json.load(f), result


def check_against_truth(row, measured_ns, what):
    ms = [v / 1e6 for v in measured_ns]
    assert row["count"] == len(ms), "%s: count %s, target ran %d" % (what, row["count"], len(ms))
    for p in (50, 90):
        mine, theirs = row["p%d_ms" % p], percentile(ms, p)
        assert abs(mine - theirs) <= TOL_MS, "%s p%d: crux %.3f ms, target %.3f ms" % (
            what, p, mine, theirs)


def test_sync_stages_percentiles_and_waterfall(crux, interp, tmp_path):
    popen, truth = start_with_agent(crux, interp.path, interp.id, "stages_sync.py")
    ready = crux.wait_truth(truth, popen)
    assert ready["ring"] == "/dev/shm/crux-agent-%d" % popen.pid
    report, result = run_stages(crux, popen.pid, tmp_path / "out.json", "--slowest", "3")
    assert popen.wait(30) == 0, popen.log_path.read_text()
    done = crux.wait_truth(truth, popen, phase="done")
    stages = stages_by_name(report)
    assert sorted(stages) == ["model", "parse", "serialize"], report["stages"]
    assert [r["name"] for r in report["stages"]] == ["parse", "model", "serialize"]
    for name in ("parse", "model", "serialize"):
        check_against_truth(stages[name], done["measured_ns"][name], name)
    assert report["requests"] == 20 and report["request"]["count"] == 20
    assert report["lost"] == 0 and report["dropped"] == 0
    # The slowest request's waterfall: its stages in order, inside the request.
    slow = report["slowest"][0]
    assert len(report["slowest"]) == 3
    assert slow["duration_ms"] == pytest.approx(report["request"]["max_ms"])
    names = [s["name"] for s in slow["stages"]]
    assert names == ["parse", "model", "model-done", "serialize"], slow
    offsets = [s["offset_ms"] for s in slow["stages"]]
    assert offsets == sorted(offsets) and offsets[0] >= 0
    last = slow["stages"][-1]
    assert last["offset_ms"] + last["duration_ms"] <= slow["duration_ms"] + 1e-6
    assert slow["stages"][2]["kind"] == "mark" and slow["stages"][2]["duration_ms"] == 0
    # The ring file goes away with the process.
    assert not os.path.exists(ready["ring"])
    assert "20 requests" in result.stderr


def test_asyncio_requests_keep_their_ids(crux, interp, tmp_path):
    n = 8
    popen, truth = start_with_agent(crux, interp.path, interp.id, "stages_async.py",
                                    "--requests", n)
    crux.wait_truth(truth, popen)
    report, _ = run_stages(crux, popen.pid, tmp_path / "out.json", "--slowest", "100")
    assert popen.wait(30) == 0, popen.log_path.read_text()
    done = crux.wait_truth(truth, popen, phase="done")
    assert report["requests"] == n
    by_id = dict((w["request"], w) for w in report["slowest"])
    assert sorted(by_id) == sorted(str(i) for i in range(1, n + 1))
    for rid, own in done["measured_ns"].items():
        stages = by_id[rid]["stages"]
        assert [s["name"] for s in stages] == ["fetch", "compute"], (rid, stages)
        for s in stages:
            assert abs(s["duration_ms"] - own[s["name"]] / 1e6) <= TOL_MS, (rid, s, own)


def read_header(path):
    with open(path, "rb") as f:
        data = f.read(160)
    magic = data[:8]
    attached = struct.unpack_from("<I", data, 76)[0]
    write_idx = struct.unpack_from("<Q", data, 120)[0]
    return magic, attached, write_idx


def test_detached_writes_nothing(crux, interp):
    popen, truth = start_with_agent(crux, interp.path, interp.id, "stages_detached.py")
    data = crux.wait_truth(truth, popen)
    assert data["attached"] is False
    magic, attached, write_idx = read_header(data["ring"])
    assert magic == b"CRUXRING" and attached == 0
    assert write_idx == 0, "the agent wrote %d records with no recorder attached" % write_idx
    # A forked child made a ring of its own and removed it when it exited.
    assert data["child_ring"] == "/dev/shm/crux-agent-%d" % data["child_pid"]
    assert data["child_status"] == 0 and data["child_ring_left"] is False
    # A recorder that comes and goes (--duration) finds nothing and leaves the flag clear.
    result = crux.run("stages", "--pid", popen.pid, "--duration", "0.2", "--json")
    assert result.returncode == 0, result.describe()
    report = json.loads(result.stdout)
    assert report["spans"] == 0 and report["stages"] == [] and report["request"] is None
    assert read_header(data["ring"])[1] == 0, "crux left the attached flag set"
    crux.kill_group(popen)
    os.unlink(data["ring"])  # a killed process leaves its file (the next import removes it)


def test_agent_off_by_environment(procs, one_interp):
    popen, truth = start_with_agent(procs, one_interp.path, one_interp.id, "stages_detached.py",
                                    extra_env={"CRUX_AGENT": "0"})
    data = procs.wait_truth(truth, popen)
    assert data["ring"] is None and data["attached"] is False
    assert not os.path.exists("/dev/shm/crux-agent-%d" % popen.pid)


def test_garbage_ring_is_a_clean_error(crux, tmp_path, one_interp):
    rng = random.Random(5)
    cases = {
        "random.ring": bytes(rng.getrandbits(8) for _ in range(8192)),
        "short.ring": b"CRUXRING",
        "sizes.ring": b"CRUXRING" + b"\x01\x00\x00\x00" + b"\xff" * 8000,
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        result = crux.run("stages", "--ring", path)
        assert result.returncode == 1, result.describe()
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("crux: "), result.describe()
        assert "ring" in lines[0], result.describe()
    # A Python process without the agent: the error names the fix.
    popen = crux.spawn([one_interp.path, "-c", "import time; time.sleep(30)"])
    result = crux.run("stages", "--pid", popen.pid)
    assert result.returncode == 1 and "import crux" in result.stderr, result.describe()


def otlp_span(trace, span, parent, name, start_ns, dur_ms):
    s = {"traceId": trace, "spanId": span, "name": name, "kind": 2,
         "startTimeUnixNano": str(start_ns), "endTimeUnixNano": str(start_ns + dur_ms * 10**6)}
    if parent:
        s["parentSpanId"] = parent
    return s


def test_otlp_json_import(crux, tmp_path):
    t0 = 1700000000000000000
    spans = []
    for i in range(3):
        trace = "%032x" % (0xabc000 + i)
        base = t0 + i * 10**9
        spans.append(otlp_span(trace, "%016x" % (i * 10 + 1), "", "POST /v1/generate", base,
                               70 + i))
        spans.append(otlp_span(trace, "%016x" % (i * 10 + 2), "%016x" % (i * 10 + 1),
                               "tokenize", base + 10**6, 10))
        spans.append(otlp_span(trace, "%016x" % (i * 10 + 3), "%016x" % (i * 10 + 1),
                               "model", base + 12 * 10**6, 50 + 2 * i))
    doc = {"resourceSpans": [{"resource": {"attributes": []},
                              "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}]}]}
    path = tmp_path / "traces.json"
    path.write_text(json.dumps(doc))
    out = tmp_path / "out.json"
    result = crux.run("stages", "--otlp", path, "-o", out)
    assert result.returncode == 0, result.describe()
    report = json.loads(out.read_text())
    stages = stages_by_name(report)
    assert stages["tokenize"]["count"] == 3 and stages["tokenize"]["p50_ms"] == 10
    assert stages["model"]["p50_ms"] == 52 and stages["model"]["max_ms"] == 54
    assert report["requests"] == 3 and report["request"]["max_ms"] == 72
    slow = report["slowest"][0]
    assert slow["request"] == "%016x" % (0xabc000 + 2)
    assert [(s["name"], s["offset_ms"], s["duration_ms"]) for s in slow["stages"]] == [
        ("tokenize", 1, 10), ("model", 12, 54)]
    # The same spans as JSON lines (the collector's file exporter), and as text.
    lines = tmp_path / "traces.jsonl"
    lines.write_text("\n".join(json.dumps(doc) for _ in range(2)) + "\n")
    result = crux.run("stages", "--otlp", lines)
    assert result.returncode == 0, result.describe()
    assert "tokenize" in result.stdout and "6 requests" not in result.stdout
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    result = crux.run("stages", "--otlp", bad)
    assert result.returncode == 1 and "OTLP" in result.stderr, result.describe()


def venv_has_otel():
    try:
        return subprocess.run([str(VENV_PY), "-c", "import opentelemetry.sdk.trace"],
                              capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.parametrize("how", ["processor", "python-m-crux.otel"])
def test_otel_span_processor(crux, tmp_path, how):
    """An SDK-instrumented target (the .venv interpreter: Debian's 3.11 with the SDK from
    PyPI) reaches crux through CruxSpanProcessor: added by the program, or by running the
    unchanged program under `python -m crux.otel`."""
    if not venv_has_otel():
        pytest.fail("opentelemetry-sdk missing from %s: run tools/setup.sh" % VENV_PY)
    if how == "processor":
        popen, truth = start_with_agent(crux, VENV_PY, VENV_TAG, "stages_otel.py")
    else:
        popen, truth = start_with_agent(crux, VENV_PY, VENV_TAG, "stages_otel.py",
                                        "--no-processor", prefix=("-m", "crux.otel"))
    crux.wait_truth(truth, popen)
    report, _ = run_stages(crux, popen.pid, tmp_path / "out.json", "--slowest", "100")
    assert popen.wait(30) == 0, popen.log_path.read_text()
    done = crux.wait_truth(truth, popen, phase="done")
    stages = stages_by_name(report)
    assert sorted(stages) == ["model", "tokenize"], report
    assert stages["tokenize"]["count"] == 10 and stages["model"]["count"] == 10
    assert stages["tokenize"]["p50_ms"] >= 10 and stages["model"]["p50_ms"] >= 30
    assert report["requests"] == 10 and report["request"]["count"] == 10
    # Request ids are the trace ids' low 64 bits.
    assert sorted(w["request"] for w in report["slowest"]) == sorted(
        "%d" % int(t[16:], 16) for t in done["traces"])
    slow = report["slowest"][0]
    assert [s["name"] for s in slow["stages"]] == ["tokenize", "model"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        return json.loads(r.read().decode())


def test_fastapi_server_stages(crux, tmp_path):
    """A FastAPI app under uvicorn (Debian's python3 and packages) with stage markers: crux's
    per-stage percentiles agree with what the server measured itself."""
    py = "/usr/bin/python3"
    probe = subprocess.run([py, "-c", "import fastapi, uvicorn"], capture_output=True)
    if probe.returncode != 0:
        pytest.fail("python3-fastapi/python3-uvicorn missing: run tools/setup.sh")
    port = free_port()
    popen, truth = start_with_agent(crux, py, "debian3.11", "stages_fastapi.py",
                                    "--port", port)
    crux.wait_truth(truth, popen)
    out = tmp_path / "out.json"
    rec = crux.start("stages", "--pid", popen.pid, "-o", out)
    deadline = time.monotonic() + 30
    while not get_json(port, "/attached")["attached"]:
        assert time.monotonic() < deadline, "crux never attached"
        time.sleep(0.02)
    n = 20
    for _ in range(n):
        assert get_json(port, "/predict") == {"ok": True}
    own = get_json(port, "/truth")
    time.sleep(0.1)  # two drain rounds
    os.kill(rec.pid, signal.SIGINT)
    result = rec.finish()
    assert result.returncode == 0, result.describe()
    report = json.loads(out.read_text())
    stages = stages_by_name(report)
    assert [r["name"] for r in report["stages"]] == ["parse", "model", "serialize"]
    for name in ("parse", "model", "serialize"):
        check_against_truth(stages[name], own[name], name)
    assert report["requests"] == n
    popen.send_signal(signal.SIGTERM)
    popen.wait(30)


def test_launch_mode(crux, tmp_path, one_interp):
    """`crux stages -- COMMAND`: the agent records from import (no request is missed), and
    crux exits with the command's status."""
    env = target_env()
    env["PYTHONPATH"] = "%s:%s" % (agent_dir(one_interp.id), TARGETS)
    out = tmp_path / "out.json"
    truth = tmp_path / "truth.json"
    result = crux.run("stages", "-o", out, "--", one_interp.path,
                      str(TARGETS / "stages_sync.py"), "--truth", truth, "--requests", "5",
                      env=env)
    assert result.returncode == 0, result.describe()
    report = json.loads(out.read_text())
    done = json.loads(truth.read_text())
    assert report["requests"] == 5 and done["phase"] == "done"
    for name in ("parse", "model", "serialize"):
        check_against_truth(stages_by_name(report)[name], done["measured_ns"][name], name)
    result = crux.run("stages", "--", one_interp.path, "-c",
                      "import crux, sys; sys.exit(3)", env=env)
    assert result.returncode == 3, result.describe()


def test_threads_and_current_stage(crux, tmp_path, one_interp):
    """Three threads write at once; at the end crux reports the stage each parked thread is
    in (the per-thread slots the sampler uses to tag samples)."""
    popen, truth = start_with_agent(crux, one_interp.path, one_interp.id, "stages_threads.py")
    crux.wait_truth(truth, popen)
    out = tmp_path / "out.json"
    rec = crux.start("stages", "--pid", popen.pid, "-o", out, "--slowest", "100")
    data = crux.wait_truth(truth, popen, phase="waiting")
    time.sleep(0.05)  # a drain round after the last request
    os.kill(rec.pid, signal.SIGINT)
    result = rec.finish()
    assert result.returncode == 0, result.describe()
    assert popen.wait(30) == 0, popen.log_path.read_text()
    report = json.loads(out.read_text())
    assert stages_by_name(report)["work"]["count"] == 15 and report["requests"] == 15
    tids = set()
    for w in report["slowest"]:
        assert len(w["stages"]) == 1 and w["stages"][0]["name"] == "work", w
        tids.add(w["stages"][0]["tid"])
    assert tids == set(data["workers"])
    current = dict((c["tid"], c["stage"]) for c in report["current"])
    assert current == {data["parked"]["waiter"]: "io-wait",
                       data["parked"]["main"]: "main-stage"}, report["current"]


def test_ring_overrun_counts_what_it_lost(crux, tmp_path, one_interp):
    """A 64-record ring written faster than crux drains it: every record is read or lost."""
    popen, truth = start_with_agent(crux, one_interp.path, one_interp.id, "stages_burst.py",
                                    "--count", 20000, extra_env={"CRUX_AGENT_RECORDS": "64"})
    crux.wait_truth(truth, popen)
    report, _ = run_stages(crux, popen.pid, tmp_path / "out.json")
    assert popen.wait(30) == 0, popen.log_path.read_text()
    assert report["lost"] > 0, "20000 records through a 64-record ring lost none?"
    assert report["spans"] + report["lost"] == 20000, report
    if report["spans"]:
        assert stages_by_name(report)["burst"]["count"] == report["spans"]


def test_worker_processes(crux, tmp_path, one_interp):
    """--subprocesses follows the rings of forked workers; requests are per process, so
    equal ids in different workers stay different requests."""
    popen, truth = start_with_agent(crux, one_interp.path, one_interp.id, "stages_workers.py")
    crux.wait_truth(truth, popen)
    report, _ = run_stages(crux, popen.pid, tmp_path / "out.json", "--subprocesses",
                           "--slowest", "100")
    assert popen.wait(30) == 0, popen.log_path.read_text()
    done = crux.wait_truth(truth, popen, phase="done")
    assert done["statuses"] == [0, 0]
    assert stages_by_name(report)["work"]["count"] == 13 and report["requests"] == 13
    by_pid = {}
    for w in report["slowest"]:
        by_pid.setdefault(w["pid"], []).append(w["request"])
    assert sorted(by_pid) == sorted([popen.pid] + done["workers"]), by_pid
    assert sorted(len(v) for v in by_pid.values()) == [3, 5, 5]
    assert "and 2 more processes" in report["source"]


def test_killed_recorder_is_noticed(crux, tmp_path, one_interp):
    """A recorder killed with SIGKILL cannot clear `attached`; the agent sees its heartbeat
    go stale and returns to the detached path by itself."""
    popen, truth = start_with_agent(crux, one_interp.path, one_interp.id, "stages_orphan.py",
                                    extra_env={"CRUX_AGENT_READER_TIMEOUT_MS": "300"})
    crux.wait_truth(truth, popen)
    rec = crux.start("stages", "--pid", popen.pid)
    crux.wait_truth(truth, popen, phase="attached")
    crux.kill_group(rec.popen)
    done = crux.wait_truth(truth, popen, phase="done")
    assert done["detached"] is True, done
    assert popen.wait(30) == 0, popen.log_path.read_text()
