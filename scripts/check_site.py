"""Open every page of a built book in headless Chromium and check what a reader sees (issue
"The companion", item 7).

    python scripts/check_site.py _build/smoke/_build/html --screenshots _build/screenshots

It serves the site on 127.0.0.1 and, for every page of ``_toc.yml``, at a phone's width (390 px)
and a laptop's (1280 px), asserts:

- every image loaded (``naturalWidth > 0``);
- math rendered: no raw ``\\(`` or ``\\[`` left in the text outside code, and no Markdown
  table left as text (``| --- |``);
- no broken internal link or anchor (every same-site ``href`` answers 200, and its ``#anchor``
  names an element of the page it points to);
- no page wider than the viewport at 390 px, except inside scroll containers;
- no error banner or traceback in the text.

A full-page screenshot of each page at each width is written to ``--screenshots``. Exit status
1 if any check failed, with one line per failure. Without Chromium it says so and exits 0,
unless ``LTH_REQUIRE_BROWSER=1`` (CI), where that is an error. Needs Debian's ``chromium`` and
``chromium-driver`` (``.ci/run`` installs them) and ``selenium`` (in ``requirements.lock``).
"""

from __future__ import annotations

import argparse
import base64
import functools
import http.server
import os
import re
import shutil
import sys
import threading
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import yaml

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = (390, 1280)
#: Text that means a page shows a failure instead of its content.
ERROR_TEXT = ("Traceback (most recent call last)", "An exception occurred", "Error in cell")


