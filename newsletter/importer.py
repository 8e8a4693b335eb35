"""Subscriber CSV files (FORMAT.md "Subscribers"): import with per-row checks, and export.

Reads what Excel and Google Sheets write: UTF-8 with or without BOM, CRLF or LF, quoted
fields holding commas and line breaks. A rejected row is reported by the physical line where
its record starts; the good rows are written in one transaction, and an address that is
unsubscribed, bounced or complained is never made active again by an import.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from .errors import ContentError, Problem, SubscriberError
from .subscribers import (
    N,
    S,
    Status,
    Subscriber,
    check_networks,
    check_text,
    listing,
    networks_of,
    normalize_address,
    now,
)

COLUMNS = ("email", "name", "organisation", "networks", "status")
REQUIRED = ("email", "networks")
CHUNK = 1000  # rows looked up and written per statement batch
DELIMITERS = (",", ";", "\t")
SWALLOWED = re.compile(r"\n[^\n]*@")  # a line break, then an address: rows taken into an unclosed quote
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP: a spreadsheet evaluates a cell starting so


def _formula_like(text: str) -> bool:
    """Whether `text`, after any leading quotes, starts the way a spreadsheet formula does."""
    # looking past the quotes makes a stored "'=x" export as "''=x", so the round trip stays exact
    return text.lstrip("'").startswith(FORMULA_START)


@dataclass
class ImportReport:
    """What an import did (or, for a dry run or a refused strict import, would have done)."""

    path: Path
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    suppressed_kept: int = 0  # already unsubscribed/bounced/complained: details updated, still not sent to
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    written: bool = False

    def summary(self) -> str:
        verb = "imported" if self.written else "nothing written"
        return (
            f"{self.path.name}: {verb}: {self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.suppressed_kept} kept suppressed, {len(self.rejected)} rejected"
        )


@dataclass(slots=True)
class Record:
    """One good row of the file."""

    line: int
    email: str
    key: str
    networks: frozenset[str]
    fields: dict[str, str | None]  # name/organisation, only for the columns the file has
    status: Status | None


# reading the file ----------------------------------------------------------------------------


def _not_utf8(path: Path) -> ContentError:
    """The error for a file that does not decode, pointing at the line of the first bad byte."""
    data = path.read_bytes()
    try:
        data.decode("utf-8-sig")
        line = None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
    return ContentError([Problem(path, line, "", "not UTF-8 text: save the sheet as 'CSV UTF-8'")])


def _header(path: Path, cells: list[str]) -> list[str]:
    names = [c.strip().lower() for c in cells]
    problems = []
    for name in names:
        if not name:
            continue  # spreadsheets write empty columns after the last one used; their cells must be empty
        if name not in COLUMNS:
            close = difflib.get_close_matches(name, COLUMNS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (expected {', '.join(COLUMNS)})"
            problems.append(f"unknown column {name!r}{hint}")
        elif names.count(name) > 1:
            problems.append(f"column {name!r} appears twice")
    problems += [f"the header has no {name!r} column" for name in REQUIRED if name not in names]
    if problems:
        raise ContentError([Problem(path, 1, "", p) for p in dict.fromkeys(problems)])
    return names


def read_records(
    path: Path, *, known_networks: Iterable[str], smtputf8: bool = False
) -> Iterator[Record | tuple[int, str]]:
    """Each record of the file in order: a checked Record, or (line, reason) for a rejected row."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            yield from _records(path, file, frozenset(known_networks), smtputf8)
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except OSError as exc:
        raise SubscriberError(f"cannot read {path}: {exc.strerror}") from None


def _delimiter(file: TextIO) -> tuple[str, int]:
    """The delimiter of the file (Excel writes ; or TAB in many locales, and may say `sep=;` first),
    and how many lines the `sep=` line takes; `file` is left at the header."""
    first = file.readline()
    sep = re.fullmatch(r'"?sep=(.)"?\r?\n?', first, flags=re.IGNORECASE)
    if sep:
        return sep.group(1), 1
    file.seek(0)
    header = first.lower()
    counts = {d: sum(header.split(d).count(name) for name in COLUMNS) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: (counts[d], header.count(d)))
    return best if counts[best] or header.count(best) else ",", 0


