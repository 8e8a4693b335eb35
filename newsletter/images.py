"""Pictures under content/images/: their type and size read from the file's header, and their public name.

The header is read here rather than with an imaging library: three formats, a few bytes each, and
nothing is decoded, so a hostile file costs no more than reading it.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass
from pathlib import Path

MAX_BYTES = 1024 * 1024  # a picture in an email is read on a phone, often on a mobile connection
MAX_SIDE = 10_000  # larger is a scan or a camera original, not a picture for an email
DIGEST = 16  # hex digits of the file's SHA-256 in its public name: a changed file gets a new address
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
PUBLIC_NAME = re.compile(rf"([0-9a-f]{{{DIGEST}}})-({NAME.pattern})")
MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif"}
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}  # JPEG start-of-frame markers


class BadImage(ValueError):
    """A file that cannot be shown in an email; the message says why in an editor's words."""


@dataclass(frozen=True)
class ImageFile:
    """A checked picture: where it is, its type, pixel size, bytes and content digest."""

    path: Path
    kind: str  # png, jpeg or gif
    width: int
    height: int
    size: int
    digest: str

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.kind]

    @property
    def public_name(self) -> str:
        """`<sha256 prefix>-<file name>`: the name the web service publishes it under."""
        return f"{self.digest[:DIGEST]}-{self.path.name}"


def local_name(src: str) -> str | None:
    """The file name under content/images/ that `src` names, or None for a URL."""
    if re.match(r"[a-z][a-z0-9+.-]*:", src, flags=re.IGNORECASE):
        return None
    return src.removeprefix("content/").removeprefix("images/")


def read_image(folder: Path, name: str) -> ImageFile:
    """The picture `name` in `folder` (content/images/), checked; BadImage says what is wrong with it."""
    if not NAME.fullmatch(name):
        raise BadImage(
            f"'{name}' is not a file name in content/images/: use letters, digits, '.', '-' and '_', no folders"
        )
    path = folder / name
    if not path.is_file():
        raise BadImage(f"no such picture: {path}")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise BadImage(f"{name} is {size / 1024 / 1024:.1f} MB: make it smaller than 1 MB (600 px wide is enough)")
    data = path.read_bytes()
    kind, width, height = probe(data, name=name)
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise BadImage(f"{name} is {width}×{height} pixels: scale it to about 1200 px wide at most")
    return ImageFile(path, kind, width, height, len(data), hashlib.sha256(data).hexdigest())


def probe(data: bytes, *, name: str = "the file") -> tuple[str, int, int]:
    """(type, width, height) from a PNG, JPEG or GIF header; BadImage for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return "png", width, height
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return "gif", width, height
    if data.startswith(b"\xff\xd8"):
        return "jpeg", *_jpeg_size(data, name)
    raise BadImage(f"{name} is not a PNG, JPEG or GIF picture")


def _jpeg_size(data: bytes, name: str) -> tuple[int, int]:
    """Walk the JPEG's segments to the frame header, which holds the size."""
    at = 2
    while at + 9 <= len(data):
        if data[at] != 0xFF:
            break
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        at += 2 + length
    raise BadImage(f"{name} is a damaged JPEG: its size cannot be read")
