"""The SMTP transport against real aiosmtpd servers on 127.0.0.1: bytes, pooling, errors, TLS, login, rates."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from aiosmtplib.email import quote_address
from conftest import RecordingHandler, SMTPServer, free_port

from newsletter.errors import (
    ConfigError,
    PermanentDeliveryError,
    RelayRefused,
    RelayUnavailable,
    TemporaryDeliveryError,
)
from newsletter.message import Outgoing
from newsletter.transports import OutboxTransport, SMTPTransport, open_transport
from newsletter.transports.smtp import Relay, _path


def outgoing(to: str = "jo@example.org", *, n: int = 0, size: int = 2000) -> Outgoing:
    body = ("Line %d of the message body, long enough to matter.\r\n" * (size // 50)) % tuple(range(size // 50))
    data = (
        f"From: News <news@example.org>\r\nTo: {to}\r\nSubject: Message {n}\r\nMessage-ID: <{n}.x@example.org>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n.leading dot survives\r\n{body}"
    ).encode()
    return Outgoing(mail_from="bounces@example.org", to=to, message_id=f"{n}.x@example.org", data=data)


@dataclass
class Handler(RecordingHandler):
    """RecordingHandler that may also refuse senders or recipients, or hang up instead of answering DATA."""

    refuse_sender: str | None = None
    refuse: dict[str, str] = field(default_factory=dict)  # recipient -> RCPT reply
    hang_up: set[str] = field(default_factory=set)  # recipients whose DATA gets no answer: the connection drops
    sessions: int = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1 if not session.host_name else 0  # a second EHLO (after STARTTLS) is the same session
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.refuse_sender:
            return self.refuse_sender
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if set(envelope.rcpt_tos) & self.hang_up:
            server.transport.abort()
            return "250 never heard"
        return await super().handle_DATA(server, session, envelope)


@contextlib.contextmanager
def serve(handler: Handler | None = None, *, port: int | None = None, **parameters):
    handler = handler or Handler()
    port = port or free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False, **parameters)
    controller.start()
    try:
        yield SMTPServer("127.0.0.1", port, handler)
    finally:
        controller.stop()


def run(coroutine):
    return asyncio.run(coroutine)


async def send_all(transport: SMTPTransport, messages) -> list:
    async with transport:
        return await asyncio.gather(*(transport.send(m) for m in messages), return_exceptions=True)


# bytes and the pool -----------------------------------------------------------------------


def test_concurrent_sends_share_a_small_pool_and_arrive_byte_for_byte():
    messages = [outgoing(f"r{i}@example.org", n=i) for i in range(40)]
    with serve() as server:
        transport = SMTPTransport(server.url, pool_size=3)
        replies = run(send_all(transport, messages))
        assert replies == ["250 2.0.0 OK"] * 40
        assert transport.connections_opened == 3 and server.handler.sessions == 3
        received = {r.rcpt_tos[0]: r for r in server.messages}
    assert len(received) == 40
    for message in messages:
        got = received[message.to]
        assert got.mail_from == "bounces@example.org"
        assert got.data == message.data  # dot-stuffing undone, nothing re-serialised


def test_sequential_sends_reuse_one_connection():
    with serve() as server:

        async def go():
            async with SMTPTransport(server.url, pool_size=4) as transport:
                for i in range(5):
                    await transport.send(outgoing(n=i))
            return transport.connections_opened

        assert run(go()) == 1 and len(server.messages) == 5


# errors ------------------------------------------------------------------------------------


def test_4xx_after_data_is_temporary_and_the_connection_carries_on(smtp_server):
    smtp_server.handler.reply = lambda envelope: (
        "451 4.3.0 Mailbox busy, try later" if "busy@example.org" in envelope.rcpt_tos else None
    )

    async def go():
        async with SMTPTransport(smtp_server.url, pool_size=1) as transport:
            with pytest.raises(TemporaryDeliveryError) as caught:
                await transport.send(outgoing("busy@example.org"))
            assert await transport.send(outgoing("fine@example.org")) == "250 2.0.0 OK"
        return caught.value, transport.connections_opened

    error, opened = run(go())
    assert (error.code, error.reply) == (451, "4.3.0 Mailbox busy, try later")
    assert isinstance(error, ConnectionError)
    assert "busy@example.org" in str(error)
    assert opened == 1
    assert [m.rcpt_tos for m in smtp_server.messages] == [["fine@example.org"]]


def test_5xx_after_data_is_permanent_with_code_and_reply(smtp_server):
    smtp_server.handler.reply = lambda envelope: "554 5.6.0 Content rejected"
    with pytest.raises(PermanentDeliveryError) as caught:
        run(_send_one(smtp_server.url, outgoing()))
    assert (caught.value.code, caught.value.reply, caught.value.status) == (554, "5.6.0 Content rejected", "5.6.0")
    assert not caught.value.hard_bounce


@pytest.mark.parametrize(
    ("stage", "answer"),
    [("DATA", "554 5.7.1 Message rejected as spam"), ("RCPT", "554 5.7.1 <jo@example.org>: Relay access denied")],
)
def test_a_5_7_x_refusal_is_the_relay_refusing_the_send_never_the_recipient(stage, answer):
    handler = Handler(refuse={"jo@example.org": answer} if stage == "RCPT" else {})
    if stage == "DATA":
        handler.reply = lambda envelope: answer
    with serve(handler) as server, pytest.raises(RelayRefused) as caught:
        run(_send_one(server.url, outgoing()))
    assert not isinstance(caught.value, PermanentDeliveryError) and caught.value.status == "5.7.1"


async def _send_one(url: str, message: Outgoing, **options) -> str:
    async with SMTPTransport(url, **options) as transport:
        return await transport.send(message)


def test_refused_recipient_unknown_mailbox_is_a_hard_bounce_and_450_is_temporary():
    handler = Handler(refuse={"gone@example.org": "550 5.1.1 No such user", "grey@example.org": "450 4.2.0 Greylisted"})
    with serve(handler) as server:

        async def go():
            async with SMTPTransport(server.url, pool_size=1) as transport:
                results = [
                    await _capture(transport.send(outgoing(a)))
                    for a in ("gone@example.org", "grey@example.org", "ok@example.org")
                ]
            return results, transport.connections_opened

        (gone, grey, ok), opened = run(go())
    assert isinstance(gone, PermanentDeliveryError) and gone.hard_bounce and gone.code == 550
    assert isinstance(grey, TemporaryDeliveryError) and grey.code == 450 and grey.reply == "4.2.0 Greylisted"
    assert ok == "250 2.0.0 OK" and opened == 1  # RSET after each refusal: the connection went on
    assert [m.rcpt_tos for m in server.messages] == [["ok@example.org"]]


def test_a_refused_sender_is_temporary_never_a_bounce_of_the_recipient():
    with (
        serve(Handler(refuse_sender="553 5.7.1 Sender address rejected")) as server,
        pytest.raises(TemporaryDeliveryError) as caught,
    ):
        run(_send_one(server.url, outgoing()))
    assert caught.value.code == 553 and "MAIL FROM" in str(caught.value)


async def _capture(awaitable):
    try:
        return await awaitable
    except Exception as exc:
        return exc


def test_connection_dropped_mid_data_is_temporary_and_the_pool_recovers():
    with serve(Handler(hang_up={"drop@example.org"})) as server:

        async def go():
            async with SMTPTransport(server.url, pool_size=1) as transport:
                dropped = await _capture(transport.send(outgoing("drop@example.org")))
                after = [await transport.send(outgoing(f"after{i}@example.org", n=i)) for i in range(3)]
            return dropped, after, transport.connections_opened

        dropped, after, opened = run(go())
    assert isinstance(dropped, TemporaryDeliveryError) and dropped.code is None
    assert "DATA" in str(dropped)
    assert after == ["250 2.0.0 OK"] * 3 and opened == 2
    assert len(server.messages) == 3


def test_a_pooled_connection_the_server_closed_is_replaced_without_an_error():
    port = free_port()

    async def go():
        transport = SMTPTransport(f"smtp://127.0.0.1:{port}", pool_size=1)
        with serve(port=port):
            await transport.send(outgoing(n=1))
        with serve(port=port) as again:  # the server restarted: the idle connection is dead
            await asyncio.sleep(0.05)
            async with transport:
                reply = await transport.send(outgoing(n=2))
            return reply, transport.connections_opened, len(again.messages)

    assert run(go()) == ("250 2.0.0 OK", 2, 1)


def test_nothing_listening_is_temporary():
    with pytest.raises(TemporaryDeliveryError, match=r"cannot connect to smtp://127\.0\.0\.1"):
        run(_send_one(f"smtp://127.0.0.1:{free_port()}", outgoing(), timeout=2))


def test_a_server_that_never_answers_times_out_as_the_relay_unavailable():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts the TCP handshake, never says a word
        started = time.monotonic()
        with pytest.raises(RelayUnavailable, match="cannot connect"):
            run(_send_one(f"smtp://127.0.0.1:{silent.getsockname()[1]}", outgoing(), timeout=0.5))
        assert time.monotonic() - started < 5


def test_a_server_that_stops_answering_at_data_times_out_as_the_relay_unavailable():
    handler = Handler()

    async def handle_DATA(server, session, envelope):
        await asyncio.sleep(5)  # longer than the transport waits
        return "250 too late"

    handler.handle_DATA = handle_DATA
    with serve(handler) as server:
        started = time.monotonic()
        with pytest.raises(RelayUnavailable, match=r"did not answer DATA within 0\.5 s"):
            run(_send_one(server.url, outgoing(), timeout=0.5))
        assert time.monotonic() - started < 4


def test_non_ascii_address_goes_with_smtputf8_when_offered_and_is_refused_otherwise():
    message = outgoing("zoë@exämple.org")
    with serve(enable_SMTPUTF8=True) as server:
        assert run(_send_one(server.url, message)) == "250 2.0.0 OK"
        assert server.messages[0].rcpt_tos == ["zoë@exämple.org"]
    # aiosmtpd's Controller offers SMTPUTF8 unless told not to
    with serve(enable_SMTPUTF8=False) as server, pytest.raises(PermanentDeliveryError, match="SMTPUTF8"):
        run(_send_one(server.url, message))


# configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://host", "smtp://", "smtp://host:notaport", "localhost:25"])
def test_bad_urls_are_config_errors_that_do_not_show_the_password(url):
    with pytest.raises(ConfigError) as caught:
        SMTPTransport(url.replace("://", "://user:s3cret@") if "://" in url else url)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize("special", ["#", "@", "/", "?"])
def test_a_password_with_a_special_character_is_never_printed_in_part(special):
    password = f"Kq7v{special}Zp9w"
    url = f"smtp://user:{password}@relay.example.org:587"
    try:
        relay = Relay.parse(url)
    except ConfigError as exc:
        said = str(exc)
        assert "percent-encode" in said and "%23" in said and "\n" not in said
    else:  # an @ in the password still parses (the host is after the last @)
        assert relay.password == password
        said = str(relay)
    assert "Kq7v" not in said and "Zp9w" not in said and "relay.example.org" in said
    escaped = f"smtp://user:{quote(password, safe='')}@relay.example.org:587"
    assert Relay.parse(escaped).password == password


def test_url_defaults_and_open_transport_choice(tmp_path):
    assert str(SMTPTransport("smtp://relay.example.org").relay) == "smtp://relay.example.org:587"
    assert str(SMTPTransport("smtps://relay.example.org").relay) == "smtps://relay.example.org:465"
    relay = SMTPTransport("smtp://me%40example.org:p%3Ass@relay.example.org:2525").relay
    assert (relay.username, relay.password, relay.port) == ("me@example.org", "p:ss", 2525)
    assert isinstance(open_transport("smtp://relay.example.org", outbox=tmp_path, pool_size=2), SMTPTransport)
    outbox = open_transport(None, outbox=tmp_path / "outbox")
    assert isinstance(outbox, OutboxTransport) and outbox.folder == tmp_path / "outbox"


# TLS and login -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a self-signed certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def server_context(certificate) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@dataclass
class TLSHandler(Handler):
    tls: list[bool] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):
        self.tls.append(session.ssl is not None)
        return await super().handle_DATA(server, session, envelope)


def test_starttls_with_a_self_signed_certificate_when_verification_is_off(certificate):
    handler = TLSHandler()
    with serve(handler, tls_context=server_context(certificate), require_starttls=True) as server:
        assert run(_send_one(server.url, outgoing(), verify=False)) == "250 2.0.0 OK"
        with pytest.raises(TemporaryDeliveryError, match="certificate"):
            run(_send_one(server.url, outgoing(), verify=True))
    assert handler.tls == [True]


def test_implicit_tls_with_smtps(certificate):
    handler = TLSHandler()
    with serve(handler, ssl_context=server_context(certificate)) as server:
        assert run(_send_one(f"smtps://127.0.0.1:{server.port}", outgoing(), verify=False)) == "250 2.0.0 OK"
    assert len(handler.messages) == 1


def authenticator(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=auth_data.login == b"news" and auth_data.password == b"pa ss", handled=False)


def test_login_after_starttls_and_a_wrong_password_is_temporary(certificate):
    with serve(
        TLSHandler(),
        tls_context=server_context(certificate),
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    ) as server:
        good = f"smtp://news:pa%20ss@127.0.0.1:{server.port}"
        assert run(_send_one(good, outgoing(), verify=False)) == "250 2.0.0 OK"
        with pytest.raises(TemporaryDeliveryError) as caught:
            run(_send_one(f"smtp://news:wrong@127.0.0.1:{server.port}", outgoing(), verify=False, timeout=5))
        assert caught.value.code == 535
        assert len(server.messages) == 1


def test_a_password_is_never_sent_without_tls():
    with serve() as server:
        with pytest.raises(TemporaryDeliveryError, match="offers no TLS"):
            run(_send_one(f"smtp://news:secret@127.0.0.1:{server.port}", outgoing()))
        assert server.messages == []


# rate limits -------------------------------------------------------------------------------


def test_rate_per_second_spaces_the_messages():
    with serve() as server:
        transport = SMTPTransport(server.url, pool_size=4, rate_per_second=10)
        started = time.monotonic()
        replies = run(send_all(transport, [outgoing(f"r{i}@example.org", n=i) for i in range(12)]))
        elapsed = time.monotonic() - started
    assert replies == ["250 2.0.0 OK"] * 12
    assert elapsed >= 0.95  # the 11th and 12th had to wait for the first second to pass


@pytest.mark.parametrize(
    "address",
    [
        "jo@example.org",
        "jo.o+tag@mail.example.org",
        "o'neil@example.org",
        "bounces+42@example.org",
        "a@b",
        '"j o"@example.org',
    ],
)
def test_envelope_addresses_are_quoted_as_aiosmtplib_quotes_them(address):
    assert _path(address, "ascii") == quote_address(address).encode("ascii")
