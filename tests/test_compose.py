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


KEY = "a compose test key of 32 characters or more"
SET = {"NEWSLETTER_SECRET_KEY": KEY}  # what a .env beside docker-compose.yml must give


class Refused(Exception):
    """Compose would refuse to start: a ${NAME:?message} variable is not set."""


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?message} with only `env` set in the environment."""
    given = env or {}

    def one(match: re.Match[str]) -> str:
        name, kind, text = match.group(1), match.group(2), match.group(3) or ""
        if given.get(name):
            return given[name]
        if kind == ":?":
            raise Refused(f"{name}: {text}")
        return text

    return re.sub(r"\$\{(\w+)(?:(:?-|:\?)([^}]*))?\}", one, str(value))


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def environment(service: dict, given: dict[str, str] | None = None) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: interpolate(v, SET if given is None else given) for k, v in env.items()}


def published(service: dict) -> dict[int, int]:
    """container port -> host port, with the defaults."""
    out = {}
    for entry in service.get("ports", []):
        host, container = interpolate(entry).rsplit(":", 1)
        out[int(container)] = int(host.rsplit(":", 1)[-1])
    return out


APPS = ("scheduler", "web", "desk")  # the services that run this package's image


def test_the_five_services(services):
    assert set(services) == {"scheduler", "web", "desk", "postgres", "mailpit"}
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["mailpit"]["image"].startswith("axllent/mailpit:v")  # pinned, not :latest
    for name in APPS:
        assert services[name]["build"] == "."
    assert (ROOT / "Dockerfile").is_file()


def test_ports_web_and_mailpit_inbox_only(services):
    assert published(services["web"]) == {8000: 8000}
    assert published(services["desk"]) == {8001: 8001}
    assert published(services["mailpit"]) == {8025: 8025}
    assert published(services["scheduler"]) == {}
    assert published(services["postgres"]) == {}  # the host may run its own PostgreSQL on 5432


def test_app_services_reach_postgres_and_mailpit(services):
    postgres = environment(services["postgres"])
    for name in APPS:
        env = environment(services[name])
        url = sa.make_url(env["NEWSLETTER_DATABASE_URL"])
        assert (url.drivername, url.host, url.port) == ("postgresql+psycopg", "postgres", 5432)
        assert (url.username, url.password, url.database) == (
            postgres["POSTGRES_USER"],
            postgres["POSTGRES_PASSWORD"],
            postgres["POSTGRES_DB"],
        )
        assert env["NEWSLETTER_SMTP_URL"] == "smtp://mailpit:1025"
        assert env["NEWSLETTER_SECRET_KEY"] == KEY
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])


@pytest.mark.parametrize("name", APPS)
def test_compose_refuses_to_start_without_a_secret_key(services, name):
    """No key in the file: one anyone can read would let anyone unsubscribe every reader, or forge their links."""
    assert "NEWSLETTER_SECRET_KEY:-" not in (ROOT / "docker-compose.yml").read_text()
    for unset in ({}, {"NEWSLETTER_SECRET_KEY": ""}):
        with pytest.raises(Refused, match=r"NEWSLETTER_SECRET_KEY: set NEWSLETTER_SECRET_KEY \(32\+ characters\)"):
            environment(services[name], unset)


def test_web_trusts_forwarded_headers_only_from_a_named_proxy(services):
    """uvicorn reads FORWARDED_ALLOW_IPS; trusting everyone would let a client spoof its address past the rate limit."""
    assert environment(services["web"])["FORWARDED_ALLOW_IPS"] == "127.0.0.1"
    assert "${FORWARDED_ALLOW_IPS" in services["web"]["environment"]["FORWARDED_ALLOW_IPS"]


def test_every_variable_is_a_setting(services, monkeypatch):
    """A misspelt NEWSLETTER_ variable would be silently ignored; each must be a Settings field, and parse."""
    for name in APPS:
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


def test_the_desk_serves_beyond_the_container_with_sign_in(services):
    """`newsletter edit --host`: sign-in by emailed link, so it needs the secret key, a URL and editors to let in."""
    desk = services["desk"]
    assert desk["image"] == services["web"]["image"]  # the same image
    args = parser().parse_args([interpolate(word) for word in desk["command"][1:]])
    assert (args.command, str(args.dir), args.host, args.port) == ("edit", "/newsletter", "0.0.0.0", 8001)
    assert args.url == "http://localhost:8001"
    assert interpolate(desk["command"][-1], {"DESK_URL": "https://desk.example.org"}) == "https://desk.example.org"
    assert environment(desk)["FORWARDED_ALLOW_IPS"] == "127.0.0.1"
    assert yaml.safe_load((ROOT / "examples" / "newsletter.yaml").read_text())["editors"]  # someone may sign in


def test_folder_is_mounted_where_the_commands_look(services):
    for name in APPS:
        mounts = [interpolate(v).split(":") for v in services[name]["volumes"]]
        assert ["./examples", "/newsletter"] in mounts
        assert (ROOT / "examples" / "newsletter.yaml").is_file()


def test_dockerfile_runs_the_scheduler_and_ships_templates():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.1[1-9]", dockerfile, flags=re.MULTILINE)
    cmd = re.search(r"^CMD (.+)$", dockerfile, flags=re.MULTILINE).group(1)
    assert yaml.safe_load(cmd) == ["python", "/app/scheduler.py", "--dir", "/newsletter"]
    assert re.search(r"^RUN pip install \. ", dockerfile, flags=re.MULTILINE)  # not -e: the templates are package data


GLOB = {"**/": "(.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}  # .dockerignore's wildcards, as Go's filepath.Match


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves `path` (or a folder it is in) out of the build context: the last matching line wins."""
    parts = path.split("/")
    left_out = False
    for line in patterns:
        keep = line.startswith("!")
        pattern = line.removeprefix("!").strip("/")
        regex = "".join(GLOB.get(token, re.escape(token)) for token in re.findall(r"\*\*/|\*\*|\*|\?|[^*?]+", pattern))
        if any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            left_out = not keep
    return left_out


def test_no_database_key_or_sent_mail_reaches_the_image():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for private in (
        "newsletter.db",
        "examples/newsletter.db",
        "examples/newsletter.db-wal",
        "examples/newsletter.db-shm",
        "examples/newsletter.db-journal",
        "examples/.secret_key",
        ".secret_key",
        "deep/folder/news/.secret_key",
        "examples/outbox/2026-11-27/1.eml",
        ".env",
        ".git/config",
        ".venv/bin/python",
    ):
        assert dockerignored(private, patterns), private
    for needed in ("pyproject.toml", "newsletter/store.py", "newsletter/templates/web/base.html", "scheduler.py"):
        assert not dockerignored(needed, patterns), needed


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
