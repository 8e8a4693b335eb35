"""The outbox transport writes each message as an .eml file, atomically; the memory transport keeps them."""

from __future__ import annotations

import asyncio
import email
from email import policy

import pytest
from test_message import composer, newsletter  # noqa: F401  (fixture)

from newsletter.errors import PermanentDeliveryError, TemporaryDeliveryError
from newsletter.message import Outgoing
from newsletter.transports import MemoryTransport, OutboxTransport


def outgoing(
    message_id: str = "20261127.1.abc@example.org", to: str = "jo@example.org", body: bytes = b"Hello\r\n"
) -> Outgoing:
    data = (
        b"From: a@example.org\r\nTo: " + to.encode() + b"\r\nMessage-ID: <" + message_id.encode() + b">\r\n\r\n" + body
    )
    return Outgoing(mail_from="a@example.org", to=to, message_id=message_id, data=data)


def test_outbox_writes_the_exact_bytes_as_an_eml_named_by_message_id(tmp_path, newsletter):  # noqa: F811
    folder = tmp_path / "news" / "outbox"  # created on first use
    message = composer(newsletter).message(subscriber_id=3, email="jo@example.org", name="Jo")
    transport = OutboxTransport(folder)
    reply = asyncio.run(transport.send(message))
    files = list(folder.iterdir())
    assert [f.name for f in files] == [f"{message.message_id}.eml"]
    assert files[0].read_bytes() == message.data
    assert reply.startswith("250 ") and str(files[0]) in reply
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert parsed["Message-ID"] == f"<{message.message_id}>" and parsed.get_content_type() == "multipart/alternative"


def test_outbox_names_are_safe_and_a_resend_replaces_the_file(tmp_path):
    transport = OutboxTransport(tmp_path)

    async def go() -> None:
        async with transport:
            await transport.send(outgoing("../../etc/passwd@x", body=b"first\r\n"))
            await transport.send(outgoing("../../etc/passwd@x", body=b"second\r\n"))
            await asyncio.gather(*(transport.send(outgoing(f"{i}@example.org")) for i in range(20)))

    asyncio.run(go())
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 21 and "_.._etc_passwd@x.eml" in names
    assert all(not name.startswith(".") for name in names)  # no temporary file left behind
    assert (tmp_path / "_.._etc_passwd@x.eml").read_bytes().endswith(b"second\r\n")


def test_outbox_that_cannot_be_written_is_a_temporary_error(tmp_path):
    blocker = tmp_path / "outbox"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(TemporaryDeliveryError, match="cannot write to the outbox"):
        asyncio.run(OutboxTransport(blocker).send(outgoing()))


def test_memory_transport_keeps_messages_and_fails_chosen_addresses():
    bounce = PermanentDeliveryError("gone", code=550, reply="5.1.1 no such user")
    transport = MemoryTransport(fail=lambda address: bounce if address == "gone@example.org" else None)

    async def go():
        async with transport as entered:
            assert entered is transport
            kept = await transport.send(outgoing(to="jo@example.org"))
            with pytest.raises(PermanentDeliveryError) as caught:
                await transport.send(outgoing(to="gone@example.org"))
        return kept, caught.value

    kept, error = asyncio.run(go())
    assert kept.startswith("250 ") and error is bounce and error.hard_bounce
    assert [m.to for m in transport.sent] == ["jo@example.org"] and transport.closed


def test_a_transport_is_closed_when_its_block_ends_with_an_error(tmp_path):
    memory, outbox = MemoryTransport(), OutboxTransport(tmp_path)

    async def go() -> None:
        async with memory, outbox:
            await outbox.send(outgoing())
            raise RuntimeError("the sender died")

    with pytest.raises(RuntimeError, match="the sender died"):
        asyncio.run(go())
    assert memory.closed and len(list(tmp_path.iterdir())) == 1
