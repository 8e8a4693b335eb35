"""The editor's desk in real headless Chromium, used as an editor would: new issue, labelled fields, checks, save."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import browser as cdp
import pytest
from conftest import ROOT, served

from newsletter.cli import main
from newsletter.desk.app import create_desk_app

pytestmark = pytest.mark.browser

NEXT = "2026-12-04"
COMMENT = "# Morgan: ask Priya for the benchmarking figures before Thursday"


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    with cdp.Browser.start(tmp_path_factory.mktemp("chromium")) as browser:
        yield browser


@pytest.fixture
def desk(example_dir: Path):
    with served(create_desk_app(example_dir), ws="none") as base:
        yield base


def wait_until(page: cdp.Page, expression: str, *, timeout: float = 20) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = page.evaluate(expression)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"never true: {expression}")


def settled(page: cdp.Page) -> None:
    """Wait until the debounced render of the latest change has come back."""
    time.sleep(0.05)
    wait_until(
        page,
        "document.querySelector('main').dataset.rendering === '' && !!document.querySelector('main').dataset.rendered",
    )


def control(page: cdp.Page, label: str, *, within: str = "form") -> str:
    """The id of the control labelled `label` (a <label for>) inside `within`, as a screen reader finds it."""
    found = page.evaluate(
        f"(() => {{ const l = [...document.querySelectorAll({json.dumps(within + ' label[for]')})]"
        f".find(l => l.textContent.trim() === {json.dumps(label)}); return l ? l.htmlFor : null; }})()"
    )
    assert found, f"no control labelled {label!r} in {within}"
    return found


def type_into(page: cdp.Page, label: str, text: str, *, within: str = "form") -> None:
    """Focus the labelled control, select what is in it, and type `text` as keystrokes would insert it."""
    element = control(page, label, within=within)
    page.evaluate(f"(() => {{ const e = document.getElementById({json.dumps(element)}); e.focus(); e.select(); }})()")
    page.send("Input.insertText", {"text": text})


def set_date(page: cdp.Page, label: str, value: str, *, within: str = "form") -> None:
    """A date picker's value, as choosing a day sets it (typing into Chromium's date field is by segments)."""
    element = control(page, label, within=within)
    page.evaluate(
        f"(() => {{ const e = document.getElementById({json.dumps(element)}); e.focus(); e.value = {json.dumps(value)};"
        " e.dispatchEvent(new Event('input', {bubbles: true})); })()"
    )


def message_at(page: cdp.Page, field: str) -> str:
    return page.evaluate(f"document.querySelector('.msg[data-for=\"{field}\"]').textContent")


def test_from_new_issue_to_a_valid_saved_file(chromium, desk: str, example_dir: Path, capsys) -> None:
    page = chromium.new_page(width=1280, height=900)
    started = time.monotonic()
    page.goto(desk + "/")
    page.click("form[action='/new'] button")  # New issue: what `newsletter new` does
    assert page.url == f"{desk}/issues/{NEXT}"
    path = example_dir / "content" / "issues" / f"{NEXT}.yaml"
    path.write_text(path.read_text().replace("number:", COMMENT + "\nnumber:", 1))  # the editor's own note
    page.goto(f"{desk}/issues/{NEXT}")
    settled(page)

    item = "#items > fieldset:nth-child(1)"
    type_into(page, "Programme", "Data benchmarking: the autumn return", within=item)
    type_into(page, "Update", "Returns for the autumn collection are open.\n\nThey close on 18 December.", within=item)
    type_into(page, "Action Required", "Data leads: send your return by 18 December.", within=item)
    type_into(page, "Links", "The autumn return guide | https://improvement.example.org/autumn-return", within=item)
    page.click(f"{item} .networks label:nth-of-type(2) input", navigates=False)  # Data Benchmarking Group
    set_date(page, "Remind until", "2026-11-30", within=item)  # before the issue: an error
    settled(page)
    assert "2026-11-30 is before the issue date 2026-12-04" in message_at(page, "items[1].remind_until")
    assert page.evaluate("document.getElementById('items-1-remind_until').getAttribute('aria-invalid')") == "true"
    assert "items[1].remind_until" in page.evaluate("document.getElementById('problems').innerText")

    set_date(page, "Remind until", "2026-12-18", within=item)
    settled(page)
    assert message_at(page, "items[1].remind_until") == ""
    assert "Data benchmarking: the autumn return" in page.evaluate("document.getElementById('email').srcdoc")
    page.click("#save", navigates=False)
    wait_until(page, "document.getElementById('banner').textContent.startsWith('Saved')")
    elapsed = time.monotonic() - started
    print(f"\nfrom New issue to a valid saved issue: {elapsed:.1f} s")  # reported in the closing note
    with Path(os.environ.get("DESK_TIMING", os.devnull)).open("a") as note:
        note.write(f"{elapsed:.2f}\n")

    text = path.read_text()
    assert COMMENT in text and "# yaml-language-server: $schema=" in text
    assert "programme: 'Data benchmarking: the autumn return'" in text
    assert "networks: [data-benchmarking]" in text and "remind_until: 2026-12-18" in text
    assert main(["check", "--dir", str(example_dir), "--date", NEXT]) == 0
    assert "no errors" in capsys.readouterr().out
    assert page.errors == []
    page.close()


def test_two_tabs_get_the_conflict_message(chromium, desk: str, example_dir: Path) -> None:
    first, second = chromium.new_page(), chromium.new_page()
    url = f"{desk}/issues/2026-11-27"
    original = (example_dir / "content" / "issues" / "2026-11-27.yaml").read_text()
    for page in (first, second):
        page.goto(url)
        settled(page)
    type_into(first, "Programme", "Edited in the first tab", within="#items > fieldset:nth-child(2)")
    first.click("#save", navigates=False)
    wait_until(first, "document.getElementById('banner').textContent.startsWith('Saved')")
    type_into(second, "Programme", "Edited in the second tab", within="#items > fieldset:nth-child(2)")
    second.click("#save", navigates=False)
    banner = wait_until(second, "document.getElementById('banner').textContent")
    assert "changed on disk since this page loaded" in str(banner)
    text = (example_dir / "content" / "issues" / "2026-11-27.yaml").read_text()
    assert "second tab" not in text
    assert text.replace("Edited in the first tab", "New duties in the Family Support Act") == original  # all else kept
    first.close()
    second.close()


def test_items_are_added_removed_and_reordered_from_the_keyboard(chromium, desk: str) -> None:
    page = chromium.new_page()
    page.goto(f"{desk}/issues/2026-11-27")
    settled(page)
    page.evaluate("document.getElementById('add-item').focus()")
    page.send(
        "Input.dispatchKeyEvent",
        {"type": "keyDown", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r"},
    )
    page.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13})
    wait_until(page, "document.querySelectorAll('#items > fieldset').length === 4")
    assert page.evaluate("document.activeElement.id") == "items-4-programme"
    page.click("#items > fieldset:nth-child(3) button.up", navigates=False)
    legends = page.evaluate(
        "[...document.querySelectorAll('#items > fieldset input[data-key=programme]')].map(e => e.id)"
    )
    assert legends == ["items-1-programme", "items-2-programme", "items-3-programme", "items-4-programme"]
    assert (
        page.evaluate("document.getElementById('items-2-programme').value")
        == "SEND inspection outcomes to 31 October 2026"
    )
    page.close()


@pytest.fixture
def monthly(tmp_path: Path) -> Path:
    target = tmp_path / "monthly"
    shutil.copytree(ROOT / "examples" / "monthly", target)
    return target


def test_a_sectioned_issue_edited_and_saved_with_its_comments(chromium, monthly: Path, capsys) -> None:
    path = monthly / "content" / "issues" / "2019-10-25.yaml"
    original = path.read_text()
    with served(create_desk_app(monthly), ws="none") as base:
        page = chromium.new_page(width=1280, height=900)
        page.goto(f"{base}/issues/2019-10-25")
        settled(page)
        article = "#sections > fieldset:nth-child(2) .list[data-part=articles] > fieldset:nth-child(2)"
        assert page.evaluate(f"document.querySelector('{article} legend').textContent") == "Article 2"
        type_into(page, "Title", "Website news: a site of our own", within=article)
        page.evaluate(  # a picture from content/images/, chosen in its select
            f"(() => {{ const s = document.querySelector('{article} .image-file'); s.value = 'tasp-logo.png';"
            " ['input', 'change'].forEach(e => s.dispatchEvent(new Event(e, {bubbles: true}))); })()"
        )
        settled(page)
        assert message_at(page, "sections[2].articles[2].image.alt") == "required field is missing"  # alt text
        type_into(page, "Alt text", "The TASP logo", within=article)
        settled(page)
        assert message_at(page, "sections[2].articles[2].image.alt") == ""
        assert "Website news: a site of our own" in page.evaluate("document.getElementById('email').srcdoc")
        page.click("#save", navigates=False)
        wait_until(page, "document.getElementById('banner').textContent.startsWith('Saved')")
        assert [e for e in page.errors if "ERR_NAME_NOT_RESOLVED" not in e] == []  # the email's pictures: public host
        page.close()
    text = path.read_text()
    assert text.startswith("# The October 2019 members' newsletter")  # the comment kept
    assert "      - title: 'Website news: a site of our own'\n" in text
    assert "        image: {src: tasp-logo.png, alt: The TASP logo}\n" in text
    changed = [line for line in text.splitlines() if line not in original.splitlines()]
    assert len(changed) == 2 and len(text.splitlines()) == len(original.splitlines()) + 1
    assert main(["check", "--dir", str(monthly)]) == 0
    assert "no errors" in capsys.readouterr().out


def test_sections_and_articles_are_added_and_numbered(chromium, monthly: Path) -> None:
    with served(create_desk_app(monthly), ws="none") as base:
        page = chromium.new_page()
        page.goto(f"{base}/issues/2019-10-25")
        settled(page)
        page.click("#add-section", navigates=False)
        section = "#sections > fieldset:last-child"
        page.click(f"{section} button.add[data-part=articles]", navigates=False)
        n = page.evaluate("document.querySelectorAll('#sections > fieldset').length")
        title = page.evaluate(f"document.querySelector('{section} fieldset.article input[data-key=title]').id")
        assert title == f"sections-{n}-articles-1-title"
        remove = page.evaluate(
            f"document.querySelector('{section} fieldset.article button.remove').getAttribute('aria-label')"
        )
        assert remove == f"Remove section {n}, article 1"
        settled(page)
        assert message_at(page, f"sections[{n}].articles[1].title") == "required field is missing"
        page.close()


def test_markdown_fields_show_their_text_as_the_email_does(chromium, desk: str) -> None:
    page = chromium.new_page()
    page.goto(f"{desk}/issues/2026-11-27")
    settled(page)
    rendered = "document.getElementById('items-2-update-rendered')"
    wait_until(page, f"{rendered}.innerHTML.includes('<li>economic abuse</li>')")  # filled in as the page opens
    assert page.evaluate(f"{rendered}.getAttribute('aria-label')") == "Update, as the email shows it"
    type_into(
        page,
        "Action Required",
        "Send **your return** by [Friday](https://example.org/r).",
        within="#items > fieldset:nth-child(1)",
    )
    wait_until(
        page, "document.getElementById('items-1-action-rendered').innerHTML.includes('<strong>your return</strong>')"
    )
    assert page.evaluate("document.querySelector('#items-1-action-rendered a').target") == "_blank"
    page.close()


def test_check_links_shows_them_at_their_fields(chromium, example_dir: Path) -> None:
    from test_linkcheck import local_site

    with local_site() as site, served(create_desk_app(example_dir, link_seconds=3), ws="none") as base:
        page = chromium.new_page()
        page.goto(f"{base}/issues/2026-11-27")
        settled(page)
        type_into(page, "Links", f"The study | {site}/gone", within="#items > fieldset:nth-child(1)")
        settled(page)
        page.click("#check-links", navigates=False)
        wait_until(page, "document.querySelector('main').dataset.linksChecked !== undefined", timeout=30)
        assert f"link is broken (404 Not Found): {site}/gone" in message_at(page, "items[1].links")
        assert "link is broken (404 Not Found)" in page.evaluate("document.getElementById('problems').innerText")
        assert "links followed" in page.evaluate("document.getElementById('try-result').textContent")
        page.close()


def test_the_desk_renders_at_desktop_and_phone_width(chromium, desk: str, tmp_path: Path) -> None:
    """Screenshots at 1280 and 390 px; DESK_SCREENSHOTS=1 keeps them as docs/desk-*.png for the README."""
    for width, height in ((1280, 860), (390, 844)):
        page = chromium.new_page(width=width, height=height)
        page.goto(f"{desk}/issues/2026-11-27")
        settled(page)
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing wider than the screen
        time.sleep(0.5)
        shot = tmp_path / f"desk-{width}.png"
        page.screenshot(shot)
        page.close()
        assert shot.read_bytes().startswith(b"\x89PNG")
        if os.environ.get("DESK_SCREENSHOTS"):
            shutil.copy(shot, ROOT / "docs" / shot.name)
