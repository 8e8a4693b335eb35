import html as html_lib
import http.server
import logging
import re
import shutil
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from newsletter import links, tokens
from newsletter.assembly import assemble
from newsletter.errors import ContentError
from newsletter.folder import load_folder
from newsletter.render import FONTS, TEMPLATES, Rendered, render


@pytest.fixture(scope="module")
def issue():
    return assemble(load_folder(Path(__file__).resolve().parent.parent / "examples"))


@pytest.fixture(scope="module")
def email(issue) -> Rendered:
    return render(issue)


@pytest.fixture(scope="module")
def web(issue) -> Rendered:
    return render(issue, personal=False)


def visible_text(html: str) -> str:
    html = re.sub(r"<(style|title)\b.*?</\1>|<!--.*?-->", " ", html, flags=re.DOTALL)
    return html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def hrefs(html: str) -> list[str]:
    return [html_lib.unescape(h) for h in re.findall(r'href="([^"]*)"', html)]


def test_document_basics(email, issue):
    assert email.html.startswith("<!doctype html>")
    assert re.search(r'<html lang="en"', email.html)
    assert f"<title>{html_lib.escape(issue.subject, quote=False)}</title>" in email.html
    assert email.subject == issue.subject and email.preheader == issue.preheader


def test_preheader_is_first_and_hidden_without_a_colour_trick(email, issue):
    hidden = re.search(r'<div style="([^"]*)">([^<]*)</div>', email.html)
    style, text = hidden.groups()
    assert text.startswith(issue.preheader)
    assert "display:none" in style and "color" not in style and "opacity" not in style
    assert email.html.index(issue.preheader) < email.html.index("View in your browser")
    assert "#ffffff;line-height:1px" not in email.html  # MJML's mj-preview white-on-white


def test_real_headings(email, issue):
    assert re.findall(r"<h1[^>]*>([^<]*)</h1>", email.html) == [issue.newsletter.name]
    sections = [html_lib.unescape(h) for h in re.findall(r"<h2[^>]*>([^<]*)</h2>", email.html)]
    assert sections == [
        "This week’s updates",
        "Reminders from previous weeks",
        "Actions from the Quality Assurance Leads Network meeting of 12 November 2026",
        "Upcoming network meetings",
        "Tools & Templates",
        "Contact details",
    ]
    headlines = [html_lib.unescape(h) for h in re.findall(r"<h3[^>]*>([^<]*)</h3>", email.html)]
    expected = [i.programme for i in issue.items] + [r.item.programme for r in issue.reminders]
    assert headlines[: len(expected)] == expected
    assert headlines[len(expected) :] == [m.title for m in issue.meetings]


def test_items_carry_the_labels_readers_know(email, issue):
    labels = re.findall(r'<p class="label"[^>]*>([^<]*)</p>', email.html)
    shown = (*issue.items, *(r.item for r in issue.reminders))
    assert labels.count("Programme") == labels.count("Update") == len(shown)
    assert labels.count("Action Required") == sum(1 for i in shown if i.action)
    assert "First published in Update No 118, 20 November 2026" in visible_text(email.html)


def test_layout_tables_are_presentational(email):
    tables = re.findall(r"<table\b[^>]*>", email.html)
    assert tables and all('role="presentation"' in t for t in tables)


def test_system_fonts_and_nothing_remote(email):
    assert f"font-family:{FONTS}" in email.html.replace("&#x27;", "'").replace("&#39;", "'")
    for remote in ("fonts.googleapis", "<link", "@import", "<script"):
        assert remote not in email.html
    pictures = re.findall(r'<img[^>]* src="([^"]*)"', email.html)  # only the issue's own, from our web service
    assert pictures and all(src.startswith("https://news.improvement.example.org/images/") for src in pictures)


def test_text_is_at_least_14px(email):
    sizes = [float(s) for s in re.findall(r"font-size:\s*([\d.]+)px", email.html)]
    assert sizes and min(s for s in sizes if s > 0) >= 14  # 0px is MJML's inline-block whitespace fix
    assert "font-size:16px" in email.html


def test_css_is_inlined_and_media_queries_kept(email):
    assert re.search(r'<h3 style="[^"]*font-size:20px', email.html)
    assert re.search(r'<a href="https://research.example.org/exploitation-study" style="[^"]*color:#1d70b8', email.html)
    assert "@media only screen and (min-width:480px)" in email.html  # MJML's columns
    assert "@media only screen and (max-width: 479px)" in email.html  # ours
    assert "data-premailer" not in email.html


