"""`newsletter subscribers ...` and `newsletter networks` against a copy of the example folder, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from newsletter.cli import main

MEMBERS = "subscribers/network-members.csv"


@pytest.fixture
def folder(example_dir, database_url, monkeypatch):
    """The example folder as the working directory, its store at `database_url`."""
    monkeypatch.chdir(example_dir)
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", database_url)
    monkeypatch.delenv("NEWSLETTER_SMTPUTF8", raising=False)
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", "smtp://127.0.0.1:25")  # a relay without SMTPUTF8 (nothing is sent here)
    return example_dir


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def listed(capsys, *argv: str) -> list[dict]:
    code, out, _ = cli(capsys, "subscribers", "list", "--format", "json", *argv)
    assert code == 0
    return json.loads(out)


def test_import_then_list_as_json(folder, capsys):
    code, out, err = cli(capsys, "subscribers", "import", MEMBERS)
    assert (code, err) == (0, "")
    assert out == "network-members.csv: imported: 12 added, 0 updated, 0 unchanged, 0 kept suppressed, 0 rejected\n"
    rows = listed(capsys)
    assert len(rows) == 12
    assert rows[0] == {
        "email": "alex.morgan@anyshire.example.org",
        "name": "Alex Morgan",
        "organisation": "Anyshire County Council",
        "networks": ["ad-safeguarding", "qa-leads"],
        "status": "active",
    }
    assert {r["email"] for r in listed(capsys, "--network", "fostering")} == {
        "jordan.lee@eastborough.example.org",
        "sian.evans@valeshire.example.org",
    }


def test_rejected_rows_are_printed_as_file_line_reason_and_exit_1(folder, capsys):
    (folder / "subscribers" / "bad.csv").write_text(
        'email,name,organisation,networks\nok@example.org,Ok,,send\n"two@example.org","Line\nbreak",,send\nx@example.org,X,,nope\n',
        encoding="utf-8",
    )
    code, out, err = cli(capsys, "subscribers", "import", "subscribers/bad.csv")
    assert code == 1
    assert err.splitlines() == [
        "subscribers/bad.csv:3: name 'Line\\nbreak' contains a control character (a line break?)",
        "subscribers/bad.csv:5: unknown network 'nope'",
    ]
    assert out == "bad.csv: imported: 1 added, 0 updated, 0 unchanged, 0 kept suppressed, 2 rejected\n"


def test_dry_run_and_strict_write_nothing(folder, capsys):
    (folder / "subscribers" / "bad.csv").write_text(
        "email,networks\nok@example.org,send\nx@example.org,nope\n", encoding="utf-8"
    )
    code, out, _ = cli(capsys, "subscribers", "import", "subscribers/bad.csv", "--dry-run")
    assert code == 1 and "nothing written: 1 added" in out and "(dry run)" in out
    code, out, _ = cli(capsys, "subscribers", "import", "subscribers/bad.csv", "--strict")
    assert code == 1 and "nothing written" in out and "--strict" in out
    assert listed(capsys) == []
    code, _, _ = cli(capsys, "subscribers", "import", MEMBERS, "--dry-run")
    assert code == 0 and listed(capsys) == []


def test_unsubscribe_survives_reimport(folder, capsys):
    cli(capsys, "subscribers", "import", MEMBERS)
    code, out, _ = cli(capsys, "subscribers", "unsubscribe", "SAM.Patel@westshire.example.org")
    assert (code, out) == (0, "unsubscribed sam.patel@westshire.example.org\n")
    code, out, _ = cli(capsys, "subscribers", "import", MEMBERS)
    assert code == 0 and "11 unchanged, 1 kept suppressed" in out
    assert [r["email"] for r in listed(capsys, "--status", "unsubscribed")] == ["sam.patel@westshire.example.org"]
    code, out, _ = cli(capsys, "subscribers", "unsubscribe", "sam.patel@westshire.example.org")
    assert code == 0 and "already unsubscribed" in out


def test_add_remove_and_errors(folder, capsys):
    code, out, _ = cli(
        capsys,
        "subscribers",
        "add",
        "--network",
        "qa-leads",
        "Jo@Example.org",
        "--network",
        "send",
        "--name",
        "Jo",
        "--organisation",
        "Org",
    )
    assert (code, out) == (0, "added Jo@example.org to qa-leads, send\n")
    assert listed(capsys) == [
        {
            "email": "Jo@example.org",
            "name": "Jo",
            "organisation": "Org",
            "networks": ["qa-leads", "send"],
            "status": "active",
        }
    ]
    code, _, err = cli(capsys, "subscribers", "add", "jo@example.org", "--network", "send")
    assert (code, err) == (1, "error: Jo@example.org is already a subscriber (active)\n")
    code, _, err = cli(capsys, "subscribers", "add", "new@example.org", "--network", "fosterng")
    assert code == 1 and err == "error: unknown network 'fosterng' (did you mean 'fostering'?)\n"
    code, _, err = cli(capsys, "subscribers", "add", "jö@example.org", "--network", "send")
    assert code == 1 and "SMTPUTF8" in err
    code, out, _ = cli(capsys, "subscribers", "remove", "JO@example.org")
    assert (code, out) == (0, "removed Jo@example.org\n")
    code, _, err = cli(capsys, "subscribers", "remove", "jo@example.org")
    assert (code, err) == (1, "error: no subscriber 'jo@example.org'\n")
    code, _, err = cli(capsys, "subscribers", "unsubscribe", "jo@example.org")
    assert code == 1 and "no subscriber" in err


@pytest.mark.parametrize(("variable", "value"), [("NEWSLETTER_SMTPUTF8", "true"), ("NEWSLETTER_SMTP_URL", None)])
def test_a_non_ascii_local_part_is_accepted_when_delivery_can_send_it(folder, capsys, monkeypatch, variable, value):
    """The relay is set up for SMTPUTF8, or there is no relay and mail goes to the outbox."""
    if value is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, value)
    code, out, _ = cli(capsys, "subscribers", "add", "jö@example.org", "--network", "send")
    assert (code, out) == (0, "added jö@example.org to send\n")
    (folder / "more.csv").write_text("email,networks\nzoë@example.org,send\n", encoding="utf-8")
    assert cli(capsys, "subscribers", "import", "more.csv")[0] == 0


def test_export_round_trips_and_csv_and_table_formats(folder, capsys):
    cli(capsys, "subscribers", "import", MEMBERS)
    cli(capsys, "subscribers", "unsubscribe", "sam.patel@westshire.example.org")
    code, out, _ = cli(capsys, "subscribers", "export", "all.csv")
    assert (code, out) == (0, "wrote 12 subscriber(s) to all.csv\n")
    code, out, _ = cli(capsys, "subscribers", "import", "all.csv")
    assert code == 0 and "11 unchanged, 1 kept suppressed, 0 rejected" in out
    code, out, _ = cli(capsys, "subscribers", "list", "--format", "csv", "--network", "fostering")
    assert list(csv.reader(io.StringIO(out))) == [
        ["email", "name", "organisation", "networks", "status"],
        ["jordan.lee@eastborough.example.org", "Jordan Lee", "Eastborough Council", "adoption;fostering", "active"],
        ["sian.evans@valeshire.example.org", "Siân Evans", "Valeshire Council", "fostering", "active"],
    ]
    code, out, _ = cli(capsys, "subscribers", "list", "--network", "fostering")
    lines = out.splitlines()
    assert lines[0].split() == ["EMAIL", "NAME", "ORGANISATION", "NETWORKS", "STATUS"]
    assert lines[1].startswith("jordan.lee@eastborough.example.org  Jordan Lee") and lines[1].endswith("active")
    assert lines[-1] == "2 subscriber(s)"


def test_networks_counts_and_reports_members_of_a_removed_network(folder, capsys):
    cli(capsys, "subscribers", "import", MEMBERS)
    cli(capsys, "subscribers", "unsubscribe", "sam.patel@westshire.example.org")
    code, out, err = cli(capsys, "networks")
    assert code == 0 and err == ""
    rows = {line.split()[0]: line.split()[-2:] for line in out.splitlines()[1:]}
    assert rows["qa-leads"] == ["3", "1"] and rows["fostering"] == ["2", "0"] and len(rows) == 8
    yaml = folder / "newsletter.yaml"
    yaml.write_text(
        yaml.read_text(encoding="utf-8").replace("  - id: fostering\n    name: Fostering Network\n", ""),
        encoding="utf-8",
    )
    code, out, err = cli(capsys, "networks")
    assert code == 0 and "fostering" not in out
    assert err.startswith("warning: network 'fostering' is not in newsletter.yaml but has 2 member(s)")
    assert len(listed(capsys, "--network", "fostering")) == 2  # kept, not dropped


def test_default_store_is_a_sqlite_file_beside_newsletter_yaml(example_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NEWSLETTER_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    code, _, _ = cli(capsys, "subscribers", "add", "jo@example.org", "--network", "send", "--dir", str(example_dir))
    assert code == 0 and (example_dir / "newsletter.db").is_file()
    code, _, err = cli(capsys, "subscribers", "list")
    assert code == 1 and "no newsletter.yaml here" in err
    assert not (tmp_path / "newsletter.db").exists()


def test_a_missing_file_and_an_unknown_network_filter(folder, capsys):
    code, _, err = cli(capsys, "subscribers", "import", "nothing.csv")
    assert code == 1 and err.startswith("error: cannot read nothing.csv: No such file")
    code, out, err = cli(capsys, "subscribers", "list", "--network", "qa-lead", "--format", "json")
    assert (code, json.loads(out)) == (0, [])
    assert err == "warning: network 'qa-lead' is not in newsletter.yaml\n"


def test_export_to_standard_output_writes_no_file_named_dash(folder, capsys):
    assert cli(capsys, "subscribers", "add", "--network", "send,qa-leads", "jo@example.org")[0] == 0
    code, out, _ = cli(capsys, "subscribers", "export", "-")
    assert code == 0 and out.splitlines() == [
        "email,name,organisation,networks,status",
        "jo@example.org,,,qa-leads;send,active",
    ]
    assert not (folder / "-").exists() and not Path("-").exists()
