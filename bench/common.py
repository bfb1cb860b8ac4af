"""What every benchmark shares: a scratch database on the embedded server, and the report."""

import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_http(url: str, path: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                if (await client.get(url + path)).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("server did not come up")


@contextmanager
def afterhours_serve(url: str, secret: str, ready: str, **settings: str) -> Iterator[str]:
    """`afterhours serve` (worker in-process) on the database at `url` and a scratch data dir,
    with AFTERHOURS_<name> `settings`, once `ready` answers below 500; yields its base URL."""
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "AFTERHOURS_JWT_SECRET": secret,
        "AFTERHOURS_DATA_DIR": str(data_dir),
        **{f"AFTERHOURS_{name.upper()}": value for name, value in settings.items()},
    }
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "afterhours", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_http(base, ready, proc))
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)


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
