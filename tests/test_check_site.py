"""The browser check (scripts/check_site.py; issue "The companion", item 7) catches what it
claims to catch: run on a tiny site with one of each defect, and on a clean page."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

if not (shutil.which("chromium") and shutil.which("chromedriver")):
    pytest.skip("no chromium and chromedriver here (CI installs them)", allow_module_level=True)

spec = importlib.util.spec_from_file_location("check_site", ROOT / "scripts" / "check_site.py")
check_site = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_site)

CLEAN = """<html><head><title>ok</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><p id="top">Fine text.</p>
<a href="other.html#here">a link</a> <a href="#top">up</a>
<div style="overflow-x: auto; width: 100%"><table style="width: 2000px"><tr><td>wide,
but in a scroll container</td></tr></table></div><pre>\\(code is not math\\)</pre></body></html>"""
OTHER = '<html><body><h1 id="here">Other</h1></body></html>'
BROKEN = """<html><head><title>bad</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head><body>
<img src="missing.png"><p>Raw math \\(w_i\\) here.</p><p>| a | b | |---|---|</p>
<div style="width: 1200px">too wide</div>
<a href="nowhere.html">dead</a> <a href="other.html#gone">no anchor</a>
<pre>Traceback (most recent call last):</pre></body></html>"""


def test_the_browser_check_finds_each_defect_and_passes_a_clean_page(tmp_path, capsys):
    site = tmp_path / "site"
    site.mkdir()
    for name, html in (("index", CLEAN), ("clean", CLEAN), ("other", OTHER), ("bad", BROKEN)):
        (site / f"{name}.html").write_text(html)
    shots = tmp_path / "shots"
    assert check_site.main([str(site), "--pages", "clean.html", "--screenshots", str(shots)]) == 0
    assert sorted(p.name for p in shots.iterdir()) == ["clean-1280px.png", "clean-390px.png"]
    capsys.readouterr()
    assert check_site.main([str(site), "--pages", "bad.html"]) == 1
    err = capsys.readouterr().err
    for problem in (
        "image not loaded: missing.png",
        "raw math: 'Raw math \\\\(w_i\\\\) here.'",
        "a Markdown table left as text: '| a | b | |---|---|'",
        "page 1208 px wide at a 390 px viewport",  # 8 px: the body's margin
        "broken link nowhere.html",
        "link other.html#gone: no anchor #gone",
        "error text on the page: 'Traceback (most recent call last)'",
    ):
        assert problem in err, (problem, err)
