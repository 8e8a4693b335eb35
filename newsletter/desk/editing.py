"""The desk's form and the YAML file: values read out for the form, and written back round-trip.

Only the keys the form shows are touched, in place in ruamel.yaml's CommentedMap/CommentedSeq, so
the editor's comments, key order, quoting and any key the form does not know stay.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections.abc import Callable
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import LiteralScalarString
from ruamel.yaml.util import load_yaml_guess_indent

ISSUE_KEYS = (
    "number", "date", "subject", "preheader", "intro", "networks", "items", "sections", "meetings", "resources"
)  # fmt: skip
ITEM_KEYS = ("programme", "update", "action", "links", "networks", "remind_until", "image")
SECTION_KEYS = ("section", "title", "intro", "articles", "items")
ARTICLE_KEYS = ("title", "body", "links", "networks", "image")
IMAGE_KEYS = ("src", "alt")
MEETING_KEYS = ("network", "title", "date", "start", "end", "location", "contact")
RESOURCE_KEYS = ("title", "publisher", "published", "url")
MARKDOWN = frozenset({"intro", "update", "action", "body"})
DATES = frozenset({"date", "remind_until", "published"})
FLOW_LISTS = frozenset({"networks"})

Form = dict[str, Any]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# file -> form --------------------------------------------------------------------------------


def form_values(text: str) -> Form:
    """The issue file's values as the form shows them: text for every field, lists for the repeated parts."""
    data = YAML(typ="rt").load(text) or {}
    return {
        "subject": _text(data.get("subject")),
        "preheader": _text(data.get("preheader")),
        "intro": _text(data.get("intro")),
        "items": [_item_values(i, n) for n, i in enumerate(data.get("items") or [])],
        "sections": [_section_values(s, n) for n, s in enumerate(data.get("sections") or [])],
        "meetings": [
            {"origin": n, **{k: _text(m.get(k)) for k in MEETING_KEYS}}
            for n, m in enumerate(data.get("meetings") or [])
        ],
        "resources": [
            {"origin": n, **{k: _text(r.get(k)) for k in RESOURCE_KEYS}}
            for n, r in enumerate(data.get("resources") or [])
        ],
    }


def _item_values(item: Any, origin: int) -> Form:
    item = item if isinstance(item, dict) else {}
    return {
        "origin": origin,
        "programme": _text(item.get("programme")),
        "update": _text(item.get("update")),
        "action": _text(item.get("action")),
        **_shared_values(item),
        "remind_until": _text(item.get("remind_until")),
    }


def _section_values(section: Any, origin: int) -> Form:
    section = section if isinstance(section, dict) else {}
    return {
        "origin": origin,
        "section": _text(section.get("section")),
        "title": _text(section.get("title")),
        "intro": _text(section.get("intro")),
        "articles": [_article_values(a, n) for n, a in enumerate(section.get("articles") or [])],
        "items": [_item_values(i, n) for n, i in enumerate(section.get("items") or [])],
    }


def _article_values(article: Any, origin: int) -> Form:
    article = article if isinstance(article, dict) else {}
    return {
        "origin": origin,
        "title": _text(article.get("title")),
        "body": _text(article.get("body")),
        **_shared_values(article),
    }


def _shared_values(entry: dict[str, Any]) -> Form:
    """What items and articles both have: links, networks and a picture."""
    links = [
        f"{_text(link.get('text'))} | {_text(link.get('url'))}"
        for link in entry.get("links") or []
        if isinstance(link, dict)
    ]
    image = entry.get("image")
    image = image if isinstance(image, dict) else {}
    return {
        "links": "\n".join(links),
        "networks": [str(n) for n in entry.get("networks") or []],
        "image_src": _text(image.get("src")),
        "image_alt": _text(image.get("alt")),
    }


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).rstrip("\n")


# form -> file --------------------------------------------------------------------------------


def apply_form(text: str, form: Form) -> str:
    """`text` with the form's values written in; everything the form does not show is left as it was."""
    _, indent, offset = load_yaml_guess_indent(text)
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold an editor's long line
    sequence, offset = indent or 4, offset if offset is not None else 2  # `  - key:` unless the file says otherwise
    yaml.indent(mapping=max(sequence - offset, 2), sequence=sequence, offset=offset)
    data = yaml.load(text)
    if not isinstance(data, CommentedMap):
        data = CommentedMap()
    for key in ("subject", "preheader", "intro"):
        _set(data, key, form.get(key, ""), ISSUE_KEYS)
    _set(data, "items", _merge(data.get("items"), form.get("items", []), _item), ISSUE_KEYS)
    _set(data, "sections", _merge(data.get("sections"), form.get("sections", []), _section), ISSUE_KEYS)
    _set(data, "meetings", _merge(data.get("meetings"), form.get("meetings", []), _fields(MEETING_KEYS)), ISSUE_KEYS)
    resources = _merge(data.get("resources"), form.get("resources", []), _fields(RESOURCE_KEYS))
    _set(data, "resources", resources, ISSUE_KEYS)
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def _item(target: CommentedMap, values: Form) -> None:
    for key in ("programme", "update", "action"):
        _set(target, key, values.get(key, ""), ITEM_KEYS)
    _shared(target, values, ITEM_KEYS)
    _set(target, "remind_until", values.get("remind_until", ""), ITEM_KEYS)


