"""Saving a match: one save waits for the other's; both make it a permanent match."""

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from afterhours import clock, realtime
from afterhours.matching.models import Match, Participant, PermanentMatch
from afterhours.matching.schemas import MatchOut, MatchSaved
from afterhours.matching.service import attempt_again, match_not_open, match_view, sides
from afterhours.settings import Settings
from afterhours.storage import PhotoStorage

log = logging.getLogger("afterhours.matching")


async def save(
    db: AsyncSession,
    *,
    settings: Settings,
    storage: PhotoStorage,
    match_id: uuid.UUID,
    user_id: uuid.UUID,
) -> MatchOut:
    """Mark the caller's save; when both have saved, the match becomes a permanent one.

    A saved match is closed for matching (both may be matched again in their sessions) but its
    chat stays open for good: session ends never touch it, only an account deletion does.
    """
    match, mine, theirs, status = await sides(db, match_id, user_id, for_update=True)
    if status == "saved":
        return await match_view(db, storage=storage, match=match, mine=mine, theirs=theirs)
    if status != "active":
        raise match_not_open("Only an active match can be saved")
    if mine.saved_at is None:
        mine.saved_at = clock.now()
        log.info("match_saved_by match_id=%s user_id=%s", match.id, user_id)
        if theirs.saved_at is not None:
            await _make_permanent(db, settings=settings, match=match, people=(mine, theirs))
        await db.flush()
    return await match_view(db, storage=storage, match=match, mine=mine, theirs=theirs)


async def _make_permanent(
    db: AsyncSession,
    *,
    settings: Settings,
    match: Match,
    people: tuple[Participant, Participant],
) -> None:
    now = clock.now()
    a, b = sorted((p.user_id for p in people), key=lambda u: u.int)
    permanent_id = uuid.uuid4()
    db.add(
        PermanentMatch(
            id=permanent_id, user_a=a, user_b=b, created_at=now, after_hours_match_id=match.id
        )
    )
    match.permanent_match_id = permanent_id
    match.status = "saved"
    match.closed_at = now
    match.close_reason = "saved"
    for p in people:
        p.is_open = False  # free to be matched again while their sessions last
    await db.flush()
    event = MatchSaved(match_id=match.id, permanent_match_id=permanent_id)
    await realtime.emit_many(db, [(p.user_id, event) for p in people])
    await attempt_again(db, settings=settings, user_ids=[p.user_id for p in people])
    log.info("match_permanent match_id=%s permanent_match_id=%s", match.id, permanent_id)
