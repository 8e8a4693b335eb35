"""The command shell itself: one line per error, no tracebacks, quiet on a closed pipe."""

from __future__ import annotations

import subprocess
import sys

from newsletter.cli import main


def test_errors_are_one_line_and_exit_1(tmp_path, capsys):
    assert main(["render", "--dir", str(tmp_path), "--format", "json"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no newsletter.yaml here" in err and "Traceback" not in err


def test_a_closed_pipe_is_not_an_error(example_dir, tmp_path):
    rows = "".join(f"r{i}@example.org,R {i},Org,qa-leads\n" for i in range(2000))
    (tmp_path / "many.csv").write_text("email,name,organisation,networks\n" + rows, encoding="utf-8")
    newsletter = [sys.executable, "-m", "newsletter"]
    subprocess.run(
        [*newsletter, "subscribers", "import", str(tmp_path / "many.csv")],
        cwd=example_dir,
        check=True,
        capture_output=True,
    )
    lister = subprocess.Popen(
        [*newsletter, "subscribers", "list"], cwd=example_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    lister.stdout.readline()
    lister.stdout.close()  # like `| head -1`
    assert lister.wait(timeout=60) == 141
    with lister.stderr:
        assert lister.stderr.read() == b""


def test_a_bad_setting_is_named_in_one_line(example_dir, monkeypatch, capsys):
    monkeypatch.setenv("NEWSLETTER_SMTP_POOL", "four")
    assert main(["status", "--dir", str(example_dir)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: NEWSLETTER_SMTP_POOL=four: ") and "whole number" in err


def test_the_lease_is_a_setting_with_a_floor(monkeypatch, capsys):
    from newsletter.cli.common import settings
    from newsletter.cli.wiring import delivery_options

    monkeypatch.setenv("NEWSLETTER_LEASE_SECONDS", "90")
    assert delivery_options(settings()).lease == 90
    monkeypatch.setenv("NEWSLETTER_LEASE_SECONDS", "1")  # shorter than a slow message: live claims would be stolen
    assert main(["send", "--dir", "nowhere", "--dry-run"]) == 1
    assert "NEWSLETTER_LEASE_SECONDS=1: must be a number at least 5" in capsys.readouterr().err
