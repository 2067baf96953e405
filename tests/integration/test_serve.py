"""crux serve: pprof profiles of any window over HTTP and Prometheus metrics, from one sampler.

targets/serve_work.py runs until killed: the main thread serves requests (tokenize_text,
about 3/4 of a request, then score_batch) in the agent's stages "tokenize" and "score", a
thread named "encoder" runs tokenize_text too, and with --churn a thread named "churner"
calls a newly compiled function every few milliseconds. The profile is read three ways:
decoded here (exact labels, shares, duration), by `go tool pprof` fetching it over HTTP, and
/metrics by a real Prometheus server (Debian's prometheus) scraping it and answering a query.
"""
import gzip
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import REPO
from test_pprof import Pprof, go, parse_top, pprof_tool  # noqa: F401 (go is a fixture)
from test_stages import start_with_agent

SERVING_RE = re.compile(r"crux: serving pid \d+ at (http://\S+?)/debug/pprof/profile")


def start_serve(crux, pid, *options, binary=None):
    """Starts `crux serve --pid PID --listen 127.0.0.1:0 OPTIONS`; returns (CruxProc, base URL)."""
    args = ["serve", "--pid", pid, "--listen", "127.0.0.1:0"] + list(options)
    if binary:
        saved, crux.bin = crux.bin, binary
        proc = crux.start(*args)
        crux.bin = saved
    else:
        proc = crux.start(*args)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = SERVING_RE.search(proc.err_path.read_text(errors="replace"))
        if m:
            return proc, m.group(1)
        if proc.popen.poll() is not None:
            break
        time.sleep(0.05)
    result = proc.finish(10)
    pytest.fail("crux serve did not start\n%s" % result.describe())


