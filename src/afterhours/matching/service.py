"""A match's life, from the card to its close: every change of a match's status is made here
(chat, safety and sessions ask for it through this module)."""

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, and_, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from afterhours import clock, jobs, realtime
from afterhours.errors import AppError, not_found
from afterhours.matching.models import OPEN_STATUSES as OPEN_STATUSES  # re-exported: for gauges
from afterhours.matching.models import (
    Decline,
    Match,
    Participant,
)
from afterhours.matching.schemas import (
    Card,
    ChatOpen,
    MatchAccepted,
    MatchClosed,
    MatchOut,
)
from afterhours.matching.status import NOW, sessions_on_at, status_at
from afterhours.matching.status import lock_for_chat as lock_for_chat  # chat locks with it
from afterhours.profiles import service as profiles
from afterhours.sessions import service as sessions
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


class Sides(NamedTuple):
    match: Match
    mine: Participant
    theirs: Participant
    status: str  # as of now: an open match whose time is up reads closed (matching.status)


async def sides(
    db: AsyncSession, match_id: uuid.UUID, user_id: uuid.UUID, *, for_update: bool = False
) -> Sides:
    """The match and both participants as `user_id` sees them; NOT_FOUND for anyone else."""
    stmt = select(Match, status_at(NOW, sessions_on=sessions_on_at(NOW))).where(
        Match.id == match_id
    )
    if for_update:
        stmt = stmt.with_for_update(of=Match)
    row = (await db.execute(stmt, {"now": clock.now()})).one_or_none()
    if row is None:
        raise not_found("Match")
    match, status = row
    people = list(await db.scalars(select(Participant).where(Participant.match_id == match_id)))
    mine = next((p for p in people if p.user_id == user_id), None)
    theirs = next((p for p in people if p.user_id != user_id), None)
    if mine is None or theirs is None:
        raise not_found("Match")
    return Sides(match, mine, theirs, status)


async def match_view(
    db: AsyncSession,
    *,
    storage: PhotoStorage,
    match: Match,
    mine: Participant,
    theirs: Participant,
    status: str | None = None,
) -> MatchOut:
    """The match as `mine` sees it; `status` (as of now) in place of the stored one if given."""
    facts = (await profiles.matching_facts(db, user_ids=[theirs.user_id])).get(theirs.user_id)
    if facts is None:
        raise not_found("Match")
    card = card_of(facts, match, storage)
    fields = _match_fields(match, card, mine=mine, theirs=theirs)
    return MatchOut(**{**fields, "status": status or match.status})


async def get_match(
    db: AsyncSession, *, storage: PhotoStorage, match_id: uuid.UUID, user_id: uuid.UUID
) -> MatchOut:
    match, mine, theirs, status = await sides(db, match_id, user_id)
    return await match_view(
        db, storage=storage, match=match, mine=mine, theirs=theirs, status=status
    )


async def other_participant(
    db: AsyncSession, *, match_id: uuid.UUID, user_id: uuid.UUID
) -> uuid.UUID:
    """Who `user_id` was matched with in `match_id`; NOT_FOUND unless they took part."""
    return (await sides(db, match_id, user_id)).theirs.user_id


async def open_match_id(db: AsyncSession, *, user_id: uuid.UUID) -> uuid.UUID | None:
    return await db.scalar(
        select(Participant.match_id).where(Participant.user_id == user_id, Participant.is_open)
    )


def waiting_count(now: ColumnElement[datetime]) -> Select[int]:
    """People in a live session with no open match: whom the next sweep tries to pair (the
    sweep's own test of "busy": an open participant row)."""
    session = sessions.Session
    busy = select(Participant.user_id).where(
        Participant.is_open, Participant.user_id == session.user_id
    )
    return select(func.count()).select_from(session).where(sessions.is_live(now), ~busy.exists())


def open_counts(now: ColumnElement[datetime]) -> Select[str, int]:
    """Open matches by their status as of `now` (one whose time is up is not open any more)."""
    status = status_at(now, sessions_on=sessions_on_at(now)).label("status")
    open_ids = select(Participant.match_id).where(Participant.is_open)
    as_of_now = select(status).where(Match.id.in_(open_ids)).subquery()
    return (
        select(as_of_now.c.status, func.count())
        .where(as_of_now.c.status.in_(OPEN_STATUSES))
        .group_by(as_of_now.c.status)
    )


async def open_match(
    db: AsyncSession, *, storage: PhotoStorage, user_id: uuid.UUID
) -> MatchOut | None:
    match_id = await open_match_id(db, user_id=user_id)
    if match_id is None:
        return None
    match = await get_match(db, storage=storage, match_id=match_id, user_id=user_id)
    return match if match.status in OPEN_STATUSES else None  # its time is up, not yet closed


# --- the lifecycle -------------------------------------------------------------------------


