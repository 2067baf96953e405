"""crux load against broken servers and bad options: failures are counted by class, the
run completes with exit status 0 (1 with --fail-on-errors), bad options give one line."""
import socket

from load_helpers import run_load, start_server

BROKEN = {
    "/ok": None,
    "/eofbody": None,
    "/truncated": "truncated",
    "/halfstream": "truncated",
    "/halfstream_eof": "truncated",
    "/badstatus": "protocol",
    "/badchunk": "protocol",
    "/hugeheaders": "protocol",
    "/hang": "timeout",
    "/stallstream": "timeout",
    "/503": "http",
    "/closenow": "closed",
}


def test_broken_server_classes(crux, tmp_path):
    url, _ = start_server(crux, "broken")
    reqs = tmp_path / "reqs.jsonl"
    reqs.write_text("".join('{"path": "%s"}\n' % p for p in BROKEN))
    n = len(BROKEN)
    log = tmp_path / "log.jsonl"
    res, data = run_load(crux, url + "/", "--requests-file", reqs, "--concurrency", n,
                         "--requests", n, "--timeout", "1", "--log", log)
    st = data["stats"]
    want = {}
    for cls in BROKEN.values():
        if cls:
            want[cls] = want.get(cls, 0) + 1
    got = {k: v for k, v in st["errors_by_class"].items() if v}
    assert got == want, res.stdout
    assert st["ok"] == 2
    assert st["http_codes"] == {"503": 1}
    # failed streams leave no TTFT/ITL (as vLLM's benchmark: successful requests only)
    assert st["itl_us"]["count"] == 0 and st["ttft_us"]["count"] == 0
    assert "errors:" in res.stdout and "503 x1" in res.stdout
    # --fail-on-errors turns errors into exit status 1, with the same summary
    res2, data2 = run_load(crux, url + "/", "--requests-file", reqs, "--concurrency", n,
                           "--requests", n, "--timeout", "1", "--fail-on-errors", expect=1)
    assert data2["stats"]["errors"] == n - 2


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_refused_connections(crux):
    url = "http://127.0.0.1:%d/" % free_port()
    res, data = run_load(crux, url, "--rate", "100", "--requests", "20")
    st = data["stats"]
    assert st["errors_by_class"]["connect"] == 20 and st["ok"] == 0, res.stdout
    res, data = run_load(crux, url, "--concurrency", "2", "--requests", "10")
    assert data["stats"]["errors_by_class"]["connect"] == 10


def test_timeout_then_drain(crux):
    """An open-loop run against a server that never answers ends at the timeout."""
    url, _ = start_server(crux, "broken")
    res, data = run_load(crux, url + "/hang", "--rate", "20", "--duration", "0.5",
                         "--timeout", "0.5")
    st = data["stats"]
    assert st["errors_by_class"]["timeout"] == 10 and st["ok"] == 0, res.stdout
    # with 2 connections most requests never leave: after the drain time (the schedule plus
    # the timeout plus 1 s) they count as unfinished, and every scheduled request is counted
    res, data = run_load(crux, url + "/hang", "--rate", "100", "--duration", "1",
                         "--timeout", "0.5", "--connections", "2")
    st = data["stats"]
    byc = st["errors_by_class"]
    assert st["scheduled"] == 100 and st["errors"] == 100, res.stdout
    assert byc["timeout"] + byc["unfinished"] == 100 and byc["unfinished"] > 50, res.stdout
    assert any("unfinished" in w or "not finished" in w for w in data["warnings"])


def test_bad_options(crux):
    cases = [
        (["ftp://x/"], "http://"),
        (["http://127.0.0.1:99999/"], "port"),
        (["http://127.0.0.1/", "--rate", "x"], "--rate"),
        (["http://127.0.0.1/", "--rate", "5", "--concurrency", "2"], "exclude"),
        (["http://127.0.0.1/", "--sweep"], "--slo"),
        (["http://127.0.0.1/", "--sweep", "--slo", "p99"], "--slo"),
        (["http://127.0.0.1/", "-H", "nocolon"], "header"),
        (["http://127.0.0.1/", "--body", "/nonexistent/body"], "body file"),
        (["http://no-such-host.invalid/", "-n", "1"], "resolve"),
        (["http://127.0.0.1/", "--arrivals", "bursty"], "constant or poisson"),
        ([], "URL"),
    ]
    for args, needle in cases:
        res = crux.run("load", *args)
        assert res.returncode == 2, res.describe()
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("crux: ") and needle in lines[0], \
            res.describe()


def test_bad_requests_file_lines(crux, tmp_path):
    """Lines that would put line breaks, spaces or NUL bytes into the request line or a header
    (request smuggling) are refused with FILE:LINE on one line, before anything is sent."""
    cases = [
        ('{"path":"/ok HTTP/1.1\\r\\nX-Inject: 1\\r\\n\\r\\nGET /ok"}', "percent-encode"),
        ('{"path":"/a b"}', "percent-encode"),
        ('{"headers":{"a\\u0000b":"x"}}', "a name is"),
        ('{"headers":{"a:b":"x"}}', "header name"),
        ('{"headers":{"X-A":"v\\r\\nX-B: 1"}}', "line breaks"),
        ('{"method":"GE\\r\\nT"}', "method"),
        ('{"path":"/%s"}' % ("x" * 10000), "longer than"),
    ]
    for line, needle in cases:
        reqs = tmp_path / "reqs.jsonl"
        reqs.write_text("{}\n" + line + "\n")
        res = crux.run("load", "http://127.0.0.1:1/", "-n", "1", "--requests-file", str(reqs))
        assert res.returncode == 2, res.describe()
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("crux: %s:2: " % reqs) and \
            needle in lines[0], res.describe()


def test_silent_close_of_kept_alive_connections(crux):
    """A server that closes every connection after one response (without saying so):
    no request fails; crux reconnects, resending a request once when it met a stale one."""
    url, slog = start_server(crux, "broken")
    res, data = run_load(crux, url + "/okclose", "--concurrency", "1", "--requests", "20")
    st = data["stats"]
    assert st["ok"] == 20 and st["errors"] == 0, res.stdout
    assert st["connections_opened"] >= 20


def test_random_garbage_responses(crux, tmp_path):
    """200 responses made of random fragments of HTTP (bad lengths, chunk sizes, SSE,
    binary, huge lines): the run completes, every request is counted once, no sanitizer
    report (the fixture checks crux's stderr)."""
    url, _ = start_server(crux, "broken")
    reqs = tmp_path / "garbage.jsonl"
    reqs.write_text("".join('{"path": "/garbage%d"}\n' % i for i in range(200)))
    res, data = run_load(crux, url + "/", "--requests-file", reqs, "--concurrency", "8",
                         "--requests", "200", "--timeout", "0.5")
    st = data["stats"]
    assert st["ok"] + st["errors"] == 200 and st["cancelled"] == 0, res.stdout
    assert st["errors"] > 0 and st["errors_by_class"]["protocol"] > 0