def get(url, timeout=60, method="GET"):
    """(status, body bytes) of one request."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def stop(proc):
    proc.popen.send_signal(signal.SIGTERM)
    result = proc.finish(60)
    assert result.returncode == 0, result.describe()
    return result


def assert_running(pid):
    """The target is alive and not left stopped."""
    with open("/proc/%d/stat" % pid) as f:
        state = f.read().rsplit(")", 1)[1].split()[0]
    assert state not in ("T", "t", "Z", "X"), "target left in state %s" % state


def thread_shares(prof, label):
    """{function at the leaf: samples} for the samples labelled thread=`label`."""
    out = {}
    for sample in prof.samples:
        if sample[2].get("thread") != label or not sample[0]:
            continue
        leaf = prof.stack(sample)[0]
        out[leaf] = out.get(leaf, 0) + sample[1][0]
    return out


def test_serve_profile_and_go_tool_pprof(crux, interp, go):  # noqa: F811
    target, truth = start_with_agent(crux, interp.path, interp.id, "serve_work.py")
    srv, url = start_serve(crux, target.pid)
    tids = crux.wait_truth(truth, target)["tids"]

    status, body = get(url + "/debug/pprof/profile?seconds=2")
    assert status == 200, body[:300]
    prof = Pprof(gzip.decompress(body))
    assert prof.types[0] == ("samples", "count")
    assert 1.5e9 <= prof.duration_nanos <= 3.5e9, prof.duration_nanos
    # Python thread names as labels, with each thread's own tid
    labels = dict((s[2].get("thread"), s[2].get("thread_id")) for s in prof.samples)
    assert labels.get("MainThread") == tids["main"], labels
    assert labels.get("encoder") == tids["encoder"], labels
    main = thread_shares(prof, "MainThread")
    tok, score = main.get("tokenize_text", 0), main.get("score_batch", 0)
    # 2 s at 100 Hz of a thread that is always working: ~200 samples
    assert 120 <= tok + score <= 260, main
    assert 0.6 <= tok / float(tok + score) <= 0.9, main
    stages = set(s[2].get("stage") for s in prof.samples if s[2].get("thread") == "MainThread")
    assert {"tokenize", "score"} <= stages, stages
    assert "tokenize_text" in thread_shares(prof, "encoder")

    # go tool pprof fetches the profile itself (it appends ?seconds=1)
    top = parse_top(pprof_tool(go, "-top", "-sample_index=samples", "-seconds", "1",
                               url + "/debug/pprof/profile"))
    assert "tokenize_text" in top and "score_batch" in top, top

    stop(srv)
    assert target.poll() is None, "crux serve must leave an attached target running"
    assert_running(target.pid)


def test_serve_bad_requests_and_limits(crux, one_interp):
    target, truth = start_with_agent(crux, one_interp.path, one_interp.id, "serve_work.py")
    srv, url = start_serve(crux, target.pid, "--max-seconds", "60")
    crux.wait_truth(truth, target)
    profile = url + "/debug/pprof/profile"
    for query, why in [("seconds=abc", "seconds must be a number"),
                       ("seconds=", "seconds must be a number"),
                       ("seconds=0", "seconds must be a number"),
                       ("seconds=-3", "seconds must be a number"),
                       ("seconds=1e9", "seconds must be a number"),
                       ("seconds=nan", "seconds must be a number"),
                       ("seconds=%0a5", "seconds must be a number"),
                       ("seconds=1&seconds=2", "given 2 times")]:
        status, body = get(profile + "?" + query)
        text = body.decode("utf-8")
        assert status == 400, (query, status, text)
        assert text.startswith("crux: ") and why in text and text.count("\n") == 1, (query, text)
    status, body = get(url + "/nowhere")
    assert status == 404 and b"/metrics" in body
    status, body = get(url + "/metrics", method="POST")
    assert status == 405 and body.count(b"\n") == 1
    status, body = get(url + "/")
    assert status == 200 and b"/debug/pprof/profile" in body

    # 16 profiles at once share the one sampler; the 17th is told to come back later
    results = []

    def fetch():
        results.append(get(profile + "?seconds=6"))
    threads = [threading.Thread(target=fetch) for _ in range(16)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    m = None
    while time.monotonic() < deadline:
        status, body = get(url + "/metrics")
        m = re.search(rb"^crux_pprof_windows_open (\d+)", body, re.M)
        if m and int(m.group(1)) == 16:
            break
        time.sleep(0.05)
    assert m and int(m.group(1)) == 16, m
    status17, body17 = get(profile + "?seconds=1")
    assert status17 == 503 and b"too many profiles" in body17, (status17, body17)
    for t in threads:
        t.join(60)
    assert [r[0] for r in results] == [200] * 16
    for status, body in results:
        prof = Pprof(gzip.decompress(body))
        assert any("tokenize_text" in prof.stack(s) for s in prof.samples)
    stop(srv)
    assert_running(target.pid)


def test_serve_sigterm_answers_and_target_exit_ends(crux, one_interp):
    target, truth = start_with_agent(crux, one_interp.path, one_interp.id, "serve_work.py",
                                     "--duration", "6")
    srv, url = start_serve(crux, target.pid)
    crux.wait_truth(truth, target)
    got = []
    t = threading.Thread(target=lambda: got.append(get(url + "/debug/pprof/profile?seconds=30")))
    t.start()
    time.sleep(1.5)
    srv.popen.send_signal(signal.SIGTERM)
    t.join(30)
    assert got and got[0][0] == 200, got
    prof = Pprof(gzip.decompress(got[0][1]))
    assert prof.duration_nanos < 10e9 and prof.samples, "answered early with what it had"
    result = srv.finish(30)
    assert result.returncode == 0, result.describe()
    assert_running(target.pid)

    # attached again, crux serve ends by itself when the target exits
    srv2, url2 = start_serve(crux, target.pid)
    target.wait(30)
    result = srv2.finish(30)
    assert result.returncode == 0 and "exited" in result.stderr, result.describe()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def prom_query(base, expr):
    status, body = get(base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}), 10)
    import json
    data = json.loads(body.decode("utf-8"))
    assert data.get("status") == "success", data
    return data["data"]["result"]


def test_serve_metrics_scraped_by_prometheus(crux, one_interp, tmp_path):
    prometheus = shutil.which("prometheus")
    if not prometheus:
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    target, truth = start_with_agent(crux, one_interp.path, one_interp.id, "serve_work.py")
    srv, url = start_serve(crux, target.pid)
    crux.wait_truth(truth, target)

    # the text format itself: every sample line parses, types are declared once
    status, body = get(url + "/metrics")
    text = body.decode("utf-8")
    assert status == 200
    seen_types = re.findall(r"^# TYPE (\S+) (counter|gauge|histogram)$", text, re.M)
    assert len(seen_types) == len(set(n for n, _ in seen_types))
    for line in text.splitlines():
        if line and not line.startswith("#"):
            assert re.match(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? \S+$', line), line

    port = free_port()
    host = urllib.parse.urlparse(url).netloc
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                      "scrape_configs:\n  - job_name: crux\n    static_configs:\n"
                      "      - targets: ['%s']\n" % host)
    log = open(str(tmp_path / "prometheus.log"), "wb")
    prom = subprocess.Popen([prometheus, "--config.file=%s" % config,
                             "--storage.tsdb.path=%s" % (tmp_path / "tsdb"),
                             "--web.listen-address=127.0.0.1:%d" % port],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    crux.popens.append(prom)
    base = "http://127.0.0.1:%d" % port
    want = {
        'up{job="crux"}': lambda v: v == 1,
        'crux_samples_total{category="python",state="working"}': lambda v: v > 0,
        'crux_stage_duration_seconds_count{stage="tokenize"}': lambda v: v > 0,
        'crux_stage_samples_total{stage="score",state="working"}': lambda v: v > 0,
        'crux_sampler_rounds_total': lambda v: v > 0,
        'crux_target_resident_memory_bytes{pid="%d"}' % target.pid: lambda v: v > 1e6,
    }
    deadline = time.monotonic() + 60
    missing = dict(want)
    while missing and time.monotonic() < deadline:
        for expr in list(missing):
            try:
                result = prom_query(base, expr)
            except (OSError, ValueError):
                break  # not up yet
            if result and missing[expr](float(result[0]["value"][1])):
                del missing[expr]
        time.sleep(0.5)
    prom.terminate()
    prom.wait(20)
    log.close()
    assert not missing, "Prometheus never saw %s\n%s" % (
        sorted(missing), (tmp_path / "prometheus.log").read_text(errors="replace")[-2000:])
    stop(srv)
    assert_running(target.pid)


def metric(url, name):
    status, body = get(url + "/metrics", 10)
    m = re.search(r"^%s (\S+)$" % re.escape(name), body.decode("utf-8"), re.M)
    assert status == 200 and m, name
    return float(m.group(1))


def test_serve_memory_bounded_under_scrapes(crux, one_interp):
    """Stacks that never stop changing and scrapes that never stop: crux's memory levels off
    once its stack table starts over (--max-stacks), and profiles stay right across that.
    Measured on the optimised build (ASan keeps freed memory in quarantine)."""
    release = REPO / "build" / "crux"
    if not os.access(str(release), os.X_OK):
        pytest.skip("build/crux not built (make build/crux)")
    target, truth = start_with_agent(crux, one_interp.path, one_interp.id, "serve_work.py",
                                     "--churn")
    srv, url = start_serve(crux, target.pid, "--rate", "250", "--max-stacks", "300",
                           binary=str(release))
    crux.wait_truth(truth, target)
    stop_at = time.monotonic() + 14
    errors, profiles = [], []

    def scrape(kind):
        while time.monotonic() < stop_at:
            if kind == "profile":
                status, body = get(url + "/debug/pprof/profile?seconds=0.5")
                if status != 200:
                    errors.append((status, body[:200]))
                else:
                    profiles.append(body)
            else:
                status, body = get(url + "/metrics")
                if status != 200:
                    errors.append((status, body[:200]))
    scrapers = [threading.Thread(target=scrape, args=(k,))
                for k in ("profile", "profile", "profile", "metrics")]
    for t in scrapers:
        t.start()
    time.sleep(5)
    rss_early = metric(url, "process_resident_memory_bytes")
    resets_early = metric(url, "crux_profile_resets_total")
    for t in scrapers:
        t.join(60)
    rss_late = metric(url, "process_resident_memory_bytes")
    resets_late = metric(url, "crux_profile_resets_total")
    assert not errors, errors[:3]
    assert resets_late > resets_early >= 1, (resets_early, resets_late)
    assert rss_late <= rss_early * 1.10 + 4e6, (rss_early, rss_late)
    # the last profiles, taken after several resets, still name the churned functions
    prof = Pprof(gzip.decompress(profiles[-1]))
    names = set(n for s in prof.samples for n in prof.stack(s))
    assert "churn_leaf" in names and any(n.startswith("churn_") and n != "churn_leaf"
                                         for n in names), sorted(names)[:20]
    stop(srv)
    assert_running(target.pid)
