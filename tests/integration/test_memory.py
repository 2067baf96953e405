"""Memory over time: resident size sampled with the stacks, and growth named.

targets/memory.py grows to +500 MB in grow(), holds it, and frees it in
release(); it measures its own resident size before, at the peak and after.
"""
import json

from crux_helpers import RATE, load_truth

MB = 1 << 20


def test_timeline_rises_falls_and_names_the_function(crux, interp):
    argv, truth_path = crux.target_argv(interp, "memory.py")
    out = crux.tmp / "lines.json"
    result = crux.run("record", "--rate", RATE, "--format", "lines", "-o", out, "--", *argv)
    assert result.returncode == 0, result.describe()
    truth = load_truth(truth_path)
    with open(str(out), encoding="utf-8") as f:
        data = json.load(f)
    points = [(t, rss) for t, pid, rss in data["memory"] if pid == truth["pid"]]
    assert len(points) >= 20, points
    peak_t, peak = max(points, key=lambda p: p[1])
    assert abs(peak - truth["peak"]) <= 30 * MB, (peak, truth)
    # it rose from near the starting size and fell back after the peak
    assert min(r for t, r in points if t < peak_t) <= truth["before"] + 60 * MB, points[:5]
    assert min(r for t, r in points if t > peak_t) <= truth["after"] + 60 * MB, points[-5:]
    proc = [p for p in data["processes"] if p["pid"] == truth["pid"]][0]
    assert abs(proc["peak_rss_bytes"] - truth["peak"]) <= 30 * MB, proc
    grew = sorted(data["functions"], key=lambda r: -r["memory_growth_bytes"])
    assert grew[0]["function"] == "grow", [(r["function"], r["memory_growth_bytes"]) for r in grew[:3]]
    assert grew[0]["memory_growth_bytes"] >= 400 * MB, grew[0]


def test_text_view_shows_the_timeline(crux, interp):
    argv, _ = crux.target_argv(interp, "memory.py", "--duration", "0.3")
    out = crux.tmp / "lines.txt"
    result = crux.run("record", "--rate", RATE, "--format", "lines", "-o", out, "--", *argv)
    assert result.returncode == 0, result.describe()
    text = out.read_text(encoding="utf-8")
    assert "memory of process" in text and "peak" in text, text[-1500:]
    growth = text.split("memory grew while running")[1].splitlines()
    assert "grow (" in growth[1], growth[:3]
