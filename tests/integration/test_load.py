"""crux load: open loop rate and latency against a server's own measurements, the
coordinated-omission correction against a stalling server, closed loop, outputs."""
import json
import re

from load_helpers import percentile, read_jsonl, run_load, server_log, start_server


def test_constant_rate_matches_server(crux):
    """At 100 req/s for 2 s the server sees 200 requests spaced 10 ms apart, and crux's
    latency percentiles sit just above the server's own service times."""
    url, slog = start_server(crux, "basic", "--delay", "0.02")
    res, data = run_load(crux, url + "/", "--rate", "100", "--duration", "2")
    st = data["stats"]
    entries = server_log(slog)
    assert st["scheduled"] == 200 and st["ok"] == 200 and st["errors"] == 0, res.stdout
    assert len(entries) == 200
    recv = sorted(e["t"] for e in entries)
    rate = (len(recv) - 1) / (recv[-1] - recv[0])
    assert abs(rate - 100) / 100 < 0.05, "server saw %.1f req/s" % rate
    service = [(e["done"] - e["t"]) * 1e6 for e in entries]
    for p, key, slack in ((50, "p50", 15000), (90, "p90", 25000)):
        truth = percentile(service, p)
        got = st["latency_us"][key]
        # crux's latency = server time + loopback, the server's own parsing, scheduling delays
        # on a busy 2-core machine (a few ms; the slack allows for a loaded machine)
        assert truth <= got <= truth + slack, "%s: crux %d us, server %d us" % (key, got, truth)
    assert "corrected" in res.stdout and "definitions:" in res.stdout


