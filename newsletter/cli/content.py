"""Commands: `newsletter check [--links]`, `newsletter render` and `newsletter preview`."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from pathlib import Path

from ..assembly import assemble
from ..checks import check
from ..errors import ConfigError, NotFound, Problem, display_path
from ..folder import Folder, load_folder
from ..linkcheck import check_links, issue_links
from ..render import render
from .common import Commands, add_date, add_dir, check_can_serve, settings


def register(commands: Commands) -> None:
    """Add this module's commands to the `newsletter` parser."""
    p = commands.add_parser("check", help="validate the content and warn about what would read or deliver badly")
    add_dir(p)
    add_date(p)
    p.add_argument(
        "--links",
        action="store_true",
        help="also follow every link of the issue; exit 1 if any is broken (NEWSLETTER_LINK_TIMEOUT_SECONDS each)",
    )
    p.set_defaults(run=run_check)

    p = commands.add_parser("render", help="write the issue as OUT/issue.html and OUT/issue.txt (or print it as JSON)")
    add_dir(p)
    add_date(p)
    p.add_argument("--network", action="append", metavar="ID", help="as a reader of this network sees it (repeatable)")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, metavar="OUT", help="folder to write issue.html and issue.txt into")
    target.add_argument("--format", choices=["json"], help="print the assembled issue as JSON instead")
    p.set_defaults(run=run_render)

    p = commands.add_parser("preview", help="serve a live-reloading preview on 127.0.0.1")
    add_dir(p)
    add_date(p)
    p.add_argument("--port", type=int, default=8001, help="port on 127.0.0.1 (default: 8001, beside serve on 8000)")
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests for this host name, e.g. behind a tunnel (default: localhost and 127.0.0.1 only)",
    )
    p.set_defaults(run=run_preview)


def warning_line(problem: Problem) -> str:
    where = display_path(problem.path) + (f":{problem.line}" if problem.line else "")
    return f"{where}: warning: {problem.field + ': ' if problem.field else ''}{problem.message}"


def run_check(args: argparse.Namespace) -> int:
    folder = load_folder(args.dir)  # ContentError: every error, one a line, exit 1
    warnings = check(folder, date=args.date)
    for problem in warnings:
        print(warning_line(problem))
    name = display_path(folder.sources[folder.issue(args.date).date].path)
    count = f"{len(warnings)} warning{'' if len(warnings) == 1 else 's'}"
    print(f"{name}: no errors, {count}")
    return _check_links(folder, args.date) if args.links else 0


def _check_links(folder: Folder, date: dt.date | None) -> int:
    """`check --links`: each broken or redirected link as a warning at its field; 1 if any is broken."""
    timeout = settings().link_timeout_seconds
    links = issue_links(folder, date)
    found = asyncio.run(check_links(links, seconds=timeout))
    for link in found:
        print(warning_line(link.problem()))
    broken = sum(link.broken for link in found)
    name = display_path(folder.sources[folder.issue(date).date].path)
    print(f"{name}: {len(links)} links followed, {broken} broken, {len(found) - broken} redirected")
    return 1 if broken else 0


def _networks(folder: Folder, ids: list[str] | None) -> frozenset[str] | None:
    if not ids:
        return None
    unknown = [n for n in ids if n not in folder.newsletter.network_ids]
    if unknown:
        known = ", ".join(sorted(folder.newsletter.network_ids))
        raise NotFound(f"unknown network '{unknown[0]}' (networks: {known})")
    return frozenset(ids)


def run_render(args: argparse.Namespace) -> int:
    folder = load_folder(args.dir)
    issue = assemble(folder, args.date).variant(_networks(folder, args.network))
    if args.format == "json":
        json.dump(issue.as_json(), sys.stdout, ensure_ascii=False, indent=2)
        print()
        return 0
    rendered = render(issue)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "issue.html").write_text(rendered.html, encoding="utf-8")
        (args.out / "issue.txt").write_text(rendered.text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write to {display_path(args.out)}: {exc.strerror}") from None
    size = len(rendered.html.encode())
    print(
        f"wrote {display_path(args.out / 'issue.html')} ({size / 1024:.1f} KB) and {display_path(args.out / 'issue.txt')}"
    )
    return 0


def run_preview(args: argparse.Namespace) -> int:
    from ..preview import PreviewServer, create_preview_app

    check_can_serve(args.dir, "127.0.0.1", args.port)
    print(f"Preview at http://127.0.0.1:{args.port}/ (Ctrl+C to stop)", file=sys.stderr)
    app = create_preview_app(args.dir, date=args.date, allowed_hosts=args.allow_host)
    PreviewServer(app, port=args.port).run()
    return 0