def _records(path: Path, file: TextIO, known: frozenset[str], smtputf8: bool) -> Iterator[Record | tuple[int, str]]:
    delimiter, skipped = _delimiter(file)
    reader = csv.reader(file, strict=True, delimiter=delimiter)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise ContentError([Problem(path, 1 + skipped, "", f"CSV syntax: {exc}")]) from None
    if not header:
        raise ContentError(
            [Problem(path, 1, "", f"no header row: the first line must name the columns ({','.join(COLUMNS[:4])})")]
        )
    columns = _header(path, header)
    seen: dict[str, int] = {}
    while True:
        line = reader.line_num + 1 + skipped
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield line, f"{_syntax(exc, line, reader.line_num + skipped)} (the rest of the file was not read)"
            return
        if not any(c.strip() for c in cells):
            continue  # blank line
        if reader.line_num + skipped > line and any(SWALLOWED.search(c) for c in cells):
            yield (
                line,
                f"a quote opened on line {line} is closed only on line {reader.line_num + skipped}: close it on its own line",
            )
            continue
        try:
            record = _record(line, columns, cells, known, smtputf8)
        except SubscriberError as exc:
            yield line, str(exc)
            continue
        if record.key in seen:
            yield line, f"{record.email} is already on line {seen[record.key]} (addresses are compared ignoring case)"
            continue
        seen[record.key] = line
        yield record


def _syntax(exc: csv.Error, start: int, end: int) -> str:
    if "end of data" in str(exc):
        return f"a quote opened on line {start} is never closed"
    if end > start:
        return f"a quote opened on line {start} runs on to line {end}: close it on its own line"
    return f"CSV syntax: {exc}"


def _record(line: int, columns: list[str], cells: list[str], known: frozenset[str], smtputf8: bool) -> Record:
    if len(cells) > len(columns):
        raise SubscriberError(f"{len(cells)} fields but the header has {len(columns)} (an unquoted comma?)")
    cells = cells + [""] * (len(columns) - len(cells))
    if any(cell.strip() for name, cell in zip(columns, cells, strict=True) if not name):
        raise SubscriberError("a value in a column that has no name in the header")
    row = dict(zip(columns, cells, strict=True))
    fields: dict[str, str | None] = {
        c: _unquoted(check_text(row[c], what=c)) for c in ("name", "organisation") if c in row
    }
    email, key = normalize_address(_unquoted(check_text(row["email"], what="email address")) or "", smtputf8=smtputf8)
    networks = check_networks((check_text(row["networks"], what="networks") or "").split(";"), known_networks=known)
    status = None
    if text := check_text(row.get("status"), what="status"):
        try:
            status = Status(text.lower())
        except ValueError:
            raise SubscriberError(f"unknown status {text!r} (expected one of {', '.join(Status)})") from None
    return Record(line, email, key, networks, fields, status)


def _unquoted(text: str | None) -> str | None:
    """A cell without the ' that export puts before a formula-like value."""
    return text[1:] if text and text.startswith("'") and _formula_like(text) else text


# writing the store ---------------------------------------------------------------------------


def import_csv(
    engine: sa.Engine,
    path: Path,
    *,
    known_networks: Iterable[str],
    smtputf8: bool = False,
    dry_run: bool = False,
    strict: bool = False,
) -> ImportReport:
    """Import the file's good rows in one transaction; with `strict`, nothing if any row is rejected."""
    path = Path(path)
    report = ImportReport(path)
    batch: list[Record] = []
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            for item in read_records(path, known_networks=known_networks, smtputf8=smtputf8):
                if isinstance(item, tuple):
                    report.rejected.append(item)
                    continue
                batch.append(item)
                if len(batch) == CHUNK:
                    _merge(conn, batch, report, write=not dry_run)
                    batch.clear()
            _merge(conn, batch, report, write=not dry_run)
        except sa.exc.IntegrityError:
            transaction.rollback()
            raise SubscriberError(
                f"{path.name}: another process added one of these addresses meanwhile; nothing was written, run the import again"
            ) from None
        except BaseException:
            transaction.rollback()
            raise
        if dry_run or (strict and report.rejected):
            transaction.rollback()
        else:
            if conn.dialect.name == "postgresql" and report.added + report.updated > CHUNK:
                conn.execute(sa.text("ANALYZE subscribers, subscriber_networks"))  # plans for the new size
            transaction.commit()
            report.written = True
    return report


@dataclass
class _Changes:
    """What one batch changes in the store, worked out before anything is written."""

    reason: str
    when: dt.datetime
    new: list[Record] = field(default_factory=list)
    details: list[dict] = field(default_factory=list)  # name/organisation updates
    statuses: list[dict] = field(default_factory=list)  # suppressions the file records
    memberships: dict[int, frozenset[str]] = field(default_factory=dict)  # networks to set, by subscriber id


def _merge(conn: sa.Connection, batch: list[Record], report: ImportReport, *, write: bool) -> None:
    """Count and (if `write`) apply one batch: insert new addresses, update known ones, keep suppressions."""
    if batch:
        changes = _plan(conn, batch, report)
        if write:
            _apply(conn, changes)


