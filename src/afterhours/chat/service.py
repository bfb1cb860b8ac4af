"""Chat of a match: messages and typing.

Message content is personal: it is stored, sent to the two participants, and never logged.
"""

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from afterhours import clock, realtime
from afterhours.chat import limits
from afterhours.chat.models import Message
from afterhours.chat.schemas import MessageOut, MessageSent
from afterhours.db import after_commit, execute_bulk
from afterhours.errors import AppError, not_found, validation_error
from afterhours.matching import service as matching
from afterhours.safety import service as safety

log = logging.getLogger("afterhours.chat")

WRITABLE = ("active", "saved")
READABLE = ("pending", "active", "saved")
PAGE_SIZE = 50
MAX_PAGE_SIZE = 100


def rate_limited(retry_after: int) -> AppError:
    return AppError(
        "RATE_LIMITED",
        f"Too many messages; try again in {retry_after} s",
        status=429,
        headers={"Retry-After": str(retry_after)},
    )


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


def take_rate(sender_id: uuid.UUID) -> None:
    """Count a send against the sender's rate limit; RATE_LIMITED past it."""
    retry_after = limits.messages.take(sender_id)
    if retry_after is not None:
        log.info("message_rate_limited user_id=%s", sender_id)
        raise rate_limited(retry_after)


# --- messages ------------------------------------------------------------------------------


async def send_message(db: AsyncSession, send: Send) -> MessageOut:
    """Store one message and send it to both participants (REST; socket sends are batched by
    chat.writer, through the same store_messages)."""
    take_rate(send.sender_id)
    (result,) = await store_messages(db, [send])
    if isinstance(result, AppError):
        raise result
    return result


async def store_messages(db: AsyncSession, sends: Sequence[Send]) -> list[MessageOut | AppError]:
    """Store messages and send each to both participants (every device of each).

    However many, in a fixed handful of statements: lock and check their matches, insert, then
    the events (realtime.emit_payloads). Each send succeeds or fails on its own: a failure is
    returned in its place and writes nothing. A resend (same sender, match and clientMessageId)
    returns the stored message, sends nothing and, once this commits, is refunded to the rate
    limit.
    """
    chats = await matching.lock_for_chat(db, [(s.match_id, s.sender_id) for s in sends])
    results: list[MessageOut | AppError | None] = [None] * len(sends)
    fresh: list[tuple[int, MessageOut, uuid.UUID]] = []
    maybe_resent: list[int] = []
    # Stamped under the match locks, a microsecond apart: (created_at, id) order is the order
    # of the batch, of the commits and of each participant's event seqs.
    now = clock.now()
    for i, send in enumerate(sends):
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
    refunds = await _answer_resends(db, sends, maybe_resent, results)
    if refunds:
        after_commit(db, lambda: _refund(refunds))
    if events:
        log.info("messages_sent count=%d", len(events) // 2)
    done = [r for r in results if r is not None]
    assert len(done) == len(sends)  # a clientMessageId conflict has its stored twin, found above
    return done


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
) -> list[uuid.UUID]:
    """Answer each candidate that is a resend with its stored message; returns whom to refund."""
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
    refunds = []
    for i, key in keys.items():
        if key in stored:
            results[i] = message_out(stored[key])
            refunds.append(sends[i].sender_id)
    return refunds


async def _refund(senders: list[uuid.UUID]) -> None:
    for sender in senders:
        limits.messages.give_back(sender)


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
