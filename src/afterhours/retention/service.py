"""Retention: what is deleted, and when. Every step deletes (or closes) one batch and returns
how many rows it touched; `tasks.run_steps` repeats a step until a batch comes back short.

This is deliberately the one module that deletes across features' tables: one schedule, one
batching rule and one log line per kind of row are easier to audit than deletions spread
through every feature. It only ever deletes what its rules name; features keep their own logic
(closing sessions goes through sessions.service, so matches close and phones hear of it).
Times come from `clock.now()`, so a test can run a night 31 days ahead with a FrozenClock.
"""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, delete, exists, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from afterhours import clock, limits
from afterhours.chat.models import Message, MessageRejection
from afterhours.matching.models import Decline, Match, Participant
from afterhours.moderation.service import held_by_open_report
from afterhours.profiles import tasks as photo_tasks
from afterhours.profiles.models import AfterHoursProfile, Preferences, Profile
from afterhours.realtime import UserEvent
from afterhours.sessions import service as sessions
from afterhours.users import DeviceFingerprint

BATCH = 5_000
# Chats of unsaved matches are kept 30 days after they close, for moderation of late reports.
CHAT_RETENTION = timedelta(days=30)
# Declines only keep a pair apart for 7 days (matching.DECLINE_WINDOW); older ones do nothing.
DECLINE_RETENTION = timedelta(days=7)
# Missed events are replayable for 7 days; a phone away longer reloads its state over REST.
EVENT_RETENTION = timedelta(days=7)
# A device not seen for 90 days is gone (a ban of it is kept in afterhours.bans).
FINGERPRINT_RETENTION = timedelta(days=90)
REJECTION_RETENTION = timedelta(days=90)
# Preferences can be set before the base profile; untouched for 30 days without one, they are
# abandoned.
ORPHAN_PREFERENCES_GRACE = timedelta(days=30)


@dataclass(frozen=True)
class Step:
    name: str  # logged as retention_<name> count=...
    run: Callable[[AsyncSession, int], Awaitable[int]]
    batch: int = BATCH


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


# --- 03:00: chats of unsaved matches closed more than 30 days ago --------------------------


def expired_chats() -> Select[uuid.UUID]:
    """Unsaved matches closed more than 30 days ago that no open report holds."""
    return select(Match.id).where(
        Match.status != "saved",
        Match.closed_at < clock.now() - CHAT_RETENTION,
        ~held_by_open_report(Match.id),
    )


async def delete_expired_messages(db: AsyncSession, limit: int) -> int:
    # Messages first, in bounded batches; a match with many messages would otherwise take them
    # all in one cascading statement.
    batch = select(Message.id).where(Message.match_id.in_(expired_chats())).limit(limit)
    return _count(await db.execute(delete(Message).where(Message.id.in_(batch))))


async def delete_expired_matches(db: AsyncSession, limit: int) -> int:
    batch = expired_chats().limit(limit)
    return _count(await db.execute(delete(Match).where(Match.id.in_(batch))))


def chat_steps() -> list[Step]:
    return [
        Step("messages_deleted", delete_expired_messages),
        Step("matches_deleted", delete_expired_matches),
    ]


# --- 04:00: sessions, declines, events, orphans ---------------------------------------------


def close_stale_sessions(
    reactions: sessions.Reactions,
) -> Callable[[AsyncSession, int], Awaitable[int]]:
    """Sessions past their time that no expiry job closed (a lost job, a restored backup)."""

    async def run(db: AsyncSession, limit: int) -> int:
        return await sessions.close_expired(db, reactions=reactions)

    return run


async def _delete_batch(
    db: AsyncSession, table: Any, key: tuple[Any, ...], *where: Any, limit: int
) -> int:
    """Delete up to `limit` rows of `table` matching `where`, picked by their primary `key`."""
    batch = select(*key).where(*where).limit(limit)
    return _count(await db.execute(delete(table).where(tuple_(*key).in_(batch))))


async def delete_old_declines(db: AsyncSession, limit: int) -> int:
    return await _delete_batch(
        db,
        Decline,
        (Decline.user_id, Decline.declined_user_id),
        Decline.created_at < clock.now() - DECLINE_RETENTION,
        limit=limit,
    )


async def delete_old_events(db: AsyncSession, limit: int) -> int:
    return await _delete_batch(
        db,
        UserEvent,
        (UserEvent.user_id, UserEvent.seq),
        UserEvent.created_at < clock.now() - EVENT_RETENTION,
        limit=limit,
    )


async def delete_stale_fingerprints(db: AsyncSession, limit: int) -> int:
    return await _delete_batch(
        db,
        DeviceFingerprint,
        (DeviceFingerprint.user_id, DeviceFingerprint.fingerprint_hash),
        DeviceFingerprint.last_seen_at < clock.now() - FINGERPRINT_RETENTION,
        limit=limit,
    )


async def delete_orphan_profiles(db: AsyncSession, limit: int) -> int:
    """After Hours profiles whose base profile is gone (the host app deleted it): useless, as
    nobody can start a session or be matched without one. Their photos go by a job."""
    batch = (
        select(AfterHoursProfile.user_id)
        .where(~exists().where(Profile.user_id == AfterHoursProfile.user_id))
        .limit(limit)
    )
    keys = list(
        await db.scalars(
            delete(AfterHoursProfile)
            .where(AfterHoursProfile.user_id.in_(batch))
            .returning(AfterHoursProfile.photo_key)
        )
    )
    await photo_tasks.delete_later(db, [key for key in keys if key])
    return len(keys)


async def delete_orphan_preferences(db: AsyncSession, limit: int) -> int:
    batch = (
        select(Preferences.user_id)
        .where(
            ~exists().where(Profile.user_id == Preferences.user_id),
            Preferences.updated_at < clock.now() - ORPHAN_PREFERENCES_GRACE,
        )
        .limit(limit)
    )
    return _count(await db.execute(delete(Preferences).where(Preferences.user_id.in_(batch))))


async def delete_old_rejections(db: AsyncSession, limit: int) -> int:
    """Screened-out messages count for moderators for 90 days (their content was never kept)."""
    return await _delete_batch(
        db,
        MessageRejection,
        (MessageRejection.id,),
        MessageRejection.created_at < clock.now() - REJECTION_RETENTION,
        limit=limit,
    )


async def delete_orphan_matches(db: AsyncSession, limit: int) -> int:
    """Matches left with fewer than two participants (one deleted their account while a report
    held the match) once no open report holds them any more; saved ones would live forever."""
    participants = (
        select(func.count())
        .where(Participant.match_id == Match.id)
        .correlate(Match)
        .scalar_subquery()
    )
    batch = (
        select(Match.id)
        .where(participants < 2, Match.closed_at.is_not(None), ~held_by_open_report(Match.id))
        .limit(limit)
    )
    return _count(await db.execute(delete(Match).where(Match.id.in_(batch))))


def nightly_steps(reactions: sessions.Reactions) -> list[Step]:
    return [
        Step("sessions_closed", close_stale_sessions(reactions), batch=sessions.CLOSE_BATCH),
        Step("declines_deleted", delete_old_declines),
        Step("events_deleted", delete_old_events),
        Step("fingerprints_deleted", delete_stale_fingerprints),
        Step("orphan_profiles_deleted", delete_orphan_profiles),
        Step("orphan_preferences_deleted", delete_orphan_preferences),
        Step("orphan_matches_deleted", delete_orphan_matches),
        Step("rejections_deleted", delete_old_rejections),
        Step("rate_windows_deleted", limits.delete_ended_windows),
    ]
