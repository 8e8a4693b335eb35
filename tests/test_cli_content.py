import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from conftest import free_port

from newsletter.cli import main


def line_of(path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_check_clean_example(capsys, example_dir):
    code, out, err = run(capsys, "check", "--dir", example_dir)
    assert code == 0 and err == ""
    assert out.strip().endswith("2026-11-27.yaml: no errors, 0 warnings")


def test_check_defaults_to_the_current_folder(capsys, example_dir, monkeypatch):
    monkeypatch.chdir(example_dir)
    code, out, _ = run(capsys, "check", "--date", "2026-11-20")
    assert code == 0 and out == "content/issues/2026-11-20.yaml: no errors, 0 warnings\n"


def test_check_prints_warnings_one_a_line_and_exits_0(capsys, example_dir, monkeypatch):
    monkeypatch.chdir(example_dir)
    issue = example_dir / "content" / "issues" / "2026-11-27.yaml"
    text = issue.read_text().replace("      - text: About the study\n", "      - text: click here\n")
    issue.write_text(text.replace("    contact: fostering-lead\n", ""))
    code, out, err = run(capsys, "check")
    assert code == 0 and err == ""
    lines = out.splitlines()
    link, meeting = line_of(issue, "- text: click here"), line_of(issue, "- network: fostering")
    assert lines == [
        f"content/issues/2026-11-27.yaml:{link}: warning: items[1].links[1]: link text 'click here' says nothing: name what it leads to",
        f"content/issues/2026-11-27.yaml:{meeting}: warning: meetings[1]: no contact: say who to ask about this meeting",
        "content/issues/2026-11-27.yaml: no errors, 2 warnings",
    ]


def test_check_prints_every_error_and_exits_1(capsys, example_dir, monkeypatch):
    monkeypatch.chdir(example_dir)
    issue = example_dir / "content" / "issues" / "2026-11-27.yaml"
    issue.write_text(
        issue.read_text().replace("number: 119", "number: nineteen").replace("network: fostering", "network: fostring")
    )
    old = example_dir / "content" / "issues" / "2026-11-20.yaml"
    old.write_text(
        old.read_text().replace("programme: Workforce turnover analysis", "programe: Workforce turnover analysis")
    )
    code, out, err = run(capsys, "check")
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert len(lines) == 4 and "Traceback" not in err
    assert any(line.startswith("content/issues/2026-11-27.yaml:1: number: ") for line in lines)
    assert (
        f"content/issues/2026-11-27.yaml:{line_of(issue, 'network: fostring')}: meetings[1].network: unknown network 'fostring' (did you mean 'fostering'?)"
        in lines
    )
    assert (
        f"content/issues/2026-11-20.yaml:{line_of(old, 'programe:')}: items[2].programe: unknown key (did you mean 'programme'?)"
        in lines
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "--date", "2026-01-02"], "error: no issue dated 2026-01-02"),
        (["render", "--network", "nope", "--format", "json"], "error: unknown network 'nope' (networks: ad-education"),
    ],
)
def test_one_line_errors(capsys, example_dir, argv, message):
    code, out, err = run(capsys, *argv, "--dir", example_dir)
    assert code == 1 and out == ""
    assert err.startswith(message) and err.count("\n") == 1


def test_missing_folder(capsys, tmp_path):
    code, _, err = run(capsys, "check", "--dir", tmp_path / "nowhere")
    assert code == 1 and "no newsletter.yaml here (use --dir to point at the newsletter folder)" in err


def test_bad_date_is_a_usage_error(capsys, example_dir):
    with pytest.raises(SystemExit) as exited:
        main(["check", "--dir", str(example_dir), "--date", "27/11/2026"])
    assert exited.value.code == 2
    assert "'27/11/2026' is not a date (YYYY-MM-DD)" in capsys.readouterr().err


def test_render_writes_html_and_text(capsys, example_dir, tmp_path):
    code, out, _ = run(capsys, "render", "--dir", example_dir, "--out", tmp_path / "out")
    assert code == 0 and "issue.html" in out and "KB" in out
    page = (tmp_path / "out" / "issue.html").read_text()
    text = (tmp_path / "out" / "issue.txt").read_text()
    assert '<html lang="en"' in page and "Preventing exploitation outside the home" in page
    assert text.startswith("View in your browser: ") and "PROGRAMME: New duties in the Family Support Act" in text


def test_render_for_networks_and_date(capsys, example_dir, tmp_path):
    code, _, _ = run(
        capsys,
        "render",
        "--dir",
        example_dir,
        "--date",
        "2026-11-27",
        "--network",
        "fostering",
        "--network",
        "send",
        "--out",
        tmp_path,
    )
    page = (tmp_path / "issue.html").read_text()
    assert code == 0
    assert "SEND inspection outcomes" in page and "Preventing exploitation outside the home" not in page


def test_render_uses_the_folders_own_templates(capsys, example_dir, tmp_path):
    import shutil

    from newsletter.render import TEMPLATES

    shutil.copytree(TEMPLATES, example_dir / "templates" / "email")
    text = example_dir / "templates" / "email" / "issue.txt.j2"
    text.write_text(text.read_text() + "Printed from the folder's templates\n")
    run(capsys, "render", "--dir", example_dir, "--out", tmp_path)
    assert (tmp_path / "issue.txt").read_text().endswith("Printed from the folder's templates\n")


def test_render_json(capsys, example_dir):
    code, out, _ = run(capsys, "render", "--dir", example_dir, "--format", "json", "--network", "fostering")
    data = json.loads(out)
    assert code == 0 and data["number"] == 119 and data["date"] == "2026-11-27"
    assert [i["programme"] for i in data["items"]] == ["New duties in the Family Support Act"]


def test_render_needs_out_or_json(capsys, example_dir):
    with pytest.raises(SystemExit) as exited:
        main(["render", "--dir", str(example_dir)])
    assert exited.value.code == 2 and "one of the arguments --out --format is required" in capsys.readouterr().err


@pytest.mark.parametrize(("command", "option"), [("check", "--date"), ("render", "--network"), ("preview", "--port")])
def test_help(capsys, command, option):
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    assert option in capsys.readouterr().out


def test_preview_refuses_a_busy_port(capsys, example_dir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = run(capsys, "preview", "--dir", example_dir, "--port", port)
    assert code == 1 and err == f"error: port {port} is in use: choose another with --port\n"


def test_preview_command_serves_on_localhost(example_dir):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "preview", "--dir", str(example_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, (
                    process.stderr.read() if process.poll() is not None else "no answer"
                )
                time.sleep(0.1)
        assert page.status_code == 200 and "Regional Improvement Weekly" in page.text
        assert httpx.get(f"http://127.0.0.1:{port}/email.html", timeout=5).status_code == 200
    finally:
        process.terminate()
        _, err = process.communicate(timeout=15)
    assert err.startswith(f"Preview at http://127.0.0.1:{port}/")
    assert "Traceback" not in err
