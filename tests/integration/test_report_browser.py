"""The HTML report in a real headless browser: Debian's chromium driven by Playwright.

Renders with no console errors, the verdict is visible, clicking a frame zooms,
search highlights, hostile function and file names are shown as text and never run.
A screenshot is kept at tests/artifacts/report.png (ignored by git).
"""
import os
from pathlib import Path

import pytest

from crux_helpers import load_truth

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

sync_api = pytest.importorskip("playwright.sync_api",
                               reason="playwright is not installed (tests/requirements.txt)")


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
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.on("console",
                     lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self.on_dialog)
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_load_state("load")

    def on_dialog(self, d):
        self.dialogs.append(d.message)
        d.dismiss()


def test_report_renders_zooms_and_searches(crux, one_interp, browser):
    result, path, truth = crux.record(one_interp, "report_tokenize.py", "--duration", "1.5",
                                      options=["--rate", "250", "--idle"], out="report.html")
    assert result.returncode == 0, result.describe()
    p = Page(browser, path)
    page = p.page
    title = page.locator("#verdict-title")
    assert title.is_visible() and title.inner_text().startswith("Bottleneck: host bound")
    assert page.locator("#stages tbody tr").count() >= 1
    assert page.evaluate("window.cruxFlame.view()") == 0
    box = page.locator("#fg").bounding_box()
    # Row 1 of the icicle is the target's <module> frame, nearly the whole width.
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + 18 + 9)
    assert page.evaluate("window.cruxFlame.view()") > 0, "clicking a frame did not zoom"
    assert not page.locator("#reset").is_disabled()
    page.fill("#search", "wordpiece")
    page.wait_for_function("document.getElementById('match').textContent.length > 0")
    match = page.locator("#match").inner_text()
    assert match.startswith("Matched ") and not match.startswith("Matched 0.00%"), match
    page.select_option("#colorby", "kind")
    page.select_option("#colorby", "stage")
    assert "tokenize" in page.locator("#colorlegend").inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    print("report screenshot: %s" % shot)
    assert not p.errors, p.errors
    assert load_truth(truth)["batches"] > 0


def test_hostile_names_render_as_text(crux, one_interp, browser):
    result, path, truth = crux.record(one_interp, "weird_names.py", "--duration", "1.5",
                                      options=["--rate", "250"], out="weird.html")
    assert result.returncode == 0, result.describe()
    p = Page(browser, path)
    cells = p.page.locator("#functions td.fn").all_inner_texts()
    xss = load_truth(truth)["xss"]["name"]
    assert xss in cells, "the hostile name is not shown as text: %s" % cells[:10]
    files = p.page.locator("#functions td.file").all_inner_texts()
    assert any("<weird>" in f for f in files), files[:10]
    p.page.fill("#search", "alert")
    p.page.wait_for_function("document.getElementById('match').textContent.length > 0")
    assert not p.dialogs, "a name ran as script: %s" % p.dialogs
    assert p.page.evaluate("document.querySelectorAll('script').length") == 2
    assert not p.errors, p.errors


def test_memory_section_renders(crux, one_interp, browser, tmp_path):
    """record --allocations: the report's memory section shows the verdict, the chart, the
    leak at its line with its stack (folded, opens on click) and the RSS gap."""
    agent = Path(__file__).resolve().parents[2] / "build" / "agent" / one_interp.id / "crux"
    if not agent.is_dir():
        pytest.skip("no agent built for %s (make agent)" % one_interp.id)
    argv, truth_path = crux.target_argv(one_interp, "allocs.py")
    argv = argv[:2] + ["leak"] + argv[2:]
    out = tmp_path / "mem.html"
    result = crux.run("record", "--rate", "50", "--allocations", "-o", out, "--", *argv)
    assert result.returncode == 0, result.describe()
    truth = load_truth(truth_path)
    p = Page(browser, out)
    page = p.page
    sec = page.locator("#allocations")
    assert sec.is_visible()
    assert page.locator("#allocations .mverdict b").inner_text() == "growing heap"
    assert page.locator("#allocations svg.memchart polyline.mlive").count() == 1
    assert page.locator("#allocations svg.memchart polyline.mrss").count() == 1
    row = page.locator("#memleaks tbody tr").first
    assert "allocs.py:%d" % truth["LEAK"] in row.inner_text()
    row.locator("summary").click()
    assert row.locator("ol.mstack li").first.is_visible()
    assert "gap of" in page.locator("#memgap").inner_text()
    assert p.errors == [] and p.dialogs == []
    ARTIFACTS.mkdir(exist_ok=True)
    sec.screenshot(path=str(ARTIFACTS / "report-memory.png"))
