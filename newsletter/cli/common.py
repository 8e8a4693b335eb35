"""Options and helpers shared by the command modules."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import pydantic

from ..errors import ConfigError
from ..settings import Settings, explain


def iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def add_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", type=Path, default=Path(), help="newsletter folder (default: current folder)")


def add_date(p: argparse.ArgumentParser) -> None:
    p.add_argument("--date", type=iso_date, help="issue date, YYYY-MM-DD (default: the newest issue file)")


def settings() -> Settings:
    """The NEWSLETTER_* environment, with a bad value named in one line rather than a traceback."""
    try:
        return Settings()
    except pydantic.ValidationError as exc:
        raise ConfigError(explain(exc)) from None
