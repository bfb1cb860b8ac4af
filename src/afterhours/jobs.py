"""The job queue: one procrastinate App holding every feature's tasks, and the worker loops."""

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from afterhours.db import Database, psycopg_conninfo, raw_connection
from afterhours.settings import Settings
from afterhours.storage import PhotoStorage

if TYPE_CHECKING:
    from afterhours.wiring import Lifecycle

log = logging.getLogger("afterhours.jobs")

job_app = procrastinate.App(connector=procrastinate.PsycopgConnector())


async def defer(
    db: AsyncSession,
    task: str,
    *,
    at: datetime | None = None,
    queueing_lock: str | None = None,
    **kwargs: Any,
) -> None:
    """Defer `task` inside `db`'s transaction: the job exists if and only if the change commits."""
    connection = await raw_connection(db)
    deferrer = job_app.configure_task(
        task, schedule_at=at, queueing_lock=queueing_lock, connection=connection
    )
    if queueing_lock is None:
        await deferrer.defer_async(**kwargs)
        return
    # A job already waiting under this lock does the same work; its conflict must not abort us.
    try:
        async with db.begin_nested():
            await deferrer.defer_async(**kwargs)
    except AlreadyEnqueued:
        pass


@dataclass
class Runtime:
    """What a task needs from the process it runs in; reaches tasks through the job context."""

    settings: Settings
    db: Database
    storage: PhotoStorage
    lifecycle: "Lifecycle"


def runtime(context: procrastinate.JobContext) -> Runtime:
    rt = context.additional_context["runtime"]
    assert isinstance(rt, Runtime)
    return rt


async def open_job_app(url: str) -> AsyncConnectionPool:
    pool: AsyncConnectionPool = AsyncConnectionPool(
        psycopg_conninfo(url),
        min_size=1,
        max_size=10,
        open=False,
        check=AsyncConnectionPool.check_connection,
    )
    await pool.open()
    await job_app.open_async(pool)
    return pool


async def run_worker(rt: Runtime, *, name: str = "worker", standalone: bool = False) -> None:
    """Run a worker until cancelled. The poll interval bounds how late a scheduled job runs."""
    ticker = asyncio.create_task(tick(rt.settings))
    try:
        await _run_worker(rt, name=name, standalone=standalone)
    finally:
        ticker.cancel()


async def tick(settings: Settings) -> None:
    """Defer the periodic matching sweep every MATCH_SWEEP seconds (sub-minute, so not cron).

    Every worker ticks; the queueing lock keeps at most one sweep waiting.
    """
    while True:
        await asyncio.sleep(settings.match_sweep_seconds)
        try:
            await job_app.configure_task(
                "matching:sweep", queueing_lock="matching:sweep"
            ).defer_async()
        except AlreadyEnqueued:
            pass
        except Exception:  # a database blip must not stop the ticking
            log.exception("sweep_tick_failed")


async def _run_worker(rt: Runtime, *, name: str, standalone: bool) -> None:
    await job_app.run_worker_async(
        name=name,
        concurrency=8,
        fetch_job_polling_interval=rt.settings.worker_poll_seconds,
        # Alone, the worker stops cleanly on SIGTERM/SIGINT; inside `serve`, uvicorn owns signals.
        install_signal_handlers=standalone,
        update_heartbeat_interval=5.0,
        stalled_worker_timeout=30.0,
        additional_context={"runtime": rt},
        delete_jobs="successful",
    )


def register_tasks(blueprints: Mapping[str, procrastinate.Blueprint]) -> procrastinate.App:
    """Add each namespace's tasks to the App (once); they are named `<namespace>:<verb>`."""
    for namespace, blueprint in blueprints.items():
        if not any(name.startswith(f"{namespace}:") for name in job_app.tasks):
            job_app.add_tasks_from(blueprint, namespace=namespace)
    return job_app


async def last_heartbeat_age(db: AsyncSession) -> float | None:
    """Seconds since any worker last reported in, or None if none ever did."""
    age = await db.scalar(
        text("SELECT EXTRACT(EPOCH FROM now() - max(last_heartbeat)) FROM procrastinate_workers")
    )
    return None if age is None else float(age)
