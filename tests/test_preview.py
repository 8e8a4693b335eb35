import asyncio
import contextlib
import datetime as dt
import html
import re
import shutil
import signal
import subprocess
import threading
import time

import httpx
import pytest
from conftest import command_process, free_port, served

from newsletter import tokens
from newsletter.preview import create_preview_app
from newsletter.render import TEMPLATES


def get(app, path: str, *, base: str = "http://127.0.0.1:8001") -> httpx.Response:
    async def fetch():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base) as client:
            return await client.get(path)

    return asyncio.run(fetch())


def fingerprint(page: str) -> str:
    return re.search(r'data-fingerprint="([0-9a-f]+)"', page).group(1)


def test_page_shows_both_widths_networks_text_and_checks(example_dir):
    app = create_preview_app(example_dir)
    page = get(app, "/").text
    assert re.search(r'<iframe [^>]*src="/email.html\?"[^>]*style="width:375px"', page)
    assert re.search(r'<iframe [^>]*src="/email.html\?"[^>]*style="width:800px"', page)
    assert '<option value="">Everyone (the full issue)</option>' in page
    for name in ("Lead Members Group", "Fostering Network", "SEND Network"):
        assert f">{name}</option>" in page
    assert '<option value="2026-11-27" selected>' in page and '<option value="2026-11-20">' in page
    assert "No errors or warnings." in page and "no problems" in page
    text = html.unescape(re.search(r'<section id="text">.*?<pre>(.*?)</pre>', page, flags=re.DOTALL).group(1))
    assert text == get(app, "/email.txt").text
    assert "PROGRAMME: New duties in the Family Support Act" in text


def test_network_switcher_shows_that_readers_email(example_dir):
    app = create_preview_app(example_dir)
    page = get(app, "/?network=fostering").text
    assert '<option value="fostering" selected>' in page
    assert 'src="/email.html?network=fostering"' in page
    email = get(app, "/email.html?network=fostering").text
    assert "New duties in the Family Support Act" in email
    assert "Preventing exploitation outside the home" not in email
    assert "Preventing exploitation outside the home" in get(app, "/email.html").text


def test_preview_is_the_email_as_sent(example_dir):
    """The editor sees the emailed footer and top bar, not the public web version."""
    email = get(create_preview_app(example_dir), "/email.html")
    assert email.status_code == 200 and email.headers["content-type"].startswith("text/html")
    assert f"/unsubscribe/{tokens.PLACEHOLDER}" in email.text and ">Manage your networks</a>" in email.text
    assert ">View in your browser</a>" in email.text


def test_date_switcher(example_dir):
    older = create_preview_app(example_dir, date=dt.date(2026, 11, 20))
    assert '<option value="2026-11-20" selected>' in get(older, "/").text
    assert "Update No 118" in get(older, "/email.html").text
    app = create_preview_app(example_dir)
    assert "Update No 118" in get(app, "/email.html?date=2026-11-20").text
    assert '<option value="2026-11-20" selected>' in get(app, "/?date=2026-11-20").text


def test_warnings_are_listed(example_dir):
    issue = example_dir / "content" / "issues" / "2026-11-27.yaml"
    issue.write_text(
        issue.read_text().replace(
            "        url: https://research.example.org/exploitation-study",
            "        url: http://research.example.org/exploitation-study",
        )
    )
    page = get(create_preview_app(example_dir), "/").text
    assert "1 warning" in page
    assert re.search(r'<li class="warning">[^<]*2026-11-27.yaml:\d+: items\[1\]\.links\[1\]: link is not https', page)


def test_bad_content_shows_errors_and_the_server_keeps_going(example_dir):
    app = create_preview_app(example_dir)
    issue = example_dir / "content" / "issues" / "2026-11-27.yaml"
    good = issue.read_text()
    issue.write_text(good.replace("number: 119", "number: many").replace("network: fostering", "network: fostring"))
    page = get(app, "/")
    assert page.status_code == 200 and "2 errors" in page.text
    assert re.search(r'<li class="error">[^<]*2026-11-27.yaml:1: number: ', page.text)
    assert "unknown network &#x27;fostring&#x27; (did you mean &#x27;fostering&#x27;?)" in page.text
    email = get(app, "/email.html")
    assert email.status_code == 422 and "The issue cannot be shown" in email.text and "fostring" in email.text
    assert get(app, "/email.txt").status_code == 422
    issue.write_text(good)
    assert "no problems" in get(app, "/").text


def test_yaml_syntax_error_and_unknown_choices_are_shown(example_dir):
    app = create_preview_app(example_dir)
    assert "unknown network &#x27;nope&#x27;" in get(app, "/?network=nope").text
    assert "error" in get(app, "/?date=2026-02-30").text
    (example_dir / "newsletter.yaml").write_text("name: [unclosed\n")
    page = get(app, "/")
    assert page.status_code == 200 and "YAML syntax" in page.text


