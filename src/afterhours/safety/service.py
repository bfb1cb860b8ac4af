"""Blocks and reports: a user never sees the blocked one again, and any open match between them
closes; a report also blocks, and keeps the reported chat for moderation while it is open."""

import logging
import uuid

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from afterhours import clock
from afterhours.chat import service as chat
from afterhours.errors import not_found, validation_error
from afterhours.matching import service as matching
from afterhours.safety.models import Block, Report
from afterhours.users import User

log = logging.getLogger("afterhours.safety")


async def block(db: AsyncSession, *, blocker_id: uuid.UUID, blocked_id: uuid.UUID) -> None:
    if blocker_id == blocked_id:
        raise validation_error("userId", "You cannot block yourself")
    if await db.get(User, blocked_id) is None:
        raise not_found("User")
    await db.execute(
        insert(Block).values(blocker_id=blocker_id, blocked_id=blocked_id).on_conflict_do_nothing()
    )
    await matching.close_open_match_between(
        db, a=blocker_id, b=blocked_id, status="blocked", reason="blocked"
    )
    log.info("user_blocked blocker_id=%s blocked_id=%s", blocker_id, blocked_id)


async def unblock(db: AsyncSession, *, blocker_id: uuid.UUID, blocked_id: uuid.UUID) -> None:
    result = await db.execute(
        delete(Block).where(Block.blocker_id == blocker_id, Block.blocked_id == blocked_id)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise not_found("Block")


async def report(
    db: AsyncSession,
    *,
    reporter_id: uuid.UUID,
    reported_user_id: uuid.UUID,
    match_id: uuid.UUID | None,
    message_id: uuid.UUID | None,
    category: str,
    details: str | None,
) -> Report:
    """File a report, which also blocks. A named match or message must be one the reporter took
    part in, with the reported user; while the report is open, that match and its messages are
    kept (retention and account deletion pass them by)."""
    if reporter_id == reported_user_id:
        raise validation_error("reportedUserId", "You cannot report yourself")
    if message_id is not None:
        message_match = await chat.message_match_id(db, message_id=message_id)
        if message_match is None or (match_id is not None and match_id != message_match):
            raise not_found("Message")
        match_id = message_match
    if match_id is not None:
        _, _, theirs = await matching.sides(db, match_id, reporter_id)
        if theirs.user_id != reported_user_id:
            raise validation_error("matchId", "The reported user is not in this match")
    filed = Report(
        id=uuid.uuid4(),
        reporter_id=reporter_id,
        reported_user_id=reported_user_id,
        match_id=match_id,
        message_id=message_id,
        category=category,
        details=details or None,
        status="open",
        created_at=clock.now(),
    )
    db.add(filed)
    await db.flush()
    # The block closes an open match between them (status `blocked`) and stops a saved chat.
    await block(db, blocker_id=reporter_id, blocked_id=reported_user_id)
    log.info(
        "report_filed report_id=%s reporter_id=%s reported_user_id=%s match_id=%s category=%s",
        filed.id,
        reporter_id,
        reported_user_id,
        match_id,
        category,
    )
    return filed