def test_personal_footer_holds_the_placeholder_verbatim(email, issue):
    base = issue.newsletter.public_url
    for part in (email.html, email.text):
        assert links.unsubscribe_url(base, tokens.PLACEHOLDER) in part
        assert links.preferences_url(base, tokens.PLACEHOLDER) in part
        assert part.count(tokens.PLACEHOLDER) == 2
    assert re.search(r'<a href="[^"]*/unsubscribe/T{38}"[^>]*>Unsubscribe</a>', email.html)
    assert re.search(r'<a href="[^"]*/preferences/T{38}"[^>]*>Manage your networks</a>', email.html)


def test_web_version_has_no_token_links(web):
    for part in (web.html, web.text):
        assert tokens.PLACEHOLDER not in part and "/unsubscribe/" not in part and "/preferences/" not in part
        assert "to unsubscribe, use the links at" in " ".join(part.split())


@pytest.mark.parametrize("personal", [True, False])
def test_browser_and_calendar_links(issue, personal):
    out = render(issue, personal=personal)
    archive = links.archive_url(issue.newsletter.public_url, issue.date)
    if personal:
        assert re.search(rf'<a href="{re.escape(archive)}"[^>]*>View in your browser</a>', out.html)
        assert out.html.index(archive) < out.html.index("<h1")
        assert out.text.startswith(f"View in your browser: {archive}\n")
    else:  # the public version is what that link opens
        assert "View in your browser" not in out.html and "View in your browser" not in out.text
        assert out.text.startswith(issue.newsletter.name.upper())
    for meeting in issue.meetings:
        ics = links.meeting_ics_url(issue.newsletter.public_url, meeting)
        assert re.search(rf'<a class="calendar" href="{re.escape(ics)}"[^>]*>Add to calendar</a>', out.html)
        assert f"Add to calendar: {ics}" in out.text


def test_text_part_has_every_link_and_the_same_content(email, issue):
    for href in hrefs(email.html):
        if href.startswith("tel:"):  # the number as the contact wrote it
            assert href.removeprefix("tel:") in {re.sub(r"[^+\d]", "", line) for line in email.text.splitlines()}
            continue
        assert href.removeprefix("mailto:") in email.text, href
    for item in (*issue.items, *(r.item for r in issue.reminders)):
        assert f"PROGRAMME: {item.programme}" in email.text
        first_words = " ".join(item.update.split()[:6])
        assert first_words in " ".join(email.text.split())
    for thing in (
        *(m.title for m in issue.meetings),
        *(r.title for r in issue.resources),
        *(c.name for c in issue.contacts),
    ):
        assert thing in email.text
    for heading in (
        "REMINDERS FROM PREVIOUS WEEKS",
        "UPCOMING NETWORK MEETINGS",
        "TOOLS & TEMPLATES",
        "CONTACT DETAILS",
    ):
        assert heading in email.text
    # the text part is not a stub: it carries most of the words the reader sees
    html_words = set(re.findall(r"[a-z]{4,}", visible_text(email.html).lower()))
    text_words = set(re.findall(r"[a-z]{4,}", email.text.lower()))
    assert len(html_words - text_words) / len(html_words) < 0.05, sorted(html_words - text_words)


def test_text_lines_are_short_except_urls(email):
    for line in email.text.splitlines():
        assert len(line) <= 76 or "://" in line or "@" in line, line


def test_markdown_raw_html_is_escaped_in_the_email(example_dir):
    path = example_dir / "content" / "issues" / "2026-11-27.yaml"
    path.write_text(
        path.read_text().replace(
            "Researchers will observe", "<img src=x onerror=alert(1)> Researchers <b>will</b> observe"
        )
    )
    out = render(assemble(load_folder(example_dir)))
    assert "<img src=x" not in out.html and "<b>will</b>" not in out.html
    assert "&lt;img src=x onerror=alert(1)&gt;" in out.html


def test_variant_leaves_out_items_for_other_networks(issue):
    out = render(issue.variant({"fostering"}))
    assert "New duties in the Family Support Act" in out.html
    assert "Preventing exploitation outside the home" not in out.html  # nor in the preheader
    assert "Preventing exploitation outside the home" not in out.text


def test_a_reader_with_no_items_this_week_gets_no_empty_section(example_dir):
    path = example_dir / "content" / "issues" / "2026-11-27.yaml"
    text = path.read_text()
    path.write_text(
        text.replace(
            "against the new definition.\n    links:", "against the new definition.\n    networks: [send]\n    links:"
        )
    )
    out = render(assemble(load_folder(example_dir)).variant({"fostering"}))
    assert "This week’s updates" not in out.html and "THIS WEEK'S UPDATES" not in out.text
    assert "Reminders from previous weeks" in out.html and "Fostering Network" in out.text


def test_example_is_well_under_the_clipping_budget(email):
    assert len(email.html.encode()) < 90_000


def test_folder_templates_replace_the_defaults(issue, tmp_path):
    shutil.copytree(TEMPLATES, tmp_path / "email")
    txt = tmp_path / "email" / "issue.txt.j2"
    txt.write_text(txt.read_text() + "Custom line for No {{ issue.number }}\n")
    out = render(issue, templates=tmp_path / "email")
    assert out.text.endswith("\nCustom line for No 119\n")


