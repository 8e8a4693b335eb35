"""`newsletter import minutes` and `newsletter import text`, end to end into a copy of examples/."""

from __future__ import annotations

import datetime as dt
import difflib
from pathlib import Path

from ruamel.yaml import YAML
from test_importers_text import OTHER_OFFICE

from newsletter.cli import main

SEEDS = Path(__file__).parent / "fixtures" / "seeds"


def run(capsys, *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def read(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def test_the_sample_weekly_imports_and_passes_check(capsys, example_dir: Path) -> None:
    code, out, err = run(capsys, "import", "text", SEEDS / "legacy-weekly.txt", "--dir", example_dir)
    assert (code, err) == (0, "")
    issue = example_dir / "content" / "issues" / "2026-11-13.yaml"
    assert out.startswith(f"wrote {issue} (Update No 117, 2026-11-13)\n")
    assert "legacy-weekly.txt:5: a lone heading or picture caption (an image's alt text?)" in out
    [warning] = [line for line in out.splitlines() if ": warning: " in line]  # the old text has no subject line
    assert warning.startswith(f"{issue}:") and warning.endswith(
        ": warning: subject: no subject: the default says only the name and number; say what this issue is about"
    )
    assert out.endswith("newsletter check: no errors, 1 warning\n")
    assert "New contacts" not in out  # all five are in the example's newsletter.yaml already
    assert read(issue)["number"] == 117
    assert run(capsys, "check", "--dir", example_dir, "--date", "2026-11-13")[0] == 0


def test_another_office_s_update_with_its_contacts_added(capsys, example_dir: Path) -> None:
    source = example_dir.parent / "bulletin.txt"
    source.write_bytes(OTHER_OFFICE.encode("utf-8"))
    standing = example_dir / "newsletter.yaml"
    standing.write_text("# the programme office's settings\n" + standing.read_text(encoding="utf-8"), encoding="utf-8")
    before = standing.read_text(encoding="utf-8")

    code, out, _ = run(capsys, "import", "text", source, "--dir", example_dir, "--contacts")
    assert code == 0, out
    assert f"added 1 contact(s) to {standing}" in out
    after = standing.read_text(encoding="utf-8")
    changes = difflib.SequenceMatcher(None, before.splitlines(), after.splitlines()).get_opcodes()
    assert {tag for tag, *_ in changes} == {"equal", "insert"}  # comments, order and quotes kept; the contact added
    assert read(standing)["contacts"][-1] == {
        "id": "programme-lead", "role": "Programme Lead", "name": "Jo Bloggs",
        "organisation": "South Coast Partnership", "email": "jo.bloggs@partnership.example.org",
        "phone": "01234 567890",
    }  # fmt: skip
    assert out.endswith("newsletter check: no errors, 0 warnings\n") or "warning" in out
    assert run(capsys, "check", "--dir", example_dir, "--date", "2027-01-08")[0] == 0


def test_new_contacts_are_printed_without_contacts(capsys, example_dir: Path) -> None:
    source = example_dir.parent / "bulletin.txt"
    source.write_text(OTHER_OFFICE, encoding="utf-8")
    before = (example_dir / "newsletter.yaml").read_text(encoding="utf-8")
    code, out, _ = run(capsys, "import", "text", source, "--dir", example_dir)
    assert code == 0
    assert "contacts:\n  - id: programme-lead\n    role: Programme Lead\n    name: Jo Bloggs\n" in out
    assert (example_dir / "newsletter.yaml").read_text(encoding="utf-8") == before


def test_an_existing_issue_is_kept_unless_forced(capsys, example_dir: Path) -> None:
    source = example_dir.parent / "update.txt"
    source.write_text("Programme: A\nUpdate: B\nAction Required: C", encoding="utf-8")
    args = ("import", "text", source, "--dir", example_dir, "--date", "2026-11-27", "--number", "200")
    code, _, err = run(capsys, *args)
    issue = example_dir / "content" / "issues" / "2026-11-27.yaml"
    assert (code, err) == (1, f"{issue}: already exists: edit it, or use --force to replace it\n")
    assert read(issue)["number"] == 119
    assert run(capsys, *args, "--force")[0] == 0
    assert read(issue)["number"] == 200


def test_a_text_without_date_or_number_asks_for_them_in_one_line(capsys, example_dir: Path) -> None:
    source = example_dir.parent / "update.txt"
    source.write_text("Programme: A\nUpdate: B", encoding="utf-8")
    code, out, err = run(capsys, "import", "text", source, "--dir", example_dir)
    assert (code, out) == (1, "")
    assert err == f"{source}: the text gives no issue date or number: give --date YYYY-MM-DD and --number N\n"


def test_when_check_fails_the_command_says_exactly_why(capsys, example_dir: Path) -> None:
    code, out, _ = run(
        capsys, "import", "text", SEEDS / "002-regional-update.txt", "--dir", example_dir,
        "--date", "2026-12-04", "--number", "120",
    )  # fmt: skip
    assert code == 1
    assert (example_dir / "content" / "issues" / "2026-12-04.yaml").is_file()  # written, to be finished by hand
    assert "newsletter check finds errors to fix before this issue can be sent:" in out
    assert "2026-12-04.yaml:" in out and "an issue needs at least one item, or sections with articles" in out


def test_the_sample_minutes(capsys, example_dir: Path) -> None:
    args = ("import", "minutes", SEEDS / "001-network-minutes.txt", "--network", "qa-leads", "--date", "2021-03-10")
    code, out, err = run(capsys, *args, "--dir", example_dir)
    minutes = example_dir / "content" / "minutes" / "2021-03-10-qa-leads.yaml"
    assert (code, err) == (0, "")
    assert out.startswith(f"wrote {minutes}: 11 actions\n")
    assert "  line 174: Douglas Sinclair: share the East Sussex multi-agency CME audit tool\n" in out
    assert "    check: no owner named: set to 'All members', confirm or change\n" in out
    assert "  line 208: a line that may be an action: 6.2. Stuart will raise the proposal again" in out
    document = read(minutes)
    assert (document["network"], document["date"], document["title"]) == (
        "qa-leads", dt.date(2021, 3, 10), "SESLIP Quality Assurance Leads Meeting",
    )  # fmt: skip
    assert len(document["actions"]) == 11

    code, _, err = run(capsys, *args, "--dir", example_dir)
    assert (code, err) == (1, f"{minutes}: already exists: edit it, or use --force to replace it\n")
    assert run(capsys, *args, "--dir", example_dir, "--force")[0] == 0
    assert run(capsys, "check", "--dir", example_dir)[0] == 0


def test_minutes_without_a_heading_are_named_after_the_network(capsys, example_dir: Path) -> None:
    source = example_dir.parent / "minutes.txt"
    source.write_bytes("1. Apologies\r\nACTION: Kent will share the toolkit\r\n".encode("cp1252"))
    code, _, _ = run(
        capsys, "import", "minutes", source, "--network", "fostering", "--date", "2026-11-02", "--dir", example_dir
    )
    assert code == 0
    document = read(example_dir / "content" / "minutes" / "2026-11-02-fostering.yaml")
    assert document["title"] == "Fostering Network meeting"
    assert document["actions"] == [{"owner": "Kent", "action": "share the toolkit", "done": False}]


def test_an_unknown_network_is_one_line(capsys, example_dir: Path) -> None:
    code, _, err = run(
        capsys, "import", "minutes", SEEDS / "001-network-minutes.txt", "--network", "qa", "--date", "2021-03-10",
        "--dir", example_dir,
    )  # fmt: skip
    assert code == 1
    assert err.startswith("error: unknown network 'qa' (networks: ad-education, ")
