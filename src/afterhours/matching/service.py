"""Matching: the sweep that pairs waiting users, and a match's life until it closes."""

import logging
import uuid
from datetime import timedelta

from sqlalchemy import and_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from afterhours import clock, jobs, realtime
from afterhours.errors import AppError, not_found
from afterhours.matching.models import OPEN_STATUSES, Decline, Match, Participant
from afterhours.matching.schemas import (
    Card,
    ChatOpen,
    MatchAccepted,
    MatchClosed,
    MatchOut,
)
from afterhours.profiles import service as profiles
from afterhours.sessions import service as sessions
from afterhours.sessions.models import Session
from afterhours.settings import Settings
from afterhours.storage import PhotoStorage

log = logging.getLogger("afterhours.matching")


def match_not_open(message: str = "This match is no longer open") -> AppError:
    return AppError("MATCH_NOT_OPEN", message, status=409)


def card_of(facts: profiles.MatchingFacts, match: Match, storage: PhotoStorage) -> Card:
    return Card(
        user_id=facts.user_id,
        name=facts.name,
        age=profiles.age_on(facts.birth_date, clock.now().date()),
        photo_url=storage.url(facts.photo_key) if facts.photo_key else None,
        description=facts.description,
        distance_km=match.distance_km,
    )


def _match_fields(
    match: Match, card: Card, *, mine: Participant | None = None, theirs: Participant | None = None
) -> dict[str, object]:
    return {
        "id": match.id,
        "status": match.status,
        "created_at": match.created_at,
        "auto_decline_at": match.auto_decline_at,
        "accepted_by_me": bool(mine and mine.accepted_at),
        "accepted_by_them": bool(theirs and theirs.accepted_at),
        "saved_by_me": bool(mine and mine.saved_at),
        "saved_by_them": bool(theirs and theirs.saved_at),
        "permanent_match_id": match.permanent_match_id,
        "profile": card,
    }


# --- reading a match -----------------------------------------------------------------------


async def sides(
    db: AsyncSession, match_id: uuid.UUID, user_id: uuid.UUID, *, for_update: bool = False
) -> tuple[Match, Participant, Participant]:
    """The match and both participants as `user_id` sees them; NOT_FOUND for anyone else."""
    stmt = select(Match).where(Match.id == match_id)
    if for_update:
        stmt = stmt.with_for_update()
    match = (await db.scalars(stmt)).one_or_none()
    if match is None:
        raise not_found("Match")
    people = list(await db.scalars(select(Participant).where(Participant.match_id == match_id)))
    mine = next((p for p in people if p.user_id == user_id), None)
    theirs = next((p for p in people if p.user_id != user_id), None)
    if mine is None or theirs is None:
        raise not_found("Match")
    return match, mine, theirs


async def match_view(
    db: AsyncSession,
    *,
    storage: PhotoStorage,
    match: Match,
    mine: Participant,
    theirs: Participant,
) -> MatchOut:
    facts = (await profiles.matching_facts(db, user_ids=[theirs.user_id])).get(theirs.user_id)
    if facts is None:
        raise not_found("Match")
    card = card_of(facts, match, storage)
    return MatchOut(**_match_fields(match, card, mine=mine, theirs=theirs))


async def get_match(
    db: AsyncSession, *, storage: PhotoStorage, match_id: uuid.UUID, user_id: uuid.UUID
) -> MatchOut:
    match, mine, theirs = await sides(db, match_id, user_id)
    return await match_view(db, storage=storage, match=match, mine=mine, theirs=theirs)


async def open_match_id(db: AsyncSession, *, user_id: uuid.UUID) -> uuid.UUID | None:
    return await db.scalar(
        select(Participant.match_id).where(Participant.user_id == user_id, Participant.is_open)
    )


async def open_match(
    db: AsyncSession, *, storage: PhotoStorage, user_id: uuid.UUID
) -> MatchOut | None:
    match_id = await open_match_id(db, user_id=user_id)
    if match_id is None:
        return None
    return await get_match(db, storage=storage, match_id=match_id, user_id=user_id)


# --- the lifecycle -------------------------------------------------------------------------


async def accept(
    db: AsyncSession, *, storage: PhotoStorage, match_id: uuid.UUID, user_id: uuid.UUID
) -> MatchOut:
    match, mine, theirs = await sides(db, match_id, user_id, for_update=True)
    if match.status not in OPEN_STATUSES:
        raise match_not_open()
    if mine.accepted_at is None:
        mine.accepted_at = clock.now()
        events: list[tuple[uuid.UUID, realtime.ServerEvent]] = [
            (user_id, MatchAccepted(match_id=match.id, by="me")),
            (theirs.user_id, MatchAccepted(match_id=match.id, by="them")),
        ]
        if theirs.accepted_at is not None:
            match.status = "active"
            events += [(p, ChatOpen(match_id=match.id)) for p in (user_id, theirs.user_id)]
            log.info("match_active match_id=%s", match.id)
        await db.flush()
        await realtime.emit_many(db, events)
    return await match_view(db, storage=storage, match=match, mine=mine, theirs=theirs)


