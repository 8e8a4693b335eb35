"""Command: settings — every NEWSLETTER_* setting with the value in force (secrets masked), its source and help."""

from __future__ import annotations

import argparse

from ..settings import Settings, expects, shown, variable
from .common import settings


def register(commands: argparse._SubParsersAction) -> None:
    """Add this module's commands to the `newsletter` parser."""
    p = commands.add_parser("settings", help="list the NEWSLETTER_* settings: value in force, where it came from, help")
    p.add_argument(
        "--format",
        choices=("text", "markdown"),
        default="text",
        help="text: the values in force; markdown: the defaults, as the README's table (default: text)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print(markdown() if args.format == "markdown" else text(settings()), end="")
    return 0


def text(config: Settings) -> str:
    """Two lines a setting: `VARIABLE=value  (source)`, then what it is and what it takes."""
    lines = []
    for name, field in Settings.model_fields.items():
        lines.append(f"{variable(name)}={shown(name, getattr(config, name))}  ({config.source(name)})")
        lines.append(f"    {field.description} (takes {expects(name)})")
    return "\n".join(lines) + "\n"


def markdown() -> str:
    """The README's settings table: each variable with its default, what it takes and its help."""
    rows = ["| variable | default | takes | what |", "| --- | --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        rows.append(f"| `{variable(name)}` | {shown(name, field.default)} | {expects(name)} | {field.description} |")
    return "\n".join(rows) + "\n"
