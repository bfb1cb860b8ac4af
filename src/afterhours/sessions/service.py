"""Timed sessions: start, end, extend, expiry and its warning, location privacy checks."""

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from afterhours import bans, clock, geo, jobs, realtime
from afterhours.db import fetch_all
from afterhours.errors import AppError
from afterhours.profiles import service as profiles
from afterhours.sessions.models import Session as Session  # re-exported: callers type with it
from afterhours.sessions.schemas import SessionExpired, SessionExpiring
from afterhours.settings import Settings

log = logging.getLogger("afterhours.sessions")

WARNING_MINUTES = 2
# Faster than an airliner between two session starts is not a person travelling (docs/privacy.md).
MAX_TRAVEL_KMH = 1000.0
TRAVEL_ALLOWANCE_KM = 50.0
CLOSE_BATCH = 500

SessionHook = Callable[[AsyncSession, Session], Awaitable[None]]


@dataclass(frozen=True)
class Reactions:
    """What other features do, in the same transaction, when a session starts or closes.
    Which ones is decided in afterhours.wiring."""

    started: Sequence[SessionHook] = ()
    closed: Sequence[SessionHook] = ()


def session_minutes(settings: Settings, minutes: float) -> timedelta:
    return timedelta(seconds=minutes * settings.session_minute_seconds)


def session_already_active() -> AppError:
    return AppError("SESSION_ALREADY_ACTIVE", "A session is already active", status=409)


def no_active_session() -> AppError:
    return AppError("NO_ACTIVE_SESSION", "No active session", status=404)


def is_live(now: datetime | ColumnElement[datetime], session: Any = Session) -> ColumnElement[bool]:
    """A session (`session`: the table or an alias of it) is on until it is ended or its
    `expires_at` passes, whether or not its expiry job has run."""
    return and_(session.ended_at.is_(None), session.expires_at > now)


async def active_session(
    db: AsyncSession, *, user_id: uuid.UUID, for_update: bool = False
) -> Session | None:
    stmt = select(Session).where(Session.user_id == user_id, is_live(clock.now()))
    if for_update:
        stmt = stmt.with_for_update()
    return (await db.scalars(stmt)).one_or_none()


async def check_may_start(
    db: AsyncSession, *, user_id: uuid.UUID, fingerprint_hash: str | None
) -> None:
    await bans.check_not_banned(db, user_id=user_id, fingerprint_hash=fingerprint_hash)
    if not await profiles.has_after_hours_profile(db, user_id=user_id):
        raise AppError("PROFILE_REQUIRED", "Create your After Hours profile first")


async def check_travel(db: AsyncSession, *, session: Session, to: geo.Point, now: datetime) -> None:
    """The user's `session` (just started) is not too far from their previous one."""
    last = (
        await db.execute(
            select(Session.exact_lat, Session.exact_lon, Session.started_at)
            .where(Session.user_id == session.user_id, Session.id != session.id)
            .order_by(Session.started_at.desc())
            .limit(1)
        )
    ).one_or_none()
    if last is None:
        return
    distance = geo.haversine_km(geo.Point(last.exact_lat, last.exact_lon), to)
    hours = max((now - last.started_at).total_seconds(), 1.0) / 3600
    if distance > TRAVEL_ALLOWANCE_KM + MAX_TRAVEL_KMH * hours:
        log.info("location_rejected user_id=%s", session.user_id)
        raise AppError("LOCATION_REJECTED", "Location is not plausible given your previous session")


