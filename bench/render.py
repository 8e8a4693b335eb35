"""Time each rendering stage for the example issue and a generated 40-item issue, and the HTML size.

    python bench/render.py [--repeat N]

The example is the baseline: the 40-item column is also shown as a ratio of it, measured in the same run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.assembly import assemble  # noqa: E402
from newsletter.folder import load_folder  # noqa: E402
from newsletter.render import compile_mjml, inline_css, render, render_mjml, stylesheet  # noqa: E402


def forty_items(target: Path, count: int = 40) -> Path:
    """A copy of examples/ whose newest issue has `count` items, cycling through the example's items."""
    shutil.copytree(ROOT / "examples", target)
    path = target / "content" / "issues" / "2026-11-27.yaml"
    issue = yaml.safe_load(path.read_text(encoding="utf-8"))
    older = yaml.safe_load((target / "content" / "issues" / "2026-11-20.yaml").read_text(encoding="utf-8"))
    pool = [dict(item) for item in issue["items"] + older["items"]]
    for item in pool:
        item.pop("remind_until", None)
    issue["items"] = [
        {**pool[n % len(pool)], "programme": f"{pool[n % len(pool)]['programme']} (part {n + 1})"} for n in range(count)
    ]
    path.write_text(yaml.safe_dump(issue, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return target


def timed(function, repeat: int) -> float:
    """Median seconds of `repeat` calls (after one warm-up call)."""
    function()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def measure(root: Path, repeat: int) -> dict[str, float]:
    folder = load_folder(root)
    issue = assemble(folder)
    css = stylesheet()
    source = render_mjml(issue)
    compiled = compile_mjml(source)
    html = inline_css(compiled, css=css)
    rendered = render(issue)
    return {
        "validate (load folder)": timed(lambda: load_folder(root), repeat),
        "assemble": timed(lambda: assemble(folder), repeat),
        "fill MJML template (Jinja2)": timed(lambda: render_mjml(issue), repeat),
        "compile MJML (mjml-python)": timed(lambda: compile_mjml(source), repeat),
        "inline CSS (premailer)": timed(lambda: inline_css(compiled, css=css), repeat),
        "whole render() incl. text": timed(lambda: render(issue), repeat),
        "HTML size (KB)": len(html.encode()) / 1024,
        "text size (KB)": len(rendered.text.encode()) / 1024,
        "items": len(issue.items),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per stage (median shown)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        base = measure(ROOT / "examples", args.repeat)
        big = measure(forty_items(Path(work) / "forty"), args.repeat)
    print(f"{'stage':<30}{'example':>12}{'40 items':>12}{'ratio':>8}")
    for name in base:
        a, b = base[name], big[name]
        if name == "items":
            shown = (f"{a:.0f}", f"{b:.0f}")
        elif "KB" in name:
            shown = (f"{a:.1f}", f"{b:.1f}")
        else:
            shown = (f"{a * 1000:.2f} ms", f"{b * 1000:.2f} ms")
        print(f"{name:<30}{shown[0]:>12}{shown[1]:>12}{b / a:>7.1f}x")
    print("budget: 90 KB of HTML (Gmail clips near 102 KB); premailer runs once per variant, never per reader")


if __name__ == "__main__":
    main()
