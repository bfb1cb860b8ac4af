"""A real `afterhours serve` in a process of its own, for what only a separate process shows
(its memory), and its resident memory sampled while some requests run."""

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

import httpx
import psutil

from afterhours.settings import Settings
from tests.support.server import ROOT, TEST_SECRET, free_port

T = TypeVar("T")


@dataclass(frozen=True)
class Served:
    url: str
    pid: int


@asynccontextmanager
async def serve_process(settings: Settings) -> AsyncIterator[Served]:
    """`afterhours serve --no-worker` on a free port, on `settings`' database and data dir."""
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "AFTERHOURS_DATA_DIR": str(settings.data_dir),
        "AFTERHOURS_JWT_SECRET": TEST_SECRET,
    }
    env.pop("REDIS_URL", None)
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "afterhours", "serve", "--port", str(port), "--no-worker"),
        env=env,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(url, proc)
        yield Served(url=url, pid=proc.pid)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 15)


async def wait_healthy(url: str, proc: asyncio.subprocess.Process) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    async with httpx.AsyncClient(base_url=url, timeout=2) as client:
        while True:
            assert proc.returncode is None, f"afterhours serve exited with {proc.returncode}"
            assert loop.time() < deadline, "afterhours serve never answered /health"
            try:
                if (await client.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            await asyncio.sleep(0.1)


async def rss_growth(pid: int, work: Awaitable[T]) -> tuple[T, int]:
    """Run `work`, sampling the process's resident memory; returns its result and the peak
    growth in bytes over the memory before it started."""
    process = psutil.Process(pid)
    before = peak = process.memory_info().rss
    task = asyncio.ensure_future(work)
    while not task.done():
        peak = max(peak, process.memory_info().rss)
        await asyncio.wait({task}, timeout=0.005)
    peak = max(peak, process.memory_info().rss)
    return task.result(), peak - before
