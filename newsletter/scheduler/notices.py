"""The emails the scheduler sends the editor when a firing sends nothing: their texts, from templates/notices.

Each template renders a subject line, a blank line, then the text. Whether a firing's notice was
already sent (by another scheduler) is the delivery ledger's `first_notice` for now.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

import jinja2

from ..templates import ROOT

TEMPLATES = ROOT / "notices"


@dataclass(frozen=True)
class Notice:
    """A plain-text email to the editor."""

    subject: str
    text: str


def compose(name: str, /, **context: Any) -> Notice:
    """The notice of templates/notices/`name`.txt.j2 filled with `context`."""
    rendered = _environment().get_template(f"{name}.txt.j2").render(**context)
    subject, _, text = rendered.partition("\n\n")
    return Notice(subject=subject.strip(), text=text.strip("\n").rstrip())


def _day(date: dt.date) -> str:
    return f"{date:%A} {date.day} {date:%B %Y}"


def _clock(at: dt.datetime) -> str:
    return f"{at:%H:%M %Z}"


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # plain-text email
    )
    env.filters.update(day=_day, clock=_clock)
    return env
