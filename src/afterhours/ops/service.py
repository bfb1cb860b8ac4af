"""What the operator's gauges read from the database at scrape time.

Read here rather than counted in memory, so every serving process answers the same (aggregate
them with max(), not sum()). Each rule stays with its feature (what a live session is, an open
match, a waiting user); this module only puts their counts in one statement, beside one for
the job queue and one for the workers, so a scrape costs a few index scans.
"""

from datetime import datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import (
    CompoundSelect,
    DateTime,
    String,
    literal,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from afterhours import clock, jobs
from afterhours.matching import service as matching
from afterhours.sessions import service as sessions


def _product_state(now: datetime) -> CompoundSelect[str, str, int]:
    at = literal(now, DateTime(timezone=True))
    by_status = matching.open_counts(at).subquery()
    return union_all(
        select(
            literal_column("'sessions'"),
            literal("", String),
            sessions.live_count(at).scalar_subquery(),
        ),
        select(
            literal_column("'waiting'"),
            literal("", String),
            matching.waiting_count(at).scalar_subquery(),
        ),
        select(literal_column("'matches'"), *by_status.c),
    )


async def gauges(db: AsyncSession, *, heartbeat_max_age: float) -> list[Metric]:
    """The gauges of one scrape, in three statements."""
    active = GaugeMetricFamily(
        "afterhours_sessions_active", "Sessions on now (not ended, expires_at in the future)"
    )
    waiting = GaugeMetricFamily(
        "afterhours_users_waiting", "Users in a live session with no open match"
    )
    matches = GaugeMetricFamily(
        "afterhours_matches_open", "Open matches by status as of now", labels=["status"]
    )
    open_by_status: dict[str, int] = dict.fromkeys(matching.OPEN_STATUSES, 0)
    for kind, label, count in await db.execute(_product_state(clock.now())):
        if kind == "sessions":
            active.add_metric([], count)
        elif kind == "waiting":
            waiting.add_metric([], count)
        else:
            open_by_status[label] = count
    for status, count in open_by_status.items():
        matches.add_metric([status], count)

    depth = GaugeMetricFamily(
        "afterhours_job_queue_depth", "Jobs due and waiting for a worker", labels=["task"]
    )
    scheduled = GaugeMetricFamily(
        "afterhours_job_queue_scheduled", "Jobs waiting for their scheduled time", labels=["task"]
    )
    running = GaugeMetricFamily("afterhours_jobs_running", "Jobs being run", labels=["task"])
    lag = GaugeMetricFamily(
        "afterhours_job_queue_lag_seconds",
        "How long the oldest due job has waited for a worker (0: none waiting)",
        labels=["task"],
    )
    for task, queue in sorted((await jobs.queue_state(db)).items()):
        depth.add_metric([task], queue.due)
        scheduled.add_metric([task], queue.scheduled)
        running.add_metric([task], queue.running)
        lag.add_metric([task], queue.lag_seconds)
    workers = GaugeMetricFamily(
        "afterhours_workers_alive",
        "Job workers (any process) heard from within AFTERHOURS_WORKER_HEARTBEAT_MAX_AGE_SECONDS",
        value=await jobs.workers_alive(db, heartbeat_max_age),
    )
    return [active, waiting, matches, depth, scheduled, running, lag, workers]