async def start_session(
    db: AsyncSession,
    *,
    settings: Settings,
    location_secret: bytes,
    user_id: uuid.UUID,
    duration_minutes: int,
    latitude: float,
    longitude: float,
    fingerprint_hash: str | None,
    reactions: Reactions,
) -> Session:
    now = clock.now()
    await check_may_start(db, user_id=user_id, fingerprint_hash=fingerprint_hash)
    exact = geo.Point(latitude, longitude)
    fuzzed = geo.fuzz(exact, user_id=user_id, secret=location_secret)
    new_session = (
        insert(Session)
        .values(
            user_id=user_id,
            started_at=now,
            expires_at=now + session_minutes(settings, duration_minutes),
            duration_minutes=duration_minutes,
            exact_lat=exact.lat,
            exact_lon=exact.lon,
            fuzzed_lat=fuzzed.lat,
            fuzzed_lon=fuzzed.lon,
        )
        # "One open session per user" is the schema's: a session still open blocks the insert.
        .on_conflict_do_nothing(
            index_elements=[Session.user_id], index_where=Session.ended_at.is_(None)
        )
        .returning(Session)
    )
    session = (await db.scalars(new_session)).one_or_none()
    # Blocked by a session whose time is up but that nobody has closed yet: close it, try again.
    if session is None and await close_expired(db, Session.user_id == user_id, reactions=reactions):
        session = (await db.scalars(new_session)).one_or_none()
    if session is None:  # a live session, or a concurrent start that won the race
        raise session_already_active()
    await check_travel(db, session=session, to=exact, now=now)
    await schedule_expiry(db, settings=settings, session=session)
    for react in reactions.started:
        await react(db, session)
    log.info("session_started session_id=%s user_id=%s", session.id, user_id)
    return session


async def schedule_expiry(db: AsyncSession, *, settings: Settings, session: Session) -> None:
    """Make sure a job waits for the session's expiry and one for its warning.

    Each has a per-session queueing lock, so a session never has more than one of each waiting
    however often it is extended: a job that finds the session extended defers itself again."""
    expires_at = session.expires_at
    await jobs.defer(
        db,
        "sessions:expire",
        at=expires_at,
        queueing_lock=f"sessions:expire:{session.id}",
        session_id=str(session.id),
    )
    warn_at = expires_at - session_minutes(settings, WARNING_MINUTES)
    if warn_at > clock.now():
        await jobs.defer(
            db,
            "sessions:warn",
            at=warn_at,
            queueing_lock=f"sessions:warn:{session.id}",
            session_id=str(session.id),
        )


async def expire(
    db: AsyncSession, *, settings: Settings, session_id: uuid.UUID, reactions: Reactions
) -> None:
    """The expiry job: close the session if its time is up, else follow its new expiry."""
    if await close_expired(db, Session.id == session_id, reactions=reactions):
        return
    session = await db.get(Session, session_id)
    if session is not None and session.ended_at is None:
        await schedule_expiry(db, settings=settings, session=session)


async def end_session(db: AsyncSession, *, user_id: uuid.UUID, reactions: Reactions) -> Session:
    closed = await close_sessions(
        db,
        and_(Session.user_id == user_id, Session.expires_at > clock.now()),
        reason="ended",
        ended_at=clock.now(),
        reactions=reactions,
    )
    if not closed:
        await close_expired(db, Session.user_id == user_id, reactions=reactions)
        raise no_active_session()
    return closed[0]


async def extend_session(
    db: AsyncSession, *, settings: Settings, user_id: uuid.UUID, additional_minutes: int
) -> Session:
    session = await active_session(db, user_id=user_id, for_update=True)
    if session is None:
        raise no_active_session()
    extended = session.expires_at + session_minutes(settings, additional_minutes)
    if extended - session.started_at > session_minutes(settings, settings.max_session_minutes):
        raise AppError(
            "SESSION_LIMIT_REACHED",
            f"A session lasts at most {settings.max_session_minutes} minutes",
            status=409,
        )
    session.expires_at = extended
    await db.flush()
    await schedule_expiry(db, settings=settings, session=session)
    log.info("session_extended session_id=%s minutes=%d", session.id, additional_minutes)
    return session


async def close_sessions(
    db: AsyncSession,
    where: ColumnElement[bool],
    *,
    reason: str,
    ended_at: datetime | ColumnElement[datetime] | QueryableAttribute[datetime],
    reactions: Reactions,
) -> list[Session]:
    """Close the open sessions matching `where` (at most one batch); reactions run for each."""
    ids = (
        select(Session.id)
        .where(Session.ended_at.is_(None), where)
        .order_by(Session.expires_at)  # the longest overdue first
        .limit(CLOSE_BATCH)
    )
    closed = list(
        await db.scalars(
            update(Session)
            .where(Session.id.in_(ids.scalar_subquery()), Session.ended_at.is_(None))
            .values(ended_at=ended_at, end_reason=reason)
            .returning(Session),
            execution_options={"populate_existing": True},
        )
    )
    for session in closed:
        for react in reactions.closed:
            await react(db, session)
        if reason == "timeout":
            await realtime.emit(db, session.user_id, SessionExpired(session_id=session.id))
        log.info("session_closed session_id=%s reason=%s", session.id, reason)
    return closed


