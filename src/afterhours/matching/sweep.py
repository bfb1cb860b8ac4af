"""The matching sweep: pair every waiting user (or those around one) in one set-based pass."""

import logging
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from pydantic_core import to_jsonable_python
from sqlalchemy import ARRAY, Uuid, and_, any_, bindparam, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from afterhours import clock, geo, jobs, metrics, realtime
from afterhours.db import any_of, execute_bulk, fetch_all
from afterhours.geo import Box
from afterhours.matching import engine
from afterhours.matching.models import Decline, Match, Participant
from afterhours.matching.schemas import MatchDelivered, NoMatches
from afterhours.profiles import service as profiles
from afterhours.safety import service as safety
from afterhours.sessions import service as sessions
from afterhours.sessions.service import Matchable, Session
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


async def sweep(
    db: AsyncSession,
    *,
    settings: Settings,
    storage: PhotoStorage,
    focus_user: uuid.UUID | None = None,
    shard: Box | None = None,
) -> SweepResult:
    """Pair every waiting user in one pass: everyone, the people of one `shard` (with those
    within reach of it as partners), or those around `focus_user`, who goes first."""
    now = clock.now()
    within: list[Box] | None = None
    focus_session: Session | None = None
    if focus_user is not None:
        focus_session = await sessions.active_session(db, user_id=focus_user)
        if focus_session is None:
            return SweepResult(waiting=0, pairs=0, focus_paired=False)
        point = geo.Point(focus_session.fuzzed_lat, focus_session.fuzzed_lon)
        within = geo.around(point, MAX_DISTANCE_KM)
    elif shard is not None:
        within = shard.reach(MAX_DISTANCE_KM)
    candidates = await sessions.matchable_sessions(db, settings=settings, within=within)
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
    waiting = _waiting(candidates, facts, today)
    index = {s.user_id: i for i, s in enumerate(candidates)}
    excluded = {
        (index[a], index[b])
        for a, b in await excluded_pairs(db, list(index), since=now - DECLINE_WINDOW)
        if a in index and b in index
    }
    first = index.get(focus_user) if focus_user is not None else None
    owned = (
        None
        if shard is None
        else np.fromiter(
            (shard.contains(s.fuzzed_lat, s.fuzzed_lon) for s in candidates), bool, len(candidates)
        )
    )
    pairs = engine.pair(waiting, excluded, first=first, owned=owned)
    created = await create_matches(
        db,
        settings=settings,
        storage=storage,
        pairs=[(candidates[i], candidates[j], km) for i, j, km in pairs],
        facts=facts,
    )
    result = SweepResult(
        waiting=len(candidates) if owned is None else int(owned.sum()), pairs=created
    )
    if focus_session is not None:
        result.focus_paired = (
            any(first in (i, j) for i, j, _ in pairs) if first is not None else False
        )
        if not result.focus_paired and focus_user not in busy:
            nearby = await nearby_count(db, focus_session, in_area, facts)
            await realtime.emit(
                db,
                focus_session.user_id,
                NoMatches(session_id=focus_session.id, active_users_nearby=nearby),
            )
    log.info(
        "match_sweep shard=%s waiting=%d pairs=%d",
        shard or "-",
        result.waiting,
        result.pairs,
    )
    return result


def _waiting(
    people: list[Matchable], facts: dict[uuid.UUID, profiles.MatchingFacts], today: date
) -> engine.Waiting:
    """The engine's view of `people` (each must have facts): where they are, whom they seek."""
    return engine.Waiting.from_rows(
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
            for s in people
        ]
    )


async def nearby_count(
    db: AsyncSession,
    focus: Session,
    in_area: list[Matchable],
    facts: dict[uuid.UUID, profiles.MatchingFacts],
) -> int:
    """`activeUsersNearby`: the people matching could pair the focus user with, now or once
    their open match closes, told in coarse steps (nearby_band).

    Only people matching itself would weigh count — by the engine's own rule (gender, age and
    distance, both ways) and without blocks, recent declines or a saved match between them —
    so the number cannot reveal someone who blocked the user or would never be shown to them."""
    now = clock.now()
    mine = Matchable(focus.id, focus.user_id, focus.fuzzed_lat, focus.fuzzed_lon, focus.started_at)
    barred = {
        b if a == focus.user_id else a
        for a, b in await excluded_pairs(db, [focus.user_id], since=now - DECLINE_WINDOW)
    }
    near = [s for s in in_area if s.user_id != focus.user_id and s.user_id not in barred]
    # The sweep loads facts of the people it may pair; those in a match are weighed here too.
    missing = [s.user_id for s in [*near, mine] if s.user_id not in facts]
    if missing:
        facts = {**facts, **await profiles.matching_facts(db, user_ids=missing)}
    if focus.user_id not in facts:
        return 0
    people = [mine, *(s for s in near if s.user_id in facts)]
    return nearby_band(len(engine.suitors(_waiting(people, facts, now.date()), 0)))


def nearby_band(count: int) -> int:
    """A count as the event tells it: 0 below 5, then rounded down to 5, 10, a multiple of 10
    up to 50, a multiple of 50 beyond. Nobody learns that one person came or went nearby."""
    if count < 5:
        return 0
    if count < 10:
        return 5
    if count < 50:
        return count // 10 * 10
    return count // 50 * 50


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
    ids = bindparam("ids", user_ids, type_=ARRAY(Uuid))  # one array parameter, used 4 times
    blocked = safety.blocked_pairs()
    blocks = select(blocked.c.user_id, blocked.c.other_id).where(blocked.c.user_id == any_(ids))
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
    metrics.count_on_commit(db, metrics.MATCHES_MADE, len(complete))
    log.info("matches_created count=%d", len(complete))
    return len(complete)