def test_stall_corrected_p99(crux):
    """The server blocks for ~1 s during a 200 req/s, 3 s run on 2 connections. A
    constant-rate client sees every request scheduled inside the stall wait until it ends:
    the k-th slowest waits about S - (k-1)/rate. The corrected p99 must show that; the
    latency from the actual send (requests queued in crux are sent after the stall) not."""
    rate, duration = 200, 3.0
    url, slog = start_server(crux, "stall", "--stall", "1.0", "--stall-after", "1.0")
    res, data = run_load(crux, url + "/", "--rate", rate, "--duration", duration,
                         "--connections", "2")
    st = data["stats"]
    entries = server_log(slog)
    stall = [e["stall"] for e in entries if "stall" in e]
    assert len(stall) == 1, "the server never stalled"
    s = stall[0][1] - stall[0][0]
    n = st["ok"]
    assert n == rate * duration and st["errors"] == 0, res.stdout
    # rank of p99 from the top; the expected value from the schedule
    k = n - max(1, -(-99 * n // 100)) + 1
    expected_us = (s - (k - 1) / rate) * 1e6
    got = st["latency_us"]["p99"]
    assert abs(got - expected_us) < 60000, "corrected p99 %d us, expected %d us" % (
        got, expected_us)
    raw = st["latency_raw_us"]["p99"]
    assert raw < expected_us / 5, "raw p99 %d us should not show the stall" % raw
    assert st["latency_raw_us"]["max"] > 0.8 * s * 1e6  # the requests in flight did wait
    assert st["late_waiting_for_connection"] > 0
    # the timeline shows the stall: the slowest tick waited about S, the total matches
    tl = st["timeline"]
    assert sum(tl["ok"]) == n and len(tl["ok"]) == len(tl["latency_max_us"])
    assert abs(max(tl["latency_max_us"]) - s * 1e6) < 60000
    assert any("--connections" in w for w in data["warnings"])


def test_closed_loop_concurrency(crux):
    """--concurrency 4: the server never sees more than 4 requests at once, and sees 4."""
    url, slog = start_server(crux, "basic", "--delay", "0.02")
    res, data = run_load(crux, url + "/", "--concurrency", "4", "--requests", "60")
    st = data["stats"]
    assert data["mode"] == "closed"
    assert st["ok"] == 60 and st["sent"] == 60 and st["errors"] == 0, res.stdout
    entries = server_log(slog)
    assert len(entries) == 60
    assert max(e["max_inflight"] for e in entries) == 4
    # keep-alive: 4 connections carry all 60 requests
    assert st["connections_opened"] == 4
    assert st["latency_us"]["p50"] == st["latency_raw_us"]["p50"]


def test_outputs_parse(crux, tmp_path):
    """--json, --log (one line per request) and -o page.html: the HTML holds the data
    and references nothing outside itself."""
    url, slog = start_server(crux, "basic", "--delay", "0.005")
    log = tmp_path / "requests.jsonl"
    html = tmp_path / "page.html"
    res, data = run_load(crux, url + "/x?y=1", "--rate", "50", "--requests", "40", "--log", log,
                         "-o", html, "--arrivals", "poisson", "--slo", "p99=5s")
    assert data["stats"]["ok"] == 40
    rows = read_jsonl(log)
    assert len(rows) == 40
    assert sorted(r["i"] for r in rows) == list(range(40))
    for r in rows:
        assert r["intended_us"] <= r["sent_us"] <= r["first_byte_us"] <= r["end_us"]
        assert r["status"] == 200 and r["error"] is None and r["bytes"] == 5
        assert r["latency_us"] >= r["latency_raw_us"]
    assert all(e["path"] == "/x?y=1" for e in server_log(slog))
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert not re.search(r"""(?:src|href)\s*=|url\(|@import|<link""", page, re.I)
    assert not re.search(r"<script(?![^>]*application/json)", page)
    blob = re.search(r'<script type="application/json" id="crux-load-data">(.*?)</script>',
                     page, re.S).group(1)
    embedded = json.loads(blob)
    assert embedded["stats"]["ok"] == 40
    assert embedded["stats"]["latency_us"]["buckets"]
    assert "SLO p99=5s: met" in res.stdout


def test_request_options(crux, tmp_path):
    """--method, -H, --body, and --requests-file lines (method/path/headers/body, cycled)."""
    url, slog = start_server(crux, "basic")
    body = tmp_path / "body.json"
    body.write_text('{"prompt": "hi", "max_tokens": 4}')
    run_load(crux, url + "/v1/completions", "-n", "3", "--body", body, "-H", "X-Test: one",
             "-H", "Authorization: Bearer t")
    reqs = tmp_path / "reqs.jsonl"
    reqs.write_text('{"method": "PUT", "path": "/a", "headers": {"X-K": "v"}, "body": "text"}\n'
                    '\n'
                    '{"path": "/b", "body": {"n": [1, 2]}}\n'
                    '{"method": "DELETE", "path": "/c"}\n')
    run_load(crux, url + "/", "-n", "6", "--requests-file", reqs)
    e = server_log(slog)
    first = e[:3]
    assert all(x["method"] == "POST" and x["path"] == "/v1/completions" for x in first)
    assert first[0]["headers"]["x-test"] == "one"
    assert first[0]["headers"]["authorization"] == "Bearer t"
    assert first[0]["headers"]["content-type"] == "application/json"
    assert json.loads(first[0]["body"]) == {"prompt": "hi", "max_tokens": 4}
    rest = sorted(e[3:], key=lambda x: x["t"])
    got = [(x["method"], x["path"], x["body"]) for x in rest]
    assert got == [("PUT", "/a", "text"), ("POST", "/b", '{"n": [1, 2]}'), ("DELETE", "/c", "")] * 2
    assert rest[0]["headers"]["x-k"] == "v"


def test_poisson_arrivals(crux):
    """--arrivals poisson: the gaps between the server's receive times are exponential with
    mean 1/rate (coefficient of variation ~1), unlike constant arrivals (~0)."""
    import statistics
    url, slog = start_server(crux, "basic")
    res, data = run_load(crux, url + "/", "--rate", "200", "--duration", "2", "--arrivals",
                         "poisson", "--seed", "7")
    assert data["arrivals"] == "poisson" and data["stats"]["errors"] == 0
    t = sorted(e["t"] for e in server_log(slog))
    gaps = [b - a for a, b in zip(t, t[1:])]
    mean = statistics.mean(gaps)
    cv = statistics.pstdev(gaps) / mean
    assert abs(mean - 1 / 200) < 0.15 / 200, "mean gap %.4f s" % mean
    assert 0.8 < cv < 1.2, "coefficient of variation %.2f" % cv
