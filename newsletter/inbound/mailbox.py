"""The inbound mailbox: list the messages not yet handled, move each to Processed or Unrecognised, never delete.

`open_mailbox(url)` picks the implementation: `imaps://user:pass@host[:port]/INBOX`, `imap://…`
(STARTTLS, refused if the server does not offer it) or `maildir:///path/to/Maildir`. Folders are
IMAP folders, or Maildir++ sub-folders (`.Processed`), which Dovecot also shows as IMAP folders.
"""

from __future__ import annotations

import mailbox as stdlib_mailbox
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self
from urllib.parse import unquote, urlsplit

from ..errors import ConfigError, NewsletterError
from ..urls import PERCENT_ENCODE, redacted, split

PROCESSED = "Processed"
UNRECOGNISED = "Unrecognised"
FOLDERS = (PROCESSED, UNRECOGNISED)
FETCH_BATCH = 50  # messages fetched from the IMAP server per round trip
IMAP_TIMEOUT = 60.0  # seconds without an answer before the connection counts as lost


class MailboxError(NewsletterError, ConnectionError):
    """The mailbox cannot be reached, logged into or changed."""


@dataclass(frozen=True)
class Incoming:
    """One message waiting in the inbox: `key` names it within its mailbox until it is moved."""

    key: str
    data: bytes = field(repr=False)


class Mailbox(Protocol):
    """A mailbox the service reads; open it with `with`."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None: ...

    def unhandled(self) -> Iterator[Incoming]:
        """The messages in the inbox, oldest first."""
        ...

    def move(self, key: str, folder: str) -> None:
        """Move a message out of the inbox into `folder` (PROCESSED or UNRECOGNISED)."""
        ...

    def wait(self, seconds: float) -> bool:
        """Block until new mail may have come (True: IMAP IDLE said so) or `seconds` have passed (False)."""
        ...


def open_mailbox(url: str, *, ssl_context: ssl.SSLContext | None = None) -> Mailbox:
    """The mailbox that NEWSLETTER_INBOUND_URL names (not yet connected: use it with `with`).

    A bad URL is a ConfigError showing `scheme://***@host`: no part of the user name or password.
    """
    scheme = url.partition("://")[0]
    if scheme == "maildir":
        path = urlsplit(url).path
        if not path:
            raise ConfigError(f"inbound URL {url!r}: maildir:///path/to/Maildir needs a path")
        return MaildirMailbox(Path(unquote(path)))
    if scheme not in ("imap", "imaps"):
        raise ConfigError(f"inbound URL {redacted(url)!r}: use imaps://, imap:// (STARTTLS) or maildir://")
    parts = split(url)
    if parts is None:
        raise ConfigError(
            f"inbound URL {redacted(url)!r}: expected {scheme}://user:pass@host[:port]/INBOX; {PERCENT_ENCODE}"
        )
    if not parts.hostname or parts.username is None or parts.password is None:
        raise ConfigError(
            f"inbound URL {redacted(url)!r}: give the user, password and host (imaps://user:pass@host/INBOX)"
        )
    return ImapMailbox(
        parts.hostname,
        parts.port or (993 if scheme == "imaps" else 143),
        user=unquote(parts.username),
        password=unquote(parts.password),
        folder=unquote(parts.path.strip("/")) or "INBOX",
        starttls=scheme == "imap",
        ssl_context=ssl_context,
    )


# in memory -------------------------------------------------------------------------------------


class MemoryMailbox:
    """Messages kept in lists: `inbox` to read, `folders` for what was moved. For tests and rehearsals."""

    def __init__(self, messages: list[bytes] | None = None) -> None:
        self.inbox: dict[str, bytes] = {}
        self.folders: dict[str, list[bytes]] = {name: [] for name in FOLDERS}
        self._next = 0
        self._arrived = threading.Event()
        for data in messages or []:
            self.deliver(data)

    def deliver(self, data: bytes) -> None:
        self._next += 1
        self.inbox[str(self._next)] = data
        self._arrived.set()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def unhandled(self) -> Iterator[Incoming]:
        for key, data in list(self.inbox.items()):
            yield Incoming(key, data)

    def move(self, key: str, folder: str) -> None:
        self.folders[folder].append(self.inbox.pop(key))

    def wait(self, seconds: float) -> bool:
        arrived = self._arrived.wait(seconds)
        self._arrived.clear()
        return arrived


# Maildir ---------------------------------------------------------------------------------------


class MaildirMailbox:
    """A Maildir on this machine (`new/` and `cur/` are the inbox); folders are Maildir++ sub-folders."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._box: stdlib_mailbox.Maildir | None = None

    def __enter__(self) -> Self:
        try:
            self._box = stdlib_mailbox.Maildir(self.path, factory=None, create=True)
            for name in FOLDERS:
                if name not in self._box.list_folders():
                    self._box.add_folder(name)
        except OSError as exc:
            raise MailboxError(f"cannot open the Maildir {self.path}: {exc.strerror or exc}") from None
        return self

    def __exit__(self, *_: object) -> None:
        self._box = None

    @property
    def box(self) -> stdlib_mailbox.Maildir:
        if self._box is None:
            raise RuntimeError("open the mailbox with `with` first")
        return self._box

    def unhandled(self) -> Iterator[Incoming]:
        for key in sorted(self.box.keys()):  # a Maildir name starts with its arrival time
            yield Incoming(key, self.box.get_bytes(key))

    def move(self, key: str, folder: str) -> None:
        # Added to the folder before it leaves the inbox: a crash in between leaves a copy, never a loss.
        self.box.get_folder(folder).add(self.box.get_message(key))
        self.box.remove(key)

    def wait(self, seconds: float) -> bool:
        time.sleep(seconds)
        return False


