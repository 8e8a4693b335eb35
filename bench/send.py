"""Sending speed and memory against one counting aiosmtpd sink in its own process, in one run.

    python bench/send.py                # 10,000 recipients; memory at 1,000 and 100,000
    python bench/send.py --quick        # 2,000 recipients; memory at 1,000 and 10,000

(a) the limit: one prebuilt message's bytes over reused smtplib connections, nothing built per recipient;
(b) a naive sender: per recipient premailer + EmailMessage + a new smtplib connection (a sample, as a rate);
(c) ours: render once, Composer per variant, message() per recipient, SMTPTransport pool (asyncio),
    and the send engine end to end (SQLite ledger, subscribers imported from a CSV).
Targets: (c) >= 0.7 x (a) and >= 5 x (b); per-recipient build cost apart; peak memory flat in the count.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import multiprocessing
import os
import resource
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter import links  # noqa: E402
from newsletter.assembly import assemble  # noqa: E402
from newsletter.folder import load_folder  # noqa: E402
from newsletter.message import Composer  # noqa: E402
from newsletter.render import compile_mjml, inline_css, render, render_mjml, stylesheet  # noqa: E402
from newsletter.tokens import PLACEHOLDER, Signer  # noqa: E402
from newsletter.transports.smtp import SMTPTransport  # noqa: E402

EXAMPLES = ROOT / "examples"
SIGNER = Signer("bench-secret")
POOL = 4


# the sink: its own process, so it does not share the sender's GIL ---------------------------------


def _sink(port: int, count, ready, stop) -> None:
    from aiosmtpd.controller import Controller

    class Counter:
        async def handle_DATA(self, server, session, envelope):
            with count.get_lock():
                count.value += 1
            return "250 2.0.0 OK"

    controller = Controller(Counter(), hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


class Sink:
    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        context = multiprocessing.get_context("spawn")
        self.count = context.Value("q", 0)
        self.stop = context.Event()
        ready = context.Event()
        self.process = context.Process(target=_sink, args=(self.port, self.count, ready, self.stop), daemon=True)
        self.process.start()
        if not ready.wait(30):
            raise SystemExit("the SMTP sink did not start")

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.stop.set()
        self.process.join(10)


# the example issue -----------------------------------------------------------------------------


def example():
    folder = load_folder(EXAMPLES)
    return folder, assemble(folder)


def recipients(count: int):
    """Streamed, never held in a list: memory must not grow with the count."""
    for i in range(count):
        yield i + 1, f"reader{i}@example.org", f"Reader {i}"


# (a) the limit --------------------------------------------------------------------------------


def limit(sink: Sink, data: bytes, count: int, connections: int) -> float:
    """Messages a second: the same bytes over `connections` reused smtplib connections in threads."""

    def worker(n: int) -> None:
        with smtplib.SMTP("127.0.0.1", sink.port) as smtp:
            for i in range(n):
                smtp.sendmail("updates@improvement.example.org", [f"reader{i}@example.org"], data)

    share = [count // connections + (1 if i < count % connections else 0) for i in range(connections)]
    threads = [threading.Thread(target=worker, args=(n,)) for n in share]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return count / (time.perf_counter() - started)


# (b) a naive sender ---------------------------------------------------------------------------


def naive(sink: Sink, issue, count: int) -> float:
    """Messages a second: per recipient inline the CSS (premailer), build an EmailMessage, open a connection."""
    newsletter = issue.newsletter
    html, css = compile_mjml(render_mjml(issue)), stylesheet()
    text = render(issue).text
    started = time.perf_counter()
    for subscriber_id, address, name in recipients(count):
        token = SIGNER.sign(subscriber_id, address)
        message = EmailMessage()
        message["From"] = f"{newsletter.sender.name} <{newsletter.sender.email}>"
        message["To"] = f"{name} <{address}>"
        message["Subject"] = issue.subject
        message["List-Unsubscribe"] = f"<{links.unsubscribe_url(newsletter.public_url, token)}>"
        message.set_content(text.replace(PLACEHOLDER, token))
        message.add_alternative(inline_css(html.replace(PLACEHOLDER, token), css=css), subtype="html")
        with smtplib.SMTP("127.0.0.1", sink.port) as smtp:
            smtp.send_message(message)
    return count / (time.perf_counter() - started)


# (c) ours -------------------------------------------------------------------------------------


async def ours(url: str, count: int, *, concurrency: int = POOL * 2) -> tuple[float, SMTPTransport]:
    """Messages a second, render included: one Composer, message() per recipient, the SMTP pool."""
    started = time.perf_counter()
    folder, issue = example()
    composer = Composer(folder.newsletter, render(issue), issue_date=issue.date, signer=SIGNER)
    queue = iter(recipients(count))

    async def sender(transport: SMTPTransport) -> None:
        for subscriber_id, address, name in queue:  # the workers share one iterator: nothing is queued up
            await transport.send(composer.message(subscriber_id=subscriber_id, email=address, name=name))

    async with SMTPTransport(url, pool_size=POOL) as transport:
        await asyncio.gather(*(sender(transport) for _ in range(concurrency)))
    return count / (time.perf_counter() - started), transport


def engine_end_to_end(url: str, count: int) -> tuple[float, str]:
    """Messages a second through delivery.send_issue: SQLite ledger, variants per network, the SMTP pool."""
    from newsletter import delivery
    from newsletter.importer import import_csv
    from newsletter.store import open_store

    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary) / "news"
        shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns("outbox", "*.db", "subscribers"))
        folder = load_folder(root)
        networks = sorted(folder.newsletter.network_ids)
        (root / "subscribers").mkdir()
        with open(root / "subscribers" / "bench.csv", "w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(["email", "name", "organisation", "networks"])
            for i in range(count):
                writer.writerow([f"reader{i}@example.org", f"Reader {i}", "Anyshire", networks[i % len(networks)]])
        engine = open_store(f"sqlite:///{root / 'newsletter.db'}")
        import_csv(engine, root / "subscribers" / "bench.csv", known_networks=networks)

        async def go():
            config = delivery.SendConfig(SIGNER, delivery.DeliveryOptions(concurrency=POOL * 2))
            async with SMTPTransport(url, pool_size=POOL) as transport:
                return await delivery.send_issue(folder, engine, transport, config=config)

        started = time.perf_counter()
        summary = asyncio.run(go())
        elapsed = time.perf_counter() - started
        engine.dispose()
    return count / elapsed, f"{summary.this_run['sent']} sent, {summary.tally.total} in the ledger"


# per-recipient build cost ------------------------------------------------------------------------


def build_cost(composer: Composer, count: int) -> float:
    """Microseconds per message() call, nothing sent."""
    started = time.perf_counter()
    for subscriber_id, address, name in recipients(count):
        composer.message(subscriber_id=subscriber_id, email=address, name=name)
    return (time.perf_counter() - started) / count * 1e6


def dkim_cost(folder, issue, rendered, count: int) -> float | None:
    if not shutil.which("openssl"):
        return None
    from newsletter.dkim import DKIMKey

    with tempfile.TemporaryDirectory() as temporary:
        path = Path(temporary) / "key.pem"
        subprocess.run(
            ["openssl", "genrsa", "-traditional", "-out", str(path), "2048"], check=True, capture_output=True
        )
        key = DKIMKey.load(path, "bench", "improvement.example.org")
    composer = Composer(folder.newsletter, rendered, issue_date=issue.date, signer=SIGNER, dkim=key)
    return build_cost(composer, count)


def signing_cost(folder, issue, rendered, count: int) -> dict[str, float]:
    """CPU microseconds to sign one message: dkimpy as before, and ours as Composer.message() signs (RSA-2048, Ed25519).

    CPU time, not wall time: signing is all CPU, and on a shared machine wall time counts the neighbours.
    """
    import dkim as dkimpy
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    from newsletter.dkim import DKIMKey
    from newsletter.message import OVERSIGNED, SIGNED_HEADERS
    from newsletter.tokens import TOKEN_LENGTH

    headers, domain = SIGNED_HEADERS + OVERSIGNED, "improvement.example.org"
    pem = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(*pem)
    ed_pem = ed25519.Ed25519PrivateKey.generate().private_bytes(*pem)
    unsigned = Composer(folder.newsletter, rendered, issue_date=issue.date, signer=SIGNER)
    messages = [
        unsigned.message(subscriber_id=i, email=address, name=name).data for i, address, name in recipients(count)
    ]
    # What message() hands the variant's signer: the head, and the token its body is joined with.
    pieces = [(data.partition(b"\r\n\r\n"), data.split(b"/unsubscribe/", 1)[1][:TOKEN_LENGTH]) for data in messages]
    (_, _, body), token = pieces[0]
    parts = body.split(token)

    def cpu_us(sign, items) -> float:
        started = time.process_time()
        for item in items:
            sign(item)
        return (time.process_time() - started) / len(items) * 1e6

    def variant_us(key: DKIMKey) -> float:
        signer = key.variant(parts, headers)
        return min(cpu_us(lambda p: signer.sign(p[0][0] + p[0][1], p[1]), pieces) for _ in range(3))

    sample = messages[: max(count // 20, 10)]
    baseline = cpu_us(
        lambda data: dkimpy.sign(
            data, b"bench", domain.encode(), rsa_pem, canonicalize=(b"relaxed", b"relaxed"), include_headers=headers
        ),
        sample,
    )
    rsa_us = variant_us(DKIMKey("bench", domain, rsa_pem))
    both_us = variant_us(DKIMKey("bench", domain, rsa_pem, ed_pem))
    return {
        "dkimpy rsa-sha256": baseline,
        "rsa-sha256": rsa_us,
        "ed25519-sha256 (added)": both_us - rsa_us,
        "both": both_us,
    }


# peak memory: each count in a fresh process -------------------------------------------------------


def peak_memory(url: str, count: int) -> tuple[float, float]:
    """(peak RSS in MB, messages a second) of a fresh process sending to `count` recipients."""
    out = subprocess.run(
        [sys.executable, __file__, "--memory-run", str(count), "--url", url], check=True, capture_output=True, text=True
    ).stdout.split()
    return float(out[0]), float(out[1])


def memory_run(url: str, count: int) -> None:
    rate, _ = asyncio.run(ours(url, count))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, rate)


# ------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer recipients, for a quick look")
    parser.add_argument("--memory-run", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_run:
        return memory_run(args.url, args.memory_run)

    count = 2_000 if args.quick else 10_000
    naive_sample = 50 if args.quick else 200
    memory_counts = (1_000, 10_000) if args.quick else (1_000, 100_000)

    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; sink: aiosmtpd in its own process, counting only"
    )
    folder, issue = example()
    started = time.perf_counter()
    rendered = render(issue)
    render_ms = (time.perf_counter() - started) * 1000
    composer = Composer(folder.newsletter, rendered, issue_date=issue.date, signer=SIGNER)
    prebuilt = composer.message(subscriber_id=1, email="reader0@example.org", name="Reader 0").data
    print(f"example issue: {len(prebuilt) / 1024:.0f} KB a message; render {render_ms:.0f} ms once per variant")

    sink = Sink()
    try:
        # The machine may be shared: (a) is measured before, between and after the (c) runs, and each
        # (c) is compared with the mean of the (a) runs beside it.
        sample = count // 2
        single = limit(sink, prebuilt, sample, 1)
        before = limit(sink, prebuilt, sample, POOL)
        print(f"(a) limit, prebuilt bytes, 1 reused smtplib connection: {single:8.0f} msg/s")
        print(f"(a) limit, prebuilt bytes, {POOL} reused smtplib connections: {before:8.0f} msg/s")
        naive_rate = naive(sink, issue, naive_sample)
        print(
            f"(b) naive, premailer + EmailMessage + new connection each ({naive_sample} sampled): {naive_rate:8.0f} msg/s"
        )

        build_us = build_cost(composer, count)
        print(
            f"    per-recipient build, Composer.message(): {build_us:8.1f} us/message (render and MIME encoding not repeated)"
        )
        signed_us = dkim_cost(folder, issue, rendered, min(count, 500))
        if signed_us is not None:
            print(f"    per-recipient build with DKIM (rsa-sha256 2048, cryptography): {signed_us:8.1f} us/message")
        signing = signing_cost(folder, issue, rendered, min(count, 500))
        print(
            "    signing, CPU us/message (dkimpy = 1): "
            + " | ".join(f"{k} {us:.0f} ({us / signing['dkimpy rsa-sha256']:.3f})" for k, us in signing.items())
        )

        ours_rate, transport = asyncio.run(ours(sink.url, count))
        print(
            f"(c) ours, render + Composer + SMTPTransport pool of {POOL} ({count:,}, {transport.connections_opened} connections): {ours_rate:8.0f} msg/s"
        )
        between = limit(sink, prebuilt, sample, POOL)
        print(f"(a) limit again, {POOL} connections: {between:8.0f} msg/s")
        engine_rate, engine_note = engine_end_to_end(sink.url, count)
        print(f"(c) ours, send engine end to end, SQLite ledger ({count:,}; {engine_note}): {engine_rate:8.0f} msg/s")
        after = limit(sink, prebuilt, sample, POOL)
        print(f"(a) limit again, {POOL} connections: {after:8.0f} msg/s")

        print()
        for label, rate, reference in (
            ("(c) ours: Composer + SMTP pool", ours_rate, (before + between) / 2),
            ("(c) ours: send engine end to end", engine_rate, (between + after) / 2),
        ):
            print(f"{label:36s} {rate / reference:5.2f} x (a)   {rate / naive_rate:6.1f} x (b)")
        print("targets: >= 0.70 x (a), >= 5 x (b)")

        print()
        peaks = {n: peak_memory(sink.url, n) for n in memory_counts}
        for n, (mb, rate) in peaks.items():
            print(
                f"peak memory, {n:>7,} recipients (fresh process, Composer + SMTP pool): {mb:6.1f} MB  ({rate:.0f} msg/s)"
            )
        low, high = (peaks[n][0] for n in memory_counts)
        print(f"ratio {memory_counts[1]:,} / {memory_counts[0]:,}: {high / low:.2f} (target: nearly 1)")

        expected = 4 * sample + naive_sample + 2 * count + sum(memory_counts)  # (a) four times, (b), (c) twice, memory
        print(
            f"\nthe sink counted {sink.count.value:,} messages (expected {expected:,}); load average now {os.getloadavg()[0]:.1f}"
        )
    finally:
        sink.close()


if __name__ == "__main__":
    main()