async def accept(
    db: AsyncSession, *, storage: PhotoStorage, match_id: uuid.UUID, user_id: uuid.UUID
) -> MatchOut:
    match, mine, theirs, status = await sides(db, match_id, user_id, for_update=True)
    if status not in OPEN_STATUSES:
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
    settings: Settings,
    storage: PhotoStorage,
    match_id: uuid.UUID,
    user_id: uuid.UUID,
) -> MatchOut:
    match, mine, theirs, status = await sides(db, match_id, user_id, for_update=True)
    if status not in OPEN_STATUSES:
        raise match_not_open()
    await close(
        db,
        settings=settings,
        match=match,
        status="declined",
        reason="declined",
        decliners=[user_id],
    )
    return await match_view(db, storage=storage, match=match, mine=mine, theirs=theirs)


async def close(
    db: AsyncSession,
    *,
    settings: Settings,
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
    await attempt_again(db, settings=settings, user_ids=[p.user_id for p in people])
    log.info("match_closed match_id=%s status=%s reason=%s", match.id, status, reason)


async def attempt_again(
    db: AsyncSession, *, settings: Settings, user_ids: Sequence[uuid.UUID]
) -> None:
    """Both sides of a closed match are free again: each gets a match attempt after a pause."""
    retry_at = clock.now() + timedelta(seconds=settings.match_delay_decline_seconds)
    for user_id in user_ids:
        await jobs.defer(db, "matching:attempt", at=retry_at, user_id=str(user_id))


AUTO_DECLINE_BATCH = 500


async def auto_decline_due(
    db: AsyncSession, *, settings: Settings, limit: int = AUTO_DECLINE_BATCH
) -> int:
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
        await auto_decline(db, settings=settings, match=match)
    return len(due)


async def auto_decline(db: AsyncSession, *, settings: Settings, match: Match) -> None:
    """Close a pending match whose time ran out; whoever had not accepted declined."""
    match_id = match.id
    waiting_on = list(
        await db.scalars(
            select(Participant.user_id).where(
                Participant.match_id == match_id, Participant.accepted_at.is_(None)
            )
        )
    )
    await close(
        db,
        settings=settings,
        match=match,
        status="expired",
        reason="timeout",
        decliners=waiting_on,
    )


async def close_open_match_of(
    db: AsyncSession, *, settings: Settings, user_id: uuid.UUID, status: str, reason: str
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
        await close(db, settings=settings, match=match, status=status, reason=reason)


async def close_open_match_between(
    db: AsyncSession, *, settings: Settings, a: uuid.UUID, b: uuid.UUID, status: str, reason: str
) -> None:
    mine = select(Participant.match_id).where(Participant.user_id == a, Participant.is_open)
    theirs = select(Participant.match_id).where(Participant.user_id == b, Participant.is_open)
    match = (
        await db.scalars(
            select(Match).where(and_(Match.id.in_(mine), Match.id.in_(theirs))).with_for_update()
        )
    ).one_or_none()
    if match is not None:
        await close(db, settings=settings, match=match, status=status, reason=reason)


# --- reactions to other features' changes (wired in afterhours.wiring) ----------------------


async def close_with_session(
    db: AsyncSession, session: sessions.Session, *, settings: Settings
) -> None:
    """A session that ends takes its open match with it (status `ended`)."""
    reason = "session_expired" if session.end_reason == "timeout" else "session_ended"
    await close_open_match_of(
        db, settings=settings, user_id=session.user_id, status="ended", reason=reason
    )


async def attempt_after_start(
    db: AsyncSession, session: sessions.Session, *, settings: Settings
) -> None:
    at = clock.now() + timedelta(seconds=settings.match_delay_start_seconds)
    await jobs.defer(db, "matching:attempt", at=at, user_id=str(session.user_id))


async def close_on_block(
    db: AsyncSession, *, settings: Settings, a: uuid.UUID, b: uuid.UUID
) -> None:
    await close_open_match_between(
        db, settings=settings, a=a, b=b, status="blocked", reason="blocked"
    )


async def forget_account(
    db: AsyncSession,
    *,
    user_id: uuid.UUID,
    kept: Callable[[Any], ColumnElement[bool]],
) -> None:
    """Delete the user's After Hours matches and, with them, their messages, except those
    `kept(match id)` holds (a match under an open report stays until it is resolved).

    Runs inside account deletion, after the user's session (and so any open match) was closed.
    """
    rows = (
        await db.execute(
            select(Match.id, Match.status)
            .join(Participant, Participant.match_id == Match.id)
            .where(Participant.user_id == user_id, ~kept(Match.id))
        )
    ).all()
    if not rows:
        return
    ids = [match_id for match_id, _ in rows]
    saved = [match_id for match_id, status in rows if status == "saved"]
    if saved:
        # The other side of a saved chat would otherwise keep it on screen: tell them it is gone.
        others = (
            await db.execute(
                select(Participant.match_id, Participant.user_id).where(
                    Participant.match_id.in_(saved), Participant.user_id != user_id
                )
            )
        ).all()
        await realtime.emit_many(
            db,
            [
                (other, MatchClosed(match_id=m, status="ended", reason="account_deleted"))
                for m, other in others
            ],
        )
    await db.execute(delete(Match).where(Match.id.in_(ids)))  # messages, participants cascade
    log.info("account_matches_deleted user_id=%s count=%d", user_id, len(ids))
