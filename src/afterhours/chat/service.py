"""Chat of a match: messages and typing.

Message content is personal: it is stored, sent to the two participants, and never logged.
"""

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from afterhours import clock, metrics, realtime
from afterhours.chat.models import Message, MessageRejection
from afterhours.chat.schemas import MessageOut as MessageOut  # re-exported: callers type with it
from afterhours.chat.schemas import MessageSent
from afterhours.chat.screening import Screen
from afterhours.db import execute_bulk
from afterhours.errors import AppError, not_found, validation_error
from afterhours.limits import Limiter, rate_limited
from afterhours.matching import service as matching
from afterhours.safety import service as safety

log = logging.getLogger("afterhours.chat")

WRITABLE = ("active", "saved")
READABLE = ("pending", "active", "saved")
PAGE_SIZE = 50
MAX_PAGE_SIZE = 100


def message_rejected() -> AppError:
    return AppError("MESSAGE_REJECTED", "This message was refused by moderation")


def message_out(message: Message) -> MessageOut:
    return MessageOut(
        id=message.id,
        match_id=message.match_id,
        sender_id=message.sender_id,
        content=message.content,
        created_at=message.created_at,
        client_message_id=message.client_message_id,
    )


def closed_error(status: str, blocked: bool) -> AppError | None:
    """Why a chat in this state (its match's status as of now) takes no message, if it does
    not. It is open while the match is active and both sessions last, and for good once saved,
    unless either side has since blocked the other (a block closes an active match, but a saved
    one is not open)."""
    if status == "pending":
        return matching.match_not_open("The chat opens once both have accepted")
    if status not in WRITABLE or blocked:
        return matching.match_not_open()
    return None


@dataclass(frozen=True, slots=True)
class Send:
    """A message to store, as `after_hours:send_message` and the REST route carry it."""

    match_id: uuid.UUID
    sender_id: uuid.UUID
    content: str
    client_message_id: str | None = None
    refused_by: str | None = None  # the screen's rule, if it refused the content


async def screened(send: Send, screen: Screen) -> Send:
    """`send` with the screen's verdict, found before it joins a transaction."""
    rule = await screen(send.content)
    return send if rule is None else replace(send, refused_by=rule[:64])


# --- messages ------------------------------------------------------------------------------


async def send_message(db: AsyncSession, send: Send, *, limiter: Limiter) -> MessageOut | AppError:
    """Store one (screened) message and send it to both participants (REST; socket sends are
    batched by chat.writer, through the same store_messages). A refusal is returned, not
    raised: what it wrote (its count, a screened message's record) must commit."""
    (result,) = await store_messages(db, [send], limiter=limiter)
    return result


