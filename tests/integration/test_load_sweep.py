"""crux load --sweep: doubling then bisection finds the highest rate meeting the SLO, below
the capacity of a server that serves one request at a time in a known time."""
from load_helpers import run_load, server_log, start_server


def test_sweep_knee_below_capacity(crux, tmp_path):
    url, slog = start_server(crux, "serial", "--delay", "0.01")
    html = tmp_path / "sweep.html"
    res, data = run_load(crux, url + "/", "--sweep", "--rate", "32", "--duration", "1",
                         "--slo", "p90=25ms", "--sweep-precision", "0.25", "--timeout", "3",
                         "-o", html, timeout=120)
    sw = data["sweep"]
    steps = sw["steps"]
    loads = [s["load"] for s in steps]
    # powers of two from 32 until the SLO fails, then bisection between the highest load
    # that met it and the lowest that missed it (on a quiet machine: 32, 64, 128, 96, ...)
    assert loads[0] == 32, res.stdout
    lo, hi = 0, None
    for i, s in enumerate(steps):
        if i:
            if hi is None:
                assert s["load"] == 2 * steps[i - 1]["load"], res.stdout
            else:
                assert lo < s["load"] < hi, res.stdout
        if s["slo_met"]:
            lo = max(lo, s["load"])
        else:
            hi = s["load"] if hi is None else min(hi, s["load"])
    assert hi is not None and hi / lo - 1 < 0.25, res.stdout
    entries = server_log(slog)
    service = [e["done"] - e["t"] for e in entries]
    capacity = len(service) / sum(service)  # requests/s of a one-at-a-time server
    knee = sw["knee"]
    assert knee is not None, res.stdout
    # (a busy machine slows the server below its service-time capacity, never above it)
    assert knee <= capacity * 1.02, "knee %s above capacity %.1f\n%s" % (knee, capacity, res.stdout)
    met = [s["load"] for s in steps if s["slo_met"]]
    missed = [s["load"] for s in steps if not s["slo_met"]]
    assert max(met) == knee and min(missed) > knee
    # throughput follows the offered load below the knee and saturates above capacity
    for s in steps:
        if s["slo_met"]:
            assert s["throughput"] > 0.8 * s["load"], res.stdout
        assert s["throughput"] < capacity * 1.1, res.stdout
    assert "knee:" in res.stdout
    page = html.read_text()
    assert "Latency against offered load" in page and "<polyline" in page


def test_concurrency_sweep_and_slo_exit(crux):
    """--sweep with --concurrency sweeps the concurrency: against a one-at-a-time server of
    10 ms per request, 2 in flight already wait ~20 ms, so p90=15ms allows only 1. A single
    run that misses its --slo exits 1 (a CI gate) and says which term failed."""
    url, _ = start_server(crux, "serial", "--delay", "0.01")
    res, data = run_load(crux, url + "/", "--sweep", "--concurrency", "1", "--duration", "1",
                         "--slo", "p90=15ms")
    assert data["mode"] == "closed"
    assert [s["load"] for s in data["sweep"]["steps"]] == [1, 2], res.stdout
    assert data["sweep"]["knee"] == 1
    res, data = run_load(crux, url + "/", "--requests", "5", "--slo", "p99=1ms", expect=1)
    assert "SLO p99=1ms: NOT met" in res.stdout
    assert data["stats"]["slo_met"] is False
