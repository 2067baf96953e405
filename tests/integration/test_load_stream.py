"""crux load on streamed completions: Server-Sent Events split across HTTP chunks in the
middle of lines; TTFT, ITL and TPOT against the server's known pace."""
from load_helpers import read_jsonl, run_load, start_server

TOKENS, FIRST, GAP = 10, 0.1, 0.02


def test_sse_pace(crux, tmp_path):
    url, slog = start_server(crux, "sse", "--tokens", TOKENS, "--first", FIRST, "--gap", GAP)
    log = tmp_path / "req.jsonl"
    res, data = run_load(crux, url + "/v1/completions", "--concurrency", "2", "--requests", "6",
                         "--log", log)
    st = data["stats"]
    assert st["ok"] == 6 and st["errors"] == 0, res.stdout
    assert st["streams"] == 6
    assert st["tokens"] == 6 * TOKENS  # usage.completion_tokens
    # every token event is seen: 9 gaps per stream
    assert st["itl_us"]["count"] == 6 * (TOKENS - 1)
    assert st["ttft_us"]["count"] == 6
    ttft = st["ttft_us"]
    assert FIRST * 1e6 <= ttft["p50"] <= FIRST * 1e6 + 15000, ttft
    itl = st["itl_us"]
    assert abs(itl["p50"] - GAP * 1e6) < 5000, itl
    assert abs(itl["mean"] - GAP * 1e6) < 5000, itl
    tpot = st["tpot_us"]
    assert abs(tpot["p50"] - GAP * 1e6) < 5000, tpot
    assert "TTFT" in res.stdout and "ITL" in res.stdout and "TPOT" in res.stdout
    assert "first token" in res.stdout  # the definitions are printed with the results
    rows = read_jsonl(log)
    assert all(r["tokens"] == TOKENS and r["ttft_us"] >= FIRST * 1e6 for r in rows)
