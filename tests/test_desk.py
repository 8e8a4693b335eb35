"""The editor's desk without a browser: `newsletter new`, the round-trip editing, and the app over real HTTP."""

from __future__ import annotations

import datetime as dt
import email
import re
from email import policy
from pathlib import Path

import httpx
import pytest
from conftest import served

from newsletter.cli import main
from newsletter.desk import new_issue
from newsletter.desk.app import create_desk_app
from newsletter.desk.editing import apply_form, form_values
from newsletter.folder import load_folder

LATEST = dt.date(2026, 11, 27)
NEXT = dt.date(2026, 12, 4)  # the next Friday 09:00 firing after the newest issue


# newsletter new --------------------------------------------------------------------------------


def test_new_writes_the_next_issue_with_what_carries_forward(example_dir: Path, capsys) -> None:
    assert main(["new", "--dir", str(example_dir)]) == 0
    path = example_dir / "content" / "issues" / f"{NEXT}.yaml"
    text = path.read_text()
    assert text.startswith("# yaml-language-server: $schema=../../schema/issue.schema.json\n")
    assert "number: 120\n" in text and f"date: {NEXT}\n" in text
    assert "#   reminder: SEND inspection outcomes to 31 October 2026 (from No 119, until 2026-12-11)" in text
    assert "#   meeting: 2027-01-19 10:30 Fostering Network (fostering)" in text
    assert "#   resource: SEND inspection outcomes to 31 October 2026 (National Inspectorate)" in text
    assert NEXT in load_folder(example_dir).issues  # it loads without errors
    assert main(["check", "--dir", str(example_dir)]) == 0


