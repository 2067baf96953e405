"""The differential flame graph page in a real headless browser (Debian's chromium + Playwright).

The page comes from the unit test binary (`test_diffflame --write-demo PATH`), which builds a
small diff tree by hand: one flagged slower frame, two flagged faster ones (one of them
vanished), an unflagged frame with a large raw change, a new unflagged frame and hostile
names. No recording or diff command is involved.

Checks: no console errors; exactly the flagged frames are red or blue (read from the computed
background colours), the rest grey, in every mode; the share/seconds and total/self toggles
change widths and values; hovering shows the interval; click zooms; search highlights;
hostile names are text and never run. A screenshot is kept at tests/artifacts/diff.png
(ignored by git).
"""
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "tests" / "artifacts"
DEMO_BIN = "build/asan/unit/test_diffflame"
HOSTILE = "<img src=x onerror=alert(1)> (evil.py)"
HOSTILE2 = "</script><script>alert(2)</script> (x.py)"

sync_api = pytest.importorskip("playwright.sync_api",
                               reason="playwright is not installed (tests/requirements.txt)")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Builds the unit test binary and writes the demo page; returns its path."""
    build = subprocess.run(["make", DEMO_BIN], cwd=str(REPO), capture_output=True, text=True,
                           timeout=900)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    path = tmp_path_factory.mktemp("diff") / "diff.html"
    run = subprocess.run([str(REPO / DEMO_BIN), "--write-demo", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return path


@pytest.fixture
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("%s is not installed (tools/setup.sh installs chromium)" % CHROMIUM)
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


class Page(object):
    """A page with its console errors, page errors and dialogs collected."""

    def __init__(self, browser, path):
        self.errors, self.dialogs = [], []
        self.page = browser.new_page(viewport={"width": 1280, "height": 700})
        self.page.on("console",
                     lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self.on_dialog)
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_load_state("load")

    def on_dialog(self, d):
        self.dialogs.append(d.message)
        d.dismiss()

    def frame(self, i):
        return self.page.locator('#chart .f[data-i="%d"]' % i)


def embedded_data(path):
    """The JSON in <script id="crux-data">, parsed by Python (so it is valid JSON)."""
    html = path.read_text(encoding="utf-8")
    m = re.search(r'<script type="application/json" id="crux-data">(.*?)</script>', html, re.S)
    assert m, "no data element"
    return json.loads(m.group(1))


def node_ids(data):
    """Frame name -> node id."""
    return {data["strings"][n[1]]: i for i, n in enumerate(data["nodes"]) if i > 0}


SLOTS = {("rel", "total"): 4, ("rel", "self"): 5, ("abs", "total"): 6, ("abs", "self"): 7}


def expected_hue(est):
    """'red' for a flagged increase, 'blue' for a flagged decrease, else 'grey'."""
    diff, flagged = est[2], est[12]
    if flagged == 1 and diff is not None and diff > 0:
        return "red"
    if flagged == 1 and diff is not None and diff < 0:
        return "blue"
    return "grey"


def hue(css):
    """Classifies a computed colour 'rgb(r, g, b)'."""
    r, g, b = [int(v) for v in re.findall(r"\d+", css)[:3]]
    if max(r, g, b) - min(r, g, b) < 12:
        return "grey"
    if r > g + 40 and r > b + 40:
        return "red"
    if b > r + 40 and b > g:
        return "blue"
    return "other " + css


def drawn_hues(page):
    """Node id -> (computed background colour, class list) of every drawn frame."""
    rows = page.evaluate(
        "Array.from(document.querySelectorAll('#chart .f')).map(function (e) {"
        " return [Number(e.getAttribute('data-i')), getComputedStyle(e).backgroundColor,"
        " e.className]; })")
    return {i: (bg, cls) for i, bg, cls in rows}


def check_colours(page, data, scale, metric):
    drawn = drawn_hues(page)
    assert len(drawn) == len(data["nodes"]), "every demo frame is drawn: %s" % drawn
    slot = SLOTS[(scale, metric)]
    for i, (bg, _) in drawn.items():
        want = expected_hue(data["nodes"][i][slot])
        assert hue(bg) == want, "node %d (%s, %s): %s, want %s" % (i, scale, metric, bg, want)
    return drawn


def tip_for(p, i):
    """Hovers frame i (a real mouse move; an event on the element for a sliver that the
    mouse cannot hit at whole pixels) and returns the tooltip's text."""
    box = p.frame(i).bounding_box()
    x, y = box["x"] + min(10, box["width"] / 2), box["y"] + 6
    if box["width"] >= 4:
        p.page.mouse.move(x, y)
    else:
        p.frame(i).dispatch_event("mousemove", {"clientX": x, "clientY": y, "bubbles": True})
    p.page.wait_for_selector("#tip", state="visible")
    return p.page.locator("#tip").inner_text()


