"""Subscriber CSV import and export, as Excel and Google Sheets write the files, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from newsletter import importer, subscribers
from newsletter.errors import ContentError
from newsletter.importer import export_csv, import_csv
from newsletter.store import open_store
from newsletter.subscribers import Status

KNOWN = frozenset({"qa-leads", "fostering", "send"})
HEADER = "email,name,organisation,networks"


@pytest.fixture
def csv_file(tmp_path):
    """Write a CSV from text (or bytes) exactly as given, and return its path."""

    def write(content: str | bytes, name: str = "members.csv") -> Path:
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return path

    return write


def run(engine, path, **kw):
    kw.setdefault("known_networks", KNOWN)
    return import_csv(engine, path, **kw)


def people(engine) -> list[tuple]:
    return [(s.email, s.name, s.organisation, s.networks, s.status) for s in subscribers.listing(engine)]


def test_excel_file_with_bom_crlf_and_quoted_comma(engine, csv_file):
    text = (
        HEADER
        + "\r\n"
        + 'jo@example.org,Siân Evans,"Anyshire, County Council",qa-leads;fostering\r\n'
        + "sam@example.org,Sam,,send\r\n"
    )
    report = run(engine, csv_file(b"\xef\xbb\xbf" + text.encode("utf-8")))
    assert (report.added, report.rejected, report.written) == (2, [], True)
    assert people(engine) == [
        ("jo@example.org", "Siân Evans", "Anyshire, County Council", {"qa-leads", "fostering"}, Status.ACTIVE),
        ("sam@example.org", "Sam", None, {"send"}, Status.ACTIVE),
    ]


def test_plain_lf_file_with_spaces_trimmed(engine, csv_file):
    report = run(engine, csv_file(HEADER + "\n" + "  Jo@Example.org , Jo Bloggs ,  Anyshire , qa-leads ; send ;\n"))
    assert report.added == 1 and report.rejected == []
    assert people(engine) == [("Jo@example.org", "Jo Bloggs", "Anyshire", {"qa-leads", "send"}, Status.ACTIVE)]


def test_columns_in_any_order_and_only_the_required_ones(engine, csv_file):
    report = run(engine, csv_file("Networks,EMAIL\nfostering,jo@example.org\n"))
    assert report.added == 1
    assert people(engine) == [("jo@example.org", None, None, {"fostering"}, Status.ACTIVE)]


def test_each_bad_row_is_reported_by_the_line_its_record_starts_on(engine, csv_file):
    lines = [
        HEADER,  # 1
        'good@example.org,"Line\r\nbreak",Org,qa-leads',  # 2-3: CR/LF inside a quoted name
        '"multi@example.org","Ok","Two,\nline org",send',  # 4-5: a line break in the organisation
        "GOOD@example.org,Other case,,send",  # 6: the same address as line 2? no: line 2 was rejected
        "good@EXAMPLE.org,Third,,send",  # 7: same address as line 6 in another case
        ",No Address,,qa-leads",  # 8
        "nobody@example.org,Nobody,,qa-lead",  # 9: unknown network
        "none@example.org,None,,",  # 10: no network
        "jö@example.org,Jö,,send",  # 11: non-ASCII local part without SMTPUTF8
        "info@bücher.example,IDN,,send",  # 12: IDN domain is fine
        "tab@example.org,Tab\there,,send",  # 13: a control character
        "many@example.org,Many,Org,send,extra",  # 14: too many fields
        "not-an-address,X,,send",  # 15
        "",  # 16: blank lines are skipped
        "last@example.org,Last,,send",  # 17
    ]
    report = run(engine, csv_file("\n".join(lines) + "\n"))
    reasons = dict(report.rejected)
    assert sorted(reasons) == [2, 4, 7, 8, 9, 10, 11, 13, 14, 15]
    assert "control character" in reasons[2] and "name" in reasons[2]
    assert "control character" in reasons[4] and "organisation" in reasons[4]
    assert reasons[7] == "good@example.org is already on line 6 (addresses are compared ignoring case)"
    assert reasons[8] == "no email address"
    assert reasons[9] == "unknown network 'qa-lead' (did you mean 'qa-leads'?)"
    assert "no network" in reasons[10]
    assert "SMTPUTF8" in reasons[11]
    assert "5 fields but the header has 4" in reasons[14]
    assert "invalid email address 'not-an-address'" in reasons[15]
    assert report.added == 3 and report.written
    assert [p[0] for p in people(engine)] == ["GOOD@example.org", "info@bücher.example", "last@example.org"]


def test_non_ascii_local_part_is_accepted_when_the_relay_has_smtputf8(engine, csv_file):
    report = run(engine, csv_file(HEADER + "\njö@example.org,Jö,,send\n"), smtputf8=True)
    assert report.added == 1 and report.rejected == []


def test_empty_columns_after_the_last_are_ignored(engine, csv_file):
    report = run(engine, csv_file(HEADER + ",,\r\na@example.org,A,,send,,\r\nb@example.org,B,,send,,oops\r\n"))
    assert report.added == 1 and report.rejected == [(3, "a value in a column that has no name in the header")]


def test_dry_run_counts_but_writes_nothing(engine, csv_file):
    run(engine, csv_file(HEADER + "\na@example.org,A,,send\n"))
    path = csv_file(HEADER + "\na@example.org,A2,,send\nb@example.org,B,,send\nbad,X,,send\n", "second.csv")
    report = run(engine, path, dry_run=True)
    assert (report.added, report.updated, len(report.rejected), report.written) == (1, 1, 1, False)
    assert people(engine) == [("a@example.org", "A", None, {"send"}, Status.ACTIVE)]


def test_strict_imports_nothing_when_a_row_is_bad(engine, csv_file):
    path = csv_file(HEADER + "\na@example.org,A,,send\nb@example.org,B,,nope\n")
    report = run(engine, path, strict=True)
    assert report.rejected == [(3, "unknown network 'nope'")] and not report.written
    assert people(engine) == []
    good = csv_file(HEADER + "\na@example.org,A,,send\n", "good.csv")
    assert run(engine, good, strict=True).written


def test_reimport_updates_details_and_networks(engine, csv_file):
    run(engine, csv_file(HEADER + "\na@example.org,A,Org,send\nb@example.org,B,Org,send\nc@example.org,C,Org,send\n"))
    second = csv_file(
        HEADER
        + "\nA@example.org,A Newname,Org,send\nb@example.org,B,,qa-leads;send\nc@example.org,C,Org,send\nd@example.org,D,,send\n",
        "2.csv",
    )
    report = run(engine, second)
    assert (report.added, report.updated, report.unchanged, report.suppressed_kept) == (1, 2, 1, 0)
    assert people(engine) == [
        ("a@example.org", "A Newname", "Org", {"send"}, Status.ACTIVE),  # the address keeps its first spelling
        ("b@example.org", "B", None, {"qa-leads", "send"}, Status.ACTIVE),
        ("c@example.org", "C", "Org", {"send"}, Status.ACTIVE),
        ("d@example.org", "D", None, {"send"}, Status.ACTIVE),
    ]


@pytest.mark.parametrize("status", [Status.UNSUBSCRIBED, Status.BOUNCED, Status.COMPLAINED])
def test_reimport_never_reactivates_a_suppressed_address(engine, csv_file, status):
    path = csv_file(HEADER + "\njo@example.org,Jo,Org,send\n")
    run(engine, path)
    jo = subscribers.find(engine, "jo@example.org")
    subscribers.set_status(engine, jo.id, status, reason="because")
    before = subscribers.find(engine, "jo@example.org")
    again = csv_file(HEADER + "\nJO@example.org,Jo Renamed,Org,send;qa-leads\n", "again.csv")
    report = run(engine, again)
    assert (report.suppressed_kept, report.updated, report.added) == (1, 0, 0)
    after = subscribers.find(engine, "jo@example.org")
    assert (after.status, after.status_changed_at, after.status_reason) == (status, before.status_changed_at, "because")
    assert after.name == "Jo Renamed" and after.networks == {"send", "qa-leads"}
    assert list(subscribers.recipients(engine, ["send", "qa-leads"])) == []
    # a status column saying "active" does not re-activate either
    with_status = csv_file("email,networks,status\njo@example.org,send,active\n", "status.csv")
    assert run(engine, with_status).suppressed_kept == 1
    assert subscribers.find(engine, "jo@example.org").status is status


def test_status_column_suppresses_new_and_active_addresses(engine, csv_file):
    run(engine, csv_file(HEADER + "\nactive@example.org,A,,send\n"))
    report = run(
        engine,
        csv_file(
            "email,networks,status\nactive@example.org,send,unsubscribed\nnew@example.org,send,Bounced\nok@example.org,send,\nbad@example.org,send,gone\n",
            "s.csv",
        ),
    )
    assert report.rejected == [(5, "unknown status 'gone' (expected one of active, unsubscribed, bounced, complained)")]
    assert [(p[0], p[4]) for p in people(engine)] == [
        ("active@example.org", Status.UNSUBSCRIBED),
        ("new@example.org", Status.BOUNCED),
        ("ok@example.org", Status.ACTIVE),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no header row"),
        (b"email,name\njo@example.org,Jo\n", "the header has no 'networks' column"),
        (b"email,organization,networks\n", "unknown column 'organization' (did you mean 'organisation'?)"),
        (b"email,networks,email\n", "column 'email' appears twice"),
    ],
)
def test_header_problems_refuse_the_whole_file(engine, csv_file, content, message):
    with pytest.raises(ContentError, match=re.escape(message)) as caught:
        run(engine, csv_file(content))
    assert caught.value.problems[0].line == 1


def test_a_file_that_is_not_utf8_is_refused_with_its_line(engine, csv_file):
    path = csv_file(HEADER.encode() + b"\nok@example.org,Ok,,send\nsian@example.org,Si\xe2n,,send\n")
    with pytest.raises(ContentError, match="not UTF-8") as caught:
        run(engine, path)
    assert caught.value.problems[0].line == 3
    assert people(engine) == []


def test_an_unterminated_quote_is_reported_and_earlier_rows_kept(engine, csv_file):
    report = run(engine, csv_file(HEADER + '\nok@example.org,Ok,,send\nx@example.org,"Open quote,,send\n'))
    assert report.added == 1
    assert report.rejected == [(3, "a quote opened on line 3 is never closed (the rest of the file was not read)")]


def test_batches_cover_every_row(engine, csv_file, monkeypatch):
    monkeypatch.setattr(importer, "CHUNK", 7)
    rows = "".join(f"p{i}@example.org,P{i},,{'send' if i % 2 else 'qa-leads;send'}\n" for i in range(2500))
    first = run(engine, csv_file(HEADER + "\n" + rows))
    assert (first.added, first.rejected) == (2500, [])
    again = run(engine, csv_file(HEADER + "\n" + rows.replace(",P1,", ",Renamed,"), "again.csv"))
    assert (again.added, again.updated, again.unchanged) == (0, 1, 2499)
    assert sum(1 for _ in subscribers.recipients(engine, ["qa-leads"])) == 1250
    assert sum(1 for _ in subscribers.recipients(engine, ["send", "qa-leads"])) == 2500


def test_export_round_trips_through_import(engine, csv_file, tmp_path):
    source = (
        HEADER
        + '\njo@example.org,"Jo ""JB"" Bloggs","Anyshire, CC",qa-leads;fostering\nsian@bücher.example,Siân,,send\nsam@example.org,Sam,,send\n'
    )
    run(engine, csv_file(source))
    sam = subscribers.find(engine, "sam@example.org")
    subscribers.set_status(engine, sam.id, Status.UNSUBSCRIBED, reason="link")
    exported = tmp_path / "export.csv"
    assert export_csv(engine, exported) == 3
    assert exported.read_bytes().startswith(b"\xef\xbb\xbfemail,name,organisation,networks,status\r\n")
    again = run(engine, exported)
    assert (again.unchanged, again.suppressed_kept, again.rejected) == (2, 1, [])
    elsewhere = open_store(f"sqlite:///{tmp_path / 'other.db'}")
    assert run(elsewhere, exported).added == 3
    assert people(elsewhere) == people(engine)
    elsewhere.dispose()


def exported_cells(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as file:
        return [(row["name"], row["organisation"]) for row in csv.DictReader(file)]


def test_export_quotes_cells_a_spreadsheet_would_evaluate_and_import_takes_the_quote_off(engine, tmp_path):
    source = open_store(f"sqlite:///{tmp_path / 'source.db'}")
    details = [
        ('=HYPERLINK("http://evil.example","x")', "+44 Council"),
        ("-minus", "@at"),
        ("'Tis Ltd", "'=quoted already"),  # an ordinary leading quote; one before a formula gets one more
    ]
    for i, (name, organisation) in enumerate(details):
        subscribers.add(
            source, f"p{i}@example.org", networks=["send"], known_networks=KNOWN, name=name, organisation=organisation
        )
    exported = tmp_path / "export.csv"
    export_csv(source, exported)
    assert exported_cells(exported) == [
        ('\'=HYPERLINK("http://evil.example","x")', "'+44 Council"),
        ("'-minus", "'@at"),
        ("'Tis Ltd", "''=quoted already"),
    ]
    assert run(engine, exported).added == 3
    assert people(engine) == people(source)
    again = tmp_path / "again.csv"
    export_csv(engine, again)
    assert again.read_bytes() == exported.read_bytes()
    source.dispose()


def test_import_takes_off_only_a_quote_before_a_formula_after_trimming(engine, csv_file, tmp_path):
    lines = [
        "a@example.org,'=SUM(A1:A9),'Tis Ltd,send",
        "b@example.org, '-minus , =1+1 ,send",  # trimmed first; a bare formula is kept as written
        "c@example.org,',''@at,send",
    ]
    report = run(engine, csv_file(HEADER + "\n" + "\n".join(lines) + "\n"))
    assert report.added == 3 and report.rejected == []
    assert [p[1:3] for p in people(engine)] == [("=SUM(A1:A9)", "'Tis Ltd"), ("-minus", "=1+1"), ("'", "'@at")]
    exported = tmp_path / "export.csv"
    export_csv(engine, exported)
    assert exported_cells(exported) == [("'=SUM(A1:A9)", "'Tis Ltd"), ("'-minus", "'=1+1"), ("'", "''@at")]


@pytest.mark.parametrize(
    "text",
    [
        "email;name;organisation;networks\r\njo@example.org;Jo;Org, Ltd;qa-leads\r\n",  # Excel in a ; locale
        "sep=;\r\nemail;name;organisation;networks\r\njo@example.org;Jo;Org, Ltd;qa-leads\r\n",  # Excel's hint line
        "email\tname\torganisation\tnetworks\njo@example.org\tJo\tOrg, Ltd\tqa-leads\n",  # "Unicode text"
    ],
)
def test_semicolon_tab_and_sep_exports_are_read(engine, csv_file, text):
    report = run(engine, csv_file(text))
    assert report.added == 1 and report.rejected == []
    assert people(engine) == [("jo@example.org", "Jo", "Org, Ltd", frozenset({"qa-leads"}), Status.ACTIVE)]


def test_sep_line_is_counted_in_line_numbers(engine, csv_file):
    report = run(engine, csv_file("sep=;\nemail;networks\nok@example.org;send\nbad;send\n"))
    assert [line for line, _ in report.rejected] == [4]


def test_a_name_no_message_can_carry_is_rejected_at_its_line(engine, csv_file):
    report = run(engine, csv_file(HEADER + "\nok@example.org,Ok,,send\nlong@example.org," + "x" * 100_000 + ",,send\n"))
    assert report.added == 1
    assert report.rejected == [(3, "name is 100,000 characters long: at most 200 fit in a message")]


def test_an_unclosed_quote_that_swallows_rows_names_its_line(engine, csv_file):
    text = (
        HEADER
        + '\na@example.org,"Open quote,,send\nb@example.org,B,,send\nc@example.org,C",,send\nd@example.org,D,,send\n'
    )
    report = run(engine, csv_file(text))
    assert (2, "a quote opened on line 2 is closed only on line 4: close it on its own line") in report.rejected
    assert "b@example.org" not in [p[0] for p in people(engine)]


def test_export_quotes_a_formula_looking_email_and_import_takes_it_off(engine, tmp_path):
    subscribers.add(engine, "-2+3@example.org", networks=["send"], known_networks={"send"})
    path = tmp_path / "out.csv"
    export_csv(engine, path)
    assert "'-2+3@example.org" in path.read_text(encoding="utf-8-sig")
    report = run(engine, path)
    assert report.unchanged == 1 and report.rejected == []
