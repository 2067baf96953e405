"""record --allocations --pid (docs/memory.md, "Attaching"): the agent injected into a running
server with ptrace, no debugger.

Every interpreter the agent is built for: a stdlib HTTP server (targets/alloc_server.py) answers
byte-identical bodies before, during and after a recording, keeps running with no thread left
stopped or traced, and its allocating line is named; a SIGKILLed crux leaves it serving; many
attach/detach cycles on a busy server leave it alive and correct (bench/attach_cycles.py runs
1,000). The refusal messages are unit-tested (tests/unit/test_inject.c).
"""
import json
import os
import signal
import time
import urllib.request

import pytest

from crux_helpers import assert_running_freely, thread_states, tracer_pid

AGENT = os.path.join(os.path.dirname(__file__), "..", "..", "build", "agent")
CYCLES = int(os.environ.get("CRUX_ATTACH_CYCLES", "12"))


def needs_agent(interp):
    if not os.path.isdir(os.path.join(AGENT, interp.id, "crux")):
        pytest.skip("no agent built for %s (make agent)" % interp.id)
    if not os.path.isfile(os.path.join(AGENT, "libcrux_attach.so")):
        pytest.skip("libcrux_attach.so not built (make agent)")


def get(port, n):
    with urllib.request.urlopen("http://127.0.0.1:%d/%d" % (port, n), timeout=10) as r:
        return r.read()


def answers(port):
    return [get(port, n) for n in range(5)]


def assert_unharmed(target, port, expected):
    assert target.poll() is None, "server died (status %s)" % target.poll()
    assert answers(port) == expected
    states = thread_states(target.pid)
    assert not [s for s in states.values() if s in ("T", "t")], states
    assert tracer_pid(target.pid) == 0


def serve(crux, interp, busy=False):
    target, _, truth = crux.start_target(interp, "alloc_server.py", *(["--busy"] if busy else []))
    port = truth["port"]
    return target, port, truth, answers(port)


def test_attach_answers_identical_and_names_the_line(crux, interp):
    needs_agent(interp)
    target, port, truth, before = serve(crux, interp)
    out = crux.tmp / "allocs.json"
    rec = crux.start("record", "--pid", target.pid, "--allocations=64K", "--duration", "3",
                     "--stats", "--format", "lines", "-o", out)
    during = []
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline and rec.popen.poll() is None:
        during.append(answers(port))
    result = rec.finish()
    assert result.returncode == 0, result.describe()
    assert "attach_ms=" in result.stderr, result.stderr
    assert during and all(d == before for d in during)
    assert_unharmed(target, port, before)
    with open(str(out), encoding="utf-8") as f:
        allocs = json.load(f)["allocations"]
    assert allocs is not None
    lines = [s for s in allocs["lines"] if s["file"].endswith("alloc_server.py")]
    assert any(s["line"] == truth["ALLOC"] for s in lines), allocs["lines"][:8]


def test_sigkill_of_crux_mid_recording(crux, interp):
    needs_agent(interp)
    target, port, _, before = serve(crux, interp, busy=True)
    rec = crux.start("record", "--pid", target.pid, "--allocations", "--duration", "30",
                     "--stats", "-o", crux.tmp / "out.txt")
    ring = "/dev/shm/crux-agent-%d" % target.pid
    deadline = time.monotonic() + 20
    while not os.path.exists(ring) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.path.exists(ring), "the agent made no ring"
    time.sleep(0.5)
    rec.popen.send_signal(signal.SIGKILL)
    rec.popen.wait(10)
    for _ in range(3):
        assert_unharmed(target, port, before)
        time.sleep(0.2)
    assert_running_freely(target.pid)


def test_attach_detach_cycles_on_a_busy_server(crux, interp):
    needs_agent(interp)
    target, port, _, before = serve(crux, interp, busy=True)
    for i in range(CYCLES):
        result = crux.run("record", "--pid", target.pid, "--allocations", "--duration", "0.1",
                          "--rate", "20", "-o", crux.tmp / "cycle.txt")
        assert result.returncode == 0, "cycle %d: %s" % (i, result.describe())
        assert get(port, i % 5) == before[i % 5]
    assert_unharmed(target, port, before)
    assert_running_freely(target.pid)
