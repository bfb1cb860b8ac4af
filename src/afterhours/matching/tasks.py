"""Matching jobs.

The periodic sweep plans shards (matching.shards) and defers one shard sweep per shard, each
under the lock and queueing lock of its own rectangle: shards are swept side by side, a shard
never twice at once, and a slow one (a busy city) holds back only its own next turn.

Attempts take no lock: procrastinate holds back a job while any earlier job with its lock
waits, even one scheduled minutes ahead, so a locked follow-up attempt after a decline would
stall every sweep and every attempt in the service until it ran. An attempt running beside a
sweep is safe: the open-match index (one open match per user) decides which of them gets a
person, and the other drops the pair.
"""

import logging
import uuid
from dataclasses import asdict

import procrastinate

from afterhours import jobs, metrics
from afterhours.geo import Box
from afterhours.jobs import runtime
from afterhours.matching import service, shards, sweep
from afterhours.sessions import service as sessions

log = logging.getLogger("afterhours.matching")

blueprint = procrastinate.Blueprint()


@blueprint.task(
    name="sweep", pass_context=True, lock="matching:sweep", queueing_lock="matching:sweep"
)
async def periodic_sweep(context: procrastinate.JobContext) -> None:
    rt = runtime(context)
    async with rt.db.transaction() as db:
        await service.auto_decline_due(db, settings=rt.settings)  # in case a deadline job was lost
        cells = await sessions.matchable_by_cell(
            db, settings=rt.settings, degrees=shards.CELL_DEGREES
        )
        planned = shards.plan(cells, rt.settings.match_shard_users)
        for shard in planned:
            lock = f"matching:shard:{shard.key}"
            await jobs.defer(
                db, "matching:sweep_shard", lock=lock, queueing_lock=lock, **asdict(shard.box)
            )
    log.info(
        "match_sweep_planned shards=%d people=%d", len(planned), sum(s.people for s in planned)
    )


@blueprint.task(name="sweep_shard", pass_context=True)
async def sweep_shard(
    context: procrastinate.JobContext, south: float, north: float, west: float, east: float
) -> None:
    rt = runtime(context)
    with metrics.timed(metrics.SWEEP_SECONDS.labels("shard")):
        async with rt.db.transaction() as db:
            await sweep.sweep(
                db, settings=rt.settings, storage=rt.storage, shard=Box(south, north, west, east)
            )


@blueprint.task(name="attempt", pass_context=True)
async def attempt(context: procrastinate.JobContext, user_id: str) -> None:
    """A match attempt for one user (after a session start or a close): they go first."""
    rt = runtime(context)
    with metrics.timed(metrics.SWEEP_SECONDS.labels("attempt")):
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
