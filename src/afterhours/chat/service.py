"""Chat of a match: messages and typing.

Message content is personal: it is stored, sent to the two participants, and never logged.
"""

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from pydantic_core import to_jsonable_python
from sqlalchemy import func, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from afterhours import clock, metrics, realtime
from afterhours.chat.models import Message, MessageRejection
from afterhours.chat.schemas import MessageOut as MessageOut  # re-exported: callers type with it
from afterhours.chat.schemas import MessageSent, MessageWire
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


class Send(NamedTuple):
    """A message to store, as `after_hours:send_message` and the REST route carry it (a tuple:
    made for every message, and a frozen dataclass is several times slower to make)."""

    match_id: uuid.UUID
    sender_id: uuid.UUID
    content: str
    client_message_id: str | None = None
    refused_by: str | None = None  # the screen's rule, if it refused the content


async def screened(send: Send, screen: Screen) -> Send:
    """`send` with the screen's verdict, found before it joins a transaction."""
    rule = await screen(send.content)
    return send if rule is None else send._replace(refused_by=rule[:64])


# --- messages ------------------------------------------------------------------------------


async def send_message(db: AsyncSession, send: Send, *, limiter: Limiter) -> MessageOut | AppError:
    """Store one (screened) message and send it to both participants (REST; socket sends are
    batched by chat.writer, through the same store_messages). A refusal is returned, not
    raised: what it wrote (its count, a screened message's record) must commit."""
    (result,) = await store_messages(db, [send], limiter=limiter)
    return result if isinstance(result, AppError) else MessageOut.model_validate(result)


async def store_messages(
    db: AsyncSession, sends: Sequence[Send], *, limiter: Limiter
) -> list[MessageWire | AppError]:
    """Store (screened) messages and send each to both participants (every device of each).

    However many, in a fixed handful of statements: lock and check their matches, count them
    against their senders' rate limit, record the refused, insert, then the events
    (realtime.emit_payloads). Each send succeeds or fails on its own: a failure is returned in
    its place and writes nothing but its count. A resend (same sender, match and
    clientMessageId) returns the stored message and sends nothing.

    Every message of a socket send passes here, so its work per message is kept to plain
    values: the message is built once, in wire form, and that form is its ack, its events and
    (its ids and time as text, cast by PostgreSQL) its row.
    """
    chats = await matching.lock_for_chat(db, [(s.match_id, s.sender_id) for s in sends])
    results: list[MessageWire | AppError | None] = [None] * len(sends)
    maybe_resent: list[int] = []
    writable: list[tuple[int, uuid.UUID, str]] = []  # (index, the other participant, sender)
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
        writable.append((i, other, str(send.sender_id)))
    limit = limiter.limits.messages
    waits = await limiter.take(db, [(limit, sender) for _, _, sender in writable])
    # Stamped under the match locks, a microsecond apart: (created_at, id) order is the order
    # of the batch, of the commits and of each participant's event seqs.
    now = clock.now()
    refused: list[Send] = []
    counted: dict[int, str] = {}  # index → sender, of the sends counted against the limit
    fresh: list[tuple[int, MessageWire, uuid.UUID]] = []
    for (i, other, sender), retry_after in zip(writable, waits, strict=True):
        send = sends[i]
        if retry_after is not None:
            log.info("message_rate_limited user_id=%s", sender)
            results[i] = rate_limited("messages", retry_after)
            continue
        counted[i] = sender
        if send.refused_by is not None:
            results[i] = message_rejected()
            refused.append(send)
            continue
        message: MessageWire = {
            "id": str(uuid.uuid4()),
            "matchId": str(send.match_id),
            "senderId": sender,
            "content": send.content,
            "createdAt": to_jsonable_python(now + timedelta(microseconds=len(fresh))),
            "clientMessageId": send.client_message_id,
        }
        fresh.append((i, message, other))
    await _record_refused(db, refused, now)
    inserted = await _insert(db, [message for _, message, _ in fresh])
    events: list[tuple[uuid.UUID, str, dict[str, Any]]] = []
    for i, message, other in fresh:
        if message["id"] not in inserted:
            maybe_resent.append(i)  # its clientMessageId is taken, by a message stored before
            continue
        results[i] = message
        payload = cast(dict[str, Any], message)
        events += [
            (sends[i].sender_id, MessageSent.name, payload),
            (other, MessageSent.name, payload),
        ]
    await realtime.emit_payloads(db, events)
    resent = await _answer_resends(db, sends, maybe_resent, results)
    # A resend is no new message: it gives back what it took of the sender's allowance.
    await limiter.give_back(db, [(limit, counted[i]) for i in resent if i in counted])
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


async def _insert(db: AsyncSession, messages: list[MessageWire]) -> set[str]:
    """Insert each message that has no stored twin (same match, sender and clientMessageId);
    the ids inserted."""
    if not messages:
        return set()
    columns = {
        "ids": [m["id"] for m in messages],
        "matches": [m["matchId"] for m in messages],
        "senders": [m["senderId"] for m in messages],
        "contents": [m["content"] for m in messages],
        "clients": [m["clientMessageId"] for m in messages],
        "ats": [m["createdAt"] for m in messages],
    }
    return {message_id for (message_id,) in await execute_bulk(db, INSERT, columns)}


# Ids and times go as the wire's text (psycopg dumps a UUID or a datetime in Python, text in C).
INSERT = (
    "INSERT INTO after_hours_messages"
    " (id, match_id, sender_id, content, client_message_id, created_at)"
    " SELECT * FROM unnest(%(ids)b::text[]::uuid[], %(matches)b::text[]::uuid[],"
    "   %(senders)b::text[]::uuid[], %(contents)b::text[], %(clients)b::text[],"
    "   %(ats)b::text[]::timestamptz[])"
    " ON CONFLICT (match_id, sender_id, client_message_id) DO NOTHING RETURNING id::text"
)


async def _answer_resends(
    db: AsyncSession,
    sends: Sequence[Send],
    candidates: list[int],
    results: list[MessageWire | AppError | None],
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
        wire = message_out(stored[keys[i]]).model_dump(mode="json", by_alias=True)
        results[i] = cast(MessageWire, wire)
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
