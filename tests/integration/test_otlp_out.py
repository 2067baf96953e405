"""--otlp-endpoint: crux stages and crux record send request spans to an OpenTelemetry collector
over OTLP/HTTP (protobuf).

The receiver is the test's own http.server, decoding each POST with the OpenTelemetry
project's generated protobuf classes (opentelemetry-proto from PyPI,
ExportTraceServiceRequest): an independent reader of what crux encodes. The checks compare
with what the targets did (their requests and stages, their own timing), and with the
recording window measured here.
"""
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import TARGETS, target_env
from crux_helpers import RATE, free_port
from test_stages import agent_dir, run_stages, start_with_agent

trace_service_pb2 = pytest.importorskip(
    "opentelemetry.proto.collector.trace.v1.trace_service_pb2",
    reason="opentelemetry-proto is not installed: pip install -r tests/requirements.txt")

STAGES = ["parse", "model", "model-done", "serialize"]  # targets/stages_sync.py, in order


class Receiver:
    """An OTLP/HTTP trace receiver on 127.0.0.1: keeps every decoded request; answers with
    `status` and, for 200, an ExportTraceServiceResponse (optionally a partial success)."""

    def __init__(self, status=200, rejected=0):
        self.posts = []  # (path, content type, ExportTraceServiceRequest)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                req = trace_service_pb2.ExportTraceServiceRequest()
                req.ParseFromString(body)
                receiver.posts.append((self.path, self.headers["Content-Type"], req))
                reply = trace_service_pb2.ExportTraceServiceResponse()
                if rejected:
                    reply.partial_success.rejected_spans = rejected
                    reply.partial_success.error_message = "bad span\nname"
                data = reply.SerializeToString() if status == 200 else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spans(self):
        """Every span received: (resource attributes dict, Span)."""
        out = []
        for _, _, req in self.posts:
            for rs in req.resource_spans:
                res = attrs(rs.resource.attributes)
                for ss in rs.scope_spans:
                    assert ss.scope.name == "crux"
                    out.extend((res, s) for s in ss.spans)
        return out

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def attrs(kvs):
    out = {}
    for kv in kvs:
        v = kv.value
        out[kv.key] = getattr(v, v.WhichOneof("value"))
    return out


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def no_proxy_env():
    """libcurl honours http_proxy: the receiver is on loopback."""
    env = target_env()
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
              "ALL_PROXY"):
        env.pop(k, None)
    return env


def check_traces(spans, nreq, t0, t1, stages, pid=None, partial=0):
    """Request spans are the roots of their traces, stage spans their children; times inside
    the recording window [t0, t1] (unix ns) and inside their request; the resource's
    process.pid is `pid` (None: not sent, as for OTLP files). Up to `partial` requests may lack
    their first stages (served before crux attached to the ring). Returns the roots."""
    roots = {}
    for res, s in spans:
        a = attrs(s.attributes)
        assert res.get("process.pid") == pid, res
        assert len(s.trace_id) == 16 and len(s.span_id) == 8 and any(s.span_id)
        assert t0 <= s.start_time_unix_nano <= s.end_time_unix_nano <= t1, (s.name, t0, t1)
        if a["crux.kind"] == "request":
            assert not s.parent_span_id and s.trace_id not in roots, s
            roots[s.trace_id] = s
    # a request served wholly before crux attached to the ring has no span at all
    assert nreq - partial <= len(roots) <= nreq, (nreq, [s.name for s in roots.values()])
    children = {}
    for _, s in spans:
        if s.trace_id in roots and roots[s.trace_id] is s:
            continue
        root = roots.get(s.trace_id)
        assert root is not None, "span %s is in no request's trace" % s.name
        assert s.parent_span_id == root.span_id, s.name
        assert root.start_time_unix_nano <= s.start_time_unix_nano
        assert s.end_time_unix_nano <= root.end_time_unix_nano
        a = attrs(s.attributes)
        assert a["crux.stage"] == s.name
        assert a.get("thread.id", 0) > 0 or pid is None  # OTLP files carry no thread
        assert a["crux.request"] == str(int.from_bytes(s.trace_id[8:], "big"))
        children.setdefault(s.trace_id, []).append(s)
    complete = 0
    for trace, kids in children.items():
        names = [k.name for k in sorted(kids, key=lambda k: k.start_time_unix_nano)]
        assert names == stages[len(stages) - len(names):], names
        complete += len(names) == len(stages)
    assert complete >= nreq - partial, (complete, nreq)
    ids = [s.span_id for _, s in spans]
    assert len(set(ids)) == len(ids), "span ids repeat"
    return roots


