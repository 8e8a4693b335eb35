"""Commands: `newsletter import minutes` and `newsletter import text`, plain text into content files."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from ..checks import check
from ..content import Newsletter
from ..errors import ContentError, NotFound, Problem, display_path
from ..folder import load_folder, load_newsletter
from ..importers import contacts, minutes, text
from ..importers.lines import read_text
from ..importers.meetings import Named
from ..importers.yamlout import dump, write_new
from .common import add_dir, iso_date
from .content import warning_line


def register(commands: argparse._SubParsersAction) -> None:
    """Add `import minutes` and `import text` to the `newsletter` parser."""
    p = commands.add_parser("import", help="turn plain text into content files: meeting minutes, last year's updates")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)

    m = kinds.add_parser("minutes", help="read a meeting's actions into content/minutes/DATE-NETWORK.yaml")
    m.add_argument("file", type=Path, metavar="FILE", help="the minutes as plain text")
    m.add_argument("--network", required=True, metavar="ID", help="the network whose meeting it was")
    m.add_argument("--date", type=iso_date, required=True, help="the meeting's date, YYYY-MM-DD")
    add_dir(m)
    m.add_argument("--force", action="store_true", help="replace the minutes file if it exists")
    m.set_defaults(run=run_minutes)

    t = kinds.add_parser("text", help="turn a plain-text weekly update into content/issues/DATE.yaml")
    t.add_argument("file", type=Path, metavar="FILE", help="the update as plain text")
    add_dir(t)
    t.add_argument("--date", type=iso_date, help="the issue date, YYYY-MM-DD, if the text gives none")
    t.add_argument("--number", type=int, metavar="N", help="the update's number, if the text gives none")
    t.add_argument("--contacts", action="store_true", help="add its new Contact Details to newsletter.yaml")
    t.add_argument("--force", action="store_true", help="replace the issue file if it exists")
    t.set_defaults(run=run_text)


def run_minutes(args: argparse.Namespace) -> int:
    newsletter, _ = load_newsletter(args.dir)
    if args.network not in newsletter.network_ids:
        known = ", ".join(sorted(newsletter.network_ids))
        raise NotFound(f"unknown network '{args.network}' (networks: {known})")
    found = minutes.read_minutes(
        read_text(args.file), network=args.network, network_name=newsletter.network(args.network).name, date=args.date
    )
    path = args.dir / "content" / "minutes" / f"{args.date}-{args.network}.yaml"
    write_new(path, minutes.to_yaml(found, source=args.file.name), force=args.force)
    print(f"wrote {display_path(path)}: {len(found.actions)} action{'' if len(found.actions) == 1 else 's'}")
    for action in found.actions:
        due = f" (due {action.due})" if action.due else ""
        print(f"  line {action.line}: {action.owner}: {action.action}{due}")
        for doubt in action.doubts:
            print(f"    check: {doubt}")
    if found.doubts:
        print("Lines that may hold actions (commented at the end of the file):")
    for maybe in found.doubts:
        print(f"  line {maybe.line}: {maybe.reason}: {maybe.text}")
    return 0


def run_text(args: argparse.Namespace) -> int:
    newsletter, newsletter_source = load_newsletter(args.dir)
    try:
        imported = text.import_text(
            read_text(args.file),
            source=args.file.name,
            networks=[Named(n.id, n.name) for n in newsletter.networks],
            contacts=[Named(c.id, c.name) for c in newsletter.contacts],
            add_contacts=args.contacts,
            existing=_known_contacts(newsletter),
            date=args.date,
            number=args.number,
        )
    except ValueError as exc:
        raise ContentError([Problem(args.file, None, "", str(exc))]) from None
    path = args.dir / "content" / "issues" / f"{imported.date}.yaml"
    write_new(path, imported.yaml, force=args.force)
    print(f"wrote {display_path(path)} (Update No {imported.number}, {imported.date})")
    for note in imported.notes:
        print(f"  {display_path(args.file)}:{note.line}: {note.reason}" + (f": {note.text}" if note.text else ""))
    _contacts(imported, newsletter_source.path, add=args.contacts)
    return _check(args.dir, imported.date)


def _known_contacts(newsletter: Newsletter) -> dict[str, str]:
    known = {c.name.casefold(): c.id for c in newsletter.contacts}
    known |= {c.email.casefold(): c.id for c in newsletter.contacts if c.email}
    return known


def _contacts(imported: text.Imported, path: Path, *, add: bool) -> None:
    if not imported.contacts:
        return
    if add:
        contacts.add_to_newsletter(path, imported.contacts)
        print(f"added {len(imported.contacts)} contact(s) to {display_path(path)}")
        return
    print("New contacts for newsletter.yaml (or run again with --contacts --force to add them):")
    print(dump({"contacts": imported.contacts}), end="")


def _check(root: Path, date: dt.date) -> int:
    """`newsletter check` on the new issue: its warnings, or exactly why it does not pass."""
    try:
        warnings = check(load_folder(root), date=date)
    except ContentError as exc:
        print("newsletter check finds errors to fix before this issue can be sent:")
        for problem in exc.problems:
            print(f"  {problem}")
        return 1
    for problem in warnings:
        print(warning_line(problem))
    print(f"newsletter check: no errors, {len(warnings)} warning{'' if len(warnings) == 1 else 's'}")
    return 0
