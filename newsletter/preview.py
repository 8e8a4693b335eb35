"""A live-reloading preview of an issue for editors: phone and desktop widths, networks, text part and checks."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import signal
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from types import FrameType
from urllib.parse import urlencode

import uvicorn
import watchfiles
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from .asgi import BodyLimit
from .assembly import assemble
from .checks import check
from .content import Newsletter
from .errors import ContentError, NewsletterError, Problem
from .folder import Folder, load_folder
from .images import PUBLIC_NAME, BadImage, read_image
from .render import TEMPLATES, Rendered, render

WATCHED = frozenset({".yaml", ".yml", ".j2", ".css"})
WIDTHS = (375, 800)
# Only pages of this machine may read drafts: a DNS-rebinding page reaches 127.0.0.1 under its own Host.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
MAX_BODY = 4 * 1024 * 1024  # an issue file is far smaller


@dataclass
class View:
    """What the preview shows for one date and network: the rendering, or why there is none."""

    folder: Folder | None = None
    date: dt.date | None = None
    network: str | None = None
    rendered: Rendered | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


class Preview:
    """The state behind the app: the folder, a cache of views keyed by the files' fingerprint, and change signals."""

    def __init__(self, root: Path, date: dt.date | None = None):
        self.root = Path(root)
        self.date = date
        self._cache: dict[tuple, View] = {}
        self._changed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.watching = False
        self.stopping = False

    # what changed -------------------------------------------------------------------------

    def watched_dirs(self) -> list[Path]:
        return [p for p in (self.root, TEMPLATES) if p.is_dir()]

    def files(self) -> list[Path]:
        found = [self.root / "newsletter.yaml"]
        for base in (self.root / "content", self.root / "templates", TEMPLATES):
            if base.is_dir():
                found.extend(p for p in base.rglob("*") if p.suffix in WATCHED)
        return found

    def fingerprint(self) -> str:
        """Changes whenever a content or template file is added, removed or written."""
        digest = hashlib.sha1()
        for path in sorted(self.files()):
            with contextlib.suppress(OSError):
                stat = path.stat()
                digest.update(f"{path}\0{stat.st_mtime_ns}\0{stat.st_size}\n".encode())
        return digest.hexdigest()[:16]

    async def watch(self) -> None:
        """Wake every waiting event stream when a watched file changes."""
        self._loop = asyncio.get_running_loop()
        self.watching = True
        try:
            async for _ in watchfiles.awatch(
                *self.watched_dirs(), watch_filter=lambda _, path: Path(path).suffix in WATCHED, debounce=200, step=50
            ):
                self._changed.set()
                self._changed = asyncio.Event()
        finally:
            self.watching = False

    def stop(self) -> None:
        """End every event stream, so the server can shut down at once; safe to call from a signal handler."""
        self.stopping = True
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(lambda: self._changed.set())

    async def wait_for_change(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._changed.wait(), seconds)

    # what to show -------------------------------------------------------------------------

    def view(self, date: str | None, network: str | None) -> View:
        key = (self.fingerprint(), date, network)
        if key not in self._cache:
            self._cache = {key: self._build(date, network)}  # only the current files' views are worth keeping
        return self._cache[key]

    def _build(self, date: str | None, network: str | None) -> View:
        view = View(network=network or None)
        try:
            view.folder = load_folder(self.root)
            view.date = dt.date.fromisoformat(date) if date else (self.date or view.folder.latest_date())
            networks = None
            if view.network:
                if view.network not in view.folder.newsletter.network_ids:
                    raise NewsletterError(f"unknown network '{view.network}'")
                networks = {view.network}
            issue = assemble(view.folder, view.date).variant(networks)
            view.rendered = render(issue)  # as emailed: the footer's links hold a placeholder token
            view.warnings = check(view.folder, date=view.date)
        except ContentError as exc:
            view.errors = [str(p) for p in exc.problems]
        except NewsletterError as exc:
            view.errors = [str(exc)]
        except ValueError as exc:  # a --date or ?date= that is not a date
            view.errors = [f"{exc}"]
        except Exception as exc:
            view.errors = [f"{type(exc).__name__}: {exc}"]
        return view


