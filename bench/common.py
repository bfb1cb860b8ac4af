"""What every benchmark shares: a scratch database on the embedded server, and the report."""

import json
import platform
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pgserver
import psycopg

from afterhours import migrations

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


@contextmanager
def scratch_database(label: str) -> Iterator[str]:
    """A fresh, migrated database on the embedded server under var/bench-postgres."""
    (ROOT / "var").mkdir(exist_ok=True)
    admin = pgserver.get_server(ROOT / "var" / "bench-postgres", cleanup_mode=None).get_uri()
    name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.replace("/postgres?", f"/{name}?")
    try:
        migrations.upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Row:
    benchmark: str
    case: str
    metric: str
    ours: float
    baseline: float | None
    unit: str
    note: str = ""

    @property
    def ratio(self) -> str:
        if self.baseline is None or not self.ours:
            return ""
        return f"{self.baseline / self.ours:.1f}x"


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def add(self, *args: object, **kwargs: object) -> None:
        self.rows.append(Row(*args, **kwargs))  # type: ignore[arg-type]

    def table(self) -> str:
        head = ("benchmark", "case", "metric", "ours", "baseline", "unit", "baseline/ours", "note")
        body = [
            (
                r.benchmark,
                r.case,
                r.metric,
                f"{r.ours:,.3f}" if r.ours < 100 else f"{r.ours:,.0f}",
                ""
                if r.baseline is None
                else (f"{r.baseline:,.3f}" if r.baseline < 100 else f"{r.baseline:,.0f}"),
                r.unit,
                r.ratio,
                r.note,
            )
            for r in self.rows
        ]
        widths = [max(len(str(c)) for c in col) for col in zip(head, *body, strict=True)]

        def line(cells: tuple[object, ...]) -> str:
            padded = (str(c).ljust(w) for c, w in zip(cells, widths, strict=True))
            return "| " + " | ".join(padded) + " |"

        sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        return "\n".join([line(head), sep, *(line(b) for b in body)])

    def save(self) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        meta = {"when": stamp, "machine": platform.platform(), "python": platform.python_version()}
        data = {"meta": meta, "rows": [r.__dict__ for r in self.rows]}
        path = RESULTS / f"{stamp}.json"
        path.write_text(json.dumps(data, indent=2))
        (RESULTS / "latest.md").write_text(
            f"# Benchmark results {stamp}\n\n{meta['machine']}, Python {meta['python']}\n\n"
            + self.table()
            + "\n"
        )
        return path
