"""Retention jobs: periodic (UTC), idempotent, each batch in its own transaction.

A run missed while no worker was up is not caught up (procrastinate defers a periodic job only
if its time is at most 10 minutes past); the next night's run deletes the same rows and more.
"""

import logging
from collections.abc import Sequence
from functools import partial

import procrastinate
from sqlalchemy.ext.asyncio import AsyncSession

from afterhours.db import Database
from afterhours.jobs import runtime
from afterhours.retention import service
from afterhours.sessions import service as sessions

log = logging.getLogger("afterhours.retention")

blueprint = procrastinate.Blueprint()


async def run_steps(database: Database, steps: Sequence[service.Step]) -> dict[str, int]:
    """Run each step batch after batch, each batch its own transaction (so locks stay short and
    a crash loses at most one batch), until one comes back short; logs one count per step."""
    counts: dict[str, int] = {}
    for step in steps:
        total = await database.in_batches(partial(_one_batch, step), step.batch)
        counts[step.name] = total
        log.info("retention_%s count=%d", step.name, total)
    return counts


async def _one_batch(step: service.Step, db: AsyncSession) -> int:
    return await step.run(db, step.batch)


async def purge_chats_now(database: Database) -> dict[str, int]:
    return await run_steps(database, service.chat_steps())


async def nightly_cleanup_now(database: Database, reactions: sessions.Reactions) -> dict[str, int]:
    return await run_steps(database, service.nightly_steps(reactions))


@blueprint.task(
    name="purge_chats", pass_context=True, lock="retention", queueing_lock="retention:purge_chats"
)
async def purge_chats(context: procrastinate.JobContext, timestamp: int) -> None:
    """03:00 UTC: messages and matches of unsaved chats closed more than 30 days ago."""
    await purge_chats_now(runtime(context).db)


@blueprint.task(
    name="nightly_cleanup",
    pass_context=True,
    lock="retention",
    queueing_lock="retention:nightly_cleanup",
)
async def nightly_cleanup(context: procrastinate.JobContext, timestamp: int) -> None:
    """04:00 UTC, after the chat purge: stale sessions, old declines and events, orphans."""
    rt = runtime(context)
    await nightly_cleanup_now(rt.db, rt.lifecycle.sessions)


blueprint.periodic(cron="0 3 * * *", periodic_id="retention:purge_chats")(purge_chats)
blueprint.periodic(cron="0 4 * * *", periodic_id="retention:nightly_cleanup")(nightly_cleanup)
