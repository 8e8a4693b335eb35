"""docker-compose.yml, checked without Docker: the services, images, ports and variables wire up."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from newsletter.cli import parser
from newsletter.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def interpolate(value: str) -> str:
    """Compose's ${NAME:-default} and ${NAME} with nothing set in the environment: the defaults."""
    return re.sub(r"\$\{(\w+)(?::?-([^}]*))?\}", lambda m: m.group(2) or "", str(value))


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: interpolate(v) for k, v in env.items()}


def published(service: dict) -> dict[int, int]:
    """container port -> host port, with the defaults."""
    out = {}
    for entry in service.get("ports", []):
        host, container = interpolate(entry).rsplit(":", 1)
        out[int(container)] = int(host.rsplit(":", 1)[-1])
    return out


def test_the_four_services(services):
    assert set(services) == {"scheduler", "web", "postgres", "mailpit"}
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["mailpit"]["image"].startswith("axllent/mailpit:v")  # pinned, not :latest
    for name in ("scheduler", "web"):
        assert services[name]["build"] == "."
    assert (ROOT / "Dockerfile").is_file()


def test_ports_web_and_mailpit_inbox_only(services):
    assert published(services["web"]) == {8000: 8000}
    assert published(services["mailpit"]) == {8025: 8025}
    assert published(services["scheduler"]) == {}
    assert published(services["postgres"]) == {}  # the host may run its own PostgreSQL on 5432


def test_app_services_reach_postgres_and_mailpit(services):
    postgres = environment(services["postgres"])
    for name in ("scheduler", "web"):
        env = environment(services[name])
        url = sa.make_url(env["NEWSLETTER_DATABASE_URL"])
        assert (url.drivername, url.host, url.port) == ("postgresql+psycopg", "postgres", 5432)
        assert (url.username, url.password, url.database) == (
            postgres["POSTGRES_USER"],
            postgres["POSTGRES_PASSWORD"],
            postgres["POSTGRES_DB"],
        )
        assert env["NEWSLETTER_SMTP_URL"] == "smtp://mailpit:1025"
        assert env["NEWSLETTER_SECRET_KEY"]
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])


def test_web_trusts_forwarded_headers_only_from_a_named_proxy(services):
    """uvicorn reads FORWARDED_ALLOW_IPS; trusting everyone would let a client spoof its address past the rate limit."""
    assert environment(services["web"])["FORWARDED_ALLOW_IPS"] == "127.0.0.1"
    assert "${FORWARDED_ALLOW_IPS" in services["web"]["environment"]["FORWARDED_ALLOW_IPS"]


def test_every_variable_is_a_setting(services, monkeypatch):
    """A misspelt NEWSLETTER_ variable would be silently ignored; each must be a Settings field, and parse."""
    for name in ("scheduler", "web"):
        env = environment(services[name])
        names = {k.removeprefix("NEWSLETTER_").lower() for k in env if k.startswith("NEWSLETTER_")}
        assert names <= set(Settings.model_fields), names - set(Settings.model_fields)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = Settings()
        assert settings.schedule_grace_seconds == 6 * 3600


def test_commands_are_real_cli_commands(services):
    """The services run commands this package's CLI accepts: the scheduler and `newsletter serve`."""
    scheduler = services["scheduler"]["command"]
    assert scheduler[:2] == ["python", "/app/scheduler.py"]
    assert (ROOT / "scheduler.py").is_file()
    args = parser().parse_args(["schedule", "run", *scheduler[2:]])
    assert str(args.dir) == "/newsletter"
    web = services["web"]["command"]
    assert web[0] == "newsletter"
    args = parser().parse_args(web[1:])
    assert args.command == "serve"


def test_folder_is_mounted_where_the_commands_look(services):
    for name in ("scheduler", "web"):
        mounts = [interpolate(v).split(":") for v in services[name]["volumes"]]
        assert ["./examples", "/newsletter"] in mounts
        assert (ROOT / "examples" / "newsletter.yaml").is_file()


def test_dockerfile_runs_the_scheduler_and_ships_templates():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.1[1-9]", dockerfile, flags=re.MULTILINE)
    cmd = re.search(r"^CMD (.+)$", dockerfile, flags=re.MULTILINE).group(1)
    assert yaml.safe_load(cmd) == ["python", "/app/scheduler.py", "--dir", "/newsletter"]
    assert re.search(r"^RUN pip install \. ", dockerfile, flags=re.MULTILINE)  # not -e: the templates are package data
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", "**/*.db", "**/.secret_key", "**/outbox", ".env", ".venv"} <= set(ignored)


@pytest.mark.parametrize(
    ("unit", "command"), [("newsletter-scheduler.service", "schedule"), ("newsletter-web.service", "serve")]
)
def test_systemd_units_run_real_commands(unit, command):
    text = (ROOT / "deploy" / unit).read_text()
    argv = shlex.split(re.search(r"^ExecStart=(.+)$", text, flags=re.MULTILINE).group(1))
    assert argv[0].endswith("/bin/newsletter")
    assert parser().parse_args(argv[1:]).command == command
    assert re.search(r"^Restart=on-failure$", text, flags=re.MULTILINE)
    assert re.search(r"^EnvironmentFile=", text, flags=re.MULTILINE)
