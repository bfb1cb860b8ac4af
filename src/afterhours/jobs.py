"""The job queue: one procrastinate App holding every feature's tasks, and the worker loops."""

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued, ConnectorException, UniqueViolation
from procrastinate.jobs import Status
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from afterhours import db as database
from afterhours.db import Database, psycopg_conninfo, raw_connection
from afterhours.settings import Settings
from afterhours.storage import PhotoStorage

if TYPE_CHECKING:
    from afterhours.push.gateway import Gateway
    from afterhours.wiring import Lifecycle

log = logging.getLogger("afterhours.jobs")

# Push jobs wait in a queue of their own, taken only by workers with push on: in a deploy where
# some workers have the gateway's URL and some not yet, none is dropped by the wrong worker.
PUSH_QUEUE = "push"
DEFAULT_QUEUE = procrastinate.jobs.DEFAULT_QUEUE  # every other task's

job_app = procrastinate.App(connector=procrastinate.PsycopgConnector())

# A task that failed because the database went away runs again once it is back. Every task reads
# the truth when it runs, so running one twice is harmless. (procrastinate raises its own
# ConnectorException for whatever psycopg raised: a task's defer in an outage.)
RETRY_AFTER_OUTAGE = procrastinate.RetryStrategy(
    max_attempts=30, wait=2, retry_exceptions=(*database.DATABASE_OUTAGE, ConnectorException)
)


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says the database is away (as opposed to a bug, or a constraint)."""
    cause = exc.__cause__ if isinstance(exc, ConnectorException) else exc
    return isinstance(cause, database.DATABASE_OUTAGE)


async def defer(
    db: AsyncSession,
    task: str,
    *,
    at: datetime | None = None,
    queueing_lock: str | None = None,
    lock: str | None = None,
    **kwargs: Any,
) -> None:
    """Defer `task` with `db`'s unit of work: the job exists if and only if the change commits.
    A job whose `queueing_lock` is held by one already waiting is dropped (that one does the
    same work)."""
    deferrer = job_app.configure_task(task, schedule_at=at, queueing_lock=queueing_lock, lock=lock)
    _pending(db).append(deferrer.make_new_job(**kwargs))


async def defer_many(
    db: AsyncSession, task: str, kwargs: list[dict[str, Any]], *, at: datetime | None = None
) -> None:
    """Defer one `task` job per entry of `kwargs` with `db`'s unit of work."""
    deferrer = job_app.configure_task(task, schedule_at=at)
    _pending(db).extend(deferrer.make_new_job(**entry) for entry in kwargs)


def _pending(db: AsyncSession) -> list[procrastinate.jobs.Job]:
    """The jobs deferred in `db`'s unit of work so far. They are inserted together, in one
    statement, just before it commits: a session start's expiry, warning and first matching
    attempt are one statement in one savepoint, where they were three and two savepoints."""
    pending: list[procrastinate.jobs.Job] | None = db.info.get("jobs")
    if pending is None:
        pending = db.info["jobs"] = []
        database.before_commit(db, partial(_insert, db, pending))
    return pending


async def _insert(db: AsyncSession, pending: list[procrastinate.jobs.Job]) -> None:
    connection = await raw_connection(db)
    manager = job_app.job_manager
    if not any(job.queueing_lock for job in pending):
        await manager.batch_defer_jobs_async(pending, connection=connection)
        return
    # A queueing-lock conflict raises, and must not abort the unit of work: try them all at once
    # in a savepoint (psycopg's, on the connection the insert runs on: SQLAlchemy's begin_nested()
    # only emits SAVEPOINT once SQLAlchemy itself runs a statement in it), and on a conflict
    # each in one of its own, dropping those whose lock is taken.
    try:
        async with connection.transaction():
            await manager.batch_defer_jobs_async(pending, connection=connection)
        return
    except AlreadyEnqueued:
        pass
    for job in pending:
        try:
            async with connection.transaction():
                await manager.defer_job_async(job, connection=connection)
        except AlreadyEnqueued:
            pass