def test_an_issue_assembled_from_a_folder_with_its_own_templates_renders_with_them(example_dir):
    shutil.copytree(TEMPLATES, example_dir / "templates" / "email")
    txt = example_dir / "templates" / "email" / "issue.txt.j2"
    txt.write_text(txt.read_text() + "From the folder's own template\n")
    issue = assemble(load_folder(example_dir))
    assert issue.templates == example_dir / "templates" / "email"
    assert render(issue).text.endswith("From the folder's own template\n")
    assert render(issue.variant({"send"}), personal=False).text.endswith("From the folder's own template\n")


def test_template_errors_name_the_file_and_line(issue, tmp_path):
    shutil.copytree(TEMPLATES, tmp_path / "email")
    (tmp_path / "email" / "issue.txt.j2").write_text("line one\n{% if %}\n")
    with pytest.raises(ContentError) as caught:
        render(issue, templates=tmp_path / "email")
    (problem,) = caught.value.problems
    assert problem.path.name == "issue.txt.j2" and problem.line == 2 and "template" in problem.message


def test_broken_mjml_is_a_content_error(issue, tmp_path):
    shutil.copytree(TEMPLATES, tmp_path / "email")
    (tmp_path / "email" / "issue.mjml.j2").write_text("<mjml><mj-body><mj-section></mj-body></mjml>")
    with pytest.raises(ContentError, match="MJML"):
        render(issue, templates=tmp_path / "email")


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self):  # http.server calls do_<METHOD>
        _Recorder.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.end_headers()
        self.wfile.write(b"p { color: red; }")

    def log_message(self, *args):
        pass


def test_rendering_fetches_nothing_even_when_a_template_links_a_stylesheet(issue, tmp_path, caplog):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/remote.css"
        shutil.copytree(TEMPLATES, tmp_path / "email")
        mjml = tmp_path / "email" / "issue.mjml.j2"
        mjml.write_text(mjml.read_text().replace("<mj-raw>", f'<mj-raw><link rel="stylesheet" href="{url}">', 1))
        with caplog.at_level(logging.WARNING):
            out = render(issue, templates=tmp_path / "email")
        assert f'<link rel="stylesheet" href="{url}">' in out.html  # it was there to fetch
        assert "color: red" not in out.html and "color:red" not in out.html
        assert _Recorder.requests == []
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    finally:
        server.shutdown()
        server.server_close()


def test_an_imported_stylesheet_is_refused_not_fetched(issue, tmp_path):
    shutil.copytree(TEMPLATES, tmp_path / "email")
    css = tmp_path / "email" / "inline.css"
    css.write_text(css.read_text() + "\n@import url(http://127.0.0.1:9/x.css);\n")
    with pytest.raises(ContentError, match="@import is not allowed") as caught:
        render(issue, templates=tmp_path / "email")
    assert caught.value.problems[0].line == len(css.read_text().splitlines())


def test_what_mail_clients_handle_badly_is_left_out(email):
    """No <wbr>, no in-page anchors, no white-space (Outlook ignores it); a light colour scheme declared; tel: links."""
    assert "<wbr" not in email.html and 'href="#' not in email.html and "white-space" not in email.html
    assert '<meta name="color-scheme" content="light">' in email.html
    assert '<meta name="supported-color-schemes" content="light">' in email.html
    assert ":root { color-scheme: light;" in email.html
    assert 'href="tel:07700900104"' in email.html
    assert 'href="mailto:aoife.brennan@westshire.example.org"' in email.html
    assert "aoife.brennan@westshire.example.org" in visible_text(email.html).replace(" ", "")  # in two parts


def test_the_footer_names_the_readers_networks_and_the_postal_address(example_dir):
    path = example_dir / "newsletter.yaml"
    text = re.sub(
        r"^address: .*$",
        "address: Regional Improvement Programme, 1 High Street, Westshire WS1 1AA",
        path.read_text(),
        flags=re.MULTILINE,
    )
    path.write_text(text)
    issue = assemble(load_folder(example_dir))
    both = render(issue.variant({"fostering", "qa-leads"}))
    sentence = "You receive this as a member of the Quality Assurance Leads Network and the Fostering Network."
    assert sentence in visible_text(both.html) and sentence in " ".join(both.text.split())
    one = render(issue.variant({"fostering"}))
    assert "You receive this as a member of the Fostering Network." in visible_text(one.html)
    for out in (both, one, render(issue, personal=False)):
        assert (
            "1 High Street, Westshire WS1 1AA" in visible_text(out.html)
            and "1 High Street, Westshire WS1 1AA" in out.text
        )
    assert "as a member of" not in render(issue, personal=False).html  # the web archive is nobody's in particular