async def decline(
    db: AsyncSession,
    *,
    storage: PhotoStorage,
    match_id: uuid.UUID,
    user_id: uuid.UUID,
) -> MatchOut:
    match, mine, theirs = await sides(db, match_id, user_id, for_update=True)
    if match.status not in OPEN_STATUSES:
        raise match_not_open()
    await close(db, match=match, status="declined", reason="declined", decliners=[user_id])
    return await match_view(db, storage=storage, match=match, mine=mine, theirs=theirs)


async def close(
    db: AsyncSession,
    *,
    match: Match,
    status: str,
    reason: str,
    decliners: list[uuid.UUID] = (),  # type: ignore[assignment]
) -> None:
    """Close an open match: both hear of it, and both go back to waiting (if in session)."""
    now = clock.now()
    match.status = status
    match.closed_at = now
    match.close_reason = reason
    people = list(
        await db.scalars(
            update(Participant)
            .where(Participant.match_id == match.id)
            .values(is_open=False)
            .returning(Participant)
        )
    )
    await db.flush()
    for decliner in decliners:
        other = next(p.user_id for p in people if p.user_id != decliner)
        await db.execute(
            insert(Decline)
            .values(user_id=decliner, declined_user_id=other, created_at=now)
            .on_conflict_do_update(
                index_elements=[Decline.user_id, Decline.declined_user_id],
                set_={"created_at": now},
            )
        )
    await realtime.emit_many(
        db,
        [(p.user_id, MatchClosed(match_id=match.id, status=status, reason=reason)) for p in people],
    )
    settings: Settings = db.info["settings"]
    retry_at = now + timedelta(seconds=settings.match_delay_decline_seconds)
    for p in people:
        await jobs.defer(db, "matching:attempt", at=retry_at, user_id=str(p.user_id))
    log.info("match_closed match_id=%s status=%s reason=%s", match.id, status, reason)


AUTO_DECLINE_BATCH = 500


async def auto_decline_due(db: AsyncSession, *, limit: int = AUTO_DECLINE_BATCH) -> int:
    """Close pending matches whose time ran out (a batch); idempotent, safe to run late."""
    due = list(
        await db.scalars(
            select(Match)
            .where(Match.status == "pending", Match.auto_decline_at <= clock.now())
            .order_by(Match.auto_decline_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    for match in due:
        await auto_decline(db, match=match)
    return len(due)


async def auto_decline(db: AsyncSession, *, match: Match) -> None:
    """Close a pending match whose time ran out; whoever had not accepted declined."""
    match_id = match.id
    waiting_on = list(
        await db.scalars(
            select(Participant.user_id).where(
                Participant.match_id == match_id, Participant.accepted_at.is_(None)
            )
        )
    )
    await close(db, match=match, status="expired", reason="timeout", decliners=waiting_on)


async def close_open_match_of(
    db: AsyncSession, *, user_id: uuid.UUID, status: str, reason: str
) -> None:
    match = (
        await db.scalars(
            select(Match)
            .join(Participant, Participant.match_id == Match.id)
            .where(Participant.user_id == user_id, Participant.is_open)
            .with_for_update(of=Match)
        )
    ).one_or_none()
    if match is not None:
        await close(db, match=match, status=status, reason=reason)


async def close_open_match_between(
    db: AsyncSession, *, a: uuid.UUID, b: uuid.UUID, status: str, reason: str
) -> None:
    mine = select(Participant.match_id).where(Participant.user_id == a, Participant.is_open)
    theirs = select(Participant.match_id).where(Participant.user_id == b, Participant.is_open)
    match = (
        await db.scalars(
            select(Match).where(and_(Match.id.in_(mine), Match.id.in_(theirs))).with_for_update()
        )
    ).one_or_none()
    if match is not None:
        await close(db, match=match, status=status, reason=reason)


async def on_session_closed(db: AsyncSession, session: Session) -> None:
    """A session that ends takes its open match with it (status `ended`)."""
    reason = "session_expired" if session.end_reason == "timeout" else "session_ended"
    await close_open_match_of(db, user_id=session.user_id, status="ended", reason=reason)


async def on_session_started(db: AsyncSession, session: Session) -> None:
    settings: Settings = db.info["settings"]
    at = clock.now() + timedelta(seconds=settings.match_delay_start_seconds)
    await jobs.defer(db, "matching:attempt", at=at, user_id=str(session.user_id))


sessions.on_start.append(on_session_started)
sessions.on_close.append(on_session_closed)
