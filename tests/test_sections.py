"""Sectioned issues: the model, print order, targeting of articles, the email and text parts, markdown tables."""

from __future__ import annotations

import html as html_lib
import re
import shutil
import textwrap
from pathlib import Path

import pytest

from newsletter import markup
from newsletter.assembly import assemble
from newsletter.checks import check
from newsletter.folder import load_folder
from newsletter.render import render

ROOT = Path(__file__).resolve().parent.parent
MONTHLY = ROOT / "examples" / "monthly"
REGIONAL = ROOT / "examples" / "regional"


@pytest.fixture
def monthly(tmp_path: Path) -> Path:
    target = tmp_path / "monthly"
    shutil.copytree(MONTHLY, target)
    return target


def write_issue(root: Path, body: str, name: str = "2019-11-29.yaml") -> Path:
    path = root / "content" / "issues" / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def problems(root: Path, date: str = "2019-11-29") -> list[str]:
    import datetime as dt

    folder = load_folder(root)
    return [str(p) for p in folder.problems(dt.date.fromisoformat(date))[0]]


def test_the_examples_pass_check_without_warnings():
    for root in (MONTHLY, REGIONAL):
        assert check(load_folder(root)) == []


def test_sections_print_in_newsletter_yaml_order_and_own_titles_stay_after_the_one_before(monthly):
    write_issue(
        monthly,
        """\
        number: 11
        date: 2019-11-29
        sections:
          - section: news-from
            articles: [{title: Ofsted news, body: Text.}]
          - title: Other Safeguarding News
            articles: [{title: Panel news, body: Text.}]
          - section: welcome
            articles: [{title: Hello, body: Text.}]
        """,
    )
    issue = assemble(load_folder(monthly))
    assert [s.title for s in issue.sections] == ["Welcome", "News from…", "Other Safeguarding News"]
    assert issue.items == () and issue.preheader == "Hello"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "number: 11\ndate: 2019-11-29\n",
            "2019-11-29.yaml:1: an issue needs at least one item, or sections with articles",
        ),
        (
            "number: 11\ndate: 2019-11-29\nsections:\n  - section: welcom\n    articles: [{title: A, body: B}]\n",
            "2019-11-29.yaml:4: sections[1].section: unknown section 'welcom' (did you mean 'welcome'?)",
        ),
        (
            "number: 11\ndate: 2019-11-29\nsections:\n  - section: welcome\n",
            "2019-11-29.yaml:4: sections[1]: an empty section: give it `articles` or `items`",
        ),
        (
            "number: 11\ndate: 2019-11-29\nsections:\n  - articles: [{title: A, body: B}]\n",
            "2019-11-29.yaml:4: sections[1]: name the section: `section: <id from newsletter.yaml>` or `title:`",
        ),
        (
            "number: 11\ndate: 2019-11-29\nsections:\n  - section: welcome\n    articles: [{title: A, body: B}]\n"
            "  - section: welcome\n    articles: [{title: C, body: D}]\n",
            "2019-11-29.yaml:6: sections[2].section: section 'welcome' appears twice: merge the two",
        ),
        (
            "number: 11\ndate: 2019-11-29\nsections:\n  - section: welcome\n    articles:\n"
            "      - {title: A, body: B, networks: [member]}\n",
            "2019-11-29.yaml:6: sections[1].articles[1].networks[1]: unknown network 'member'"
            " (did you mean 'members'?)",
        ),
    ],
)
def test_bad_sections_are_one_line_each_with_file_and_line(monthly, body, expected):
    write_issue(monthly, body)
    found = problems(monthly)
    assert any(p.endswith(expected) for p in found), found


def test_a_variant_drops_articles_for_other_networks_and_empty_sections(monthly):
    write_issue(
        monthly,
        """\
        number: 11
        date: 2019-11-29
        sections:
          - section: welcome
            articles:
              - {title: For supporters only, body: Join us., networks: [supporters]}
          - section: tasp-update
            articles:
              - {title: For everyone, body: News.}
              - {title: Members' fees, body: Fees., networks: [members]}
        """,
    )
    issue = assemble(load_folder(monthly))
    members = issue.variant({"members"})
    assert [(s.title, [a.title for a in s.articles]) for s in members.sections] == [
        ("TASP Update", ["For everyone", "Members' fees"])
    ]
    assert members.preheader == "For everyone"  # the default names the first article this reader gets
    supporters = issue.variant({"supporters"})
    assert [[a.title for a in s.articles] for s in supporters.sections] == [["For supporters only"], ["For everyone"]]
    text = render(members).text
    assert "For supporters only" not in text and "WELCOME" not in text