@dataclass
class Runtime:
    """What a task needs from the process it runs in; reaches tasks through the job context."""

    settings: Settings
    db: Database
    storage: PhotoStorage
    lifecycle: "Lifecycle"
    push: "Gateway | None" = None  # None: push is off


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


class WorkerGaveUp(Exception):
    """The worker kept failing for longer than `worker_give_up_seconds`: the process should exit
    non-zero so that its supervisor starts a fresh one."""


async def run_worker(rt: Runtime, *, name: str = "worker") -> None:
    """Run a worker until cancelled, restarting it whenever it stops by itself.

    procrastinate stops its worker for good when a side task fails (its LISTEN connection or
    heartbeat, whenever the database restarts). Cancelling is the only way we ask it to stop, so
    any other end is a failure: start again after a backoff, and raise WorkerGaveUp once it has
    kept failing (never running well for long) for `worker_give_up_seconds`. Cancelling waits
    for running jobs to finish (up to `worker_shutdown_seconds`); a job cut short stays "doing"
    and is retried as stalled.
    """
    side_tasks = [
        asyncio.create_task(tick(rt.settings)),
        asyncio.create_task(retry_stalled_jobs(rt.settings.worker_heartbeat_max_age_seconds)),
    ]
    loop = asyncio.get_running_loop()
    delay = 0.0
    failing_since: float | None = None
    try:
        while True:
            started = loop.time()
            try:
                await _run_worker(rt, name=name)
                _raise_if_cancelling()
                log.warning("worker_stopped restart_in=%.1fs", delay)
            except Exception as exc:
                _raise_if_cancelling()
                if not is_outage(exc):
                    log.exception("worker_failed restart_in=%.1fs", delay)
                else:
                    log.warning("worker_lost_database %s restart_in=%.1fs", _one_line(exc), delay)
            if loop.time() - started > rt.settings.worker_heartbeat_max_age_seconds:
                delay, failing_since = 0.0, None  # it ran well for a while: a fresh failure
            failing_since = failing_since or started
            if loop.time() - failing_since > rt.settings.worker_give_up_seconds:
                raise WorkerGaveUp(f"failing for over {rt.settings.worker_give_up_seconds:g} s")
            await asyncio.sleep(delay)
            delay = min(max(delay * 2, 0.25), rt.settings.worker_max_backoff_seconds)
    finally:
        for task in side_tasks:
            task.cancel()


def _raise_if_cancelling() -> None:
    """procrastinate's worker takes our cancel as "stop" and may then end with the database
    error it met meanwhile: the cancel must still stop us, not be taken for a failure to
    restart after (shutdown would wait for ever)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _one_line(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    lines = str(cause).strip().splitlines()
    return f"error={type(cause).__name__}:{lines[0] if lines else ''}"[:200]


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
        except Exception as exc:
            if not is_outage(exc):
                log.exception("sweep_tick_failed")
            log.debug("sweep_tick_skipped %s", _one_line(exc))  # the worker logs the outage


async def retry_stalled_jobs(max_age: float) -> None:
    """Jobs left "doing" by a worker that died (SIGKILL, a lost machine, the database going away
    mid-job) would hold their procrastinate lock forever; once their worker has not reported for
    `max_age` they go back to the queue. Every worker does this; retrying twice is harmless.
    A job whose twin is already queued (the same queueing lock: a periodic sweep) is not queued
    again but marked failed: the twin does its work."""
    manager = job_app.job_manager
    while True:
        await asyncio.sleep(max_age / 3)
        try:
            for job in await manager.get_stalled_jobs(seconds_since_heartbeat=max_age):
                log.warning("job_stalled_retrying task=%s job_id=%s", job.task_name, job.id)
                try:
                    await manager.retry_job(job)
                except UniqueViolation:
                    await manager.finish_job(job, status=Status.FAILED, delete_job=False)
        except Exception as exc:
            if not is_outage(exc):
                log.exception("stalled_job_check_failed")
            log.debug("stalled_job_check_skipped %s", _one_line(exc))


async def _run_worker(rt: Runtime, *, name: str) -> None:
    await job_app.run_worker_async(
        name=name,
        concurrency=8,
        fetch_job_polling_interval=rt.settings.worker_poll_seconds,
        # Signals are the process's to handle (uvicorn's, or run_worker_alone's): they cancel us.
        install_signal_handlers=False,
        shutdown_graceful_timeout=rt.settings.worker_shutdown_seconds,
        update_heartbeat_interval=rt.settings.worker_heartbeat_max_age_seconds / 6,
        stalled_worker_timeout=rt.settings.worker_heartbeat_max_age_seconds,
        additional_context={"runtime": rt},
        queues=[DEFAULT_QUEUE, PUSH_QUEUE] if rt.push is not None else [DEFAULT_QUEUE],
        delete_jobs="successful",
    )


def register_tasks(blueprints: Mapping[str, procrastinate.Blueprint]) -> procrastinate.App:
    """Add each namespace's tasks to the App (once); they are named `<namespace>:<verb>`."""
    for namespace, blueprint in blueprints.items():
        if not any(name.startswith(f"{namespace}:") for name in job_app.tasks):
            job_app.add_tasks_from(blueprint, namespace=namespace)
    for task in job_app.tasks.values():
        # Not a task with a queueing lock (a periodic sweep): its twin already waits to run.
        if task.retry_strategy is None and task.queueing_lock is None:
            task.retry_strategy = RETRY_AFTER_OUTAGE
    return job_app


