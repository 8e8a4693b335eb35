"""A tiny Chrome DevTools Protocol client for tests: start headless Chromium, open pages, click, read.

    with Browser.start(tmp_path) as browser:
        page = browser.new_page()
        page.goto("http://127.0.0.1:8000/")
        page.click("button#confirm")          # a real mouse click; waits for the page it loads
        assert "done" in page.text()

Chromium is Debian's /usr/bin/chromium (override with $CHROMIUM). Every page records the
browser's console and log errors (CSP violations, failed loads) in `page.errors`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--remote-debugging-port=0",
]


class CDPError(RuntimeError):
    """Chromium answered a command with an error, or did not answer in time."""


class Browser:
    """One headless Chromium process and one DevTools connection, with a session per page."""

    def __init__(self, process: subprocess.Popen, url: str):
        self.process = process
        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(connect(url, max_size=None, open_timeout=10))
        self._ids = itertools.count(1)
        self._replies: dict[int, queue.Queue] = {}
        self._events: dict[str, queue.Queue] = {}  # by session id
        self._lock = threading.Lock()
        self.failure: Exception | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @classmethod
    def start(cls, workdir: Path, *, timeout: float = 20) -> Browser:
        profile = Path(workdir) / "chromium-profile"
        profile.mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_file.exists() and len(lines := port_file.read_text().split()) >= 2:
                return cls(process, f"ws://127.0.0.1:{lines[0]}{lines[1]}")
            if process.poll() is not None:
                raise CDPError(f"{CHROMIUM} exited with {process.returncode} before opening DevTools")
            time.sleep(0.05)
        process.kill()
        raise CDPError(f"{CHROMIUM} did not open DevTools within {timeout}s")

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._stack.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _read(self) -> None:
        try:
            for raw in self.ws:
                message = json.loads(raw)
                if "id" in message:
                    with self._lock:
                        box = self._replies.pop(message["id"], None)
                    if box is not None:
                        box.put(message)
                else:
                    self._event_queue(message.get("sessionId", "")).put(message)
        except Exception as exc:  # the connection closed: waiters time out, and say why
            self.failure = exc

    def _event_queue(self, session: str) -> queue.Queue:
        with self._lock:
            return self._events.setdefault(session, queue.Queue())

    def send(self, method: str, params: dict | None = None, *, session: str | None = None, timeout: float = 20) -> dict:
        """Run one DevTools command and return its result."""
        command_id = next(self._ids)
        box: queue.Queue = queue.Queue()
        with self._lock:
            self._replies[command_id] = box
        message: dict[str, Any] = {"id": command_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        try:
            reply = box.get(timeout=timeout)
        except queue.Empty:
            raise CDPError(
                f"no answer to {method} within {timeout}s" + (f" ({self.failure!r})" if self.failure else "")
            ) from None
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def new_page(self, *, width: int = 800, height: int = 1000) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session, target)
        for domain in ("Page", "Runtime", "Log"):
            page.send(f"{domain}.enable")
        page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        return page


class Page:
    """One tab: navigate, click like a person, evaluate JavaScript, read text."""

    def __init__(self, browser: Browser, session: str, target: str):
        self.browser = browser
        self.session = session
        self.target = target
        self.errors: list[str] = []

    def send(self, method: str, params: dict | None = None, **kwargs) -> dict:
        return self.browser.send(method, params, session=self.session, **kwargs)

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target})

    def _drain(self) -> None:
        events = self.browser._event_queue(self.session)
        while True:
            try:
                self._note(events.get_nowait())
            except queue.Empty:
                return

    def _note(self, event: dict) -> None:
        params = event.get("params", {})
        if event.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(params["entry"]["text"])
        elif event.get("method") == "Runtime.exceptionThrown":
            self.errors.append(params["exceptionDetails"].get("text", "exception"))
        elif event.get("method") == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(" ".join(str(a.get("value", "")) for a in params.get("args", [])))

    def wait_for(self, method: str, *, timeout: float = 20) -> dict:
        """The next event named `method` on this page (other events are noted and dropped)."""
        events = self.browser._event_queue(self.session)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = events.get(timeout=left)
            except queue.Empty:
                break
            self._note(event)
            if event.get("method") == method:
                return event["params"]
        raise CDPError(f"no {method} within {timeout}s")

    def goto(self, url: str) -> int:
        """Load `url` and wait for its load event; the HTTP status of the document."""
        self._drain()
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CDPError(f"cannot open {url}: {result['errorText']}")
        self.wait_for("Page.loadEventFired")
        return self.status()

    def status(self) -> int:
        return self.evaluate("performance.getEntriesByType('navigation')[0].responseStatus")

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise CDPError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def click(self, selector: str, *, navigates: bool = True) -> None:
        """A real mouse click in the middle of the element; by default, wait for the page it loads."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
            " e.scrollIntoView({block: 'center'}); const r = e.getClientRects()[0];"  # a wrapped link: its first line
            " return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()"
        )
        if box is None:
            raise CDPError(f"no element matches {selector!r} on {self.url}")
        self._drain()
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": box["x"], "y": box["y"], "button": "left", "clickCount": 1},
            )
        if navigates:
            self.wait_for("Page.loadEventFired")

    def text(self) -> str:
        return self.evaluate("document.body.innerText")

    @property
    def url(self) -> str:
        return self.evaluate("location.href")

    def screenshot(self, path: Path) -> Path:
        import base64

        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)
