"""What mail clients make of our HTML, by caniemail's data: no (client, feature) error beyond a stock MJML newsletter's.

The stock newsletter (tests/caniemail/stock.mjml: sections, columns, text, a button, images, a divider,
social links) is compiled by the same mjml-python; both files go through tests/caniemail/check.mjs,
which runs the npm package `caniemail` pinned in tests/caniemail/package.json (`.ci/run` installs it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from newsletter.assembly import assemble
from newsletter.folder import load_folder
from newsletter.render import compile_mjml, render

HERE = Path(__file__).resolve().parent / "caniemail"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# Declarations a client that does not know them simply ignores: they keep dark-mode clients from inverting our
# colours where they are understood, and change nothing where they are not. Stock MJML declares no colour scheme.
DECLARED = frozenset({"color-scheme meta tag", "color-scheme CSS property"})

Errors = set[tuple[str, str]]


def caniemail(*pages: Path) -> tuple[list[Errors], list[str]]:
    """The (client, feature) errors of each page, and the clients caniemail's data could not judge."""
    if shutil.which("node") is None or not (HERE / "node_modules" / "caniemail").is_dir():
        pytest.fail("caniemail is not installed: run `npm ci` in tests/caniemail (.ci/run does)")
    done = subprocess.run(
        ["node", str(HERE / "check.mjs"), *map(str, pages)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout)
    return [{(client, feature) for client, feature in answer["files"][str(p)]} for p in pages], answer["skipped"]


@pytest.fixture(scope="module")
def stock(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("caniemail") / "stock.html"
    path.write_text(compile_mjml((HERE / "stock.mjml").read_text(encoding="utf-8")), encoding="utf-8")
    return path


def ours(tmp_path: Path, **render_options) -> Path:
    """The example issue as a member of every network gets it."""
    issue = assemble(load_folder(EXAMPLES))
    path = tmp_path / "ours.html"
    path.write_text(render(issue.variant(set(issue.networks)), **render_options).html, encoding="utf-8")
    return path


def test_our_email_adds_no_client_error_beyond_stock_mjml(stock, tmp_path):
    (baseline, found), skipped = caniemail(stock, ours(tmp_path))
    assert baseline, "caniemail found nothing in the stock newsletter: is its data there?"
    assert len(skipped) < 20, f"caniemail could judge too few clients: {skipped}"
    added = {(client, feature) for client, feature in found - baseline if feature not in DECLARED}
    assert added == set(), f"{len(added)} (client, feature) errors beyond stock MJML's: {sorted(added)}"


def test_the_check_finds_what_it_is_there_to_find(stock, tmp_path):
    """The old faults, put back: <wbr> end tags, in-page anchors and white-space: nowrap each show up."""
    bad = tmp_path / "bad.html"
    html = stock.read_text(encoding="utf-8")
    bad.write_text(
        html.replace(
            "<h2>Our first story</h2>",
            '<h2 style="white-space: nowrap">Our <a href="#first">first</a> st<wbr></wbr>ory</h2>',
        ),
        encoding="utf-8",
    )
    (baseline, found), _ = caniemail(stock, bad)
    added = {feature for _, feature in found - baseline}
    assert {"<wbr> element", "Local anchors", "white-space"} <= added
