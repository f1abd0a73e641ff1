"""The docs site in a real browser (issue 25): headless Chromium at 1280 and 800 px opens the
home, tutorial, notation and gallery pages of the built site; every image and diagram loaded and
lies inside the content column, no page scrolls sideways, and an edge's hover text (its kernel)
is in the gallery's DOM.

Slow (it builds the site and starts a browser): ``pytest -m slow tests/test_docs_browser.py``.
Needs ``selenium`` (dev extras) and Debian's ``chromium`` and ``chromium-driver``
(``apt-get install chromium chromium-driver``); without them it is skipped, saying so. Set
``DTG_SCREENSHOTS=DIR`` to keep a screenshot of each page and width.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("index.html", "tutorial.html", "notation.html", "gallery.html")
WIDTHS = (1280, 800)

pytestmark = pytest.mark.slow

#: Every image and diagram of the content column: loaded, and inside the column.
MEASURE = """
const column = document.querySelector('.md-content') || document.querySelector('[role=main]');
const c = column.getBoundingClientRect();
const shown = [...column.querySelectorAll('img, svg.dtg-diagram')];
const bad = [];
for (const e of shown) {
  const r = e.getBoundingClientRect();
  const loaded = e.tagName !== 'IMG' || (e.complete && e.naturalWidth > 0);
  if (!loaded || r.width === 0 || r.left < c.left - 1 || r.right > c.right + 1) {
    bad.push(`${e.tagName} ${e.getAttribute('src') || e.getAttribute('class')}: ` +
             `${Math.round(r.left)}..${Math.round(r.right)} in ${Math.round(c.left)}..${Math.round(c.right)}` +
             (loaded ? '' : ' (not loaded)'));
  }
}
return {count: shown.length, bad: bad, scroll: document.documentElement.scrollWidth,
        inner: document.documentElement.clientWidth};
"""
TOOLTIPS = """
return [...document.querySelectorAll('svg.dtg-diagram g.edge a')]
  .map(a => a.getAttribute('xlink:title') || a.getAttributeNS('http://www.w3.org/1999/xlink', 'title'));
"""


def _browser():
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="pip install selenium (dev extras)"
    )
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("no chromium/chromedriver: apt-get install chromium chromium-driver")
    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=Service(driver))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("mkdocs", reason="pip install -e '.[dev]' installs mkdocs")
    out = tmp_path_factory.mktemp("site")
    build = [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)]
    done = subprocess.run(build, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    handler.log_message = lambda *args: None  # quiet
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    driver = _browser()
    yield driver
    driver.quit()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page", PAGES)
def test_every_image_is_loaded_and_fits(site: str, browser, page: str, width: int) -> None:
    browser.set_window_size(width, 1000)
    browser.get(f"{site}/{page}")
    found = browser.execute_script(MEASURE)
    assert found["count"] > 0, f"{page}: no image"
    assert not found["bad"], f"{page} at {width} px: {found['bad'][:5]}"
    assert found["scroll"] <= found["inner"], f"{page} at {width} px scrolls sideways"
    keep = os.environ.get("DTG_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(Path(keep) / f"{page.removesuffix('.html')}_{width}.png"))


def test_an_edges_hover_text_is_in_the_page(site: str, browser) -> None:
    browser.set_window_size(1280, 1000)
    browser.get(f"{site}/gallery.html")
    texts = browser.execute_script(TOOLTIPS)
    assert any(t and t.startswith("destroy: x[t] ~ Normal(") for t in texts), texts[:5]
    assert any(t and t.startswith("generate: x[t-1] ~ Guess(") for t in texts)
