"""The job queue: one procrastinate App holding every feature's tasks, and the worker loops."""

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import procrastinate
from psycopg_pool import AsyncConnectionPool

from afterhours.db import Database, psycopg_conninfo
from afterhours.settings import Settings

log = logging.getLogger("afterhours.jobs")

job_app = procrastinate.App(connector=procrastinate.PsycopgConnector())


@dataclass
class Runtime:
    """What a task needs from the process it runs in; reaches tasks through the job context."""

    settings: Settings
    db: Database
    emitter: Any


def runtime(context: procrastinate.JobContext) -> Runtime:
    rt = context.additional_context["runtime"]
    assert isinstance(rt, Runtime)
    return rt


async def open_job_app(url: str) -> AsyncConnectionPool:
    pool: AsyncConnectionPool = AsyncConnectionPool(
        psycopg_conninfo(url), min_size=1, max_size=10, open=False,
        kwargs={"autocommit": True},
    )
    await pool.open()
    await job_app.open_async(pool)
    return pool


async def run_worker(rt: Runtime, *, name: str = "worker") -> None:
    """Run a worker until cancelled. The poll interval bounds how late a scheduled job runs."""
    await job_app.run_worker_async(
        name=name,
        concurrency=8,
        fetch_job_polling_interval=rt.settings.worker_poll_seconds,
        install_signal_handlers=False,
        update_heartbeat_interval=5.0,
        stalled_worker_timeout=30.0,
        additional_context={"runtime": rt},
        delete_jobs="successful",
    )


async def run_standalone_worker(settings: Settings) -> None:
    from afterhours import realtime

    assert settings.database_url
    db = Database(settings.database_url)
    pool = await open_job_app(settings.database_url)
    emitter = realtime.external_emitter(settings)
    try:
        await run_worker(Runtime(settings=settings, db=db, emitter=emitter), name="standalone")
    except asyncio.CancelledError:
        pass
    finally:
        await pool.close()
        await db.dispose()
