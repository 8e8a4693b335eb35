"""Pictures: headers read from the file, the folder's checks, the email and text parts, and the web route."""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from pathlib import Path

import httpx
import pytest
from conftest import served

from newsletter.assembly import assemble
from newsletter.checks import check
from newsletter.errors import ContentError
from newsletter.folder import load_folder
from newsletter.images import BadImage, probe
from newsletter.message import Composer
from newsletter.render import render
from newsletter.store import open_store
from newsletter.tokens import Signer
from newsletter.web import create_app

PICTURE = "content/images/children-playing.png"
ISSUE = "content/issues/2026-11-27.yaml"


def png(width: int, height: int) -> bytes:
    """A real, tiny PNG of one grey colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


def test_probe_reads_png_jpeg_and_gif_headers():
    assert probe(png(3, 2)) == ("png", 3, 2)
    assert probe(jpeg(640, 480)) == ("jpeg", 640, 480)
    assert probe(b"GIF89a" + struct.pack("<HH", 120, 90) + b"\x00" * 8) == ("gif", 120, 90)
    for bad in (b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"", b"\xff\xd8\xff\xe0\x00"):
        with pytest.raises(BadImage):
            probe(bad)


def test_the_weekly_links_its_picture_from_the_web_service_scaled_to_the_column(example_dir: Path):
    issue = assemble(load_folder(example_dir))
    digest = hashlib.sha256((example_dir / PICTURE).read_bytes()).hexdigest()[:16]
    email = render(issue)
    [img] = re.findall(r"<img [^>]*>", email.html)
    assert f'src="https://news.improvement.example.org/images/{digest}-children-playing.png"' in img
    assert 'alt="Three children playing happily together"' in img
    width = int(re.search(r'width="(\d+)"', img).group(1))
    assert width <= 600 and "max-width:" in img and "width:100%" in img and "height:auto" in img
    assert "font-style:italic" in img and "height=" not in img  # blocked: the alt text reads, no empty box
    assert "   [Picture: Three children playing happily together]" in email.text
    composer = Composer(issue.newsletter, email, issue_date=issue.date, signer=Signer("k"))
    message = composer.message(subscriber_id=1, email="jo@example.org", name=None).data.decode("ascii", "replace")
    assert "image/png" not in message and "cid:" not in message  # linked, never attached


def test_a_changed_picture_gets_a_new_address(example_dir: Path):
    before = render(assemble(load_folder(example_dir))).html
    (example_dir / PICTURE).write_bytes(png(40, 20))
    after = render(assemble(load_folder(example_dir))).html
    address = re.compile(r'src="([^"]+children-playing\.png)"')
    assert address.search(before).group(1) != address.search(after).group(1)
    assert 'width="40"' in after  # a small picture is not blown up


@pytest.mark.parametrize(
    ("content", "src", "expected"),
    [
        (b"not a picture", "children-playing.png", "children-playing.png is not a PNG, JPEG or GIF picture"),
        (png(1, 1) + b"\x00" * (1024 * 1024), "children-playing.png", "MB: make it smaller than 1 MB"),
        (png(12000, 10), "children-playing.png", "is 12000×10 pixels: scale it to about 1200 px wide at most"),
        (None, "missing.png", "no such picture:"),
        (None, "../newsletter.yaml", "is not a file name in content/images/"),
        (None, "http://example.org/a.png", "a picture must be a file in content/images/ or an https URL"),
    ],
)
def test_a_bad_picture_stops_the_issue_with_its_line(example_dir: Path, content, src, expected):
    if content is not None:
        (example_dir / PICTURE).write_bytes(content)
    issue = example_dir / ISSUE
    issue.write_text(issue.read_text().replace("src: children-playing.png", f"src: {src}"))
    with pytest.raises(ContentError) as caught:
        load_folder(example_dir).issue()
    assert "2026-11-27.yaml:10: items[1].image.src: " in str(caught.value) and expected in str(caught.value)


def test_alt_is_required(example_dir: Path):
    issue = example_dir / ISSUE
    issue.write_text(issue.read_text().replace("      alt: Three children playing happily together\n", ""))
    with pytest.raises(ContentError, match=r"2026-11-27.yaml:9: items\[1\].image.alt: required field is missing"):
        load_folder(example_dir).issue()


def test_check_warns_about_remote_pictures_and_empty_alt_text(example_dir: Path):
    issue = example_dir / ISSUE
    issue.write_text(
        issue.read_text()
        .replace("src: children-playing.png", "src: https://cdn.example.org/kids.png")
        .replace("alt: Three children playing happily together", "alt: Picture")
    )
    found = [str(w) for w in check(load_folder(example_dir))]
    assert any("items[1].image.src: a picture from another site may be blocked or vanish" in w for w in found)
    assert any("items[1].image.alt: alt text 'Picture' says nothing" in w for w in found)


def test_a_logo_is_checked_with_newsletter_yaml(example_dir: Path):
    standing = example_dir / "newsletter.yaml"
    standing.write_text(standing.read_text() + "logo:\n  src: logo.png\n  alt: Regional Improvement Programme\n")
    with pytest.raises(ContentError, match=r"newsletter.yaml:\d+: logo.src: no such picture"):
        load_folder(example_dir)
    (example_dir / "content/images/logo.png").write_bytes(png(480, 120))
    html = render(assemble(load_folder(example_dir))).html
    assert re.search(r'<img class="logo-picture"[^>]* alt="Regional Improvement Programme" width="240"', html)


def test_the_web_service_publishes_the_pictures_at_their_addresses(example_dir: Path, tmp_path: Path):
    engine = open_store(f"sqlite:///{tmp_path / 'news.db'}")
    app = create_app(example_dir, engine, Signer("test secret"))
    html = render(assemble(load_folder(example_dir))).html
    path = re.search(r'src="https://news.improvement.example.org(/images/[^"]+)"', html).group(1)
    stale = "/images/0123456789abcdef-children-playing.png"
    with served(app) as base, httpx.Client(base_url=base) as http:
        current = http.get(path)
        assert current.status_code == 200 and current.headers["content-type"] == "image/png"
        assert current.content == (example_dir / PICTURE).read_bytes()
        assert "immutable" in current.headers["cache-control"]
        older = http.get(stale)  # an email sent before the picture changed still shows one
        assert older.status_code == 200 and "immutable" not in older.headers["cache-control"]
        for missing in ("/images/0123456789abcdef-nothing.png", "/images/children-playing.png", "/images/..%2Fnews.db"):
            assert http.get(missing).status_code == 404, missing
    engine.dispose()
