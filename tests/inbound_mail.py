"""Inbound messages as receivers send them, built for the tests: DSNs, ARF reports, unsubscribe emails, out-of-office."""

from __future__ import annotations

import secrets
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

REPORTING = "mx.example.net"


def _headers(original: bytes) -> str:
    return original.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("ascii", "replace")


def _report(head: str, report_type: str, notice: str, report: str, returned: str) -> bytes:
    boundary = f"=_report_{secrets.token_hex(6)}"
    text = (
        f"{head}Date: {formatdate()}\nMIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type={report_type};\n boundary="{boundary}"\n\n'
        f"--{boundary}\nContent-Type: text/plain; charset=us-ascii\n\n{notice}\n"
        f"--{boundary}\nContent-Type: message/{report_type}\n\n{report}\n"
        f"--{boundary}\nContent-Type: text/rfc822-headers\n\n{returned}\n\n--{boundary}--\n"
    )
    return text.replace("\n", "\r\n").encode("ascii")


def dsn(
    original: bytes, *, mail_from: str, recipient: str, status: str, diagnostic: str, action: str = "failed"
) -> bytes:
    """An RFC 3464 report as Postfix writes it, for `original` sent from the VERP address `mail_from`."""
    head = (
        f"Return-Path: <>\nDelivered-To: {mail_from}\nFrom: Mail Delivery System <MAILER-DAEMON@{REPORTING}>\n"
        f"To: {mail_from}\nSubject: Undelivered Mail Returned to Sender\nAuto-Submitted: auto-replied\n"
        f"Message-ID: {make_msgid(domain=REPORTING)}\n"
    )
    notice = f"This is the mail system at host {REPORTING}.\n\n<{recipient}>: {diagnostic}"
    report = (
        f"Reporting-MTA: dns; {REPORTING}\n\n"
        f"Final-Recipient: rfc822; {recipient}\nAction: {action}\nStatus: {status}\nDiagnostic-Code: smtp; {diagnostic}"
    )
    return _report(head, "delivery-status", notice, report, _headers(original))


def arf(original: bytes, *, to: str = "fbl@improvement.example.org") -> bytes:
    """An RFC 5965 abuse report as the big mailbox providers send it: the recipient redacted, the original's headers kept."""
    head = (
        f"From: feedback@arf.mail.example.com\nTo: {to}\nSubject: Complaint about message\n"
        f"Message-ID: {make_msgid(domain='arf.mail.example.com')}\n"
    )
    returned = "\n".join(
        "To: redacted@example.com" if line.startswith("To:") else line for line in _headers(original).split("\n")
    )
    report = "Feedback-Type: abuse\nUser-Agent: ExampleFBL/1.0\nVersion: 1\nOriginal-Rcpt-To: redacted@example.com"
    return _report(
        head, "feedback-report", "This is an email abuse report for a message from 192.0.2.1.", report, returned
    )


def plain(*, to: str, sender: str, subject: str, body: str = "", **headers: str) -> bytes:
    """A plain message: an unsubscribe email from a mail client, an out-of-office, a person's reply."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate()
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip(">"))
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body or "unsubscribe\n")
    return message.as_bytes(policy=policy.SMTP)


def out_of_office(*, to: str, sender: str) -> bytes:
    """An Exchange out-of-office reply."""
    return plain(
        to=to, sender=sender, subject="Automatic reply: Regional Improvement Weekly", body="I am out of the office.\n",
        Auto_Submitted="auto-replied", X_Auto_Response_Suppress="All",
    )  # fmt: skip
