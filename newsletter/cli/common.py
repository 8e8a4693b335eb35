"""Options and helpers shared by the command modules."""

from __future__ import annotations

import argparse
import datetime as dt
import socket
from pathlib import Path
from zoneinfo import ZoneInfo

import pydantic

from ..content import Newsletter, Schedule
from ..errors import ConfigError, NotFound, display_path
from ..settings import Settings, explain

Commands = argparse._SubParsersAction  # what each command module's register() is given


def iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def add_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", type=Path, default=Path(), help="newsletter folder (default: current folder)")


def add_date(p: argparse.ArgumentParser, *, default: str = "the newest issue file") -> None:
    p.add_argument("--date", type=iso_date, help=f"issue date, YYYY-MM-DD (default: {default})")


def today(newsletter: Newsletter) -> dt.date:
    """Today in the time zone of newsletter.yaml's schedule (without one, the schedule's default zone)."""
    zone = newsletter.schedule.zone if newsletter.schedule else ZoneInfo(Schedule.model_fields["timezone"].default)
    return dt.datetime.now(zone).date()


def settings() -> Settings:
    """The NEWSLETTER_* environment, with a bad value named in one line rather than a traceback."""
    try:
        return Settings()
    except pydantic.ValidationError as exc:
        raise ConfigError(explain(exc)) from None


def check_can_serve(root: Path, host: str, port: int) -> None:
    """Refuse, in one line, a port already taken or a folder with no newsletter.yaml, before a server starts."""
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            raise ConfigError(f"port {port} is in use: choose another with --port") from None
    if not (Path(root) / "newsletter.yaml").is_file():
        raise NotFound(f"no newsletter.yaml in {display_path(root)} (use --dir to point at the newsletter folder)")
