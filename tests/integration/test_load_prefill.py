"""crux load on an LLM-like endpoint whose prefill grows with the prompt: the prefill and
decode shares, the TTFT fit on prompt length and TPOT against the server's own timing.

The server (load_server.py llm) sends the first token 5 ms + 0.5 ms per prompt word after
the request and then one token every 8 ms; it logs when it wrote the first token and when it
finished, which is the truth the shares are checked against."""
import json
import re

import pytest

from load_helpers import run_load, server_log, start_server

FIRST, PER_PROMPT, GAP = 0.005, 0.0005, 0.008
# (prompt words, output tokens): long and short prompts crossed with long and short outputs
SHAPES = [(20, 16), (400, 4), (100, 8), (250, 12), (50, 4), (300, 16)]


def words(n, seed):
    return " ".join("w%d_%d" % (seed, i) for i in range(n))


def body(i, n_prompt, n_out, usage):
    b = {"model": "m", "max_tokens": n_out, "stream": True}
    if i % 2:  # chat shape: messages with a string content and one with parts
        half = n_prompt // 2
        b["messages"] = [{"role": "system", "content": words(half, i)},
                         {"role": "user",
                          "content": [{"type": "text", "text": words(n_prompt - half, i + 99)}]}]
    else:
        b["prompt"] = words(n_prompt, i)
    if usage:
        b["stream_options"] = {"include_usage": True}
    return b


def write_requests(path, usage=False):
    with open(str(path), "w") as f:
        for i, (n_prompt, n_out) in enumerate(SHAPES):
            f.write(json.dumps({"path": "/v1/completions",
                                "body": body(i, n_prompt, n_out, usage)}) + "\n")