def test_diff_page_colours_toggles_and_tooltip(demo, browser):
    data = embedded_data(demo)
    ids = node_ids(data)
    p = Page(browser, demo)
    page = p.page
    assert page.locator("h1").inner_text() == "crux diff: demo <i>title</i>"
    assert "<b>not bold</b> & more" in page.locator("#headline").inner_text()
    assert "no change beyond noise" in page.locator("#legend").inner_text()

    # Default view: seconds per run, self (what a step costs on its own, with the machine
    # factor out: the view in which one slower step colours only itself).
    assert page.get_attribute("#scale-abs", "aria-pressed") == "true"
    assert page.get_attribute("#metric-self", "aria-pressed") == "true"
    check_colours(page, data, "abs", "self")
    # Share of samples, total. Exactly the flagged frames are coloured.
    page.click("#scale-rel")
    page.click("#metric-total")
    drawn = check_colours(page, data, "rel", "total")
    parse, tok, gone = ids["parse (app.py)"], ids["tokenize (lex.py)"], ids["legacy_io (old.py)"]
    render, fresh = ids["render (view.py)"], ids["cache_lookup (cache.py)"]
    assert hue(drawn[parse][0]) == "red"
    assert hue(drawn[tok][0]) == "blue" and hue(drawn[gone][0]) == "blue"
    # +200% raw, but its interval holds zero: grey. So is a frame new from almost nothing.
    assert data["nodes"][render][4][5] > 1.5 and hue(drawn[render][0]) == "grey"
    assert hue(drawn[fresh][0]) == "grey"
    assert "new" in drawn[fresh][1].split() and "vanished" in drawn[gone][1].split()

    # Hover: the interval, the q-value and the method.
    tip = tip_for(p, parse)
    assert "parse (app.py)" in tip and "total, share of samples" in tip
    assert "base      20%    new 35%" in tip, tip
    assert "interval  [+10 pp, +20 pp]  relative [+50%, +100%]" in tip, tip
    assert "q-value   0.004" in tip and "slower (flagged)" in tip, tip
    assert "over 5 runs a side" in tip, tip
    tip = tip_for(p, render)
    assert "no change beyond noise" in tip and "(+200%)" in tip, tip
    assert "new: in no base run" in tip_for(p, fresh)
    assert "vanished: in no new run" in tip_for(p, gone)

    # total -> self: the tooltip's values follow, colours follow the self estimates.
    page.click("#metric-self")
    assert page.get_attribute("#metric-self", "aria-pressed") == "true"
    check_colours(page, data, "rel", "self")
    tip = tip_for(p, parse)
    assert "self, share of samples" in tip and "base      10%    new 20%" in tip, tip

    # share -> seconds per run: widths change (tokenize is 20% of samples, 0.4 of 2.4 s).
    w_rel = p.frame(tok).bounding_box()["width"]
    page.click("#metric-total")
    page.click("#scale-abs")
    check_colours(page, data, "abs", "total")
    w_abs = p.frame(tok).bounding_box()["width"]
    assert abs(w_rel - w_abs) > 20, (w_rel, w_abs)
    tip = tip_for(p, parse)
    assert "total, seconds per run" in tip and "base      400 ms    new 840 ms" in tip, tip
    assert "change    +440 ms" in tip, tip
    page.click("#scale-rel")

    # Click zooms into a subtree; the zoomed frame spans the chart.
    page.mouse.move(0, 0)
    p.frame(parse).click()
    assert page.evaluate("window.cruxDiff.view()") == parse
    chart_w = page.locator("#chart").bounding_box()["width"]
    assert p.frame(parse).bounding_box()["width"] > chart_w - 4
    assert not page.locator("#reset").is_disabled()
    page.click("#reset")
    assert page.evaluate("window.cruxDiff.view()") == 0

    # Search highlights matches and dims the rest.
    page.fill("#search", "tokenize")
    page.wait_for_function("document.getElementById('match').textContent.length > 0")
    assert page.locator("#match").inner_text().startswith("Matched 1 subtrees: 20% of new")
    assert "match" in p.frame(tok).get_attribute("class").split()
    assert "dim" in p.frame(parse).get_attribute("class").split()
    page.fill("#search", "")
    page.wait_for_function("document.getElementById('match').textContent.length === 0")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "diff.png"
    tip_for(p, parse)
    page.screenshot(path=str(shot), full_page=True)
    print("diff screenshot: %s" % shot)
    assert not p.errors, p.errors
    assert not p.dialogs, p.dialogs


def test_diff_hostile_names_render_as_text(demo, browser):
    data = embedded_data(demo)
    ids = node_ids(data)
    assert HOSTILE in ids and HOSTILE2 in ids
    p = Page(browser, demo)
    page = p.page
    assert p.frame(ids[HOSTILE]).inner_text() == HOSTILE
    assert p.frame(ids[HOSTILE2]).inner_text() == HOSTILE2
    assert HOSTILE in tip_for(p, ids[HOSTILE])
    assert HOSTILE2 in tip_for(p, ids[HOSTILE2])
    page.fill("#search", "alert")
    page.wait_for_function("document.getElementById('match').textContent.length > 0")
    assert page.locator("#match").inner_text().startswith("Matched 2 subtrees")
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    assert page.evaluate("document.querySelectorAll('script').length") == 2
    assert not p.dialogs, "a name ran as script: %s" % p.dialogs
    assert not p.errors, p.errors
