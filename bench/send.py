"""Sending speed and memory against one counting aiosmtpd sink in its own process, in one run.

    python bench/send.py                # 10,000 recipients; memory at 1,000 and 100,000; a few minutes
    python bench/send.py --quick        # 2,000 recipients; memory at 1,000 and 10,000; shorter windows

(a) the limit: one prebuilt message's bytes over reused smtplib connections, nothing built per recipient;
(b) a naive sender: per recipient premailer + EmailMessage + a new smtplib connection (a sample, as a rate);
(c) ours: the send engine end to end (delivery.send_issue, DKIM on, SQLite ledger, subscribers imported
    from a CSV), twice, each against the (a) runs beside it; per-recipient build and signing costs apart;
peak memory of a send in a fresh process at two counts (Composer + SMTP pool against a fast raw sink);
far relays: a raw sink answering each command late, plain and with STARTTLS: the relay's limit, then
    `newsletter worker` processes on PostgreSQL by pool size (NEWSLETTER_SMTP_POOL) and by process count.
Targets: (c) >= 0.9 x (a) and >= 5 x (b); peak memory flat in the count.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import multiprocessing
import os
import shutil
import smtplib
import socket
import ssl
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


def _raw_sink(port: int, delay: float, tls: tuple[str, str] | None, count, ready, stop) -> None:
    """A bare asyncio SMTP server answering every command `delay` seconds late, as a relay that far away does."""
    context = None
    if tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def reply(line: bytes) -> None:
            if delay:
                await asyncio.sleep(delay)
            writer.write(line + b"\r\n")

        secure = False
        await reply(b"220 sink ESMTP")
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                offered = [b"sink", b"SIZE 100000000", b"8BITMIME", b"SMTPUTF8"]
                offered += [b"STARTTLS"] if context and not secure else []
                await reply(b"\r\n".join(b"250-" + o for o in offered[:-1]) + b"\r\n250 " + offered[-1])
            elif verb == b"STAR" and context and not secure:
                await reply(b"220 2.0.0 go ahead")
                await writer.start_tls(context)
                secure = True
            elif verb == b"DATA":
                await reply(b"354 end with .")
                await reader.readuntil(b"\r\n.\r\n")
                with count.get_lock():
                    count.value += 1
                await reply(b"250 2.0.0 OK")
            elif verb == b"QUIT":
                await reply(b"221 bye")
                break
            else:  # MAIL, RCPT, RSET, NOOP
                await reply(b"250 OK")
        writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(session, "127.0.0.1", port, limit=2**24, backlog=512)
        ready.set()
        async with server:
            while not stop.is_set():  # noqa: ASYNC110 (a multiprocessing Event, set by the parent)
                await asyncio.sleep(0.1)

    asyncio.run(serve())


class Sink:
    """An SMTP sink in its own process, so it does not share the sender's GIL: aiosmtpd, or the raw one if `raw`."""

    def __init__(self, *, raw: bool = False, delay: float = 0.0, tls: tuple[str, str] | None = None) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.tls = tls
        context = multiprocessing.get_context("spawn")
        self.count = context.Value("q", 0)
        self.stop = context.Event()
        ready = context.Event()
        target, args = (_raw_sink, (self.port, delay, tls)) if raw else (_sink, (self.port,))
        self.process = context.Process(target=target, args=(*args, self.count, ready, self.stop), daemon=True)
        self.process.start()
        if not ready.wait(30):
            raise SystemExit("the SMTP sink did not start")

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.stop.set()
        self.process.join(10)


