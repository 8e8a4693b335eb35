"""The desk served beyond this machine: only an editor, signed in with an emailed one-use link, gets in."""

from __future__ import annotations

import email
import re
from email import policy
from pathlib import Path

import httpx
import pytest
from conftest import served

from newsletter.desk.app import create_desk_app
from newsletter.desk.signin import SignIn
from newsletter.folder import load_folder
from newsletter.transports import MemoryTransport

EDITOR = "morgan.hale@improvement.example.org"


@pytest.fixture
def desk(example_dir: Path):
    memory = MemoryTransport()
    newsletter = load_folder(example_dir).newsletter
    sign_in = SignIn(
        "signin test secret", newsletter, url="https://desk.example.org", transport=lambda: memory, editors=[EDITOR]
    )
    with (
        served(create_desk_app(example_dir, sign_in=sign_in), ws="none") as base,
        httpx.Client(base_url=base) as client,
    ):
        client.memory = memory  # type: ignore[attr-defined]
        yield client


def ask(client: httpx.Client, address: str) -> httpx.Response:
    page = client.get("/signin")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return client.post("/signin", data={"csrf": token, "email": address})


def emailed_link(client: httpx.Client) -> str:
    message = email.message_from_bytes(client.memory.sent[-1].data, policy=policy.default)  # type: ignore[attr-defined]
    link = re.search(r"https://desk\.example\.org(/signin/\S+)", message.get_content())
    assert link, message.get_content()
    return link.group(1)


def test_nobody_reads_a_draft_without_signing_in(desk: httpx.Client) -> None:
    assert desk.get("/issues/2026-11-27").status_code == 303
    assert desk.get("/issues/2026-11-27").headers["location"] == "/signin"
    assert desk.post("/issues/2026-11-27/render", json={}).status_code == 401
    assert desk.get("/", headers={"Host": "desk.example.org"}).status_code == 303  # any Host: sign-in decides


def test_an_editor_signs_in_once_with_the_emailed_link(desk: httpx.Client) -> None:
    assert "a link is on its way" in ask(desk, EDITOR.upper()).text
    assert len(desk.memory.sent) == 1 and desk.memory.sent[0].to == EDITOR.upper()  # type: ignore[attr-defined]
    link = emailed_link(desk)
    reply = desk.get(link, follow_redirects=False)
    assert reply.status_code == 303
    cookie = reply.headers["set-cookie"]
    assert "desk_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie
    desk.cookies.set("desk_session", reply.cookies["desk_session"])  # the test server is http: send it anyway
    assert desk.get("/issues/2026-11-27").status_code == 200
    desk.cookies.delete("desk_session")
    assert desk.get(link, follow_redirects=False).status_code == 403  # one use


def test_a_stranger_gets_the_same_answer_and_no_mail(desk: httpx.Client) -> None:
    assert "a link is on its way" in ask(desk, "someone@example.com").text
    assert desk.memory.sent == []  # type: ignore[attr-defined]
    assert desk.get("/signin/forged.token", follow_redirects=False).status_code == 403


def test_asking_for_a_link_needs_the_csrf_token(desk: httpx.Client) -> None:
    assert desk.post("/signin", data={"email": EDITOR}).status_code == 403
    assert desk.memory.sent == []  # type: ignore[attr-defined]


def test_a_link_expires_after_15_minutes(example_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    newsletter = load_folder(example_dir).newsletter
    sign_in = SignIn("s", newsletter, url="https://desk.example.org", transport=MemoryTransport, editors=[EDITOR])
    now = time.time()
    with monkeypatch.context() as patch:
        patch.setattr(time, "time", lambda: now - 15 * 60 - 1)  # the link was made 15 minutes and a second ago
        old = sign_in.link(EDITOR).rsplit("/", 1)[1]
    assert sign_in.redeem(old) is None
    assert sign_in.redeem(sign_in.link(EDITOR).rsplit("/", 1)[1]) == EDITOR
