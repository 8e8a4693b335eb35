"""Commands: `newsletter subscribers import|add|unsubscribe|remove|list|export` and `newsletter networks`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from .. import importer, subscribers
from ..content import Newsletter
from ..errors import NotFound, display_path
from ..folder import load_newsletter
from ..store import open_store
from ..subscribers import Status, Subscriber
from .common import Commands, add_dir, settings


def register(commands: Commands) -> None:
    """Add this module's commands to the `newsletter` parser."""
    group = commands.add_parser("subscribers", help="import, add, list and unsubscribe subscribers")
    sub = group.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = sub.add_parser("import", help="import a subscribers CSV (email,name,organisation,networks)")
    p.add_argument("file", type=Path)
    p.add_argument("--dry-run", action="store_true", help="check and count, write nothing")
    p.add_argument("--strict", action="store_true", help="import nothing if any row is rejected")
    p.set_defaults(run=run_import)

    p = sub.add_parser("add", help="add one subscriber")
    p.add_argument("email")
    p.add_argument(
        "--network",
        action="extend",
        type=lambda text: [n for n in text.split(",") if n],
        required=True,
        metavar="ID",
        help="a network id; repeat it (or give ids joined by commas) for several",
    )
    p.add_argument("--name")
    p.add_argument("--organisation")
    p.set_defaults(run=run_add)

    p = sub.add_parser("unsubscribe", help="stop sending to an address (kept, so imports do not add it back)")
    p.add_argument("email")
    p.set_defaults(run=run_unsubscribe)

    p = sub.add_parser("remove", help="delete an address and everything kept about it")
    p.add_argument("email")
    p.set_defaults(run=run_remove)

    p = sub.add_parser("list", help="list subscribers")
    p.add_argument("--network", metavar="ID")
    p.add_argument("--status", choices=[s.value for s in Status])
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.set_defaults(run=run_list)

    p = sub.add_parser("export", help="write every subscriber to a CSV that imports back")
    p.add_argument("file", type=Path, help="the CSV to write, or - for standard output")
    p.set_defaults(run=run_export)

    for p in sub.choices.values():
        add_dir(p)

    p = commands.add_parser("networks", help="each network with its active and suppressed subscribers")
    add_dir(p)
    p.set_defaults(run=run_networks)


@contextmanager
def _store(args: argparse.Namespace) -> Iterator[tuple[Newsletter, sa.Engine]]:
    """The newsletter settings and an open store for the folder in --dir."""
    newsletter, _ = load_newsletter(args.dir)  # also refuses a wrong --dir before a database is created there
    engine = open_store(settings().database_for(args.dir))
    try:
        yield newsletter, engine
    finally:
        engine.dispose()


def _smtputf8() -> bool:
    """Whether the delivery side can send to a non-ASCII local part: the relay says so, or mail goes to the outbox."""
    current = settings()
    return current.smtputf8 or current.smtp_url is None


def run_import(args: argparse.Namespace) -> int:
    with _store(args) as (newsletter, engine):
        report = importer.import_csv(
            engine,
            args.file,
            known_networks=newsletter.network_ids,
            smtputf8=_smtputf8(),
            dry_run=args.dry_run,
            strict=args.strict,
        )
    where = display_path(args.file)
    for line, reason in report.rejected:
        print(f"{where}:{line}: {reason}", file=sys.stderr)
    summary = report.summary()
    if args.dry_run:
        summary += " (dry run)"
    elif args.strict and report.rejected:
        summary += " (--strict: fix the rejected rows and import again)"
    print(summary)
    return 1 if report.rejected else 0


def run_add(args: argparse.Namespace) -> int:
    with _store(args) as (newsletter, engine):
        added = subscribers.add(
            engine,
            args.email,
            networks=args.network,
            known_networks=newsletter.network_ids,
            name=args.name,
            organisation=args.organisation,
            smtputf8=_smtputf8(),
        )
    print(f"added {added.email} to {', '.join(sorted(added.networks))}")
    return 0


def _existing(engine: sa.Engine, email: str) -> Subscriber:
    found = subscribers.find(engine, email)
    if found is None:
        raise NotFound(f"no subscriber {email.strip()!r}")
    return found


def run_unsubscribe(args: argparse.Namespace) -> int:
    with _store(args) as (_, engine):
        found = _existing(engine, args.email)
        if found.status != Status.ACTIVE:
            print(f"{found.email} is already {found.status} (since {found.status_changed_at:%Y-%m-%d}); not changed")
            return 0
        subscribers.set_status(engine, found.id, Status.UNSUBSCRIBED, reason="unsubscribed by an editor")
    print(f"unsubscribed {found.email}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    with _store(args) as (_, engine):
        found = _existing(engine, args.email)
        subscribers.remove(engine, found.email)
    print(f"removed {found.email}")
    if found.status != Status.ACTIVE:
        print(f"warning: {found.email} was {found.status}; importing it again will add it as active", file=sys.stderr)
    return 0


def run_list(args: argparse.Namespace) -> int:
    with _store(args) as (newsletter, engine):
        if args.network is not None and args.network not in newsletter.network_ids:
            print(f"warning: network {args.network!r} is not in newsletter.yaml", file=sys.stderr)
        rows = subscribers.listing(engine, network=args.network, status=Status(args.status) if args.status else None)
        {"table": _table, "csv": _csv, "json": _json}[args.format](rows)
    return 0


def run_export(args: argparse.Namespace) -> int:
    with _store(args) as (_, engine):
        if str(args.file) == "-":
            importer.write_csv(subscribers.listing(engine), sys.stdout)
            return 0
        count = importer.export_csv(engine, args.file)
    print(f"wrote {count} subscriber(s) to {display_path(args.file)}")
    return 0


def _csv(rows: Iterable[Subscriber]) -> None:
    importer.write_csv(rows, sys.stdout)


def _json(rows: Iterable[Subscriber]) -> None:
    out = sys.stdout
    out.write("[")
    for i, s in enumerate(rows):
        item = {
            "email": s.email,
            "name": s.name,
            "organisation": s.organisation,
            "networks": sorted(s.networks),
            "status": s.status.value,
        }
        out.write(("," if i else "") + "\n  " + json.dumps(item, ensure_ascii=False))
    out.write("\n]\n")


def _table(rows: Iterable[Subscriber]) -> None:
    table = [("EMAIL", "NAME", "ORGANISATION", "NETWORKS", "STATUS")]
    table += [(s.email, s.name or "", s.organisation or "", ",".join(sorted(s.networks)), s.status.value) for s in rows]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[4])
    print(f"{len(table) - 1} subscriber(s)")


def run_networks(args: argparse.Namespace) -> int:
    with _store(args) as (newsletter, engine):
        counts = subscribers.network_counts(engine)
    print(_networks_table(newsletter, counts))
    for network in sorted(set(counts) - newsletter.network_ids):
        members = sum(counts[network].values())
        print(
            f"warning: network {network!r} is not in newsletter.yaml but has {members} member(s), who get no issue "
            f"through it; see `newsletter subscribers list --network {network}`",
            file=sys.stderr,
        )
    return 0


def _networks_table(newsletter: Newsletter, counts: dict[str, dict[Status, int]]) -> str:
    rows = [("NETWORK", "NAME", "ACTIVE", "SUPPRESSED")]
    for network in newsletter.networks:
        by_status = counts.get(network.id, {})
        active = by_status.get(Status.ACTIVE, 0)
        rows.append((network.id, network.name, str(active), str(sum(by_status.values()) - active)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(
        "  ".join(
            cell.rjust(w) if i >= 2 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    )