def certificate(directory: Path) -> tuple[str, str]:
    """A throw-away self-signed certificate for 127.0.0.1: (certificate file, key file)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "sink.crt", directory / "sink.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_file), str(key_file)


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
            if sink.tls:
                smtp.starttls(context=ssl._create_unverified_context())
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
    """Messages a second through delivery.send_issue: DKIM, SQLite ledger, variants per network, the SMTP pool."""
    from newsletter import delivery
    from newsletter.importer import import_csv
    from newsletter.store import open_store

    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary) / "news"
        shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns("outbox", "*.db", "subscribers"))
        folder = load_folder(root)
        networks = sorted(folder.newsletter.network_ids)
        (root / "subscribers").mkdir()
        with (root / "subscribers" / "bench.csv").open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(["email", "name", "organisation", "networks"])
            for i in range(count):
                writer.writerow([f"reader{i}@example.org", f"Reader {i}", "Anyshire", networks[i % len(networks)]])
        engine = open_store(f"sqlite:///{root / 'newsletter.db'}")
        import_csv(engine, root / "subscribers" / "bench.csv", known_networks=networks)

        async def go():
            config = delivery.SendConfig(SIGNER, delivery.DeliveryOptions(concurrency=POOL * 2), dkim=bench_key())
            async with SMTPTransport(url, pool_size=POOL) as transport:
                return await delivery.send_issue(folder, engine, transport, config=config)

        started = time.perf_counter()
        summary = asyncio.run(go())
        elapsed = time.perf_counter() - started
        engine.dispose()
    return count / elapsed, f"{summary.this_run['sent']} sent, {summary.tally.total} in the ledger"


def _rsa_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def bench_key():
    """A throw-away RSA-2048 DKIM key: a real send signs every message."""
    from newsletter.dkim import DKIMKey

    return DKIMKey("bench", "improvement.example.org", _rsa_pem())


# far and slow relays: the connection pool and a second sender process, on PostgreSQL --------------

POSTGRES = os.environ.get("NEWSLETTER_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432")


class ScaleOut:
    """`newsletter worker` processes (DKIM on) sharing sends in a PostgreSQL database the bench creates and drops."""

    def __init__(self, directory: Path, recipients: int) -> None:
        import sqlalchemy as sa

        from newsletter.importer import import_csv
        from newsletter.store import open_store

        self.root = directory / "news"
        shutil.copytree(EXAMPLES, self.root, ignore=shutil.ignore_patterns("outbox", "*.db", "subscribers"))
        self.folder = load_folder(self.root)
        self.networks = sorted(self.folder.newsletter.network_ids)
        self.key_file = directory / "dkim.pem"
        self.key_file.write_bytes(_rsa_pem())
        self.name = f"newsletter_bench_{os.getpid()}"
        self.admin = sa.create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}"'))
            conn.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        self.url = f"{POSTGRES}/{self.name}"
        self.engine = open_store(self.url)
        csv_file = directory / "subscribers.csv"
        with csv_file.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(["email", "name", "organisation", "networks"])
            for i in range(recipients):
                writer.writerow([f"reader{i}@example.org", f"Reader {i}", "", self.networks[i % len(self.networks)]])
        self.recipients = import_csv(self.engine, csv_file, known_networks=self.networks).added

    def rate(self, sink: Sink, *, pool: int, processes: int, window: float) -> float:
        """Messages a second recorded sent, over `window` seconds once every process is sending every variant."""
        import sqlalchemy as sa

        from newsletter import ledger
        from newsletter.ledger.tables import State, sends_table
        from newsletter.ledger.tables import deliveries_table as D

        send, _ = ledger.create_send(self.engine, assemble(self.folder).date, self.networks)
        env = dict(
            os.environ,
            NEWSLETTER_DATABASE_URL=self.url,
            NEWSLETTER_SMTP_URL=sink.url,
            NEWSLETTER_SMTP_POOL=str(pool),
            NEWSLETTER_SMTP_VERIFY="false",
            NEWSLETTER_SECRET_KEY="bench-secret-of-at-least-32-characters",
            NEWSLETTER_DKIM_KEY_FILE=str(self.key_file),
            NEWSLETTER_DKIM_SELECTOR="bench",
        )
        command = [sys.executable, "-m", "newsletter", "worker", "--dir", str(self.root)]
        workers = [subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL, cwd=ROOT) for _ in range(processes)]
        sent_rows = sa.and_(D.c.send_id == send.id, D.c.state == State.SENT.value)
        sent = sa.select(sa.func.count()).where(sent_rows)
        per_sender = sa.select(sa.func.count()).where(sent_rows).group_by(D.c.claimed_by)
        warm = len(self.networks) + 2  # rows go round the networks: each process has rendered every variant
        try:
            with self.engine.connect() as conn:
                deadline = time.monotonic() + 120
                while sum(n >= warm for n in conn.execute(per_sender).scalars()) < processes:
                    if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                        raise SystemExit("the bench's workers did not start sending")
                    time.sleep(0.1)
                first, started = conn.execute(sent).scalar_one(), time.perf_counter()
                time.sleep(window)
                last, ended = conn.execute(sent).scalar_one(), time.perf_counter()
        finally:
            for worker in workers:
                worker.terminate()  # as SIGTERM asks: the messages in flight are finished and recorded
            for worker in workers:
                worker.wait(30)
        if last >= self.recipients:
            print("    (the send ran out of recipients within the window: that rate is too low)")
        with self.engine.begin() as conn:
            conn.execute(D.delete().where(D.c.send_id == send.id))
            conn.execute(sends_table.delete().where(sends_table.c.id == send.id))
        return (last - first) / (ended - started)

    def close(self) -> None:
        import sqlalchemy as sa

        self.engine.dispose()
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def scale_out_table(*, delay: float, quick: bool) -> list[str]:
    """Per far relay (plain, STARTTLS): its limit, then `newsletter worker` by pool size and by process count."""
    pools = (1, 4, 16) if quick else (1, 2, 4, 8, 16)
    spread = ((2, 16),) if quick else ((2, 8), (2, 16))
    window = 1.5 if quick else 3.0
    per_message = 4 * delay + 0.002  # MAIL, RCPT, DATA and the message: each answered a round trip later
    connections = 4 * max(pools)
    need = int((window + 10) * 2 * max(pools) / per_message)  # the fastest row, with room for warming up
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        tls = certificate(directory)
        bench = ScaleOut(directory, need)
        folder, issue = example()
        composer = Composer(folder.newsletter, render(issue), issue_date=issue.date, signer=SIGNER)
        prebuilt = composer.message(subscriber_id=1, email="reader0@example.org", name="Reader 0").data
        columns = [f"pool {p}" for p in pools] + [f"{n} x pool {p}" for n, p in spread]
        lines = [f"{'':10s}{'limit':>9s}" + "".join(f"{c:>12s}" for c in columns)]
        try:
            for label, files in (("plain", None), ("STARTTLS", tls)):
                sink = Sink(raw=True, delay=delay, tls=files)
                try:
                    ceiling = limit(sink, prebuilt, int(window * connections / per_message), connections)
                    rates = [bench.rate(sink, pool=p, processes=1, window=window) for p in pools]
                    rates += [bench.rate(sink, pool=p, processes=n, window=window) for n, p in spread]
                finally:
                    sink.close()
                lines.append(f"{label:10s}{ceiling:9.0f}" + "".join(f"{r:12.0f}" for r in rates))
        finally:
            bench.close()
    return lines


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
    # Not getrusage's ru_maxrss: it survives exec, so a child started by a big parent reports the parent's size.
    status = Path("/proc/self/status").read_text()
    peak_kb = int(status.split("VmHWM:")[1].split()[0])
    print(peak_kb / 1024, rate)


# ------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer recipients and shorter windows, for a quick look")
    parser.add_argument("--delay", type=float, default=0.03, help="seconds a far relay takes to answer (0.03)")
    parser.add_argument("--memory-run", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_run:
        memory_run(args.url, args.memory_run)
        return

    count = 2_000 if args.quick else 10_000
    naive_sample = 50 if args.quick else 200
    memory_counts = (1_000, 10_000) if args.quick else (1_000, 100_000)

    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f};"
        " sink: aiosmtpd in its own process, counting only"
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
        # The machine may be shared: (a) is measured before and after each (c) run, and each (c) is
        # compared with the mean of the two (a) runs beside it.
        sample = count // 4
        single = limit(sink, prebuilt, sample, 1)
        before = limit(sink, prebuilt, sample, POOL)
        print(f"(a) limit, prebuilt bytes, 1 reused smtplib connection: {single:8.0f} msg/s")
        print(f"(a) limit, prebuilt bytes, {POOL} reused smtplib connections: {before:8.0f} msg/s")
        naive_rate = naive(sink, issue, naive_sample)
        print(f"(b) naive, premailer + EmailMessage + new connection each ({naive_sample}): {naive_rate:8.0f} msg/s")

        build_us = build_cost(composer, count)
        print(f"    per-recipient build, Composer.message(): {build_us:8.1f} us/message (render not repeated)")
        signed_us = dkim_cost(folder, issue, rendered, min(count, 500))
        if signed_us is not None:
            print(f"    per-recipient build with DKIM (rsa-sha256 2048, cryptography): {signed_us:8.1f} us/message")
        signing = signing_cost(folder, issue, rendered, min(count, 500))
        print(
            "    signing, CPU us/message (dkimpy = 1): "
            + " | ".join(f"{k} {us:.0f} ({us / signing['dkimpy rsa-sha256']:.3f})" for k, us in signing.items())
        )

        engines = []
        for _ in range(2):  # the machine is shared: twice, each beside its own (a)
            rate, note = engine_end_to_end(sink.url, count)
            after = limit(sink, prebuilt, sample, POOL)
            engines.append((rate, (before + after) / 2))
            print(f"(c) ours, send engine end to end, DKIM, SQLite ledger ({count:,}; {note}): {rate:8.0f} msg/s")
            print(f"(a) limit again, {POOL} connections: {after:8.0f} msg/s")
            before = after
        print()
        for rate, reference in engines:
            print(f"(c) ours end to end with DKIM: {rate / reference:5.2f} x (a)   {rate / naive_rate:6.1f} x (b)")
        print("targets: >= 0.90 x (a), >= 5 x (b)")
        expected = 4 * sample + naive_sample + 2 * count  # (a) four times, (b), (c) twice
        print(f"the sink counted {sink.count.value:,} messages (expected {expected:,})")
    finally:
        sink.close()

    print()
    fast = Sink(raw=True)
    try:
        peaks = {n: peak_memory(fast.url, n) for n in memory_counts}
    finally:
        fast.close()
    for n, (mb, rate) in peaks.items():
        print(f"peak memory, {n:>7,} recipients (fresh process, Composer + SMTP pool): {mb:6.1f} MB ({rate:.0f} msg/s)")
    low, high = (peaks[n][0] for n in memory_counts)
    print(f"ratio {memory_counts[1]:,} / {memory_counts[0]:,}: {high / low:.2f} (target: nearly 1)")

    print(
        f"\nfar relays, each command answered {args.delay * 1000:.0f} ms late: the limit (prebuilt bytes, 64 smtplib"
        " connections), then `newsletter worker` (DKIM, PostgreSQL ledger), msg/s recorded sent"
    )
    print("\n".join(scale_out_table(delay=args.delay, quick=args.quick)))
    print(f"\nload average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
