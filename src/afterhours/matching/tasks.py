"""Matching jobs.

Sweeps take the procrastinate lock "matching:sweep", so two never run at once. Attempts take no
lock: procrastinate holds back a job while any earlier job with its lock waits, even one scheduled
minutes ahead, so a locked follow-up attempt after a decline would stall every sweep and every
attempt in the service until it ran. An attempt running beside a sweep is safe: the open-match
index (one open match per user) decides which of them gets a person, and the other drops the pair.
"""

import uuid

import procrastinate

from afterhours.jobs import runtime
from afterhours.matching import service, sweep

blueprint = procrastinate.Blueprint()


@blueprint.task(
    name="sweep", pass_context=True, lock="matching:sweep", queueing_lock="matching:sweep"
)
async def periodic_sweep(context: procrastinate.JobContext) -> None:
    rt = runtime(context)
    async with rt.db.transaction() as db:
        await service.auto_decline_due(db, settings=rt.settings)  # in case a deadline job was lost
        await sweep.sweep(db, settings=rt.settings, storage=rt.storage)


@blueprint.task(name="attempt", pass_context=True)
async def attempt(context: procrastinate.JobContext, user_id: str) -> None:
    """A match attempt for one user (after a session start or a close): they go first."""
    rt = runtime(context)
    async with rt.db.transaction() as db:
        await sweep.sweep(
            db, settings=rt.settings, storage=rt.storage, focus_user=uuid.UUID(user_id)
        )


@blueprint.task(name="auto_decline_due", pass_context=True, retry=3)
async def auto_decline_due(context: procrastinate.JobContext) -> None:
    rt = runtime(context)
    await rt.db.in_batches(
        lambda db: service.auto_decline_due(db, settings=rt.settings), service.AUTO_DECLINE_BATCH
    )
