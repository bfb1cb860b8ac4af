"""Matching: the sweep that pairs waiting users, and a match's life until it closes."""

import logging
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import ARRAY, Uuid, and_, any_, bindparam, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from afterhours import clock, geo, jobs, realtime
from afterhours.db import any_of, execute_bulk, fetch_all
from afterhours.errors import AppError, not_found
from afterhours.matching import engine
from afterhours.matching.models import OPEN_STATUSES, Decline, Match, Participant
from afterhours.matching.schemas import (
    Card,
    ChatOpen,
    MatchAccepted,
    MatchClosed,
    MatchDelivered,
    MatchOut,
    NoMatches,
)
from afterhours.profiles import service as profiles
from afterhours.safety.models import Block
from afterhours.sessions import service as sessions
from afterhours.sessions.models import Session
from afterhours.sessions.service import Matchable
from afterhours.settings import Settings
from afterhours.storage import PhotoStorage

log = logging.getLogger("afterhours.matching")

# Two people who declined each other (or let a card time out) are not paired again for a week.
DECLINE_WINDOW = timedelta(days=7)
MAX_DISTANCE_KM = 100  # the largest maxDistanceKm a preference can hold


@dataclass
class SweepResult:
    waiting: int
    pairs: int
    focus_paired: bool | None = None


def match_not_open() -> AppError:
    return AppError("MATCH_NOT_OPEN", "This match is no longer open", status=409)


# --- the sweep ---------------------------------------------------------------------------


async def sweep(
    db: AsyncSession,
    *,
    settings: Settings,
    storage: PhotoStorage,
    focus_user: uuid.UUID | None = None,
) -> SweepResult:
    """Pair every waiting user (or those around `focus_user`, who goes first) in one pass."""
    now = clock.now()
    around: geo.Point | None = None
    focus_session: Session | None = None
    if focus_user is not None:
        focus_session = await sessions.active_session(db, user_id=focus_user)
        if focus_session is None:
            return SweepResult(waiting=0, pairs=0, focus_paired=False)
        around = geo.Point(focus_session.fuzzed_lat, focus_session.fuzzed_lon)
    candidates = await sessions.matchable_sessions(
        db, settings=settings, around=around, radius_km=MAX_DISTANCE_KM
    )
    busy = {
        user_id
        for (user_id,) in await fetch_all(
            db,
            select(Participant.user_id).where(
                Participant.is_open,
                any_of(Participant.user_id, [s.user_id for s in candidates], Uuid),
            ),
        )
    }
    in_area = candidates
    candidates = [s for s in candidates if s.user_id not in busy]
    facts = await profiles.matching_facts(db, user_ids=[s.user_id for s in candidates])
    candidates = [s for s in candidates if s.user_id in facts]
    waited = await waiting_since(db, candidates)
    candidates.sort(key=lambda s: (waited[s.id], s.user_id.int))
    today = now.date()
    waiting = engine.Waiting.from_rows(
        [
            (
                s.fuzzed_lat,
                s.fuzzed_lon,
                facts[s.user_id].gender,
                facts[s.user_id].seeking_genders,
                profiles.age_on(facts[s.user_id].birth_date, today),
                facts[s.user_id].min_age,
                facts[s.user_id].max_age,
                facts[s.user_id].max_distance_km,
            )
            for s in candidates
        ]
    )
    index = {s.user_id: i for i, s in enumerate(candidates)}
    excluded = {
        (index[a], index[b])
        for a, b in await excluded_pairs(db, list(index), since=now - DECLINE_WINDOW)
        if a in index and b in index
    }
    first = index.get(focus_user) if focus_user is not None else None
    pairs = engine.pair(waiting, excluded, first=first)
    created = await create_matches(
        db,
        settings=settings,
        storage=storage,
        pairs=[(candidates[i], candidates[j], km) for i, j, km in pairs],
        facts=facts,
    )
    result = SweepResult(waiting=len(candidates), pairs=created)
    if focus_session is not None:
        result.focus_paired = (
            any(first in (i, j) for i, j, _ in pairs) if first is not None else False
        )
        if not result.focus_paired and focus_user not in busy:
            nearby = _active_nearby(focus_session, in_area, facts)
            await realtime.emit(
                db,
                focus_session.user_id,
                NoMatches(session_id=focus_session.id, active_users_nearby=nearby),
            )
    log.info("match_sweep waiting=%d pairs=%d", result.waiting, result.pairs)
    return result


def _active_nearby(
    focus: Session, candidates: list[Matchable], facts: dict[uuid.UUID, profiles.MatchingFacts]
) -> int:
    """Other people in session (matched or not) within the focus user's distance preference."""
    me = geo.Point(focus.fuzzed_lat, focus.fuzzed_lon)
    reach = facts[focus.user_id].max_distance_km if focus.user_id in facts else MAX_DISTANCE_KM
    return sum(
        1
        for s in candidates
        if s.user_id != focus.user_id
        and geo.haversine_km(me, geo.Point(s.fuzzed_lat, s.fuzzed_lon)) <= reach
    )