def _section(target: CommentedMap, values: Form) -> None:
    for key in ("section", "title", "intro"):
        _set(target, key, values.get(key, ""), SECTION_KEYS)
    _set(target, "articles", _merge(target.get("articles"), values.get("articles", []), _article), SECTION_KEYS)
    _set(target, "items", _merge(target.get("items"), values.get("items", []), _item), SECTION_KEYS)


def _article(target: CommentedMap, values: Form) -> None:
    for key in ("title", "body"):
        _set(target, key, values.get(key, ""), ARTICLE_KEYS)
    _shared(target, values, ARTICLE_KEYS)


def _shared(target: CommentedMap, values: Form, order: tuple[str, ...]) -> None:
    """Links, networks and the picture of an item or article."""
    _set(target, "links", parse_links(values.get("links", "")), order)
    networks = list(values.get("networks") or [])
    if set(networks) != set(target.get("networks") or []):  # ticked boxes come in the newsletter's order
        _set(target, "networks", networks, order)
    src, alt = str(values.get("image_src", "")).strip(), str(values.get("image_alt", "")).strip()
    image = target.get("image")
    if not isinstance(image, CommentedMap):
        image = CommentedMap()
        image.fa.set_flow_style()  # `image: {src: chart.png, alt: ...}`, as FORMAT.md writes it
    _set(image, "src", src, IMAGE_KEYS)
    _set(image, "alt", alt, IMAGE_KEYS)  # a picture without alt text: the reader names the missing field
    _set(target, "image", image, order)


def _fields(order: tuple[str, ...]) -> Callable[[CommentedMap, Form], None]:
    def update(target: CommentedMap, values: Form) -> None:
        for key in order:
            _set(target, key, values.get(key, ""), order)

    return update


def parse_links(text: str) -> list[dict[str, str]]:
    """'About the study | https://...' a line (or the words, then the address after the last space)."""
    links = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        words, bar, url = line.rpartition("|")
        if not bar:
            words, _, url = line.rpartition(" ")
        links.append({"text": words.strip(), "url": url.strip()})
    return links


def _merge(old: Any, forms: list[Form], update: Callable[[CommentedMap, Form], None]) -> CommentedSeq:
    """The form's entries in the form's order, each updated in place in the entry it came from (`origin`)."""
    old_seq = old if isinstance(old, CommentedSeq) else CommentedSeq()
    entries = []
    for values in forms:
        origin = values.get("origin")
        reuse = isinstance(origin, int) and 0 <= origin < len(old_seq) and isinstance(old_seq[origin], CommentedMap)
        entry = old_seq[origin] if reuse else CommentedMap()
        update(entry, values)
        entries.append(entry)
    if len(entries) != len(old_seq) or any(a is not b for a, b in zip(entries, old_seq, strict=False)):
        del old_seq[:]
        old_seq.extend(entries)
    return old_seq


def _set(target: CommentedMap, key: str, value: Any, order: tuple[str, ...]) -> None:
    """Set, replace or remove `key` (an empty value removes it), keeping the old value when it is the same."""
    new = _typed(key, value)
    if new is None:
        target.pop(key, None)
        return
    if key in target and _same(target[key], new):
        if isinstance(new, CommentedSeq) and target[key] is not new and not isinstance(target[key], CommentedSeq):
            target[key] = new
        return
    if key in target:
        target[key] = new
        return
    before = [k for k in order[: order.index(key)] if k in target] if key in order else list(target)
    position = list(target).index(before[-1]) + 1 if before else 0
    target.insert(position, key, new)


def _typed(key: str, value: Any) -> Any:
    """The form's value as YAML should hold it; None for an empty field."""
    if isinstance(value, CommentedSeq | CommentedMap):
        return value if len(value) else None
    if isinstance(value, list):
        if not value:
            return None
        seq = CommentedSeq(CommentedMap(v) if isinstance(v, dict) else v for v in value)
        if key in FLOW_LISTS:
            seq.fa.set_flow_style()
        return seq
    text = str(value).replace("\r\n", "\n").strip()
    if not text:
        return None
    if key in MARKDOWN:
        return LiteralScalarString(text + "\n")
    if key in DATES:
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            return text  # kept as typed: the reader names the field
    return text


def _same(old: Any, new: Any) -> bool:
    if isinstance(new, str) and isinstance(old, str):
        return old.rstrip("\n") == new.rstrip("\n")
    if isinstance(new, list) and isinstance(old, list):
        return len(old) == len(new) and all(_same(a, b) for a, b in zip(old, new, strict=True))
    if isinstance(new, dict) and isinstance(old, dict):
        return set(old) == set(new) and all(_same(old[k], new[k]) for k in new)
    return bool(type(old) is type(new) and old == new)
