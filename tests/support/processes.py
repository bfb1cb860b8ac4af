"""The service as its operators run it: `afterhours serve` and `afterhours worker` processes (and a
real redis-server), configured through the environment from a Settings object."""

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TypeVar

import httpx
import psutil
import pytest
from pydantic import AliasChoices

from afterhours.settings import Settings
from tests.support.server import ROOT, free_port

T = TypeVar("T")


def environment(settings: Settings) -> dict[str, str]:
    """This process's environment, with `settings` (the fields set on it) in place of ours."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AFTERHOURS_") and name not in {"DATABASE_URL", "REDIS_URL"}
    }
    for name in settings.model_fields_set:
        value = getattr(settings, name)
        if value is None:
            continue
        alias = Settings.model_fields[name].validation_alias
        key = str(alias.choices[0]) if isinstance(alias, AliasChoices) else f"AFTERHOURS_{name}"
        env[key.upper()] = str(value)
    return env


async def afterhours(
    settings: Settings, args: list[str], log: Path | None
) -> asyncio.subprocess.Process:
    """`afterhours <args>` configured by `settings`, its log to `log` when given."""
    output = log.open("ab") if log else None
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "afterhours",
            *args,
            env=environment(settings),
            cwd=ROOT,
            stderr=output,
        )
    finally:
        if output:
            output.close()  # the child has its own copy


@asynccontextmanager
async def worker_process(
    settings: Settings, *, log: Path | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`afterhours worker` (its log to `log` when given); on leaving, SIGTERM, and it must stop
    cleanly (unless already gone)."""
    proc = await afterhours(settings, ["worker"], log)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            assert await asyncio.wait_for(proc.wait(), 30) == 0, "the worker stops cleanly"


async def logged(log: Path, text: str, *, within: float = 30) -> None:
    """Until `text` appears in the file `log`."""
    async with asyncio.timeout(within):
        while True:
            if _contains(log, text):
                return
            await asyncio.sleep(0.05)


@asynccontextmanager
async def serve_process(
    settings: Settings,
    *,
    with_worker: bool = True,
    port: int | None = None,
    log: Path | None = None,
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """`afterhours serve` on a free port (or `port`), once it answers /health: (process, base
    URL). Its log goes to `log` when given."""
    port = port or free_port()
    args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = await afterhours(settings, args + ([] if with_worker else ["--no-worker"]), log)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as client, asyncio.timeout(60):
            while True:
                assert proc.returncode is None, "serve exited while starting"
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        yield proc, base
    finally:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 60)


def _contains(path: Path, text: str) -> bool:
    return path.exists() and text in path.read_text(errors="replace")


def redis_server_binary() -> str:
    server = shutil.which("redis-server")
    if server is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is required in CI (.ci/run installs it)")
        pytest.skip("redis-server not installed (apt-get install redis-server)")
    return server


@contextmanager
def redis_process(data_dir: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """A real redis-server on a loopback port; stopped on leaving unless already gone."""
    proc = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        + ["--dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def redis_server(data_dir: Path, port: int | None = None) -> Iterator[str]:
    """A real redis-server on a loopback port (the same one again when `port` is given); its URL."""
    port = port or free_port()
    with redis_process(data_dir, port):
        yield redis_url(port)


def redis_url(port: int) -> str:
    return f"redis://127.0.0.1:{port}/0"


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