def create_preview_app(root: Path, *, date: dt.date | None = None, allowed_hosts: Iterable[str] = ()) -> Starlette:
    """The preview as an ASGI app; its lifespan watches the folder and the templates for changes.

    It answers requests for this machine's names only (LOCAL_HOSTS), and for `allowed_hosts`.
    """
    preview = Preview(root, date)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        task = asyncio.create_task(preview.watch())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def page(request: Request) -> Response:
        return HTMLResponse(_page(preview, request.query_params.get("date"), request.query_params.get("network")))

    async def email_html(request: Request) -> Response:
        view = preview.view(request.query_params.get("date"), request.query_params.get("network"))
        if view.rendered is None or view.folder is None:
            return HTMLResponse(_error_page(view.errors), status_code=422)
        return HTMLResponse(local_pictures(view.rendered.html, view.folder.newsletter))

    def images(request: Request) -> Response:
        return picture(root, request.path_params["file"])

    async def email_text(request: Request) -> Response:
        view = preview.view(request.query_params.get("date"), request.query_params.get("network"))
        if view.rendered is None:
            return PlainTextResponse("\n".join(view.errors) + "\n", status_code=422)
        return PlainTextResponse(view.rendered.text)

    async def events(request: Request) -> Response:
        """Server-sent events: `reload` as soon as the files differ from the fingerprint the page was built from."""
        since = request.query_params.get("since", "")

        async def stream():
            yield "retry: 1000\n\n"
            while not preview.stopping:
                if preview.fingerprint() != since:
                    yield "event: reload\ndata: changed\n\n"
                    return
                await preview.wait_for_change(15 if preview.watching else 1)
                yield ": waiting\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    routes = [
        Route("/", page),
        Route("/email.html", email_html),
        Route("/email.txt", email_text),
        Route("/images/{file}", images),
        Route("/events", events),
    ]
    hosts = [*LOCAL_HOSTS, *(host.lower() for host in allowed_hosts)]
    middleware = [
        Middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False),
        Middleware(BodyLimit, limit=MAX_BODY),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.preview = preview
    return app


class PreviewServer(uvicorn.Server):
    """uvicorn's server for the preview: Ctrl-C ends the open event streams first, so it stops at once and quietly.

    A second Ctrl-C does not make uvicorn abandon its tasks (which prints their tracebacks), nor is the signal
    raised again once stopped: the streams have already ended, and `timeout_graceful_shutdown` bounds the rest.
    Once stopped, the process is on its way out: a late Ctrl-C is ignored rather than a traceback at exit.
    """

    def __init__(self, app: Starlette, *, port: int) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1)
        super().__init__(config)
        self.preview: Preview = app.state.preview

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.preview.stop()
        self.should_exit = True

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
            yield
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self.handle_exit)
        yield
        signal.signal(signal.SIGINT, signal.SIG_IGN)


# pages ----------------------------------------------------------------------------------------

STYLE = """
body { margin: 0; font: 15px/1.45 -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; background: #dfe3e6; color: #1b1f23; }
header { background: #0b3c5d; color: #fff; padding: 10px 20px; display: flex; flex-wrap: wrap; gap: 12px 24px; align-items: center; }
header h1 { font-size: 18px; margin: 0; }
header form { display: flex; gap: 16px; flex-wrap: wrap; align-items: center; }
header label { font-size: 14px; }
header select { font: inherit; padding: 2px 4px; }
.status { font-weight: 700; padding: 2px 10px; border-radius: 10px; background: #2e7d32; }
.status.warn { background: #b25e00; } .status.bad { background: #b3261e; }
main { display: flex; flex-wrap: wrap; gap: 20px; padding: 20px; align-items: flex-start; }
figure { margin: 0; } figcaption { font-size: 13px; color: #505a5f; margin: 0 0 6px; }
iframe { border: 0; background: #fff; box-shadow: 0 1px 4px rgba(0,0,0,.2); height: 1200px; display: block; }
aside { flex: 1 1 600px; min-width: 320px; display: flex; flex-direction: column; gap: 20px; }
section { background: #fff; padding: 14px 18px; box-shadow: 0 1px 4px rgba(0,0,0,.15); }
section h2 { font-size: 16px; margin: 0 0 8px; }
ul.problems { margin: 0; padding-left: 18px; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; }
ul.problems li { margin: 0 0 4px; } li.error { color: #b3261e; } li.warning { color: #7a4100; }
pre { white-space: pre; font-size: 12.5px; margin: 0; max-height: 1100px; overflow: auto; }
"""

