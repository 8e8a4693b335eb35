import datetime as dt
import textwrap

import yaml

from newsletter.checks import SIZE_BUDGET, check
from newsletter.folder import load_folder

ISSUE = textwrap.dedent(
    """\
    number: 120
    date: 2026-12-04
    intro: |
      Welcome. See <https://example.org/intro> for more.
    items:
      - programme: Good item
        update: Something happened.
        action: Do something.
        links:
          - text: The annual report 2026
            url: https://example.org/report
      - programme: Item with weak links
        update: |
          First line of the update.
          Read the guidance [here](https://example.org/guidance).

          Or go to http://example.org/plain directly.
        links:
          - text: Click here
            url: https://example.org/a
          - text: https://example.org/b
            url: https://example.org/b
          - text: The old site
            url: http://example.org/old
    meetings:
      - network: fostering
        title: Fostering Network
        date: 2027-02-02
        location: http://meet.example.org/fostering
    resources:
      - title: Read more
        publisher: Someone
        url: http://example.org/guide
    """
)


def write_issue(root, text=ISSUE, name="2026-12-04.yaml"):
    (root / "content" / "issues" / name).write_text(text, encoding="utf-8")
    return load_folder(root)


def by_line(problems):
    return {(p.line, p.field, p.message) for p in problems}


def test_the_example_has_no_warnings(example_dir):
    assert check(load_folder(example_dir)) == []


def test_every_warning_is_a_warning_with_file_and_line(example_dir):
    problems = check(write_issue(example_dir))
    assert problems and all(p.severity == "warning" for p in problems)
    issue_file = example_dir / "content" / "issues" / "2026-12-04.yaml"
    assert all(p.path == issue_file and p.line for p in problems)


def test_item_without_action(example_dir):
    problems = check(write_issue(example_dir))
    assert (12, "items[2]", "no action: tell readers what to do (Action Required)") in by_line(problems)
    assert not any(p.field == "items[1]" for p in problems)


def test_meeting_without_contact(example_dir):
    problems = check(write_issue(example_dir))
    assert (26, "meetings[1]", "no contact: say who to ask about this meeting") in by_line(problems)


def test_link_text_that_says_nothing(example_dir):
    found = by_line(check(write_issue(example_dir)))
    assert (31, "resources[1]", "link text 'Read more' says nothing: name what it leads to") in found
    assert (19, "items[2].links[1]", "link text 'Click here' says nothing: name what it leads to") in found
    # inside a `|` block the warning points at the line of the link itself
    assert (15, "items[2].update", "link text 'here' says nothing: name what it leads to") in found


def test_bare_urls(example_dir):
    messages = [(p.line, p.field, p.message) for p in check(write_issue(example_dir))]
    assert (
        21,
        "items[2].links[2]",
        "link text is a bare URL (https://example.org/b): say where it leads instead",
    ) in messages
    assert any(
        line == 4 and field == "intro" and "bare URL https://example.org/intro" in m for line, field, m in messages
    )
    assert any(
        line == 17 and field == "items[2].update" and "bare URL http://example.org/plain" in m
        for line, field, m in messages
    )


def test_links_that_are_not_https(example_dir):
    insecure = {
        (p.field, p.message.split(": ", 1)[1]) for p in check(write_issue(example_dir)) if "not https" in p.message
    }
    assert insecure == {
        ("items[2].update", "http://example.org/plain"),
        ("items[2].links[3]", "http://example.org/old"),
        ("meetings[1].location", "http://meet.example.org/fostering"),
        ("resources[1]", "http://example.org/guide"),
    }


def test_standing_footer_links_are_checked_too(example_dir):
    settings = example_dir / "newsletter.yaml"
    settings.write_text(
        settings.read_text().replace(
            "reply to this email.", "reply to this email or [click here](http://example.org/ideas)."
        )
    )
    problems = [p for p in check(load_folder(example_dir)) if p.path == settings]
    assert {p.message for p in problems} == {
        "link text 'click here' says nothing: name what it leads to",
        "link is not https: http://example.org/ideas",
    }
    assert all(p.field == "footer" and p.line for p in problems)


def test_an_issue_too_large_for_gmail(example_dir):
    data = yaml.safe_load(ISSUE)
    long_update = "A long paragraph about the programme and what it has found. " * 12
    data["items"] = [
        {
            "programme": f"Programme {n}",
            "update": long_update,
            "action": "Read it.",
            "links": [{"text": f"Report {n}", "url": f"https://example.org/{n}"}],
        }
        for n in range(60)
    ]
    data.pop("meetings"), data.pop("resources"), data.pop("intro")
    problems = check(write_issue(example_dir, yaml.safe_dump(data)))
    (size,) = [p for p in problems if "KB of HTML" in p.message]
    kilobytes = int(size.message.split("the email is ")[1].split(" KB")[0])
    assert kilobytes * 1024 > SIZE_BUDGET - 1024 and "Gmail clips" in size.message


def test_date_selects_the_issue(example_dir):
    folder = write_issue(example_dir)
    assert check(folder) != []
    assert check(folder, date=dt.date(2026, 11, 27)) == []


def test_a_from_name_longer_than_an_inbox_shows_is_a_warning(example_dir):
    path = example_dir / "newsletter.yaml"
    path.write_text(
        path.read_text().replace(
            "name: Regional Improvement Programme", "name: The Regional Improvement Programme Office"
        )
    )
    [problem] = check(load_folder(example_dir))
    assert (problem.path, problem.line, problem.field) == (path, 3, "sender.name")
    assert problem.message == "the From name is 41 characters: inboxes show about 30, so readers see it cut"


def test_a_subject_that_says_only_the_name_and_number_is_a_warning(example_dir):
    issue = example_dir / "content" / "issues" / "2026-11-27.yaml"
    text = "".join(line for line in issue.read_text().splitlines(keepends=True) if not line.startswith("subject:"))
    issue.write_text(text)
    [problem] = check(load_folder(example_dir))  # the default subject says only the name, number and date
    assert (problem.line, problem.field) == (1, "subject")
    assert problem.message == "no subject: the default says only the name and number; say what this issue is about"
    for subject in ("Regional Improvement Weekly – Update No 119", "Regional Improvement Weekly #119, 27 Nov 2026"):
        issue.write_text(f"subject: {subject}\n" + text)
        [problem] = check(load_folder(example_dir))
        assert (problem.line, problem.field) == (1, "subject")
        assert problem.message == "the subject says only the newsletter's name and number: say what this issue is about"
    issue.write_text("subject: Regional Improvement Weekly 119 – Ofsted changes and the fostering survey\n" + text)
    assert check(load_folder(example_dir)) == []