def lsq(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    return sxy / sxx, my - sxy / sxx * mx


def truth(slog):
    """From the server's own timing: the prefill share, the TTFT line on prompt words and the
    TPOT line on output tokens (us), and the rows."""
    rows = [r for r in server_log(slog) if "first_token" in r]
    ttft = sum(r["first_token"] - r["t"] for r in rows)
    total = sum(r["done"] - r["t"] for r in rows)
    ttft_line = lsq([r["prompt_tokens"] for r in rows],
                    [(r["first_token"] - r["t"]) * 1e6 for r in rows])
    tpot_line = lsq([r["output_tokens"] for r in rows],
                    [(r["done"] - r["first_token"]) * 1e6 / (r["output_tokens"] - 1)
                     for r in rows])
    return ttft / total, ttft_line, tpot_line, rows


def test_prefill_decode_shares_and_fits(crux, tmp_path):
    url, slog = start_server(crux, "llm", "--first", FIRST, "--per-prompt", PER_PROMPT,
                             "--gap", GAP)
    reqs = tmp_path / "prompts.jsonl"
    write_requests(reqs)
    html = tmp_path / "out.html"
    n = 4 * len(SHAPES)
    res, data = run_load(crux, url + "/v1/completions", "--requests-file", reqs,
                         "--concurrency", "4", "--requests", str(n), "-o", html)
    st = data["stats"]
    assert st["ok"] == n and st["errors"] == 0, res.stdout
    pd = st["prefill_decode"]
    share, (slope, icpt), (tslope, ticpt), rows = truth(slog)
    assert len(rows) == n
    assert pd["streams"] == n
    # the shares within a few points of the server's own split
    assert abs(pd["prefill_share"] - share) < 0.03, (pd["prefill_share"], share)
    assert abs(pd["prefill_share"] + pd["decode_share"] - 1) < 1e-9
    # words counted as the server counts them, for prompt and messages bodies alike
    assert pd["prompt_unit"] == "words"
    pts = pd["points"]
    cols = pts["columns"]
    assert sorted(r[cols.index("prompt_words")] for r in pts["rows"]) == \
        sorted(p for p, _ in SHAPES for _ in range(4))
    assert all(r[cols.index("prompt_tokens")] is None for r in pts["rows"])
    # TTFT = 5 ms + 0.5 ms per word: the fit near the truth and near the server's own fit
    fit = pd["ttft_fit"]
    assert fit["n"] == n and fit["r2"] > 0.95, fit
    # (the server's sleeps overshoot on a busy machine: its own timing is the truth)
    assert abs(fit["slope_us_per_prompt_unit"] - slope) < 0.05 * slope, (fit, slope)
    assert abs(fit["intercept_us"] - icpt) < 3000, (fit, icpt)
    assert abs(fit["slope_us_per_prompt_unit"] - PER_PROMPT * 1e6) < 0.2 * PER_PROMPT * 1e6, fit
    # TPOT: the pace, whatever the output length; its line as the server's own
    tfit = pd["tpot_fit"]
    assert tfit["n"] == n, tfit
    for k in (4, 16):
        mine = tfit["intercept_us"] + tfit["slope_us_per_output_token"] * k
        assert abs(mine - (ticpt + tslope * k)) < 1000, (k, tfit, tslope, ticpt)
    assert abs(ticpt + tslope * 10 - GAP * 1e6) < 3000, (tslope, ticpt)  # the server's pace
    # the text says which phase dominates, with the share
    assert "prefill/decode: " in res.stdout
    assert re.search(r"(prefill|decode) (dominates|and decode)", pd["reading"]), pd["reading"]
    assert "TTFT = " in res.stdout and "ms x prompt words" in res.stdout
    assert "prefill share: sum of TTFT" in res.stdout  # the definition is printed
    # the HTML scatter: one point per stream with the prompt lengths, and the fit line
    page = html.read_text()
    svg = page.split('id="crux-scatter-ttft"', 1)[1].split("</svg>", 1)[0]
    xs = sorted(float(x) for x in re.findall(r'data-x="([0-9.e+]+)"', svg))
    assert xs == sorted(float(p) for p, _ in SHAPES for _ in range(4))
    assert 'class="fit"' in svg
    tsvg = page.split('id="crux-scatter-tpot"', 1)[1].split("</svg>", 1)[0]
    assert len(re.findall(r'class="pt"', tsvg)) == n
    assert "<script src" not in page and "http://" not in page.split("<script", 1)[0] \
        .replace(url, "")


def test_prefers_usage_prompt_tokens(crux, tmp_path):
    """A server that reports usage.prompt_tokens (here 2 per word): its count is the unit."""
    url, slog = start_server(crux, "llm", "--first", FIRST, "--per-prompt", PER_PROMPT,
                             "--gap", GAP, "--usage-scale", "2")
    reqs = tmp_path / "prompts.jsonl"
    write_requests(reqs, usage=True)
    log = tmp_path / "req.jsonl"
    n = 2 * len(SHAPES)
    res, data = run_load(crux, url + "/v1/completions", "--requests-file", reqs,
                         "--concurrency", "3", "--requests", str(n), "--log", log)
    pd = data["stats"]["prefill_decode"]
    assert pd["prompt_unit"] == "usage.prompt_tokens", pd
    fit = pd["ttft_fit"]
    # 0.5 ms per word is 0.25 ms per reported token
    assert abs(fit["slope_us_per_prompt_unit"] - PER_PROMPT * 1e6 / 2) < 0.05 * PER_PROMPT * 1e6
    assert "ms x prompt tokens" in res.stdout
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(lines) == n
    for r in lines:
        assert r["prompt_tokens"] == 2 * r["prompt_words"]
        assert r["decode_us"] > 0 and r["ttft_us"] > 0


def test_record_load_stages_by_phase(crux, one_interp, tmp_path):
    """record --load of a streaming server with agent stages "prefill" and "decode": at
    concurrency 1 each stage's time falls in its own phase of the load's requests."""
    from conftest import TARGETS, target_env
    from crux_helpers import free_port
    from test_stages import agent_dir
    port = free_port()
    interp = one_interp
    argv, truth = crux.target_argv(interp, "serve_llm_stages.py", "--port", port)
    reqs = tmp_path / "prompts.jsonl"
    with open(str(reqs), "w") as f:
        for i, (n_prompt, n_out) in enumerate(SHAPES):
            f.write(json.dumps({"body": {"prompt": words(n_prompt, i), "max_tokens": n_out,
                                         "stream": True}}) + "\n")
    env = target_env()
    env["PYTHONPATH"] = "%s:%s" % (agent_dir(interp.id), TARGETS)
    result = crux.run("record", "--rate", "100", "--load",
                      "http://127.0.0.1:%d/v1/completions" % port,
                      "--load-requests-file", reqs, "--load-requests", len(SHAPES) * 2,
                      "--load-concurrency", "1", "-o", tmp_path / "out.txt", "--", *argv, env=env)
    assert result.returncode == 0, result.describe()
    err = result.stderr
    assert "prefill/decode: " in err and "ms x prompt tokens" in err, err  # usage reported
    assert "stages during prefill and decode" in err, err
    rows = {}
    for line in err.split("stages during prefill and decode", 1)[1].splitlines()[2:]:
        parts = line.split()
        if not parts or line.lstrip().startswith("("):
            break  # the table ends at its footnote; later lines are other output
        if len(parts) == 7 and parts[0] not in rows:
            try:
                rows[parts[0]] = [float(x) for x in parts[1:]]
            except ValueError:
                continue
    assert set(rows) >= {"prefill", "decode"}, err
    # [prefill ms, %, decode ms, %, mixed ms, %]
    assert rows["prefill"][1] > 95 and rows["decode"][3] > 95, rows
    assert rows["prefill"][4] == 0 and rows["decode"][4] == 0, rows  # concurrency 1: no mix


def test_record_load_gpu_by_phase(crux, one_interp, tmp_path):
    """The GPU per phase, with the NVML stand-in playing one constant step: the requests'
    prefill and decode segments cannot be lined up with a changing trace from outside, so the
    check is that each phase's mean is there and equals the constant (any kernel running 40%,
    SM active 30%), in the text and in the JSON."""
    from conftest import TARGETS, target_env
    from crux_helpers import free_port
    from test_gpu import H100, STANDIN
    from test_stages import agent_dir
    if not (STANDIN / "libnvidia-ml.so.1").exists():
        pytest.fail("%s not built: run `make nvml-standin`" % STANDIN)
    port = free_port()
    argv, truth = crux.target_argv(one_interp, "serve_llm_stages.py", "--port", port)
    reqs = tmp_path / "prompts.jsonl"
    with open(str(reqs), "w") as f:
        for i, (n_prompt, n_out) in enumerate(SHAPES):
            f.write(json.dumps({"body": {"prompt": words(n_prompt, i), "max_tokens": n_out,
                                         "stream": True}}) + "\n")
    trace = tmp_path / "nvml.trace"
    trace.write_text(H100 + "step 40 20 30 25 10 15\n")
    env = target_env()
    env["PYTHONPATH"] = "%s:%s" % (agent_dir(one_interp.id), TARGETS)
    env["LD_LIBRARY_PATH"] = str(STANDIN)
    env["CRUX_NVML_TRACE"] = str(trace)
    out = tmp_path / "verdict.json"
    result = crux.run("record", "--rate", "100", "--load",
                      "http://127.0.0.1:%d/v1/completions" % port,
                      "--load-requests-file", reqs, "--load-requests", len(SHAPES) * 4,
                      "--load-concurrency", "1", "-f", "verdict", "-o", out, "--", *argv,
                      env=env)
    crux.check_sanitizers(result)
    assert result.returncode == 0, result.describe()
    m = re.search(r"^GPU during prefill and decode \(all devices\): any kernel running "
                  r"(\S+)% prefill, (\S+)% decode, - mixed; SM active (\S+)% prefill, "
                  r"(\S+)% decode, - mixed$", result.stderr, re.M)
    assert m, result.stderr
    assert [float(x) for x in m.groups()] == [40.0, 40.0, 30.0, 30.0], m.group(0)
    with open(str(out)) as f:
        phases = json.load(f)["gpu"]["phases"]
    for ph in ("prefill", "decode"):
        assert phases[ph]["points"] > 0, phases
        assert phases[ph]["any_kernel_running"] == pytest.approx(40.0), phases
        assert phases[ph]["sm_active"] == pytest.approx(30.0), phases
    assert phases["mixed"]["points"] == 0 and phases["mixed"]["any_kernel_running"] is None
