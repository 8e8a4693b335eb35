"""Following an issue's links against a real HTTP server on 127.0.0.1: fine, moved, gone, failing, HEAD-shy, silent."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from newsletter.cli import main
from newsletter.folder import load_folder
from newsletter.linkcheck import check_links, follow, issue_links


class Handler(BaseHTTPRequestHandler):
    """200 /ok, 301 /moved -> /ok, 404 /gone, 500 /failing, /head-shy: 405 to HEAD and 200 to GET."""

    asked: list[tuple[str, str]] = []  # noqa: RUF012 (what the server was asked, in order)

    def answer(self, *, body: bool) -> None:
        code, headers = {
            "/ok": (200, {}),
            "/moved": (301, {"Location": "/ok"}),
            "/gone": (404, {}),
            "/failing": (500, {}),
            "/head-shy": (405 if self.command == "HEAD" else 200, {"Allow": "GET"}),
        }.get(self.path, (404, {}))
        self.send_response(code)
        for name, value in {**headers, "Content-Length": "2"}.items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(b"ok")
        self.asked.append((self.command, self.path))

    def do_HEAD(self) -> None:
        self.answer(body=False)

    def do_GET(self) -> None:
        self.answer(body=True)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def local_site() -> Iterator[str]:
    """The Handler's site on 127.0.0.1, for as long as the block runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with local_site() as base:
        yield base


@pytest.fixture(scope="module")
def silent() -> Iterator[str]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/never"


def test_each_kind_of_answer(site: str, silent: str) -> None:
    urls = [f"{site}/{p}" for p in ("ok", "moved", "gone", "failing", "head-shy")] + [silent]
    started = time.monotonic()
    outcomes = asyncio.run(follow(urls, seconds=1))
    assert time.monotonic() - started < 5  # the silent one is bounded by the timeout
    ok, moved, gone, failing, shy, never = (outcomes[u] for u in urls)
    assert ok.fine and shy.fine
    assert not moved.broken and moved.redirect == f"{site}/ok" and moved.reason == "301 Moved Permanently"
    assert gone.broken and gone.reason == "404 Not Found"
    assert failing.broken and failing.reason == "500 Internal Server Error"
    assert never.broken and never.reason == "no answer within 1 s"
    assert gone.message == f"link is broken (404 Not Found): {site}/gone"


def test_head_is_tried_first_then_get(site: str) -> None:
    asyncio.run(follow([f"{site}/head-shy", f"{site}/ok"], seconds=2, concurrency=1))
    assert Handler.asked[-3:] == [("HEAD", "/head-shy"), ("GET", "/head-shy"), ("HEAD", "/ok")]


def test_no_such_host_is_broken() -> None:
    outcome = asyncio.run(follow(["https://nothing-here.invalid/"], seconds=3))["https://nothing-here.invalid/"]
    assert outcome.broken and outcome.reason in ("no such host", "no answer within 3 s")


ISSUE = """\
number: 7
date: 2026-12-04
intro: |
  Welcome. See [the plan]({site}/ok).
items:
  - programme: First
    update: |
      Text on one line.
      And [a gone page]({site}/gone) on the next.
    links:
      - text: A moved page
        url: {site}/moved
  - programme: Second
    update: Plain.
    links:
      - text: The guide
        url: {site}/ok
      - text: The failing one
        url: {site}/failing
    image: {{src: "{picture}", alt: A chart of returns}}
sections:
  - title: News
    articles:
      - title: From partners
        body: Read [their news]({site}/head-shy).
        links:
          - text: Silent
            url: {silent}
meetings:
  - network: send
    title: Online meeting
    date: 2026-12-10
    location: {site}/gone
resources:
  - title: A toolkit
    publisher: Someone
    url: {site}/ok
"""


PICTURE = "content/images/chart.png"  # a file: not followed


