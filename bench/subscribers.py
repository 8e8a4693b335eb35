"""Bench: importing a generated subscribers CSV and streaming an issue's recipients, at 1,000 and 100,000 rows.

Run: /tmp/venv/bin/python bench/subscribers.py [--rows 1000 100000] [--postgres URL | --no-postgres]

For each database (SQLite file; PostgreSQL in a scratch schema when reachable) and each size it
prints wall time and Python peak memory (tracemalloc, measured in a second, separate pass so
the timings are not slowed by tracing). Ratios are against baselines measured in the same run:
per-row time against the smallest size (near 1x: linear), the import against csv.reader alone
reading the same file, and the recipients stream's peak memory against holding the whole list
(it keeps one page of 1,000, so at 1,000 rows the two are alike and at 100,000 far apart).
"""

from __future__ import annotations

import argparse
import csv
import gc
import os
import random
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from newsletter.importer import import_csv
from newsletter.store import open_store
from newsletter.subscribers import S, Status, recipients

NETWORKS = [
    "lead-members",
    "data-benchmarking",
    "adoption",
    "ad-education",
    "ad-safeguarding",
    "qa-leads",
    "fostering",
    "send",
]
ISSUE_NETWORKS = ["qa-leads", "fostering", "send"]


def generate(path: Path, rows: int) -> None:
    """A CSV as an editor's spreadsheet would hold it: 1-3 networks each, some quoted organisations."""
    rnd = random.Random(rows)
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["email", "name", "organisation", "networks"])
        for i in range(rows):
            writer.writerow(
                [
                    f"person.{i}@council{i % 150}.example.org",
                    f"Person {i}",
                    f"Council {i % 150}, Children's Services",
                    ";".join(rnd.sample(NETWORKS, rnd.randint(1, 3))),
                ]
            )


def timed(action: Callable[[], object]) -> tuple[float, object]:
    gc.collect()
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def traced(action: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def stream(engine: sa.Engine) -> int:
    return sum(1 for _ in recipients(engine, ISSUE_NETWORKS))


def parse_only(path: Path) -> int:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return sum(1 for _ in csv.reader(f))


class Databases:
    """Fresh empty databases: SQLite files in a temporary folder, PostgreSQL schemas dropped at the end."""

    def __init__(self, folder: Path, postgres: str | None):
        self.folder, self.postgres, self.schemas = folder, postgres, []

    def fresh(self, kind: str) -> str:
        name = f"b_{uuid.uuid4().hex[:10]}"
        if kind == "sqlite":
            return f"sqlite:///{self.folder / (name + '.db')}"
        admin = sa.create_engine(self.postgres)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
        admin.dispose()
        self.schemas.append(name)
        return f"{self.postgres}?options=-csearch_path%3D{name}"

    def drop(self) -> None:
        if self.schemas:
            admin = sa.create_engine(self.postgres)
            with admin.begin() as conn:
                for name in self.schemas:
                    conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
            admin.dispose()


def bench(kind: str, rows: int, csv_path: Path, dbs: Databases) -> dict[str, float]:
    engine = open_store(dbs.fresh(kind))
    seconds, report = timed(lambda: import_csv(engine, csv_path, known_networks=NETWORKS))
    assert report.added == rows and not report.rejected, report.summary()
    again, report = timed(lambda: import_csv(engine, csv_path, known_networks=NETWORKS))
    assert report.unchanged == rows, report.summary()
    with engine.begin() as conn:  # 5% unsubscribed: the stream has to skip them
        conn.execute(S.update().where(S.c.id % 20 == 1).values(status=Status.UNSUBSCRIBED.value, status_reason="bench"))
    stream_s, sent = timed(lambda: stream(engine))
    stream_mem = traced(lambda: stream(engine))
    list_mem = traced(lambda: list(recipients(engine, ISSUE_NETWORKS)))  # what holding the whole list would cost
    engine.dispose()
    other = open_store(dbs.fresh(kind))
    import_mem = traced(lambda: import_csv(other, csv_path, known_networks=NETWORKS))
    other.dispose()
    return dict(
        rows=rows,
        import_s=seconds,
        reimport_s=again,
        import_mb=import_mem / 2**20,
        recipients=sent,
        stream_s=stream_s,
        stream_mb=stream_mem / 2**20,
        list_mb=list_mem / 2**20,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000, 100_000])
    ap.add_argument(
        "--postgres",
        default=os.environ.get("NEWSLETTER_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args()
    sizes = sorted(args.rows)
    kinds = ["sqlite"]
    if not args.no_postgres:
        try:
            sa.create_engine(args.postgres).connect().close()
            kinds.append("postgresql")
        except sa.exc.OperationalError as exc:
            print(f"PostgreSQL skipped: {str(exc.orig).strip().splitlines()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        dbs = Databases(Path(tmp), args.postgres)
        try:
            files = {}
            for rows in sizes:
                files[rows] = Path(tmp) / f"members-{rows}.csv"
                generate(files[rows], rows)
            print(
                f"{'database':<11}{'rows':>8}{'import s':>10}{'µs/row':>8}{'x base':>7}{'x csv':>7}{'reimport s':>11}"
                f"{'import MB':>10}{'stream s':>9}{'µs/row':>8}{'x base':>7}{'stream MB':>10}{'x base':>7}{'x list':>7}"
            )
            for kind in kinds:
                base = None
                for rows in sizes:
                    r = bench(kind, rows, files[rows], dbs)
                    parse_s, _ = timed(lambda path=files[rows]: parse_only(path))
                    per_import = r["import_s"] / rows * 1e6
                    per_stream = r["stream_s"] / r["recipients"] * 1e6
                    base = base or (per_import, per_stream, r["stream_mb"])
                    print(
                        f"{kind:<11}{rows:>8}{r['import_s']:>10.2f}{per_import:>8.1f}{per_import / base[0]:>6.2f}x"
                        f"{r['import_s'] / parse_s:>6.0f}x{r['reimport_s']:>11.2f}{r['import_mb']:>10.1f}"
                        f"{r['stream_s']:>9.2f}{per_stream:>8.1f}{per_stream / base[1]:>6.2f}x"
                        f"{r['stream_mb']:>10.2f}{r['stream_mb'] / base[2]:>6.2f}x{r['stream_mb'] / r['list_mb']:>6.2f}x"
                    )
        finally:
            dbs.drop()
    print(
        "x base: against the smallest size in this run (per row for times); x csv: import time over csv.reader alone;"
    )
    print("x list: the stream's peak memory over list(recipients(...)) of the same rows.")


if __name__ == "__main__":
    main()