async def waiting_since(db: AsyncSession, candidates: list[Matchable]) -> dict[uuid.UUID, datetime]:
    """Per session: its start, or the close of its last match, whichever is later."""
    last_closed = dict(
        await fetch_all(
            db,
            select(Participant.session_id, func.max(Match.closed_at))
            .join(Match, Match.id == Participant.match_id)
            .where(any_of(Participant.session_id, [s.id for s in candidates], Uuid))
            .group_by(Participant.session_id),
        )
    )
    return {s.id: max(s.started_at, last_closed.get(s.id) or s.started_at) for s in candidates}


async def excluded_pairs(
    db: AsyncSession, user_ids: list[uuid.UUID], *, since: datetime
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Blocks, recent declines and saved matches touching `user_ids` (either direction applies).

    A pair who saved their match already has each other for good: pairing them again would
    only hand them a card of someone they are chatting with."""
    ids = bindparam("ids", user_ids, type_=ARRAY(Uuid))  # one array parameter, used 5 times
    blocks = select(Block.blocker_id, Block.blocked_id).where(
        or_(Block.blocker_id == any_(ids), Block.blocked_id == any_(ids))
    )
    declines = select(Decline.user_id, Decline.declined_user_id).where(
        Decline.created_at > since,
        or_(Decline.user_id == any_(ids), Decline.declined_user_id == any_(ids)),
    )
    me, them = aliased(Participant), aliased(Participant)
    saved = (
        select(me.user_id, them.user_id)
        .join(them, and_(them.match_id == me.match_id, them.user_id != me.user_id))
        .join(Match, Match.id == me.match_id)
        .where(me.user_id == any_(ids), Match.status == "saved")
    )
    return [(a, b) for a, b in await fetch_all(db, blocks.union_all(declines, saved))]


async def create_matches(
    db: AsyncSession,
    *,
    settings: Settings,
    storage: PhotoStorage,
    pairs: list[tuple[Matchable, Matchable, float]],
    facts: dict[uuid.UUID, profiles.MatchingFacts],
) -> int:
    """Insert the pairs as pending matches; a pair a concurrent sweep took first is dropped."""
    if not pairs:
        return 0
    now = clock.now()
    auto_decline_at = now + timedelta(seconds=settings.auto_decline_seconds)
    ids = [uuid.uuid4() for _ in pairs]
    distances = [geo.display_km(km) for _, _, km in pairs]
    await execute_bulk(
        db,
        "INSERT INTO after_hours_matches (id, status, created_at, auto_decline_at, distance_km)"
        " SELECT id, 'pending', %(now)b, %(auto_decline_at)b, km"
        " FROM unnest(%(ids)b::uuid[], %(km)b::smallint[]) AS t(id, km)",
        {"now": now, "auto_decline_at": auto_decline_at, "ids": ids, "km": distances},
    )
    taken = sorted(  # one lock order across concurrent sweeps
        (
            (s.user_id, match_id, s.id)
            for match_id, (a, b, _) in zip(ids, pairs, strict=True)
            for s in (a, b)
        ),
        key=lambda row: row[0].int,
    )
    inserted = [
        match_id
        for (match_id,) in await execute_bulk(
            db,
            "INSERT INTO after_hours_match_participants (user_id, match_id, session_id, is_open)"
            " SELECT u, m, s, true"
            " FROM unnest(%(users)b::uuid[], %(matches)b::uuid[], %(sessions)b::uuid[])"
            " AS t(u, m, s)"
            " ON CONFLICT (user_id) WHERE is_open DO NOTHING RETURNING match_id",
            {
                "users": [u for u, _, _ in taken],
                "matches": [m for _, m, _ in taken],
                "sessions": [s for _, _, s in taken],
            },
        )
    ]
    complete = {match_id for match_id, count in Counter(inserted).items() if count == 2}
    lost = [match_id for match_id in ids if match_id not in complete]
    if lost:
        log.info("match_pairs_lost_to_race count=%d", len(lost))
        await db.execute(delete(Match).where(any_of(Match.id, lost, Uuid)))
    events: list[tuple[uuid.UUID, str, dict[str, Any]]] = []
    # Times in the models' own wire form (pydantic writes UTC as "Z").
    created_at, deadline = to_jsonable_python(now), to_jsonable_python(auto_decline_at)
    today = now.date()
    for match_id, km, (a, b, _) in zip(ids, distances, pairs, strict=True):
        if match_id not in complete:
            continue
        for me, other in ((a, b), (b, a)):
            them = facts[other.user_id]
            # The wire form of MatchDelivered, written out: a sweep makes thousands of these.
            payload = {
                "id": str(match_id),
                "status": "pending",
                "createdAt": created_at,
                "autoDeclineAt": deadline,
                "acceptedByMe": False,
                "acceptedByThem": False,
                "savedByMe": False,
                "savedByThem": False,
                "permanentMatchId": None,
                "profile": {
                    "userId": str(them.user_id),
                    "name": them.name,
                    "age": profiles.age_on(them.birth_date, today),
                    "photoUrl": storage.url(them.photo_key) if them.photo_key else None,
                    "description": them.description,
                    "distanceKm": km,
                },
            }
            events.append((me.user_id, MatchDelivered.name, payload))
    await realtime.emit_payloads(db, events)
    if complete:
        # One job closes every match of this sweep still pending at its deadline.
        await jobs.defer(db, "matching:auto_decline_due", at=auto_decline_at)
    log.info("matches_created count=%d", len(complete))
    return len(complete)


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
