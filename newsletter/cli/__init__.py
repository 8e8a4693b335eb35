"""The `newsletter` command: a thin shell that reads settings and calls the package.

Each sub-module registers its commands; errors become one line on stderr and an exit code.
"""

from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from ..errors import ContentError, NewsletterError
from . import content, delivery, desk, dns, imports, inbound, schedule, settings, subscribers, web

COMMAND_MODULES = (content, desk, subscribers, delivery, schedule, web, inbound, dns, imports, settings)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="newsletter", description="Compose, preview and send the weekly networks update."
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(commands)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except ContentError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return exc.exit_code
    except NewsletterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as other Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
