"""Output formats: speedscope JSON, HTML and SVG flame graphs, collapsed text; hostile names.

targets/weird_names.py runs two functions renamed through code.replace: one
named `<script>alert(1)</script>` compiled as file
`<script>alert(2)</script>&<weird>.py`, one named "semi;colon\\nnew line" in
file `<semi;file>.py`. Their names must reach every format intact but never
as live markup, and must not break the collapsed format's separators.
"""
import json
import re
import xml.etree.ElementTree as ET

import pytest

from crux_helpers import RATE, frames_of, load_truth, parse_collapsed

RAW_SCRIPTS = ("<script>alert(1)</script>", "<script>alert(2)</script>")


def record_weird(crux, interp, out, extra=()):
    result, path, truth_path = crux.record(interp, "weird_names.py", "--duration", "1.5",
                                           options=["--rate", RATE] + list(extra), out=out)
    assert result.returncode == 0, result.describe()
    assert path.exists() and path.stat().st_size > 0, "no output\n" + result.describe()
    return path, load_truth(truth_path), result


def check_speedscope(doc):
    """Asserts the speedscope file-format shape; returns the shared frames."""
    assert isinstance(doc, dict), type(doc)
    frames = doc.get("shared", {}).get("frames")
    assert isinstance(frames, list) and frames, "no shared.frames"
    assert all(isinstance(f, dict) and isinstance(f.get("name"), str) for f in frames)
    profiles = doc.get("profiles")
    assert isinstance(profiles, list) and profiles, "no profiles"
    for p in profiles:
        assert p.get("type") in ("sampled", "evented"), p.get("type")
        if p["type"] == "sampled":
            assert len(p["samples"]) == len(p["weights"]) > 0, "samples/weights mismatch"
            for stack in p["samples"]:
                assert all(0 <= i < len(frames) for i in stack), "frame index out of range"
            assert sum(p["weights"]) > 0
        else:
            events = p["events"]
            assert events and all(e["type"] in ("O", "C") for e in events)
            assert all(0 <= e["frame"] < len(frames) for e in events)
            ats = [e["at"] for e in events]
            assert ats == sorted(ats), "evented profile not in time order"
    return frames


def test_speedscope_json(crux, interp):
    path, truth, _ = record_weird(crux, interp, "out.json")
    with open(str(path), encoding="utf-8") as f:
        doc = json.load(f)
    frames = check_speedscope(doc)
    text = [f["name"] + " " + str(f.get("file", "")) for f in frames]
    assert any(truth["xss"]["name"] in t for t in text), "xss function missing: %s" % text[:20]
    assert any(truth["xss"]["file"] in t for t in text), "xss file missing: %s" % text[:20]


def test_speedscope_per_thread(crux, interp):
    """py-spy's layout: a profile per thread named `Thread TID "NAME"`, after the combined one."""
    result, path, truth_path = crux.record(interp, "timeline.py", options=["--rate", RATE],
                                           out="threads.json")
    assert result.returncode == 0, result.describe()
    truth = load_truth(truth_path)
    with open(str(path), encoding="utf-8") as f:
        doc = json.load(f)
    frames = check_speedscope(doc)
    profiles = doc["profiles"]
    assert doc["activeProfileIndex"] == 0 and len(profiles) >= 3, [p["name"] for p in profiles]
    assert all(p["unit"] == "seconds" for p in profiles)
    names = [p["name"] for p in profiles[1:]]

    def thread(tid):
        # `Thread TID "NAME"`: the name is empty until crux reads Python's thread names
        found = [p for p in profiles[1:] if p["name"].startswith('Thread %d "' % tid)]
        assert len(found) == 1 and found[0]["name"].endswith('"'), (tid, names)
        return found[0]

    main, flusher = thread(truth["main_tid"]), thread(truth["flusher_tid"])
    assert profiles.index(main) == 1, "the main thread is not the first thread"

    def leaves(p):
        return set(frames[s[-1]]["name"] for s in p["samples"] if s)

    assert truth["hot"] in leaves(main) and truth["hot"] not in leaves(flusher)
    assert "flush" in leaves(flusher) and "flush" not in leaves(main)
    assert truth["hostile"] in leaves(main), sorted(leaves(main))
    for p in profiles:
        assert abs(sum(p["weights"]) - p["endValue"]) < 1e-6 * max(1.0, p["endValue"])
    # every counted sample is in one thread's profile (samples are kept by record)
    threads = sum(p["endValue"] for p in profiles[1:])
    assert abs(threads - profiles[0]["endValue"]) < 1e-6 * threads, (threads, profiles[0])


def test_html_escapes_names(crux, interp):
    path, _, _ = record_weird(crux, interp, "out.html")
    html = path.read_text(encoding="utf-8")
    assert "<html" in html.lower() or "<!doctype" in html.lower(), html[:200]
    for raw in RAW_SCRIPTS:
        assert raw not in html, "raw %s in the HTML: names are not escaped" % raw
    assert "alert(1)" in html, "the weird function is missing from the flame graph"
    # self-contained: no scripts, styles or images fetched from elsewhere
    assert not re.search(r"<script[^>]*\ssrc\s*=", html, re.I), "external script"
    assert not re.search(r"<link[^>]*href\s*=\s*[\"']?(https?:)?//", html, re.I), "external link"


def test_svg_is_wellformed_and_escaped(crux, interp):
    path, _, _ = record_weird(crux, interp, "out.svg")
    svg = path.read_text(encoding="utf-8")
    for raw in RAW_SCRIPTS:
        assert raw not in svg, "raw %s in the SVG: names are not escaped" % raw
    root = ET.fromstring(svg.encode("utf-8"))  # raises if not well-formed XML
    assert root.tag.endswith("svg"), root.tag
    for el in root.iter():
        if el.tag.endswith("script"):
            assert "alert(" not in "".join(el.itertext()), "a name became script code"
    assert "alert(1)" in "".join(root.itertext()), "the weird function is missing from the SVG"


def test_collapsed_keeps_names_and_separators(crux, interp):
    path, truth, _ = record_weird(crux, interp, "out.txt")
    stacks = parse_collapsed(path)  # strict: every line is `stack count`
    frames = set(f for s in stacks for f in frames_of(s))
    xss = [f for f in frames if f.name == truth["xss"]["name"]]
    assert xss, "%r missing: %s" % (truth["xss"]["name"], sorted(f.raw for f in frames)[:30])
    assert xss[0].path == truth["xss"]["file"], xss[0]
    # ';' and '\n' inside a name are replaced, so the name stays one frame on one line
    sep = [f for f in frames if f.path and "semi" in f.name and "colon" in f.name
           and "new line" in f.name and "semi" in f.path and f.path.endswith("file>.py")]
    assert sep, "separator name split apart: %s" % sorted(f.raw for f in frames)[:30]


@pytest.mark.parametrize("fmt,out", [("collapsed", "out.prof"), ("speedscope", "out.data")])
def test_format_flag_overrides_extension(crux, interp, fmt, out):
    path, _, _ = record_weird(crux, interp, out, extra=["--format", fmt])
    if fmt == "collapsed":
        assert parse_collapsed(path)
    else:
        with open(str(path), encoding="utf-8") as f:
            check_speedscope(json.load(f))
