"""Session jobs. Each is idempotent: it reads the row's current state before acting."""

import uuid

import procrastinate

from afterhours.db import Database
from afterhours.jobs import runtime
from afterhours.sessions import service

blueprint = procrastinate.Blueprint()


@blueprint.task(name="expire", pass_context=True, retry=3)
async def expire(context: procrastinate.JobContext, session_id: str) -> None:
    rt = runtime(context)
    async with rt.db.transaction() as db:
        await service.expire(
            db,
            settings=rt.settings,
            session_id=uuid.UUID(session_id),
            reactions=rt.lifecycle.sessions,
        )


@blueprint.task(name="warn", pass_context=True)
async def warn(
    context: procrastinate.JobContext, session_id: str, expires_at: str | None = None
) -> None:
    # `expires_at` is what jobs queued by earlier versions carry; the session row is the truth.
    rt = runtime(context)
    async with rt.db.transaction() as db:
        await service.warn_expiring(db, settings=rt.settings, session_id=uuid.UUID(session_id))


@blueprint.task(name="sweep_expired", pass_context=True, queueing_lock="sessions:sweep_expired")
async def sweep_expired(context: procrastinate.JobContext, timestamp: int) -> None:
    """Closes what expiry jobs missed (a lost job, a database restored from backup)."""
    rt = runtime(context)
    await close_all_expired(rt.db, rt.lifecycle.sessions)


async def close_all_expired(database: Database, reactions: service.Reactions) -> int:
    """Every lapsed session, a batch per transaction: each batch's events go out as it commits."""
    return await database.in_batches(
        lambda db: service.close_expired(db, reactions=reactions), service.CLOSE_BATCH
    )


blueprint.periodic(cron="* * * * *", periodic_id="sessions:sweep_expired")(sweep_expired)