async def close_expired(
    db: AsyncSession, where: ColumnElement[bool] | None = None, *, reactions: Reactions
) -> int:
    """Close sessions whose time is up, at most CLOSE_BATCH (idempotent: already-closed ones are
    left alone). The one way a session closes for expiry: its job, the minute sweep, the
    nightly run and a start or end that finds one lapsed all call this."""
    condition = Session.expires_at <= clock.now()
    if where is not None:
        condition = and_(condition, where)
    closed = await close_sessions(
        db, condition, reason="timeout", ended_at=Session.expires_at, reactions=reactions
    )
    return len(closed)


async def warn_expiring(db: AsyncSession, *, settings: Settings, session_id: uuid.UUID) -> bool:
    """The warning job: send the 2-minute warning if it is still timely; returns whether sent."""
    session = await db.get(Session, session_id)
    if session is None or session.ended_at is not None:
        return False
    now = clock.now()
    warn_at = session.expires_at - session_minutes(settings, WARNING_MINUTES)
    if now < warn_at - timedelta(seconds=1):  # extended since: the warning moves with it
        await schedule_expiry(db, settings=settings, session=session)
        return False
    # A worker catching up after downtime skips a warning once less than a minute would be left.
    if now > warn_at + session_minutes(settings, 1):
        return False
    await realtime.emit(
        db, session.user_id, SessionExpiring(session_id=session.id, expires_at=session.expires_at)
    )
    return True


async def end_for_user(
    db: AsyncSession, *, user_id: uuid.UUID, reason: str, reactions: Reactions
) -> None:
    """Close the user's open session, if any, for `reason` (profile deleted, banned)."""
    await close_sessions(
        db, Session.user_id == user_id, reason=reason, ended_at=clock.now(), reactions=reactions
    )


class Matchable(NamedTuple):
    id: uuid.UUID
    user_id: uuid.UUID
    fuzzed_lat: float
    fuzzed_lon: float
    started_at: datetime


def _matchable(settings: Settings) -> ColumnElement[bool]:
    """Open, with more than the 2-minute cut-off left."""
    cutoff = clock.now() + session_minutes(settings, WARNING_MINUTES)
    return and_(Session.ended_at.is_(None), Session.expires_at > cutoff)


def live_count(now: datetime | ColumnElement[datetime]) -> Select[int]:
    """How many sessions are on at `now` (the operator's gauge)."""
    return select(func.count()).select_from(Session).where(is_live(now))


async def matchable_sessions(
    db: AsyncSession, *, settings: Settings, within: list[geo.Box] | None = None
) -> list[Matchable]:
    """Open sessions with more than the 2-minute cut-off left, optionally in some boxes."""
    stmt = select(
        Session.id, Session.user_id, Session.fuzzed_lat, Session.fuzzed_lon, Session.started_at
    ).where(_matchable(settings))
    if within is not None:
        stmt = stmt.where(
            or_(
                *(
                    and_(
                        Session.fuzzed_lat >= box.south,
                        Session.fuzzed_lat < box.north,
                        Session.fuzzed_lon >= box.west,
                        Session.fuzzed_lon < box.east,
                    )
                    for box in within
                )
            )
        )
    return [Matchable(*row) for row in await fetch_all(db, stmt)]


async def matchable_by_cell(
    db: AsyncSession, *, settings: Settings, degrees: int
) -> list[tuple[int, int, int]]:
    """(row, column, sessions) of the matchable sessions on a grid of `degrees`-wide cells,
    counted by the database: what matching plans its shards on."""
    row = func.floor(Session.fuzzed_lat / degrees)
    column = func.floor(Session.fuzzed_lon / degrees)
    stmt = select(row, column, func.count()).where(_matchable(settings)).group_by(row, column)
    return [(int(r), int(c), int(n)) for r, c, n in await fetch_all(db, stmt)]