# IMAP ------------------------------------------------------------------------------------------


class ImapMailbox:
    """A folder on an IMAP server, through imapclient; IDLE where the server has it."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        user: str,
        password: str,
        folder: str = "INBOX",
        starttls: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.user, self.folder = host, port, user, folder
        self._password = password
        self._starttls = starttls
        self._context = ssl_context or ssl.create_default_context()
        self._client = None

    def __repr__(self) -> str:
        return f"ImapMailbox({self.user}@{self.host}:{self.port}/{self.folder})"

    def __enter__(self) -> Self:
        from imapclient import IMAPClient
        from imapclient.exceptions import IMAPClientError

        where = f"the IMAP server {self.host}:{self.port}"
        try:
            client = IMAPClient(
                self.host, self.port, ssl=not self._starttls, ssl_context=self._context, timeout=IMAP_TIMEOUT
            )
        except (OSError, IMAPClientError) as exc:
            raise MailboxError(f"cannot connect to {where}: {exc}") from None
        try:
            if self._starttls:
                if not client.has_capability("STARTTLS"):
                    raise MailboxError(f"{where} does not offer STARTTLS: use imaps:// or enable TLS on the server")
                client.starttls(self._context)
            client.login(self.user, self._password)
            client.select_folder(self.folder)
            for name in FOLDERS:
                if not client.folder_exists(name):
                    client.create_folder(name)
        except MailboxError:
            client.shutdown()
            raise
        except (OSError, IMAPClientError, ssl.SSLError) as exc:
            client.shutdown()
            raise MailboxError(f"{where}, user {self.user}: {exc}") from None
        self._client = client
        return self

    def __exit__(self, *_: object) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        from imapclient.exceptions import IMAPClientError

        try:
            client.logout()
        except (OSError, IMAPClientError):  # the connection may already be gone; nothing is left to save
            client.shutdown()

    @property
    def client(self):  # -> IMAPClient, imported lazily
        if self._client is None:
            raise RuntimeError("open the mailbox with `with` first")
        return self._client

    @contextmanager
    def _talking(self, doing: str) -> Iterator[None]:
        """A lost connection or a refusal as a MailboxError naming the server (--watch then connects again)."""
        from imapclient.exceptions import IMAPClientError

        try:
            yield
        except (OSError, IMAPClientError) as exc:
            raise MailboxError(f"the IMAP server {self.host}:{self.port}, {doing}: {exc}") from None

    def unhandled(self) -> Iterator[Incoming]:
        with self._talking("listing the inbox"):
            uids = sorted(self.client.search(["NOT", "DELETED"]))
        for start in range(0, len(uids), FETCH_BATCH):
            batch = uids[start : start + FETCH_BATCH]
            with self._talking("fetching messages"):
                fetched = self.client.fetch(batch, ["BODY.PEEK[]"])
            for uid in batch:
                if uid in fetched:  # gone meanwhile (another reader moved it)
                    yield Incoming(str(uid), fetched[uid][b"BODY[]"])

    def move(self, key: str, folder: str) -> None:
        uid = int(key)
        with self._talking(f"moving a message to {folder}"):
            if self.client.has_capability("MOVE"):
                self.client.move([uid], folder)
                return
            self.client.copy([uid], folder)  # RFC 3501 without MOVE: copy, then flag and expunge the original
            self.client.delete_messages([uid])
            if self.client.has_capability("UIDPLUS"):
                self.client.uid_expunge([uid])
            else:
                self.client.expunge()

    def wait(self, seconds: float) -> bool:
        if not self.client.has_capability("IDLE"):
            time.sleep(seconds)
            return False
        with self._talking("waiting for new mail"):
            self.client.idle()
            news = bool(self.client.idle_check(timeout=seconds))
            _, late = self.client.idle_done()  # what arrived as IDLE ended counts too, or it waits a whole poll
            return news or bool(late)
