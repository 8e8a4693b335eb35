"""The wheel works on its own: built, installed into a fresh venv (not editable), it checks, renders, sends and serves."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import EXAMPLES, ROOT, free_port

pytestmark = pytest.mark.slow
ISSUE = "2026-11-27"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ of a fresh venv holding only the built wheel; its dependencies are borrowed from the test venv."""
    tmp = tmp_path_factory.mktemp("packaging")
    source = tmp / "source"  # a copy, so that building leaves no build/ or egg-info in the worktree
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__", "tests", "outbox"),
    )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp / "dist"), str(source)])
    [wheel] = (tmp / "dist").glob("newsletter-*.whl")
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    # the dependencies, offline: the test venv's site-packages as a plain path (its .pth files, the editable install's
    # among them, are not processed), after the fresh venv's own site-packages where the wheel goes
    own = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).strip())
    (own / "borrowed-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-deps", "--no-index", str(wheel)])
    return venv / "bin"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "examples"
    shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns("outbox", "out", "*.db", ".secret_key"))
    return target


def run(argv: list[str], *, cwd: Path | None = None) -> str:
    done = subprocess.run(argv, check=False, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{argv}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def clean_env() -> dict[str, str]:
    """The environment without NEWSLETTER_* settings or anything that would import the worktree instead."""
    drop = ("NEWSLETTER_", "PYTHONPATH", "VIRTUAL_ENV", "PIP_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def test_the_installed_package_is_the_wheel_with_its_templates(installed):
    python = str(installed / "python")
    where = run([python, "-c", "import newsletter.templates as t; print(t.EMAIL); print(t.WEB)"], cwd=installed)
    email, web = (Path(line) for line in where.split())
    assert email.is_relative_to(installed.parent) and (email / "issue.mjml.j2").is_file()
    assert (web / "site.css").is_file()
    assert run([str(installed / "newsletter"), "--version"]).startswith("newsletter ")


def test_the_wheel_checks_renders_and_sends_the_example(installed, folder):
    newsletter = str(installed / "newsletter")
    run([newsletter, "check"], cwd=folder)
    run([newsletter, "render", "--out", "out"], cwd=folder)
    html = (folder / "out" / "issue.html").read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and "Reminders from previous weeks" in html
    assert (folder / "out" / "issue.txt").read_text(encoding="utf-8").strip()
    run([newsletter, "subscribers", "import", "subscribers/network-members.csv"], cwd=folder)
    assert "0 failed" in run([newsletter, "send"], cwd=folder)
    assert list((folder / "outbox").glob("*.eml"))


def test_the_wheel_serves_the_archive_and_its_stylesheet(installed, folder):
    newsletter = str(installed / "newsletter")
    run([newsletter, "subscribers", "import", "subscribers/network-members.csv"], cwd=folder)
    run([newsletter, "send"], cwd=folder)
    port = free_port()
    with serving([newsletter, "serve", "--dev", "--port", str(port)], cwd=folder) as base:
        assert "2026" in get(f"{base}/archive/").text
        assert "<!doctype html>" in get(f"{base}/archive/{ISSUE}").text.lower()
        css = get(f"{base}/site.css")
        assert css.headers["content-type"].startswith("text/css") and "{" in css.text


def get(url: str) -> httpx.Response:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    return response


@contextmanager
def serving(argv: list[str], *, cwd: Path) -> Iterator[str]:
    """`argv` as a server process for the `with` block; yields its base URL once it answers."""
    base = f"http://127.0.0.1:{argv[argv.index('--port') + 1]}"
    process = subprocess.Popen(
        argv, cwd=cwd, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not answers(f"{base}/health"):
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, f"{argv} did not answer within 60 s"
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.communicate(timeout=30)


def answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.TransportError:
        return False
    return True
