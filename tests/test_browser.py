"""The rendered example in headless Chromium: no sideways scrolling from 320 to 800 px, every headline shown.

Chromium will not make a window narrower than 500 px, so the email is laid out in an iframe of the
width under test, as webmail shows it. Run this file as a script to refresh docs/screenshot-*.png.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from browser import CHROMIUM
from browser import FLAGS as BROWSER_FLAGS

from newsletter.assembly import assemble
from newsletter.folder import load_folder
from newsletter.render import render

ROOT = Path(__file__).resolve().parent.parent
# --dump-dom and --screenshot need no DevTools connection
FLAGS = [f for f in BROWSER_FLAGS if not f.startswith("--remote-debugging")] + ["--hide-scrollbars"]
WIDTHS = (320, 375, 600, 800)

# Runs in the page around the email once everything has loaded; its answer is read from the DOM dump.
MEASURE = """
window.addEventListener('load', function () {
  var frame = document.getElementById('email'), doc = frame.contentDocument, win = frame.contentWindow;
  var visible = function (el) {
    var r = el.getBoundingClientRect(), s = win.getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none';
  };
  var box = function (el) { var r = el.getBoundingClientRect(); return {left: r.left, right: r.right, top: r.top}; };
  var small = [], walker = doc.createTreeWalker(doc.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    var node = walker.currentNode, el = node.parentElement;
    if (!node.textContent.trim() || !visible(el)) continue;
    var size = parseFloat(win.getComputedStyle(el).fontSize);
    if (size < 14) small.push({text: node.textContent.trim().slice(0, 40), size: size});
  }
  document.getElementById('answer').textContent = JSON.stringify({
    viewport: doc.documentElement.clientWidth,
    scrollWidth: Math.max(doc.documentElement.scrollWidth, doc.body.scrollWidth),
    height: doc.documentElement.scrollHeight,
    headlines: Array.prototype.map.call(doc.querySelectorAll('h3'), function (h) {
      return Object.assign({text: h.textContent.trim(), visible: visible(h)}, box(h));
    }),
    contacts: Array.prototype.map.call(doc.querySelectorAll('.contact'), box),
    addressLines: Array.prototype.map.call(doc.querySelectorAll('.contact .email .part'), function (el) {
      var range = doc.createRange(); range.selectNodeContents(el);
      return {text: el.textContent, lines: range.getClientRects().length};
    }),
    small: small
  });
});
"""


def chromium(*args: str, timeout: float = 60) -> str:
    """Run headless Chromium with a fresh profile and no background traffic; its stdout."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        done = subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode}: {done.stderr[-500:]}")
    return done.stdout


def framed(email_html: str, width: int, height: int, *, script: str = "") -> str:
    """A page showing `email_html` in an iframe `width` px wide, as a webmail client does."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'></head><body style='margin:0'>"
        f"<iframe id='email' srcdoc=\"{html_lib.escape(email_html, quote=True)}\" "
        f"style='border:0;display:block;width:{width}px;height:{height}px'></iframe>"
        f"<pre id='answer'></pre><script>{script}</script></body></html>"
    )


def measure(email_html: str, width: int, workdir: Path) -> dict:
    page = workdir / f"measure-{width}.html"
    page.write_text(framed(email_html, width, 900, script=MEASURE), encoding="utf-8")
    dom = chromium("--window-size=900,900", "--dump-dom", page.as_uri())
    found = re.search(r"<pre id=\"answer\">(.*?)</pre>", dom, flags=re.DOTALL)
    assert found and found.group(1), f"no measurements in the page at {width}px"
    return json.loads(html_lib.unescape(found.group(1)))


def screenshot(email_html: str, width: int, target: Path, workdir: Path) -> None:
    """A full-length PNG of the email at `width` px."""
    height = measure(email_html, width, workdir)["height"]
    page = workdir / f"shot-{width}.html"
    page.write_text(framed(email_html, width, height), encoding="utf-8")
    chromium(f"--window-size={width},{height}", f"--screenshot={target}", page.as_uri())


def example_html(root: Path = ROOT / "examples") -> tuple[str, list[str]]:
    issue = assemble(load_folder(root))
    headlines = [i.programme for i in issue.items] + [r.item.programme for r in issue.reminders]
    return render(issue).html, headlines


@pytest.fixture(scope="module")
def example():
    return example_html()


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_example_fits_width_and_shows_every_headline(example, width, tmp_path):
    html, headlines = example
    seen = measure(html, width, tmp_path)
    assert seen["viewport"] == width
    assert seen["scrollWidth"] <= width, f"scrolls sideways at {width}px: content is {seen['scrollWidth']}px wide"
    shown = {h["text"]: h for h in seen["headlines"]}
    for headline in headlines:
        assert headline in shown, f"{headline!r} missing at {width}px"
        box = shown[headline]
        assert box["visible"] and box["left"] >= 0 and box["right"] <= width, (
            f"{headline!r} cut off at {width}px: {box}"
        )
    assert seen["small"] == [], f"text under 14px at {width}px: {seen['small'][:5]}"
    broken = [part["text"] for part in seen["addressLines"] if part["lines"] != 1]
    assert seen["addressLines"] and broken == [], f"an address breaks mid-word at {width}px: {broken}"


@pytest.mark.browser
def test_contacts_two_columns_on_desktop_stacked_on_phone(example, tmp_path):
    """The @media rules survive CSS inlining: two columns from 480 px up, one below."""
    html, _ = example
    desktop = measure(html, 800, tmp_path)["contacts"]
    phone = measure(html, 375, tmp_path)["contacts"]
    assert desktop[0]["top"] == desktop[1]["top"] and desktop[0]["left"] < desktop[1]["left"]
    assert phone[0]["top"] < phone[1]["top"] and phone[0]["left"] == phone[1]["left"]


@pytest.mark.browser
def test_screenshot_is_written(example, tmp_path):
    html, _ = example
    target = tmp_path / "shot.png"
    screenshot(html, 375, target, tmp_path)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


if __name__ == "__main__":  # refresh the screenshots in docs/: a QA Leads and Fostering reader's copy
    html = render(assemble(load_folder(ROOT / "examples")).variant({"qa-leads", "fostering"})).html
    # the pictures as the web service would serve them, from the folder itself
    html = re.sub(
        r"https://news\.improvement\.example\.org/images/[0-9a-f]{16}-",
        (ROOT / "examples/content/images").as_uri() + "/",
        html,
    )
    with tempfile.TemporaryDirectory() as work:
        for width in (375, 800):
            target = ROOT / "docs" / f"screenshot-{width}.png"
            screenshot(html, width, target, Path(work))
            print(f"wrote {target}", file=sys.stderr)
