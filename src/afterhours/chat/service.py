"""Chat of a match: messages, typing, saving the match, and what goes when an account does.

Message content is personal: it is stored, sent to the two participants, and never logged.
"""

import logging
import uuid
from datetime import timedelta

from sqlalchemy import and_, delete, exists, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from afterhours import clock, jobs, realtime
from afterhours.chat import limits
from afterhours.chat.models import Message, PermanentMatch
from afterhours.chat.schemas import MatchSaved, MessageOut, MessageSent
from afterhours.db import execute_bulk
from afterhours.errors import AppError, not_found, validation_error
from afterhours.matching import service as matching
from afterhours.matching.models import Match, Participant
from afterhours.matching.schemas import MatchClosed, MatchOut
from afterhours.profiles import service as profiles
from afterhours.safety.models import Block, held_by_open_report
from afterhours.settings import Settings
from afterhours.storage import PhotoStorage

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


async def blocked_between(db: AsyncSession, a: uuid.UUID, b: uuid.UUID) -> bool:
    return bool(
        await db.scalar(
            select(
                exists().where(
                    or_(
                        and_(Block.blocker_id == a, Block.blocked_id == b),
                        and_(Block.blocker_id == b, Block.blocked_id == a),
                    )
                )
            )
        )
    )


async def check_writable(db: AsyncSession, status: str, me: uuid.UUID, them: uuid.UUID) -> None:
    """Chat is open while the match is active, and forever once saved, unless either side has
    since blocked the other (a block closes an active match, but a saved one is not open)."""
    if status not in WRITABLE:
        if status == "pending":
            raise matching.match_not_open("The chat opens once both have accepted")
        raise matching.match_not_open()
    if status == "saved" and await blocked_between(db, me, them):
        raise matching.match_not_open()


