"""The NEWSLETTER_* settings: declared once, listed by `newsletter settings` with secrets masked, bad values in one line."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import pytest
from conftest import import_members

from newsletter.cli import main
from newsletter.cli.settings import markdown
from newsletter.settings import Settings, variable

README = Path(__file__).resolve().parent.parent / "README.md"
VARIABLES = [variable(name) for name in Settings.model_fields]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No NEWSLETTER_* settings from the machine running the tests."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_every_setting_is_declared_with_its_help():
    for name, field in Settings.model_fields.items():
        assert field.description and "\n" not in field.description, name


def test_settings_lists_every_variable_with_its_value_source_and_help(env, capsys):
    env.setenv("NEWSLETTER_SMTP_POOL", "2")
    env.setenv("NEWSLETTER_RATE_PER_SECOND", "")  # empty counts as unset

    code, out, err = run(capsys, "settings")

    assert code == 0 and err == ""
    assert re.findall(r"^(NEWSLETTER_\w+)=", out, flags=re.MULTILINE) == VARIABLES
    assert (
        "NEWSLETTER_SMTP_POOL=2  (environment)\n    SMTP connections each sender keeps open (takes a whole number at least 1)"
        in out
    )
    assert "NEWSLETTER_RATE_PER_SECOND=unset  (default)" in out
    assert "NEWSLETTER_LEASE_SECONDS=60.0  (default)" in out
    assert "NEWSLETTER_SMTP_VERIFY=true  (default)" in out


def test_settings_masks_the_secret_key_and_passwords_in_urls(env, capsys):
    env.setenv("NEWSLETTER_SECRET_KEY", "do-not-show-this, a key of 32 characters or more")
    env.setenv("NEWSLETTER_SMTP_URL", "smtp://mailer:hunter2@relay.example.org:587")
    env.setenv("NEWSLETTER_DATABASE_URL", "postgresql+psycopg://newsletter:dbpass@127.0.0.1:5432/newsletter")

    code, out, _ = run(capsys, "settings")

    assert code == 0
    assert "do-not-show-this" not in out and "hunter2" not in out and "dbpass" not in out
    assert "NEWSLETTER_SECRET_KEY=***  (environment)" in out
    assert "NEWSLETTER_SMTP_URL=smtp://mailer:***@relay.example.org:587  (environment)" in out
    assert "NEWSLETTER_DATABASE_URL=postgresql+psycopg://newsletter:***@127.0.0.1:5432/newsletter  (environment)" in out


@pytest.mark.parametrize("special", ["#", "@", "/", "?"])
def test_settings_masks_a_password_holding_a_special_character_whole(env, capsys, special):
    env.setenv("NEWSLETTER_SMTP_URL", f"smtp://mailer:Kq7v{special}Zp9w@relay.example.org:587")

    code, out, _ = run(capsys, "settings")

    assert code == 0 and "Kq7v" not in out and "Zp9w" not in out
    assert "NEWSLETTER_SMTP_URL=smtp://mailer:***@relay.example.org:587  (environment)" in out


@pytest.mark.parametrize(
    ("name", "value", "line"),
    [
        ("NEWSLETTER_RATE_PER_SECOND", "0", "NEWSLETTER_RATE_PER_SECOND=0: must be a number greater than 0"),
        ("NEWSLETTER_RATE_PER_SECOND", "fast", "NEWSLETTER_RATE_PER_SECOND=fast: must be a number greater than 0"),
        ("NEWSLETTER_RATE_PER_HOUR", "0", "NEWSLETTER_RATE_PER_HOUR=0: must be a whole number at least 1"),
        ("NEWSLETTER_RATE_PER_HOUR", "1.5", "NEWSLETTER_RATE_PER_HOUR=1.5: must be a whole number at least 1"),
        ("NEWSLETTER_MAX_ATTEMPTS", "-1", "NEWSLETTER_MAX_ATTEMPTS=-1: must be a whole number at least 1"),
        ("NEWSLETTER_LEASE_SECONDS", "1", "NEWSLETTER_LEASE_SECONDS=1: must be a number at least 5"),
        (
            "NEWSLETTER_SMTP_VERIFY",
            "maybe",
            "NEWSLETTER_SMTP_VERIFY=maybe: must be true or false (also 1/0, yes/no, on/off)",
        ),
        ("NEWSLETTER_SMTP_POOL", "a few", "NEWSLETTER_SMTP_POOL='a few': must be a whole number at least 1"),
        (
            "NEWSLETTER_SECRET_KEY",
            "short-key-31-characters-long-xx",
            "NEWSLETTER_SECRET_KEY='***': must be text of at least 32 characters:"
            ' make one with python -c "import secrets; print(secrets.token_urlsafe(32))"',
        ),
    ],
)
def test_a_bad_value_is_one_line_and_exit_1_before_anything_is_sent(
    env, capsys, example_dir, smtp_server, name, value, line
):
    env.setenv("NEWSLETTER_SMTP_URL", smtp_server.url)
    env.setenv("NEWSLETTER_SECRET_KEY", "settings-test-key, 32 characters or more")
    import_members(capsys, example_dir)
    env.setenv(name, value)

    code, _, err = run(capsys, "send", "--dir", str(example_dir))

    assert (code, err) == (1, f"error: {line}\n")
    assert smtp_server.messages == []
    code, _, err = run(capsys, "settings")
    assert (code, err) == (1, f"error: {line}\n")


def test_the_readme_lists_exactly_the_declared_settings():
    """The README's table is `newsletter settings --format markdown`: regenerate it when a setting changes."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^\| `(NEWSLETTER_\w+)` \|", section, flags=re.MULTILINE) == VARIABLES
    assert markdown() in section


def test_version_is_the_installed_distribution_s(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"newsletter {version('newsletter')}\n"