def test_stages_sends_each_request_as_a_trace(crux, interp, tmp_path, receiver):
    n = 6
    popen, truth = start_with_agent(crux, interp.path, interp.id, "stages_sync.py",
                                    "--requests", n)
    crux.wait_truth(truth, popen)
    t0 = time.time_ns()
    report, result = run_stages(crux, popen.pid, tmp_path / "out.json",
                                "--otlp-endpoint", receiver.url + "/")
    t1 = time.time_ns()
    assert popen.wait(30) == 0
    done = crux.wait_truth(truth, popen, phase="done")
    assert report["requests"] == n  # the report is written as before
    assert [(p, c) for p, c, _ in receiver.posts] == [("/v1/traces", "application/x-protobuf")]
    spans = receiver.spans()
    assert len(spans) == n * (1 + len(STAGES)), len(spans)
    roots = check_traces(spans, n, t0, t1, STAGES, popen.pid)
    # Request i + 1 of the target: the trace id's low 8 bytes are its id.
    assert sorted(int.from_bytes(t[8:], "big") for t in roots) == list(range(1, n + 1))
    assert all(r.kind == r.SPAN_KIND_SERVER for r in roots.values())
    # The stage spans last what the target measured around the same blocks (within 2 ms).
    for name in ("parse", "model"):
        got = sorted(s.end_time_unix_nano - s.start_time_unix_nano
                     for _, s in spans if s.name == name)
        own = sorted(done["measured_ns"][name])
        assert all(abs(a - b) <= 2e6 for a, b in zip(got, own)), (name, got, own)
    res = spans[0][0]
    assert res["service.name"] == "stages_sync.py", res
    assert "sent %d spans to %s/v1/traces" % (len(spans), receiver.url) in result.stderr


def test_record_load_sends_spans_in_batches(crux, one_interp, receiver):
    port = free_port()
    argv, truth = crux.target_argv(one_interp, "serve_stages.py", "--port", port)
    env = no_proxy_env()
    env["PYTHONPATH"] = "%s:%s" % (agent_dir(one_interp.id), TARGETS)
    out = crux.tmp / "out.txt"
    t0 = time.time_ns()
    result = crux.run("record", "--rate", RATE, "--load", "http://127.0.0.1:%d/" % port,
                      "--load-rate", 20, "--load-duration", 1, "-o", out,
                      "--otlp-endpoint", receiver.url + "/v1/traces", "--otlp-service", "shop",
                      "--", *argv, env=env)
    t1 = time.time_ns()
    assert result.returncode == 0, result.describe()
    assert out.stat().st_size > 0
    served = [json.loads(l) for l in open(str(truth))]
    spans = receiver.spans()
    assert {p for p, _, _ in receiver.posts} == {"/v1/traces"}
    # The first requests can come before crux attaches to the ring (test_record_load too).
    roots = check_traces(spans, len(served), t0, t1, ["parse", "model", "serialize"],
                         spans[0][0]["process.pid"], partial=2)
    assert len(served) == 20 and 18 <= len(roots) <= 20
    assert spans[0][0]["service.name"] == "shop"


def otlp_file(tmp_path, ntraces=3):
    """An OTLP/JSON file of `ntraces` requests with two stages each (as test_stages')."""
    t0 = 1700000000000000000
    spans = []
    for i in range(ntraces):
        trace = "%032x" % (0xabc000 + i)
        base = t0 + i * 10**9
        for k, (name, off, dur, parent) in enumerate([("POST /v1/generate", 0, 70, ""),
                                                      ("tokenize", 1, 10, "1"),
                                                      ("model", 12, 50, "1")]):
            s = {"traceId": trace, "spanId": "%016x" % (i * 10 + k + 1), "name": name,
                 "startTimeUnixNano": str(base + off * 10**6),
                 "endTimeUnixNano": str(base + (off + dur) * 10**6)}
            if parent:
                s["parentSpanId"] = "%016x" % (i * 10 + 1)
            spans.append(s)
    path = tmp_path / "traces.json"
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}))
    return path, t0