def _plan(conn: sa.Connection, batch: list[Record], report: ImportReport) -> _Changes:
    existing = {
        row.email_key: row
        for row in conn.execute(
            sa.select(S.c.id, S.c.email_key, S.c.name, S.c.organisation, S.c.status).where(
                S.c.email_key.in_([r.key for r in batch])
            )
        )
    }
    networks = networks_of(conn, [row.id for row in existing.values()])
    changes = _Changes(reason=f"imported from {report.path.name}", when=now())
    for record in batch:
        row = existing.get(record.key)
        if row is None:
            changes.new.append(record)
            report.added += 1
        elif _plan_update(changes, row, record, networks.get(row.id, frozenset())):
            report.updated += 1
        elif row.status != Status.ACTIVE:
            report.suppressed_kept += 1
        else:
            report.unchanged += 1
    return changes


def _plan_update(changes: _Changes, row: sa.Row, record: Record, networks: frozenset[str]) -> bool:
    """Add what `record` changes of a known subscriber; whether it counts as updated (never a suppressed one)."""
    changed = False
    current = {"name": row.name, "organisation": row.organisation}
    wanted = {**current, **record.fields}
    if wanted != current:
        changes.details.append({"b_id": row.id, **wanted})
        changed = True
    if networks != record.networks:
        changes.memberships[row.id] = record.networks
        changed = True
    if row.status != Status.ACTIVE:
        return False  # details and networks follow the file; the suppression stays
    if record.status not in (None, Status.ACTIVE):
        changes.statuses.append(
            {
                "b_id": row.id,
                "status": record.status.value,
                "status_reason": changes.reason,
                "status_changed_at": changes.when,
            }
        )
        changed = True
    return changed


def _apply(conn: sa.Connection, changes: _Changes) -> None:
    memberships = dict(changes.memberships)
    if memberships:
        conn.execute(N.delete().where(N.c.subscriber_id.in_(list(memberships))))
    if changes.new:
        memberships.update(_insert_new(conn, changes))
    if changes.details:
        conn.execute(
            S.update()
            .where(S.c.id == sa.bindparam("b_id"))
            .values(name=sa.bindparam("name"), organisation=sa.bindparam("organisation")),
            changes.details,
        )
    if changes.statuses:
        conn.execute(S.update().where(S.c.id == sa.bindparam("b_id")), changes.statuses)
    if memberships:
        _insert(
            conn, N, [dict(subscriber_id=sid, network=n) for sid, nets in memberships.items() for n in sorted(nets)]
        )


def _insert_new(conn: sa.Connection, changes: _Changes) -> dict[int, frozenset[str]]:
    """Insert the batch's new subscribers; their networks by their new ids."""
    rows = [
        dict(
            email=r.email,
            email_key=r.key,
            name=r.fields.get("name"),
            organisation=r.fields.get("organisation"),
            status=(r.status or Status.ACTIVE).value,
            status_changed_at=changes.when,
            status_reason=changes.reason,
            created_at=changes.when,
        )
        for r in changes.new
    ]
    ids = {key: sid for sid, key in _insert(conn, S, rows, returning=(S.c.id, S.c.email_key))}
    return {ids[r.key]: r.networks for r in changes.new}


def _insert(conn: sa.Connection, table: sa.Table, rows: list[dict], *, returning: tuple = ()) -> list[sa.Row]:
    """Insert many rows; on PostgreSQL as one statement over arrays, several times faster there than executemany."""
    params: list[dict] | None = rows
    statement = table.insert()
    if conn.dialect.name == "postgresql":
        names = list(rows[0])
        arrays = [sa.bindparam(n, [r[n] for r in rows], type_=postgresql.ARRAY(table.c[n].type)) for n in names]
        statement, params = statement.from_select(names, sa.select(*(sa.func.unnest(a) for a in arrays))), None
    if returning:
        return list(conn.execute(statement.returning(*returning), params).all())
    conn.execute(statement, params)
    return []


# export --------------------------------------------------------------------------------------


def write_csv(subscribers: Iterable[Subscriber], out: TextIO) -> int:
    """Write subscribers in the import format (plus their status); return how many."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    count = 0
    for s in subscribers:
        writer.writerow(
            [
                _quoted(s.email),
                _quoted(s.name or ""),
                _quoted(s.organisation or ""),
                ";".join(sorted(s.networks)),
                s.status.value,
            ]
        )
        count += 1
    return count


def _quoted(text: str) -> str:
    """`text` for a cell, after a ' if a spreadsheet would otherwise evaluate it as a formula."""
    return "'" + text if _formula_like(text) else text


def export_csv(engine: sa.Engine, path: Path) -> int:
    """Every subscriber to `path` as a CSV that imports back to the same store; return how many rows."""
    # utf-8-sig: Excel only reads a CSV as UTF-8 when it starts with a BOM
    with Path(path).open("w", encoding="utf-8-sig", newline="") as out:
        return write_csv(listing(engine), out)