def test_new_never_overwrites(example_dir: Path, capsys) -> None:
    path = new_issue(example_dir)
    path.write_text(path.read_text() + "# mine\n")
    assert main(["new", "--dir", str(example_dir), "--date", str(NEXT)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert path.read_text().endswith("# mine\n")


def test_new_with_a_date(example_dir: Path) -> None:
    path = new_issue(example_dir, date=dt.date(2026, 12, 9))
    assert path.name == "2026-12-09.yaml"


def test_schema_is_written(example_dir: Path) -> None:
    assert main(["schema", "--dir", str(example_dir)]) == 0
    assert '"programme"' in (example_dir / "schema" / "issue.schema.json").read_text()
    assert '"networks"' in (example_dir / "schema" / "newsletter.schema.json").read_text()


# the round trip --------------------------------------------------------------------------------


def test_unchanged_form_leaves_the_file_byte_for_byte(example_dir: Path) -> None:
    text = (
        (example_dir / "content" / "issues" / f"{LATEST}.yaml").read_text().replace("number: 119", "number: 119  # ok")
    )
    assert apply_form(text, form_values(text)) == text


def test_edits_keep_comments_order_and_unknown_keys() -> None:
    text = (
        "# top comment\nnumber: 3\ndate: 2026-12-04\nitems:\n  - programme: A  # about A\n    update: |\n      Text.\n"
        "    image: {src: a.png, alt: A picture}\n  - programme: B\n    update: Other.\n"
    )
    form = form_values(text)
    form["items"][0]["programme"] = "A: now with a colon"
    form["items"][0]["networks"] = ["send", "fostering"]
    form["items"].reverse()
    out = apply_form(text, form)
    assert out.startswith("# top comment\nnumber: 3\n")
    assert "  - programme: B\n" in out.split("A: now")[0]  # reordered
    assert "programme: 'A: now with a colon' # about A\n" in out  # the comment stays on its line
    assert "image: {src: a.png, alt: A picture}" in out
    assert "networks: [send, fostering]" in out


# the app over HTTP -----------------------------------------------------------------------------


@pytest.fixture
def desk(example_dir: Path):
    with served(create_desk_app(example_dir), ws="none") as base, httpx.Client(base_url=base) as client:
        client.get("/")  # the session's CSRF cookie
        client.root = example_dir  # type: ignore[attr-defined]
        yield client


def token(client: httpx.Client) -> dict[str, str]:
    return {"X-CSRF-Token": client.cookies["desk_csrf"]}


def test_foreign_host_is_refused(desk: httpx.Client) -> None:
    assert desk.get("/", headers={"Host": "evil.example.com"}).status_code == 421
    assert desk.get("/", headers={"Host": "localhost:8001"}).status_code == 200
    assert desk.get("/", headers={"Host": "[::1]:8001"}).status_code == 200


def test_posts_without_the_token_are_refused(desk: httpx.Client) -> None:
    assert desk.post("/new").status_code == 403
    assert desk.post("/new", data={"csrf": "guess"}).status_code == 403
    assert desk.post(f"/issues/{LATEST}/save", json={}).status_code == 403
    assert desk.post(f"/issues/{LATEST}/render", json={}, headers={"X-CSRF-Token": "guess"}).status_code == 403
    assert not (desk.root / "content" / "issues" / f"{NEXT}.yaml").exists()  # type: ignore[attr-defined]


def test_the_page_shows_the_file_as_it_is(desk: httpx.Client) -> None:
    page = desk.get(f"/issues/{LATEST}").text
    assert "built-in method" not in page
    assert ">The Act received Royal Assent this week." in page
    assert 'value="About the study | https://research.example.org/exploitation-study"' not in page  # a textarea
    assert "About the study | https://research.example.org/exploitation-study</textarea>" in page
    assert (
        'id="items-3-remind_until" type="date" data-key="remind_until" data-field="items[3].remind_until" '
        'value="2026-12-11"' in page
    )


def test_new_issue_button(desk: httpx.Client) -> None:
    reply = desk.post("/new", data={"csrf": desk.cookies["desk_csrf"]}, follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"] == f"/issues/{NEXT}"
    assert "draft" in desk.get("/").text


def test_render_shows_errors_at_their_fields_without_saving(desk: httpx.Client) -> None:
    path = desk.root / "content" / "issues" / f"{LATEST}.yaml"  # type: ignore[attr-defined]
    before = path.read_text()
    form = form_values(before)
    form["items"][2]["remind_until"] = "2026-11-01"
    data = desk.post(f"/issues/{LATEST}/render", json={"form": form}, headers=token(desk)).json()
    assert [(e["field"], e["message"]) for e in data["errors"]] == [
        ("items[3].remind_until", "2026-11-01 is before the issue date 2026-11-27")
    ]
    assert data["html"] is None and path.read_text() == before
    form["items"][2]["remind_until"] = "2026-12-11"
    data = desk.post(f"/issues/{LATEST}/render", json={"form": form, "network": "send"}, headers=token(desk)).json()
    assert data["errors"] == [] and "SEND inspection outcomes" in data["html"]


def test_save_refuses_a_file_changed_on_disk(desk: httpx.Client) -> None:
    path = desk.root / "content" / "issues" / f"{LATEST}.yaml"  # type: ignore[attr-defined]
    page = desk.get(f"/issues/{LATEST}").text
    sha = page.split('data-sha256="')[1].split('"')[0]
    path.write_text(path.read_text() + "# edited in a text editor\n")
    form = form_values(path.read_text())
    reply = desk.post(f"/issues/{LATEST}/save", json={"form": form, "sha256": sha}, headers=token(desk))
    assert reply.status_code == 409 and "changed on disk" in reply.json()["message"]
    assert path.read_text().endswith("# edited in a text editor\n")


def test_save_writes_valid_yaml_only(desk: httpx.Client) -> None:
    path = desk.root / "content" / "issues" / f"{LATEST}.yaml"  # type: ignore[attr-defined]
    text = path.read_text()
    sha = desk.get(f"/issues/{LATEST}").text.split('data-sha256="')[1].split('"')[0]
    form = form_values(text)
    form["items"][0]["programme"] = ""
    reply = desk.post(f"/issues/{LATEST}/save", json={"form": form, "sha256": sha}, headers=token(desk))
    assert reply.status_code == 422 and reply.json()["errors"][0]["field"] == "items[1].programme"
    assert path.read_text() == text
    form["items"][0]["programme"] = "Exploitation: a study"
    reply = desk.post(f"/issues/{LATEST}/save", json={"form": form, "sha256": sha}, headers=token(desk))
    assert reply.status_code == 200, reply.text
    assert 'programme: "Exploitation: a study"' in path.read_text()  # the editor's double quotes kept
    assert not list(path.parent.glob(".*.tmp"))


# test copies, a reader's view, a sent issue ------------------------------------------------------


@pytest.fixture
def full_desk(example_dir: Path, tmp_path: Path):
    from newsletter import ledger, subscribers
    from newsletter.delivery import SendConfig
    from newsletter.store import open_store
    from newsletter.tokens import Signer
    from newsletter.transports import MemoryTransport

    engine = open_store(f"sqlite:///{tmp_path / 'desk.db'}")
    known = load_folder(example_dir).newsletter.network_ids
    subscribers.add(engine, "jo@example.org", networks=["send"], known_networks=known)
    subscribers.add(engine, "sam@example.org", networks=["fostering"], known_networks=known)
    ledger.create_send(engine, dt.date(2026, 11, 20), sorted(known))
    memory = MemoryTransport()
    app = create_desk_app(
        example_dir, engine=engine, send_config=SendConfig(Signer("desk test")), transport=lambda: memory
    )
    with served(app, ws="none") as base, httpx.Client(base_url=base) as client:
        client.get("/")
        client.memory = memory  # type: ignore[attr-defined]
        client.root = example_dir  # type: ignore[attr-defined]
        yield client
    engine.dispose()


def form_of(client: httpx.Client, date: dt.date) -> dict:
    return form_values((client.root / "content" / "issues" / f"{date}.yaml").read_text())  # type: ignore[attr-defined]


def test_send_a_test_sends_each_networks_version_marked_and_unrecorded(full_desk: httpx.Client) -> None:
    reply = full_desk.post(
        f"/issues/{LATEST}/test",
        json={"form": form_of(full_desk, LATEST), "address": "me@example.org"},
        headers=token(full_desk),
    )
    assert reply.status_code == 200, reply.text
    sent = full_desk.memory.sent  # type: ignore[attr-defined]
    assert len(sent) == 8 and {m.to for m in sent} == {"me@example.org"}  # one per network of the issue
    subjects = [email.message_from_bytes(m.data, policy=policy.default)["Subject"] for m in sent]
    assert all(s.startswith("[TEST] ") for s in subjects)
    assert "Nothing was recorded" in reply.json()["message"]
    reply = full_desk.post(
        f"/issues/{LATEST}/test", json={"form": form_of(full_desk, LATEST)}, headers=token(full_desk)
    )
    assert reply.status_code == 400 and "test_recipients" in reply.json()["message"]


def test_what_does_this_reader_get(full_desk: httpx.Client) -> None:
    form = form_of(full_desk, LATEST)
    jo = full_desk.post(
        f"/issues/{LATEST}/reader", json={"form": form, "email": "jo@example.org"}, headers=token(full_desk)
    )
    assert "SEND Network" in jo.json()["message"]
    assert "SEND inspection outcomes" in jo.json()["html"] and "Preventing exploitation" not in jo.json()["html"]
    sam = full_desk.post(
        f"/issues/{LATEST}/reader", json={"form": form, "email": "sam@example.org"}, headers=token(full_desk)
    )
    assert "written statement of action" not in sam.json()["html"] and "Family Support Act" in sam.json()["html"]
    nobody = full_desk.post(
        f"/issues/{LATEST}/reader", json={"form": form, "email": "x@example.org"}, headers=token(full_desk)
    )
    assert nobody.status_code == 404 and "not a subscriber" in nobody.json()["message"]


def test_a_sent_issue_opens_read_only(full_desk: httpx.Client) -> None:
    listing = full_desk.get("/").text
    assert '<span class="state sent">sent</span>' in listing
    page = full_desk.get("/issues/2026-11-20").text
    assert '<fieldset id="all" disabled>' in page and 'id="save"' not in page
    sha = page.split('data-sha256="')[1].split('"')[0]
    form = form_of(full_desk, dt.date(2026, 11, 20))
    reply = full_desk.post("/issues/2026-11-20/save", json={"form": form, "sha256": sha}, headers=token(full_desk))
    assert reply.status_code == 409 and "sent" in reply.json()["message"]


# Check links -------------------------------------------------------------------------------------


def test_check_links_reports_at_their_fields(desk: httpx.Client) -> None:
    from test_linkcheck import local_site  # 200, 301, 404, 500 and a HEAD-refusing page

    with local_site() as site:
        form = form_of(desk, LATEST)
        form["items"][0]["links"] = f"The study | {site}/gone\nThe summary | {site}/moved"
        form["items"][1]["update"] = f"First line.\nSee [the guide]({site}/head-shy) and [the data]({site}/failing)."
        form["resources"] = [{"origin": None, "title": "A toolkit", "publisher": "Someone", "url": f"{site}/ok"}]
        reply = desk.post(f"/issues/{LATEST}/links", json={"form": form}, headers=token(desk))
    assert reply.status_code == 200, reply.text
    data = reply.json()
    ours = [p for p in data["links"] if site in p["message"]]  # the example's own links are to example.org
    assert [(p["field"], p["message"]) for p in ours] == [
        ("items[1].links[1]", f"link is broken (404 Not Found): {site}/gone"),
        (
            "items[1].links[2]",
            f"link is redirected (301 Moved Permanently) to {site}/ok: link there instead: {site}/moved",
        ),
        ("items[2].update", f"link is broken (500 Internal Server Error): {site}/failing"),
    ]
    assert all(p["severity"] == "warning" for p in data["links"])
    assert all("example.org" in p["message"] for p in data["links"] if p not in ours)
    assert data["message"].endswith(f"{len(data['links']) - 1} broken, 1 redirected.")


def test_check_links_waits_for_a_valid_form(desk: httpx.Client) -> None:
    form = form_of(desk, LATEST)
    form["items"][0]["programme"] = ""
    reply = desk.post(f"/issues/{LATEST}/links", json={"form": form}, headers=token(desk))
    assert reply.status_code == 422 and reply.json()["errors"][0]["field"] == "items[1].programme"
    assert desk.post(f"/issues/{LATEST}/links", json={"form": form}).status_code == 403


# sections, articles and pictures ------------------------------------------------------------------

MONTHLY = Path(__file__).resolve().parent.parent / "examples" / "monthly" / "content" / "issues" / "2019-10-25.yaml"


def test_a_sectioned_issue_round_trips_byte_for_byte() -> None:
    text = MONTHLY.read_text()
    form = form_values(text)
    assert [s["section"] for s in form["sections"]][:2] == ["welcome", "tasp-update"]
    assert form["sections"][1]["articles"][1]["links"].startswith("Vacancy pages on the TASP website | https://")
    assert apply_form(text, form) == text


def test_articles_edited_reordered_and_pictured_in_place() -> None:
    text = MONTHLY.read_text()
    form = form_values(text)
    articles = form["sections"][1]["articles"]
    articles[0]["title"] = "Welcome: our newest members"
    articles[1]["image_src"], articles[1]["image_alt"] = "tasp-logo.png", "The TASP logo"
    articles[2], articles[3] = articles[3], articles[2]
    out = apply_form(text, form)
    assert out.startswith("# The October 2019 members' newsletter")
    assert "      - title: 'Welcome: our newest members'\n" in out
    assert (
        '            url: "https://www.lscbchairs.org.uk"\n        image: {src: tasp-logo.png, alt: The TASP logo}\n'
        in out
    )
    assert out.index("title: Survey Update") < out.index("title: Subscription and Membership")
    again = form_values(out)
    again["sections"][1]["articles"][1].update(image_src="", image_alt="")  # No picture
    assert "image:" not in apply_form(out, again)


def test_an_item_picture_without_alt_text_is_an_error_at_its_field(desk: httpx.Client) -> None:
    form = form_of(desk, LATEST)
    form["items"][1]["image_src"] = "https://pictures.example.org/chart.png"  # the second item has none yet
    data = desk.post(f"/issues/{LATEST}/render", json={"form": form}, headers=token(desk)).json()
    assert [(e["field"], e["message"]) for e in data["errors"]] == [("items[2].image.alt", "required field is missing")]
    form["items"][1]["image_alt"] = "A chart of the returns by region"
    data = desk.post(f"/issues/{LATEST}/render", json={"form": form}, headers=token(desk)).json()
    assert data["errors"] == [] and "A chart of the returns by region" in data["html"]


def test_markdown_is_rendered_as_the_email_renders_it(desk: httpx.Client) -> None:
    from newsletter.markup import to_html

    texts = ["Read **the guide** by [Friday](https://example.org/guide).", "- one\n- two", "<script>x</script>"]
    reply = desk.post("/markdown", json={"texts": texts}, headers=token(desk))
    assert reply.status_code == 200 and reply.json()["html"] == [str(to_html(t)) for t in texts]
    assert "<strong>the guide</strong>" in reply.json()["html"][0] and "<script>" not in reply.json()["html"][2]
    assert desk.post("/markdown", json={"texts": "one"}, headers=token(desk)).status_code == 400
    assert desk.post("/markdown", json={"texts": texts}).status_code == 403


def test_the_email_beside_the_form_shows_the_folders_pictures_from_the_desk(desk: httpx.Client) -> None:
    """Pictures are linked from the public site in the email; the desk shows them before they are published."""
    form = form_values((desk.root / "content" / "issues" / f"{LATEST}.yaml").read_text())  # type: ignore[attr-defined]
    html = desk.post(f"/issues/{LATEST}/render", json={"form": form}, headers=token(desk)).json()["html"]
    [src] = re.findall(r'src="(/images/[0-9a-f]{16}-children-playing\.png)"', html)
    picture = desk.get(src)
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert picture.content == (desk.root / "content" / "images" / "children-playing.png").read_bytes()  # type: ignore[attr-defined]
    assert desk.get("/images/0000000000000000-..%2Fnewsletter.yaml").status_code == 404
    assert "news.improvement.example.org/images/" not in html
