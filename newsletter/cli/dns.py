"""Command: `newsletter dns` prints the DNS records to publish for the configured sender, in zone-file form."""

from __future__ import annotations

import argparse

from ..content import Newsletter
from ..folder import load_newsletter
from ..settings import Settings
from ..urls import split
from . import wiring
from .common import add_dir, settings

TXT_CHUNK = 255  # a TXT record's strings are at most 255 bytes each; resolvers join them


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this module's commands to the `newsletter` parser."""
    p = commands.add_parser("dns", help="print the DNS records to publish: DKIM, SPF, DMARC and the bounce domain's MX")
    add_dir(p)
    p.set_defaults(run=run_dns)


def run_dns(args: argparse.Namespace) -> int:
    config = settings()
    newsletter, _ = load_newsletter(args.dir)
    for line in records(config, newsletter):
        print(line)
    return 0


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def txt(name: str, value: str) -> str:
    """One TXT record as a zone-file line, its value split into strings of at most 255 characters."""
    strings = " ".join(f'"{value[i : i + TXT_CHUNK]}"' for i in range(0, len(value), TXT_CHUNK))
    return f"{name}.\tIN TXT\t{strings}"


def records(config: Settings, newsletter: Newsletter) -> list[str]:
    """The zone-file lines for the sender's domain and the bounce address's, each group under a `;` comment."""
    sender = _domain(newsletter.sender.email)
    return [
        *_dkim(config, newsletter, sender),
        "",
        *_spf(config, sender),
        "",
        *_dmarc(newsletter, sender),
        *_inbound(config, sender),
    ]


def _dkim(config: Settings, newsletter: Newsletter, sender: str) -> list[str]:
    key = wiring.dkim_key(config, newsletter)  # refuses a domain that does not align with the sender's
    if key is None:
        return [
            "; DKIM: no key is set, so messages go out unsigned and Gmail and Yahoo junk or refuse them. Make one:",
            ";   openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out dkim.pem",
            "; then set NEWSLETTER_DKIM_KEY_FILE=dkim.pem and NEWSLETTER_DKIM_SELECTOR (e.g. news2026); run this again",
        ]
    lines = [f"; DKIM: the public key(s) receivers check each signature against (d={key.domain})"]
    lines += [txt(name, value) for name, value in key.dns_records().items()]
    return lines


def _smtp_host(config: Settings) -> str | None:
    parts = split(config.smtp_url) if config.smtp_url else None
    return parts.hostname if parts else None


def _spf(config: Settings, sender: str) -> list[str]:
    host = _smtp_host(config)
    allow = f"a:{host}" if host else "a:<your SMTP relay>"
    envelope = {sender} | ({_domain(config.bounce_address)} if config.bounce_address else set())
    lines = [
        "; SPF: the hosts allowed to send for the envelope (MAIL FROM) domain; merge into an existing v=spf1 record,",
        ";   and use your provider's include: instead of a: if it gives one (e.g. include:_spf.example-relay.net)",
    ]
    return lines + [txt(domain, f"v=spf1 {allow} ~all") for domain in sorted(envelope)]


def _dmarc(newsletter: Newsletter, sender: str) -> list[str]:
    report = newsletter.reply_to or f"dmarc@{sender}"
    lines = [
        "; DMARC: start at p=none and read the aggregate reports; move to p=quarantine once they show only your mail",
        txt(f"_dmarc.{sender}", f"v=DMARC1; p=none; rua=mailto:{report}"),
    ]
    if not wiring.aligned(_domain(report), sender):
        lines += [
            f"; {_domain(report)} must agree to receive the reports for {sender}:",
            txt(f"{sender}._report._dmarc.{_domain(report)}", "v=DMARC1"),
        ]
    return lines


def _inbound(config: Settings, sender: str) -> list[str]:
    """The MX that brings bounces and mailto unsubscribes to the mailbox `newsletter inbound` reads."""
    domains = sorted({_domain(a) for a in (config.bounce_address, config.unsubscribe_address) if a})
    if not domains:
        return ["", "; bounces: NEWSLETTER_BOUNCE_ADDRESS is not set, so bounces go to the sender's address"]
    url = split(config.inbound_url or "")
    ok = url is not None and url.scheme in ("imap", "imaps") and url.hostname
    host = url.hostname if url is not None and ok else "<the host of your inbound mailbox>"
    lines = ["", "; bounces and mailto unsubscribes: mail to these domains must reach NEWSLETTER_INBOUND_URL's mailbox"]
    lines += [f"{domain}.\tIN MX\t10 {host}." for domain in domains]
    lines += [
        f"; {domain} is not under {sender}: SPF cannot align for DMARC, so DKIM alone must pass"
        for domain in domains
        if not wiring.aligned(domain, sender)
    ]
    return lines