async def store_messages(
    db: AsyncSession, sends: Sequence[Send], *, limiter: Limiter
) -> list[MessageOut | AppError]:
    """Store (screened) messages and send each to both participants (every device of each).

    However many, in a fixed handful of statements: lock and check their matches, count them
    against their senders' rate limit, record the refused, insert, then the events
    (realtime.emit_payloads). Each send succeeds or fails on its own: a failure is returned in
    its place and writes nothing but its count. A resend (same sender, match and
    clientMessageId) returns the stored message and sends nothing.
    """
    chats = await matching.lock_for_chat(db, [(s.match_id, s.sender_id) for s in sends])
    results: list[MessageOut | AppError | None] = [None] * len(sends)
    fresh: list[tuple[int, MessageOut, uuid.UUID]] = []
    maybe_resent: list[int] = []
    # Stamped under the match locks, a microsecond apart: (created_at, id) order is the order
    # of the batch, of the commits and of each participant's event seqs.
    now = clock.now()
    writable: list[tuple[int, uuid.UUID]] = []  # (index, the other participant)
    for i in range(len(sends)):
        chat = chats.get(i)
        if chat is None:
            results[i] = not_found("Match")
            continue
        status, other, blocked = chat
        error = closed_error(status, blocked)
        if error is not None:
            # A resend of something stored before the chat closed still gets its message back.
            results[i] = error
            maybe_resent.append(i)
            continue
        writable.append((i, other))
    limit = limiter.limits.messages
    waits = await limiter.take(db, [(limit, str(sends[i].sender_id)) for i, _ in writable])
    refused: list[Send] = []
    counted: set[int] = set()
    for (i, other), retry_after in zip(writable, waits, strict=True):
        send = sends[i]
        if retry_after is None:
            counted.add(i)
        else:
            log.info("message_rate_limited user_id=%s", send.sender_id)
            results[i] = rate_limited("messages", retry_after)
            continue
        if send.refused_by is not None:
            results[i] = message_rejected()
            refused.append(send)
            continue
        created_at = now + timedelta(microseconds=len(fresh))
        message = MessageOut(
            id=uuid.uuid4(),
            match_id=send.match_id,
            sender_id=send.sender_id,
            content=send.content,
            created_at=created_at,
            client_message_id=send.client_message_id,
        )
        fresh.append((i, message, other))
    await _record_refused(db, refused, now)
    inserted = await _insert(db, [message for _, message, _ in fresh])
    events: list[tuple[uuid.UUID, str, dict[str, Any]]] = []
    for i, message, other in fresh:
        if message.id not in inserted:
            maybe_resent.append(i)  # its clientMessageId is taken, by a message stored before
            continue
        results[i] = message
        payload = message.model_dump(mode="json", by_alias=True)
        events += [(to, MessageSent.name, payload) for to in (message.sender_id, other)]
    await realtime.emit_payloads(db, events)
    resent = await _answer_resends(db, sends, maybe_resent, results)
    # A resend is no new message: it gives back what it took of the sender's allowance.
    await limiter.give_back(db, [(limit, str(sends[i].sender_id)) for i in resent if i in counted])
    metrics.count_on_commit(db, metrics.MESSAGES_STORED, len(events) // 2)
    if events:
        log.info("messages_sent count=%d", len(events) // 2)
    done = [r for r in results if r is not None]
    assert len(done) == len(sends)  # a clientMessageId conflict has its stored twin, found above
    return done


async def _record_refused(db: AsyncSession, refused: list[Send], at: datetime) -> None:
    if not refused:
        return
    metrics.count_on_commit(db, metrics.MESSAGES_REJECTED, len(refused))
    await db.execute(
        insert(MessageRejection),
        [
            {
                "sender_id": s.sender_id,
                "match_id": s.match_id,
                "rule": s.refused_by,
                "created_at": at,
            }
            for s in refused
        ],
    )
    for send in refused:
        log.info(
            "message_rejected user_id=%s match_id=%s rule=%s",
            send.sender_id,
            send.match_id,
            send.refused_by,
        )


async def rejected_count(db: AsyncSession, *, user_id: uuid.UUID) -> int:
    """How many of the user's messages the screen refused (for moderators)."""
    return int(
        await db.scalar(select(func.count()).where(MessageRejection.sender_id == user_id)) or 0
    )


async def _insert(db: AsyncSession, messages: list[MessageOut]) -> set[uuid.UUID]:
    """Insert each message that has no stored twin (same match, sender and clientMessageId);
    the ids inserted."""
    if not messages:
        return set()
    rows = await execute_bulk(
        db,
        "INSERT INTO after_hours_messages"
        " (id, match_id, sender_id, content, client_message_id, created_at)"
        " SELECT * FROM unnest(%(ids)b::uuid[], %(matches)b::uuid[], %(senders)b::uuid[],"
        "   %(contents)b::text[], %(clients)b::text[], %(ats)b::timestamptz[])"
        " ON CONFLICT (match_id, sender_id, client_message_id) DO NOTHING RETURNING id",
        {
            "ids": [m.id for m in messages],
            "matches": [m.match_id for m in messages],
            "senders": [m.sender_id for m in messages],
            "contents": [m.content for m in messages],
            "clients": [m.client_message_id for m in messages],
            "ats": [m.created_at for m in messages],
        },
    )
    return {message_id for (message_id,) in rows}


async def _answer_resends(
    db: AsyncSession,
    sends: Sequence[Send],
    candidates: list[int],
    results: list[MessageOut | AppError | None],
) -> list[int]:
    """Answer each candidate that is a resend with its stored message; returns which were."""
    keys = {
        i: (sends[i].match_id, sends[i].sender_id, sends[i].client_message_id)
        for i in candidates
        if sends[i].client_message_id is not None
    }
    if not keys:
        return []
    columns = tuple_(Message.match_id, Message.sender_id, Message.client_message_id)
    rows = await db.scalars(select(Message).where(columns.in_(list(keys.values()))))
    stored = {(m.match_id, m.sender_id, m.client_message_id): m for m in rows}
    resent = [i for i, key in keys.items() if key in stored]
    for i in resent:
        results[i] = message_out(stored[keys[i]])
    return resent


async def list_messages(
    db: AsyncSession,
    *,
    match_id: uuid.UUID,
    user_id: uuid.UUID,
    before: uuid.UUID | None = None,
    limit: int = PAGE_SIZE,
) -> list[MessageOut]:
    """The `limit` messages just older than `before` (or the latest), oldest first."""
    if (await matching.sides(db, match_id, user_id)).status not in READABLE:
        raise matching.match_not_open()
    stmt = select(Message).where(Message.match_id == match_id)
    if before is not None:
        cursor = (
            await db.execute(
                select(Message.created_at, Message.id).where(
                    Message.id == before, Message.match_id == match_id
                )
            )
        ).one_or_none()
        if cursor is None:
            raise validation_error("before", "No such message in this match")
        stmt = stmt.where(
            tuple_(Message.created_at, Message.id) < tuple_(cursor.created_at, cursor.id)
        )
    page = list(
        await db.scalars(stmt.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit))
    )
    return [message_out(m) for m in reversed(page)]


async def transcript(db: AsyncSession, *, match_id: uuid.UUID, limit: int) -> list[MessageOut]:
    """A match's first `limit` messages, oldest first, whatever its state (moderators)."""
    rows = await db.scalars(
        select(Message)
        .where(Message.match_id == match_id)
        .order_by(Message.created_at, Message.id)
        .limit(limit)
    )
    return [message_out(m) for m in rows]


async def message_match_id(db: AsyncSession, *, message_id: uuid.UUID) -> uuid.UUID | None:
    """The match a message belongs to (reports name a message)."""
    return await db.scalar(select(Message.match_id).where(Message.id == message_id))


# --- typing --------------------------------------------------------------------------------


async def typing_recipient(
    db: AsyncSession, *, match_id: uuid.UUID, user_id: uuid.UUID
) -> uuid.UUID:
    """Who hears that `user_id` is typing in `match_id`; errors as for sending a message."""
    _, _, theirs, status = await matching.sides(db, match_id, user_id)
    blocked = status == "saved" and await safety.is_blocked_between(db, user_id, theirs.user_id)
    error = closed_error(status, blocked)
    if error is not None:
        raise error
    return theirs.user_id