async def last_heartbeat_age(db: AsyncSession) -> float | None:
    """Seconds since any worker last reported in, or None if none ever did."""
    age = await db.scalar(
        text("SELECT EXTRACT(EPOCH FROM now() - max(last_heartbeat)) FROM procrastinate_workers")
    )
    return None if age is None else float(age)


@dataclass(frozen=True)
class TaskQueue:
    """One task's jobs, as the operator's gauges show them."""

    due: int  # waiting for a worker now
    scheduled: int  # waiting for their time
    running: int
    lag_seconds: float  # how long the oldest due job has been due (0: none)


# Per task, in one pass over the queue's partial index of open jobs. A due job has been due
# since its `scheduled_at`, or, unscheduled, since it was (re)queued: procrastinate keeps that
# time only as an event, read for the one oldest job of each task.
QUEUE_STATE = """
WITH open_jobs AS (
    SELECT task_name, id, status, scheduled_at,
           status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now()) AS due
    FROM procrastinate_jobs WHERE status IN ('todo', 'doing')
), per_task AS (
    SELECT task_name,
           count(*) FILTER (WHERE due) AS due,
           count(*) FILTER (WHERE status = 'todo' AND NOT due) AS scheduled,
           count(*) FILTER (WHERE status = 'doing') AS running,
           min(scheduled_at) FILTER (WHERE due) AS first_scheduled,
           min(id) FILTER (WHERE due AND scheduled_at IS NULL) AS first_unscheduled
    FROM open_jobs GROUP BY task_name
)
SELECT task_name, due, scheduled, running,
       COALESCE(EXTRACT(EPOCH FROM now() - LEAST(first_scheduled, (
           SELECT max(e.at) FROM procrastinate_events e
           WHERE e.job_id = first_unscheduled
             AND e.type IN ('deferred', 'deferred_for_retry', 'retried')
       ))), 0)
FROM per_task
"""


async def queue_state(db: AsyncSession) -> dict[str, TaskQueue]:
    """Every registered task's jobs (zeros for a task with none), and any other task's found."""
    state = {task.name: TaskQueue(0, 0, 0, 0.0) for task in job_app.tasks.values()}
    for task, due, scheduled, running, lag in await db.execute(text(QUEUE_STATE)):
        state[task] = TaskQueue(int(due), int(scheduled), int(running), max(0.0, float(lag)))
    return state


async def workers_alive(db: AsyncSession, max_age: float) -> int:
    """Workers that have reported within `max_age` seconds."""
    alive = await db.scalar(
        text(
            "SELECT count(*) FROM procrastinate_workers"
            " WHERE last_heartbeat > now() - make_interval(secs => :age)"
        ),
        {"age": max_age},
    )
    return int(alive or 0)