def test_otlp_file_round_trip(crux, tmp_path, receiver):
    path, t0 = otlp_file(tmp_path)
    result = crux.run("stages", "--otlp", path, "-o", tmp_path / "out.json",
                      "--otlp-endpoint", receiver.url, env=no_proxy_env())
    assert result.returncode == 0, result.describe()
    spans = receiver.spans()
    assert len(spans) == 9
    roots = check_traces(spans, 3, t0, t0 + 3 * 10**9, ["tokenize", "model"])
    # The request id is the original trace id's low 64 bits: reading the spans back gives
    # the same requests.
    assert sorted(t[8:].hex() for t in roots) == ["%016x" % (0xabc000 + i) for i in range(3)]
    assert spans[0][0]["service.name"] == "crux"


def one_error_line(result):
    lines = [l for l in result.stderr.splitlines() if "OTLP" in l]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_dead_endpoint_is_one_line_and_changes_nothing(crux, tmp_path):
    path, _ = otlp_file(tmp_path)
    port = free_port()
    out = tmp_path / "out.json"
    start = time.monotonic()
    result = crux.run("stages", "--otlp", path, "-o", out, "--otlp-endpoint",
                      "http://127.0.0.1:%d" % port, env=no_proxy_env())
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.describe()  # the exit status the command had
    assert json.loads(out.read_text())["requests"] == 3  # its output is written
    line = one_error_line(result)
    assert line.startswith("crux: OTLP export to http://127.0.0.1:%d/v1/traces failed: "
                           "cannot connect" % port), line
    assert "collector" in line and "0 of 9 spans sent" in line, line
    assert elapsed < 8, elapsed  # one retry after 1 s, not a hang


def test_dead_endpoint_record_keeps_profile_and_status(crux, one_interp, tmp_path):
    argv, truth = crux.target_argv(one_interp, "stages_sync.py", "--requests", 3)
    env = no_proxy_env()
    env["PYTHONPATH"] = "%s:%s" % (agent_dir(one_interp.id), TARGETS)
    out = tmp_path / "out.txt"
    port = free_port()
    result = crux.run("record", "--rate", RATE, "-o", out, "--otlp-endpoint",
                      "http://127.0.0.1:%d" % port, "--", *argv, env=env)
    assert result.returncode == 0, result.describe()
    assert out.stat().st_size > 0  # the profile is written
    assert "failed: cannot connect" in one_error_line(result)


@pytest.mark.parametrize("status,rejected,want", [
    (404, 0, "HTTP 404 (is it an OTLP/HTTP receiver? the path should be /v1/traces)"),
    (503, 0, "HTTP 503, twice"),
    (200, 2, "the collector rejected 2 of 9 spans: bad span name"),
])
def test_collector_answers_are_reported(crux, tmp_path, status, rejected, want):
    r = Receiver(status, rejected)
    try:
        path, _ = otlp_file(tmp_path)
        result = crux.run("stages", "--otlp", path, "-o", tmp_path / "out.json",
                          "--otlp-endpoint", r.url, env=no_proxy_env())
    finally:
        r.close()
    assert result.returncode == 0, result.describe()
    assert want in one_error_line(result), result.stderr
    assert len(r.posts) == (2 if status == 503 else 1)  # 503 is retried once


def test_bad_endpoint_is_a_usage_error(crux, tmp_path):
    path, _ = otlp_file(tmp_path)
    result = crux.run("stages", "--otlp", path, "--otlp-endpoint", "localhost:4318")
    assert result.returncode == 2, result.describe()
    assert "not an http:// or https:// URL" in result.stderr
    assert not os.path.exists(str(tmp_path / "out.json"))