@pytest.fixture
def folder(example_dir: Path, site: str, silent: str) -> Path:
    issues = example_dir / "content" / "issues"
    (issues / "2026-12-04.yaml").write_text(ISSUE.format(site=site, silent=silent, picture=PICTURE))
    (example_dir / "content" / "images").mkdir(exist_ok=True)
    (example_dir / PICTURE).write_bytes(
        (Path(__file__).parent.parent / "examples/monthly/content/images/tasp-logo.png").read_bytes()
    )
    return example_dir


def test_every_link_of_the_issue_at_its_field(folder: Path, site: str) -> None:
    path = folder / "content" / "issues" / "2026-12-04.yaml"
    path.write_text(path.read_text().replace(PICTURE, "https://pictures.example.org/chart.png"))
    found = issue_links(load_folder(folder), None)
    assert [(link.field, link.line) for link in found] == [
        ("intro", 4),
        ("items[1].update", 9),  # the line of the link inside the | block
        ("items[1].links[1]", 12),
        ("items[2].links[1]", 17),
        ("items[2].links[2]", 19),
        ("items[2].image.src", 20),
        ("sections[1].articles[1].body", 25),
        ("sections[1].articles[1].links[1]", 28),
        ("meetings[1].location", 33),
        ("resources[1].url", 37),
    ]
    assert found[1].url == f"{site}/gone" and found[5].url == "https://pictures.example.org/chart.png"


def test_check_links_cli(folder: Path, site: str, silent: str, capsys, monkeypatch) -> None:
    monkeypatch.setenv("NEWSLETTER_LINK_TIMEOUT_SECONDS", "1")
    assert main(["check", "--dir", str(folder), "--links"]) == 1
    out = capsys.readouterr().out
    name = "content/issues/2026-12-04.yaml"
    assert f"{name}:9: warning: items[1].update: link is broken (404 Not Found): {site}/gone\n" in out
    assert (
        f"{name}:12: warning: items[1].links[1]: link is redirected (301 Moved Permanently) to {site}/ok: "
        f"link there instead: {site}/moved\n" in out
    )
    assert f"{name}:19: warning: items[2].links[2]: link is broken (500 Internal Server Error)" in out
    assert (
        f"{name}:28: warning: sections[1].articles[1].links[1]: link is broken (no answer within 1 s): {silent}" in out
    )
    assert f"{name}:33: warning: meetings[1].location: link is broken (404 Not Found)" in out
    assert "head-shy" not in out.split("no errors")[1]  # HEAD refused, GET answered: fine
    assert f"{name}: 9 links followed, 4 broken, 1 redirected" in out


def test_check_links_passes_when_all_lead_somewhere(example_dir: Path, site: str, capsys, monkeypatch) -> None:
    issues = example_dir / "content" / "issues"
    text = ISSUE.format(site=site, silent=f"{site}/ok", picture="https://pictures.example.org/chart.png")
    text = text.replace("    image: ", "    # image: ")
    for bad in ("gone", "failing", "moved"):
        text = text.replace(f"{site}/{bad}", f"{site}/ok")
    (issues / "2026-12-04.yaml").write_text(text)
    assert main(["check", "--dir", str(example_dir), "--links"]) == 0
    assert "0 broken, 0 redirected" in capsys.readouterr().out


def test_a_bad_timeout_is_one_line(folder: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("NEWSLETTER_LINK_TIMEOUT_SECONDS", "0")
    assert main(["check", "--dir", str(folder), "--links"]) != 0
    err = capsys.readouterr().err
    assert "NEWSLETTER_LINK_TIMEOUT_SECONDS" in err and "Traceback" not in err


def test_check_links_of_a_list(folder: Path, site: str) -> None:
    links = issue_links(load_folder(folder), None)[:3]
    found = asyncio.run(check_links(links, seconds=2))
    assert [(p.link.field, p.broken) for p in found] == [("items[1].update", True), ("items[1].links[1]", False)]