SCRIPT = """
document.querySelectorAll('iframe').forEach(function (f) {
  f.addEventListener('load', function () {
    try { f.style.height = f.contentDocument.documentElement.scrollHeight + 'px'; } catch (e) {}
  });
});
var source = new EventSource('/events?since=' + encodeURIComponent(document.body.dataset.fingerprint));
source.addEventListener('reload', function () { source.close(); location.reload(); });
"""


def _page(preview: Preview, date: str | None, network: str | None) -> str:
    fingerprint = preview.fingerprint()
    view = preview.view(date, network)
    folder = view.folder
    query = urlencode({k: v for k, v in (("date", date or ""), ("network", network or "")) if v})
    title = folder.newsletter.name if folder else "Newsletter preview"
    issues = folder.issues if folder else {}
    date_options = "".join(
        f'<option value="{d}"{" selected" if d == view.date else ""}>{d} (No {issues[d].number})</option>'
        for d in sorted(issues, reverse=True)
    )
    networks = folder.newsletter.networks if folder else []
    network_options = '<option value="">Everyone (the full issue)</option>' + "".join(
        f'<option value="{escape(n.id)}"{" selected" if n.id == view.network else ""}>{escape(n.name)}</option>'
        for n in networks
    )
    if view.errors:
        status = f'<span class="status bad">{len(view.errors)} error{"s" if len(view.errors) != 1 else ""}</span>'
    elif view.warnings:
        status = (
            f'<span class="status warn">{len(view.warnings)} warning{"s" if len(view.warnings) != 1 else ""}</span>'
        )
    else:
        status = '<span class="status">no problems</span>'
    problems = "".join(f'<li class="error">{escape(e)}</li>' for e in view.errors) + "".join(
        f'<li class="warning">{escape(str(w))}</li>' for w in view.warnings
    )
    frames = "".join(
        f"<figure><figcaption>{'Phone' if w < 600 else 'Desktop'}, {w} px</figcaption>"
        f'<iframe title="The email at {w} px" src="/email.html?{query}" style="width:{w}px"></iframe></figure>'
        for w in WIDTHS
    )
    text = escape(view.rendered.text) if view.rendered else "(no text version: fix the errors first)"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Preview: {escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body data-fingerprint="{fingerprint}">
<header><h1>{escape(title)}</h1>
<form method="get" action="/">
<label>Issue <select name="date" onchange="this.form.submit()">{date_options}</select></label>
<label>Network <select name="network" onchange="this.form.submit()">{network_options}</select></label>
<noscript><button>Show</button></noscript>
</form>{status}</header>
<main>{frames}
<aside>
<section id="checks"><h2>Checks</h2>{f'<ul class="problems">{problems}</ul>' if problems else "<p>No errors or warnings.</p>"}</section>
<section id="text"><h2>Text version</h2><pre>{text}</pre></section>
</aside></main>
<script>{SCRIPT}</script>
</body></html>"""


def _error_page(errors: list[str]) -> str:
    items = "".join(f"<li>{escape(e)}</li>" for e in errors)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Errors</title></head>"
        "<body style='font:15px/1.5 sans-serif;padding:16px;color:#b3261e'>"
        f"<h1 style='font-size:18px'>The issue cannot be shown</h1><ul>{items}</ul></body></html>"
    )


def local_pictures(html: str, newsletter: Newsletter) -> str:
    """The email with its pictures taken from this server's /images/ rather than the public site,
    which may not have them yet (the preview and the desk show drafts)."""
    return html.replace(f"{newsletter.public_url.rstrip('/')}/images/", "/images/")


def picture(root: Path, file: str) -> Response:
    """A picture of ROOT/content/images/ by its public name (<digest>-<name>), or 404."""
    match = PUBLIC_NAME.fullmatch(file)
    try:
        if match is None:
            raise BadImage("not a picture address")
        found = read_image(Path(root) / "content" / "images", match.group(2))
    except BadImage:
        return PlainTextResponse("No such picture\n", status_code=404)
    return Response(found.path.read_bytes(), media_type=found.media_type, headers={"Cache-Control": "no-store"})
