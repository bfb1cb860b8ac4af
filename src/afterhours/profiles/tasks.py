"""Photo removal from storage, off the request path: deferred in the transaction that forgets
the photo, so it happens if and only if that commits, and retried while storage is down."""

import logging
from datetime import timedelta

import procrastinate
from sqlalchemy.ext.asyncio import AsyncSession

from afterhours import clock, jobs
from afterhours.jobs import runtime

log = logging.getLogger("afterhours.profiles")

blueprint = procrastinate.Blueprint()

# Waits double from `photo_delete_retry_seconds` up to this; after MAX_ATTEMPTS (with the
# defaults, about two hours of trying) the keys are logged and left.
MAX_RETRY_WAIT = timedelta(minutes=15)
MAX_ATTEMPTS = 12


async def delete_later(
    db: AsyncSession, keys: list[str], attempt: int = 0, wait: float = 0
) -> None:
    """Remove these stored photos once `db` commits (after `wait` seconds)."""
    if keys:
        at = clock.now() + timedelta(seconds=wait) if wait else None
        await jobs.defer(db, "profiles:delete_photos", at=at, keys=keys, attempt=attempt)


@blueprint.task(name="delete_photos", pass_context=True)
async def delete_photos(context: procrastinate.JobContext, keys: list[str], attempt: int) -> None:
    """Delete each key (a missing one counts as deleted); the ones storage refused go again."""
    rt = runtime(context)
    failed = []
    for key in keys:
        try:
            await rt.storage.delete(key)
        except Exception as exc:  # any storage failure: S3 down, a full disk, a timeout
            log.warning("photo_delete_failed key=%s error=%s", key, type(exc).__name__)
            failed.append(key)
    log.info("photos_deleted count=%d attempt=%d", len(keys) - len(failed), attempt)
    if not failed:
        return
    if attempt + 1 >= MAX_ATTEMPTS:
        log.error("photo_delete_gave_up keys=%s attempts=%d", ",".join(failed), attempt + 1)
        return
    wait = min(rt.settings.photo_delete_retry_seconds * 2**attempt, MAX_RETRY_WAIT.total_seconds())
    async with rt.db.transaction() as db:
        await delete_later(db, failed, attempt=attempt + 1, wait=wait)