def test_folder_template_errors_are_shown(example_dir):
    shutil.copytree(TEMPLATES, example_dir / "templates" / "email")
    (example_dir / "templates" / "email" / "issue.txt.j2").write_text("ok\n{% for %}\n")
    page = get(create_preview_app(example_dir), "/").text
    assert re.search(r'<li class="error">[^<]*issue.txt.j2:2: template: ', page)


def test_event_stream_says_reload_at_once_when_the_page_is_stale(example_dir):
    response = get(create_preview_app(example_dir), "/events?since=stale")
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "event: reload\n" in response.text


def test_live_reload_when_a_content_file_changes(example_dir):
    app = create_preview_app(example_dir)
    issue = example_dir / "content" / "issues" / "2026-11-27.yaml"
    with served(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        page = client.get("/").text
        assert app.state.preview.watching
        assert "New duties in the Family Support Act" in client.get("/email.html").text
        edit = threading.Timer(0.5, lambda: issue.write_text(issue.read_text().replace("New duties", "Fresh duties")))
        started = time.monotonic()
        edit.start()
        lines = []
        with client.stream("GET", f"/events?since={fingerprint(page)}") as stream:
            for line in stream.iter_lines():
                lines.append(line)
                if line == "event: reload":
                    break
        edit.join()
        # with the watcher running the stream only times out every 15 s: a quick reload means watchfiles saw it
        assert time.monotonic() - started < 5
        assert "Fresh duties in the Family Support Act" in client.get("/email.html").text
        assert fingerprint(client.get("/").text) != fingerprint(page)


@pytest.mark.parametrize(
    "base", ["http://localhost:8001", "http://127.0.0.1:9999", "http://[::1]:8001", "http://LOCALHOST"]
)
def test_this_machine_s_names_are_answered(example_dir, base):
    assert get(create_preview_app(example_dir), "/", base=base).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8001", "localhost.evil.example", "127.0.0.1.nip.io"])
def test_other_hosts_get_one_line_and_no_draft(example_dir, host):
    """A DNS-rebinding page reaches 127.0.0.1 under its own name: it must not read the drafts."""
    app = create_preview_app(example_dir)
    for path in ("/", "/email.html", "/email.txt", "/events?since=stale"):
        answer = get(app, path, base=f"http://{host}")
        assert answer.status_code == 400 and answer.text.count("\n") == 0, path
        assert "Family Support" not in answer.text
    allowed = create_preview_app(example_dir, allowed_hosts=[host.split(":")[0]])
    assert get(allowed, "/email.txt", base=f"http://{host}").status_code == 200


def preview_process(example_dir, *extra: str) -> tuple[subprocess.Popen, str]:
    """`newsletter preview` in a process of its own on a free port, answering."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = ["preview", "--dir", str(example_dir), "--port", str(port), *extra]
    return command_process(*argv, ready=base + "/email.txt", stderr=subprocess.PIPE), base


def test_the_preview_command_answers_a_host_it_is_told_to_allow(example_dir):
    process, base = preview_process(example_dir, "--allow-host", "Tunnel.example")
    try:
        assert httpx.get(base + "/email.txt", headers={"host": "tunnel.example:443"}, timeout=20).status_code == 200
        assert httpx.get(base + "/email.txt", headers={"host": "evil.example"}, timeout=20).status_code == 400
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)


@pytest.mark.slow
@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_stops_at_once_and_quietly_with_a_tab_open(example_dir, presses):
    process, base = preview_process(example_dir)
    opened = threading.Event()

    def tab() -> None:  # a browser tab: the page's event stream, open until the server ends it
        page = httpx.get(base + "/", timeout=20).text
        with (
            contextlib.suppress(httpx.HTTPError),
            httpx.stream("GET", f"{base}/events?since={fingerprint(page)}", timeout=70) as stream,
        ):
            for _ in stream.iter_lines():
                opened.set()

    browser = threading.Thread(target=tab, daemon=True)
    browser.start()
    assert opened.wait(20)
    started = time.monotonic()
    for _ in range(presses):
        process.send_signal(signal.SIGINT)
        time.sleep(0.2)
    try:
        _, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert time.monotonic() - started < 3
    assert process.returncode == 0
    assert "Traceback" not in err and "Error" not in err, err
    assert err.strip().splitlines() == [f"Preview at {base}/ (Ctrl+C to stop)"]
    browser.join(5)
    assert not browser.is_alive()  # the tab's stream was ended, not left hanging


def test_the_previewed_email_shows_the_folders_pictures_before_they_are_published(example_dir):
    app = create_preview_app(example_dir)
    email = get(app, "/email.html").text
    [src] = re.findall(r'src="(/images/[0-9a-f]{16}-children-playing\.png)"', email)
    picture = get(app, src)
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert picture.content == (example_dir / "content" / "images" / "children-playing.png").read_bytes()
    assert get(app, "/images/not-a-picture").status_code == 404