def toc_pages() -> list[str]:
    """The site paths of the book's pages, in the order of ``_toc.yml``."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [f"{Path(toc['root']).with_suffix('')}.html"] + [
        f"{Path(chapter['file']).with_suffix('')}.html" for chapter in toc["chapters"]
    ]


class _Ids(HTMLParser):
    """Every ``id`` (and ``name``) attribute of a page: the anchors a link may point to."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("id", "name") and value:
                self.ids.add(value)


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """A quiet HTTP server of ``site`` on 127.0.0.1 (any free port), and its base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


#: Raw TeX delimiters, and Markdown tables left as text (their rule's dashes as Sphinx's
#: smartquotes leave them), outside code, pre, script and MathJax's own output.
_RAW_TEXT_JS = r"""
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
const math = [], tables = [];
while (walker.nextNode()) {
  const node = walker.currentNode;
  if (node.parentElement.closest('pre, code, script, style, mjx-container, .MathJax')) continue;
  const text = node.textContent;
  if (/\\\(|\\\[/.test(text)) math.push(text.trim().slice(0, 60));
  if (/\|\s*:?[-\u2013\u2014]{2,}/.test(text)) tables.push(text.trim().slice(0, 60));
}
return [math, tables];
"""

#: Elements wider than the viewport whose overflow no scroll container holds.
_WIDE_JS = r"""
const width = document.documentElement.clientWidth;
const wide = [];
for (const el of document.body.querySelectorAll('*')) {
  const box = el.getBoundingClientRect();
  if (box.right <= width + 1 || box.width === 0) continue;
  let held = false;
  for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
    const style = getComputedStyle(p);
    if (['auto', 'scroll'].includes(style.overflowX)) { held = true; break; }
  }
  if (!held) wide.push(el.tagName.toLowerCase() + (el.className ? '.' + el.className : ''));
}
return [document.documentElement.scrollWidth, width, wide.slice(0, 5)];
"""


def driver(width: int):
    """Headless Chromium through Selenium and Debian's chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},900")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary:
        options.binary_location = binary
    chromedriver = shutil.which("chromedriver")
    service = Service(executable_path=chromedriver) if chromedriver else Service()
    browser = webdriver.Chrome(options=options, service=service)
    # a window is at least 500 px wide: emulate the device instead (a phone below 400 px,
    # whose pages honour their viewport meta tag)
    metrics = {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 400}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    return browser


def screenshot(browser, path: Path) -> None:
    """A full-page PNG through the DevTools protocol (Selenium's own is the viewport only)."""
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    path.write_bytes(base64.b64decode(shot["data"]))


def check_links(base: str, page_url: str, hrefs: list[str], ids: dict[str, set[str]]) -> list[str]:
    """Problems with the same-site links of one page: a target that does not answer 200, or an
    anchor its target page lacks."""
    problems = []
    for href in sorted(set(hrefs)):
        target, anchor = urldefrag(urljoin(page_url, href))
        if not target.startswith(base) or urlparse(target).scheme not in ("http", "https"):
            continue
        if target not in ids:
            try:
                with urllib.request.urlopen(target) as answer:
                    body = answer.read().decode("utf-8", "replace")
            except urllib.error.URLError as error:
                ids[target] = set()
                problems.append(f"broken link {href} ({error})")
                continue
            parser = _Ids()
            parser.feed(body)
            ids[target] = parser.ids | {""}
        if anchor and anchor not in ids[target]:
            problems.append(f"link {href}: no anchor #{anchor} in {target.removeprefix(base)}")
    return problems


def check_page(browser, base: str, path: str, width: int, ids: dict) -> list[str]:
    """The problems a reader would see on one page at one width."""
    url = urljoin(base, path)
    browser.get(url)
    browser.execute_async_script(  # wait until MathJax has typeset the page, if it has math
        "const done = arguments[arguments.length - 1];"
        "if (window.MathJax && MathJax.startup && MathJax.startup.promise)"
        "  MathJax.startup.promise.then(() => done(true), () => done(false));"
        "else done(true);"
    )
    problems = []
    if "404" in browser.title or "Error response" in browser.page_source[:2000]:
        return [f"page missing ({browser.title})"]
    broken = browser.execute_script(
        "return Array.from(document.images)"
        ".filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src'));"
    )
    problems += [f"image not loaded: {src}" for src in broken]
    math, tables = browser.execute_script(_RAW_TEXT_JS)
    problems += [f"raw math: {text!r}" for text in math]
    problems += [f"a Markdown table left as text: {text!r}" for text in tables]
    text = browser.execute_script("return document.body.innerText;")
    problems += [f"error text on the page: {needle!r}" for needle in ERROR_TEXT if needle in text]
    if width < 400:
        scroll_width, client_width, wide = browser.execute_script(_WIDE_JS)
        if scroll_width > client_width + 1:
            problems.append(
                f"page {scroll_width} px wide at a {client_width} px viewport (widest: {wide})"
            )
    if width == WIDTHS[0]:  # links are the same at every width
        hrefs = browser.execute_script(
            "return Array.from(document.querySelectorAll('a[href]'))"
            ".map(a => a.getAttribute('href'));"
        )
        problems += check_links(base, url, hrefs, ids)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", type=Path, help="the built HTML folder")
    parser.add_argument("--screenshots", type=Path, default=None, help="folder for screenshots")
    parser.add_argument("--pages", nargs="+", default=None, help="site paths (default: _toc.yml)")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        print(f"error: {args.site} has no index.html (build the book first)", file=sys.stderr)
        return 2
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        message = "no chromium here (Debian: apt-get install chromium chromium-driver)"
        if os.environ.get("LTH_REQUIRE_BROWSER") == "1":  # CI: the check must run
            print(f"error: {message}", file=sys.stderr)
            return 2
        print(f"== browser check skipped: {message}")
        return 0
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)
    server, base = serve(args.site.resolve())
    failures, ids = [], {}
    try:
        for width in WIDTHS:
            browser = driver(width)
            try:
                for path in args.pages or toc_pages():
                    for problem in check_page(browser, base, path, width, ids):
                        failures.append(f"{path} at {width} px: {problem}")
                    if args.screenshots:
                        name = re.sub(r"[^A-Za-z0-9_-]", "_", path.removesuffix(".html"))
                        screenshot(browser, args.screenshots / f"{name}-{width}px.png")
            finally:
                browser.quit()
    finally:
        server.shutdown()
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    pages = len(args.pages or toc_pages())
    print(
        f"== checked {pages} page(s) at {', '.join(f'{w} px' for w in WIDTHS)}: "
        f"{len(failures)} problem(s)"
        + (f"; screenshots in {args.screenshots}" if args.screenshots else "")
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
