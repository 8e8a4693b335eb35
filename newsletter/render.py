"""An assembled issue as an email body: Jinja2 -> MJML -> HTML with inlined CSS, plus a text part."""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2
import mjml
from markupsafe import Markup
from premailer import Premailer

from . import links, markup, tokens
from .assembly import AssembledIssue
from .errors import ContentError, Problem
from .templates import EMAIL as TEMPLATES

HTML_TEMPLATE = "issue.mjml.j2"
TEXT_TEMPLATE = "issue.txt.j2"
INLINE_CSS = "inline.css"
FONTS = "-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"


@dataclass(frozen=True)
class Rendered:
    subject: str
    preheader: str
    html: str
    text: str


def render(issue: AssembledIssue, *, templates: Path | None = None, personal: bool = True) -> Rendered:
    """The email of `issue` (from its folder's templates unless told); `personal` adds links holding tokens.PLACEHOLDER."""
    folder = Path(templates or issue.templates or TEMPLATES)
    context = _context(issue, personal=personal)
    environment = _environment(folder)
    html = compile_mjml(_fill(environment, HTML_TEMPLATE, context), name=str(folder / HTML_TEMPLATE))
    html = inline_css(html, css=stylesheet(folder))
    text = _tidy_text(_fill(environment, TEXT_TEMPLATE, context))
    return Rendered(issue.subject, issue.preheader, html, text)


def stylesheet(templates: Path | None = None) -> str:
    """The CSS that inline_css copies onto elements (templates/email/inline.css), self-contained."""
    folder = Path(templates or TEMPLATES)
    css = _fill(_environment(folder), INLINE_CSS, {})
    if found := re.search(r"@import\b", css, flags=re.IGNORECASE):
        line = css.count("\n", 0, found.start()) + 1
        # cssutils would fetch the imported sheet whatever premailer is told
        raise ContentError(
            [Problem(folder / INLINE_CSS, line, "", "@import is not allowed: rendering fetches nothing")]
        )
    return css


def render_mjml(issue: AssembledIssue, *, templates: Path | None = None, personal: bool = True) -> str:
    """The first stage alone: the MJML source of the email (for the benchmark and debugging)."""
    return _fill(
        _environment(Path(templates or issue.templates or TEMPLATES)), HTML_TEMPLATE, _context(issue, personal=personal)
    )


def compile_mjml(source: str, *, name: str = HTML_TEMPLATE) -> str:
    """MJML to HTML, with no web fonts (nothing is fetched when the email is opened or rendered)."""
    try:
        return mjml.mjml2html(source, disable_comments=True, fonts={})
    except ValueError as exc:
        raise ContentError([Problem(Path(name), None, "", f"MJML: {exc}")]) from None


def inline_css(html: str, *, css: str) -> str:
    """`css` copied onto each element it matches; MJML's own <style> blocks (resets, @media) stay as they are.

    Inlining MJML's resets too would repeat them on every table cell (a third more bytes).
    """
    html = _STYLE_TAG.sub(rf"<style{_IGNORE}\1", html)
    html = (
        Premailer(
            html,
            css_text=css,
            allow_network=False,  # no remote stylesheets, ever
            allow_loading_external_files=False,
            keep_style_tags=False,  # `css` itself is not copied into <head>: it is inline already
            remove_classes=False,  # the @media rules select by class
            strip_important=False,
            disable_validation=True,
            cssutils_logging_handler=_QUIET,
            cssutils_logging_level=logging.CRITICAL,
        )
        .transform()
        .replace(_IGNORE, "")
    )
    return html if html.lstrip()[:9].lower() == "<!doctype" else "<!doctype html>\n" + html  # lxml drops it


_IGNORE = ' data-premailer="ignore"'
_STYLE_TAG = re.compile(r"<style(?![^>]*data-premailer)([\s>])")
_QUIET = logging.NullHandler()  # cssutils reports every mso-* property it does not know


def _tidy_text(text: str) -> str:
    """At most one blank line in a row, no trailing spaces, one final newline."""
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


# templates ---------------------------------------------------------------------------------


def _searched(environment: jinja2.Environment) -> Path:
    """The folder the environment's templates come from, for naming a missing or broken one."""
    loader = environment.loader
    assert isinstance(loader, jinja2.FileSystemLoader)
    return Path(loader.searchpath[0])


@lru_cache(maxsize=8)
def _environment(templates: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        autoescape=lambda name: name is not None and not name.endswith(".txt.j2"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=True,
    )
    env.filters.update(
        markdown=markup.to_html,
        markdown_text=markup.to_text,
        long_date=_long_date,
        short_date=lambda d: f"{d.day} {d:%B %Y}",
        underline=lambda text, char="=": char * len(text),
        breakable=lambda address: Markup("<wbr>@").join(str(address).split("@")),  # wrap before the domain
    )
    return env


def _fill(environment: jinja2.Environment, name: str, context: dict) -> str:
    try:
        return environment.get_template(name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise ContentError([Problem(Path(exc.filename or name), exc.lineno, "", f"template: {exc.message}")]) from None
    except jinja2.TemplateNotFound as exc:
        raise ContentError([Problem(_searched(environment) / str(exc.name), None, "", "template not found")]) from None
    except jinja2.UndefinedError as exc:
        raise ContentError([Problem(_searched(environment) / name, None, "", f"template: {exc.message}")]) from None


def _long_date(date: dt.date) -> str:
    return f"{date:%A} {date.day} {date:%B %Y}"


def _context(issue: AssembledIssue, *, personal: bool) -> dict:
    newsletter = issue.newsletter
    base = newsletter.public_url
    network_names = {n.id: n.name for n in newsletter.networks}
    contacts = {c.id: c for c in newsletter.contacts}
    return {
        "issue": issue,
        "newsletter": newsletter,
        "fonts": FONTS,
        "personal": personal,
        "network_names": network_names,
        "contacts_by_id": contacts,
        "archive_url": links.archive_url(base, issue.date),
        "archive_index_url": links.archive_index_url(base),
        "unsubscribe_url": links.unsubscribe_url(base, tokens.PLACEHOLDER) if personal else None,
        "preferences_url": links.preferences_url(base, tokens.PLACEHOLDER) if personal else None,
        "meetings": [
            {
                "meeting": m,
                "network": network_names.get(m.network, m.network),
                "contact": contacts.get(m.contact) if m.contact else None,
                "ics_url": links.meeting_ics_url(base, m),
                "online": bool(m.location and re.match(r"https?://", m.location)),
                "day": _long_date(m.date),
                "times": f"{m.start}–{m.end}" if m.start and m.end else (m.start or ""),
            }
            for m in issue.meetings
        ],
        "audience": (
            ", ".join(network_names.get(n, n) for n in issue.networks)
            if set(issue.networks) != set(network_names)
            else None
        ),
    }
