"""Device tokens, and which events wake a phone: the rules of push, apart from the HTTP call.

An event worth a push (PUSHED) for a user with no live socket on any serving process puts a
pending push in that user's row, inside the event's own transaction; the first event of a burst
also defers the job that sends it, `push_collapse_seconds` later, so everything that arrives
meanwhile goes out as that one push. A push carries the kind of event, ids, `seq` and a short
generic text: never a message, a name or a place.
"""

import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from afterhours import clock, jobs, presence, realtime
from afterhours.db import execute_bulk
from afterhours.push.models import DeviceToken, PendingPush
from afterhours.settings import Settings

# A user's newest devices; registering one more forgets the oldest.
MAX_DEVICES = 10

# Event → (title, body) of its push. Only these events wake a phone.
TEXTS = {
    "after_hours:match": ("New match", "Someone nearby matched with you."),
    "after_hours:chat_open": ("Chat open", "You both said yes. Say hello."),
    "after_hours:message": ("New message", "You have a new message."),
    "after_hours:match_closed": ("Match ended", "Your match has ended. We'll keep looking."),
    "after_hours:session_expiring": ("Two minutes left", "Your After Hours session ends soon."),
}
MANY_MESSAGES = "You have new messages."


async def register_device(
    db: AsyncSession, *, user_id: uuid.UUID, platform: str, token: str
) -> None:
    """Idempotent; a token registered by another user moves to this one."""
    await db.execute(
        insert(DeviceToken)
        .values(token=token, user_id=user_id, platform=platform)
        .on_conflict_do_update(
            index_elements=[DeviceToken.token],
            set_={"user_id": user_id, "platform": platform, "updated_at": func.now()},
        )
    )
    newest = (
        select(DeviceToken.token)
        .where(DeviceToken.user_id == user_id)
        .order_by(DeviceToken.updated_at.desc(), DeviceToken.token)
        .limit(MAX_DEVICES)
    )
    await db.execute(
        delete(DeviceToken).where(
            DeviceToken.user_id == user_id, DeviceToken.token.not_in(newest.scalar_subquery())
        )
    )


async def remove_device(db: AsyncSession, *, user_id: uuid.UUID, token: str) -> None:
    """Idempotent; another user's token is left alone."""
    await db.execute(
        delete(DeviceToken).where(DeviceToken.token == token, DeviceToken.user_id == user_id)
    )


async def devices_of(db: AsyncSession, user_id: uuid.UUID) -> list[dict[str, str]]:
    rows = await db.execute(
        select(DeviceToken.platform, DeviceToken.token)
        .where(DeviceToken.user_id == user_id)
        .order_by(DeviceToken.updated_at.desc())
    )
    return [{"platform": platform, "token": token} for platform, token in rows]


async def forget_tokens(db: AsyncSession, tokens: list[str]) -> int:
    """Tokens the gateway reports dead (the app was uninstalled)."""
    if not tokens:
        return 0
    result = await db.execute(delete(DeviceToken).where(DeviceToken.token.in_(tokens)))
    return int(getattr(result, "rowcount", 0))


async def queue_for_away(db: AsyncSession, staged: realtime.Staged, *, settings: Settings) -> None:
    """The reaction to a transaction's events (wired as a realtime.EventReaction): a pending
    push for each recipient away from every socket, and a send job for each new one."""
    pushed = [(user_id, name, data["seq"]) for user_id, name, data in staged if name in TEXTS]
    if not pushed:
        return
    here = await presence.online(
        db, [user_id for user_id, _, _ in pushed], settings.presence_heartbeat_seconds
    )
    counts = Counter(user_id for user_id, _, _ in pushed if user_id not in here)
    if not counts:
        return
    latest = {user_id: (name, seq) for user_id, name, seq in pushed if user_id in counts}
    users = list(latest)
    # Joined with users: an account deleted in this same transaction gets no push row.
    rows = await execute_bulk(
        db,
        "INSERT INTO pending_pushes AS p (user_id, event, seq, events)"
        " SELECT t.u, t.e, t.s, t.n FROM unnest(%(users)b::uuid[], %(events)b::text[],"
        " %(seqs)b::bigint[], %(counts)b::int[]) AS t(u, e, s, n) JOIN users ON users.id = t.u"
        " ON CONFLICT (user_id) DO UPDATE SET event = EXCLUDED.event, seq = EXCLUDED.seq,"
        " events = p.events + EXCLUDED.events"
        " RETURNING p.user_id, p.events",
        {
            "users": users,
            "events": [latest[user][0] for user in users],
            "seqs": [latest[user][1] for user in users],
            "counts": [counts[user] for user in users],
        },
    )
    # A row holding just this transaction's events is new: nothing is on its way for it yet.
    new = [user_id for user_id, events in rows if events == counts[user_id]]
    at = clock.now() + timedelta(seconds=settings.push_collapse_seconds)
    await jobs.defer_many(db, "push:send", [{"user_id": str(user_id)} for user_id in new], at=at)


async def take_pending(db: AsyncSession, user_id: uuid.UUID) -> dict[str, Any] | None:
    """The user's pending push, gone from the table (the next event starts a new one)."""
    row = (
        await db.execute(
            delete(PendingPush)
            .where(PendingPush.user_id == user_id)
            .returning(PendingPush.event, PendingPush.seq, PendingPush.events)
        )
    ).one_or_none()
    if row is None:
        return None
    return {"event": row.event, "seq": row.seq, "events": row.events}


def push_body(user_id: uuid.UUID, pending: dict[str, Any], devices: list[dict[str, str]]) -> Any:
    """What the gateway is sent: the contract's fields, nothing else."""
    title, body = TEXTS[pending["event"]]
    if pending["event"] == "after_hours:message" and pending["events"] > 1:
        body = MANY_MESSAGES
    return {
        "userId": str(user_id),
        "event": pending["event"],
        "seq": pending["seq"],
        "tokens": devices,
        "title": title,
        "body": body,
    }