def test_the_email_prints_each_section_under_its_heading_and_groups_the_contents():
    issue = assemble(load_folder(MONTHLY))
    html = render(issue).html
    headings = [html_lib.unescape(h) for h in re.findall(r"<h2[^>]*>([^<]*)</h2>", html)]
    assert headings[:5] == ["Welcome", "TASP Update", "Spotlight on…", "News from…", "Your contributions"]
    contents = html[html.index("In this issue") : html.index("</ul>", html.index("Your contributions</p>"))]
    groups = re.findall(r'<p class="contents-section"[^>]*>([^<]*)</p>', contents)
    assert [html_lib.unescape(g) for g in groups] == [s.title for s in issue.sections]
    anchors = re.findall(r'href="#([^"]+)"', contents)
    assert len(anchors) == sum(len(s.articles) for s in issue.sections)
    assert all(f'id="{a}"' in html for a in anchors)
    assert "Ofsted, HMICFRS, CQC and HMI Probation: JTAIs and the New MASA Arrangements" in html_lib.unescape(html)


def test_the_text_part_carries_the_sections_and_contents():
    issue = assemble(load_folder(MONTHLY))
    text = render(issue).text
    assert "In this issue:\nWelcome\n  - What will a good new arrangement look like?\nTASP Update\n" in text
    assert "\nSPOTLIGHT ON…\n-------------\n" in text
    assert "Cross Partnership Collaboration and Support\n~~~~~~~~~~" in text
    assert "Vacancy pages on the TASP website: https://www.lscbchairs.org.uk" in text
    assert "We regularly receive and scan for information" in text  # the section's intro


def test_an_items_section_keeps_programme_update_action(monthly):
    write_issue(
        monthly,
        """\
        number: 11
        date: 2019-11-29
        sections:
          - section: tasp-update
            items:
              - {programme: Advisory Group, update: We met., action: Join the next meeting., remind_until: 2019-12-31}
        """,
    )
    html = render(assemble(load_folder(monthly))).html
    assert 'id="section-1-item-1"' in html and ">Action Required</p>" in html
    write_issue(
        monthly,
        "number: 12\ndate: 2019-12-06\nsections:\n  - section: welcome\n    articles: [{title: A, body: B}]\n",
        "2019-12-06.yaml",
    )
    later = assemble(load_folder(monthly))
    assert [r.item.programme for r in later.reminders] == ["Advisory Group"]


FEES = """Fees:

| Representatives | Fee | Equivalent per person |
| --- | ---: | ---: |
| up to 5 | £1500 | £300 |
| up to 10 | £2500 | £250 |
"""


def test_a_markdown_table_is_an_email_safe_data_table():
    html = str(markup.to_html(FEES))
    table = re.search(r"<table[^>]*>", html).group()
    assert "role=" not in table and "border-collapse:collapse" in table
    assert html.count("<th ") == 3 and all("border:1px solid" in c for c in re.findall(r"<t[hd] [^>]*>", html))
    assert re.search(r'<td style="[^"]*text-align:right">£1500</td>', html)


def test_a_markdown_table_is_aligned_text_columns():
    assert markup.to_text(FEES).split("\n")[2:] == [
        "Representatives    Fee  Equivalent per person",
        "---------------  -----  ---------------------",
        "up to 5          £1500                   £300",
        "up to 10         £2500                   £250",
    ]
    narrow = markup.to_text(FEES, width=30)
    assert "- Representatives: up to 5\n  Fee: £1500\n  Equivalent per person: £300" in narrow


def test_the_monthly_fee_table_survives_rendering():
    email = render(assemble(load_folder(MONTHLY)))
    assert "\nup to 25         £4375                   £175\n" in email.text
    assert re.search(r'<table class="data"[^>]*style="[^"]*border-collapse:collapse', email.html)