async def lock_chat(
    db: AsyncSession, match_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[str, uuid.UUID]:
    """(status, the other participant) of a match `user_id` is in, its row locked; else 404.

    One statement on the hot path of every message. The lock orders concurrent sends in one
    match: created_at order, commit order and each participant's event seq order are the same.
    """
    rows = await execute_bulk(
        db,
        "SELECT m.status, them.user_id FROM after_hours_matches m"
        " JOIN after_hours_match_participants me"
        "   ON me.match_id = m.id AND me.user_id = %(me)s"
        " JOIN after_hours_match_participants them"
        "   ON them.match_id = m.id AND them.user_id <> %(me)s"
        " WHERE m.id = %(match)s FOR UPDATE OF m",
        {"me": user_id, "match": match_id},
    )
    if not rows:
        raise not_found("Match")
    status, other = rows[0]
    return status, other


# --- messages ------------------------------------------------------------------------------


async def send_message(
    db: AsyncSession,
    *,
    match_id: uuid.UUID,
    sender_id: uuid.UUID,
    content: str,
    client_message_id: str | None,
) -> MessageOut:
    """Store a message and send it to both participants (every device of each).

    A resend (same sender, match and clientMessageId) returns the stored message and sends
    nothing, and does not count against the rate limit.
    """
    retry_after = limits.messages.take(sender_id)
    if retry_after is not None:
        log.info("message_rate_limited user_id=%s", sender_id)
        raise rate_limited(retry_after)
    status, other = await lock_chat(db, match_id, sender_id)
    try:
        await check_writable(db, status, sender_id, other)
    except AppError:
        # A resend of something stored before the chat closed still gets its message back.
        stored = await _stored(db, match_id, sender_id, client_message_id)
        if stored is None:
            raise
        limits.messages.give_back(sender_id)
        return message_out(stored)
    out = MessageOut(
        id=uuid.uuid4(),
        match_id=match_id,
        sender_id=sender_id,
        content=content,
        created_at=clock.now(),
        client_message_id=client_message_id,
    )
    inserted = await execute_bulk(
        db,
        "INSERT INTO after_hours_messages"
        " (id, match_id, sender_id, content, client_message_id, created_at)"
        " VALUES (%(id)s, %(match)s, %(sender)s, %(content)s, %(client)s, %(at)s)"
        " ON CONFLICT (match_id, sender_id, client_message_id) DO NOTHING RETURNING id",
        {
            "id": out.id,
            "match": match_id,
            "sender": sender_id,
            "content": content,
            "client": client_message_id,
            "at": out.created_at,
        },
    )
    if not inserted:
        stored = await _stored(db, match_id, sender_id, client_message_id)
        assert stored is not None  # the conflicting row exists: we hold the match lock
        limits.messages.give_back(sender_id)
        return message_out(stored)
    event = MessageSent(**out.model_dump())
    await realtime.emit_many(db, [(sender_id, event), (other, event)])
    log.info("message_sent match_id=%s message_id=%s", match_id, out.id)
    return out


async def _stored(
    db: AsyncSession, match_id: uuid.UUID, sender_id: uuid.UUID, client_message_id: str | None
) -> Message | None:
    if client_message_id is None:
        return None
    return (
        await db.scalars(
            select(Message).where(
                Message.match_id == match_id,
                Message.sender_id == sender_id,
                Message.client_message_id == client_message_id,
            )
        )
    ).one_or_none()


async def list_messages(
    db: AsyncSession,
    *,
    match_id: uuid.UUID,
    user_id: uuid.UUID,
    before: uuid.UUID | None = None,
    limit: int = PAGE_SIZE,
) -> list[MessageOut]:
    """The `limit` messages just older than `before` (or the latest), oldest first."""
    match, _, _ = await matching.sides(db, match_id, user_id)
    if match.status not in READABLE:
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
    match, _, theirs = await matching.sides(db, match_id, user_id)
    await check_writable(db, match.status, user_id, theirs.user_id)
    return theirs.user_id


# --- saving --------------------------------------------------------------------------------


async def save_match(
    db: AsyncSession, *, storage: PhotoStorage, match_id: uuid.UUID, user_id: uuid.UUID
) -> MatchOut:
    """Mark the caller's save; when both have saved, the match becomes a permanent one.

    A saved match is closed for matching (both may be matched again in their sessions) but its
    chat stays open for good: session ends never touch it, only an account deletion does.
    """
    match, mine, theirs = await matching.sides(db, match_id, user_id, for_update=True)
    if match.status == "saved":
        return await matching.match_view(db, storage=storage, match=match, mine=mine, theirs=theirs)
    if match.status != "active":
        raise matching.match_not_open("Only an active match can be saved")
    if mine.saved_at is None:
        now = clock.now()
        mine.saved_at = now
        log.info("match_saved_by match_id=%s user_id=%s", match.id, user_id)
        if theirs.saved_at is not None:
            await _make_permanent(db, match=match, people=(mine, theirs))
        await db.flush()
    return await matching.match_view(db, storage=storage, match=match, mine=mine, theirs=theirs)


async def _make_permanent(
    db: AsyncSession, *, match: Match, people: tuple[Participant, Participant]
) -> None:
    now = clock.now()
    a, b = sorted((p.user_id for p in people), key=lambda u: u.int)
    permanent_id = uuid.uuid4()
    db.add(
        PermanentMatch(
            id=permanent_id, user_a=a, user_b=b, created_at=now, after_hours_match_id=match.id
        )
    )
    match.permanent_match_id = permanent_id
    match.status = "saved"
    match.closed_at = now
    match.close_reason = "saved"
    for p in people:
        p.is_open = False  # free to be matched again while their sessions last
    await db.flush()
    event = MatchSaved(match_id=match.id, permanent_match_id=permanent_id)
    await realtime.emit_many(db, [(p.user_id, event) for p in people])
    settings: Settings = db.info["settings"]
    retry_at = now + timedelta(seconds=settings.match_delay_decline_seconds)
    for p in people:
        await jobs.defer(db, "matching:attempt", at=retry_at, user_id=str(p.user_id))
    log.info("match_permanent match_id=%s permanent_match_id=%s", match.id, permanent_id)


# --- account deletion ----------------------------------------------------------------------


async def forget_account(db: AsyncSession, user_id: uuid.UUID) -> None:
    """Delete the user's After Hours matches and, with them, their messages; a match held by an
    open report stays (with its messages) until the report is resolved.

    Runs inside account deletion, after the user's session (and so any open match) was closed.
    """
    rows = (
        await db.execute(
            select(Match.id, Match.status)
            .join(Participant, Participant.match_id == Match.id)
            .where(Participant.user_id == user_id, ~held_by_open_report(Match.id))
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


profiles.on_delete_account.append(forget_account)
