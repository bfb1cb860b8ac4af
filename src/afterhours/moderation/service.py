"""Reports: a user's report of another. Filing one also blocks; while a report is open, the
reported match and its messages are kept for moderation (retention and account deletion pass
them by)."""

import logging
import uuid

from sqlalchemy import ColumnElement, exists
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from afterhours import clock
from afterhours.chat import service as chat
from afterhours.errors import not_found, validation_error
from afterhours.matching import service as matching
from afterhours.moderation.models import Report
from afterhours.safety import service as safety

log = logging.getLogger("afterhours.moderation")


def held_by_open_report(
    match_id: QueryableAttribute[uuid.UUID] | ColumnElement[uuid.UUID],
) -> ColumnElement[bool]:
    """Whether an open report keeps the match `match_id` from deletion (retention, account
    deletion): the one exception to "closed chats go after 30 days" and "your data goes with you".
    """
    return exists().where(Report.match_id == match_id, Report.status == "open")


async def report(
    db: AsyncSession,
    *,
    reporter_id: uuid.UUID,
    reported_user_id: uuid.UUID,
    match_id: uuid.UUID | None,
    message_id: uuid.UUID | None,
    category: str,
    details: str | None,
    block_reactions: safety.Reactions,
) -> Report:
    """File a report, which also blocks. A named match or message must be one the reporter took
    part in, with the reported user."""
    if reporter_id == reported_user_id:
        raise validation_error("reportedUserId", "You cannot report yourself")
    if message_id is not None:
        message_match = await chat.message_match_id(db, message_id=message_id)
        if message_match is None or (match_id is not None and match_id != message_match):
            raise not_found("Message")
        match_id = message_match
    if match_id is not None:
        other = await matching.other_participant(db, match_id=match_id, user_id=reporter_id)
        if other != reported_user_id:
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
    await safety.block(
        db, blocker_id=reporter_id, blocked_id=reported_user_id, reactions=block_reactions
    )
    log.info(
        "report_filed report_id=%s reporter_id=%s reported_user_id=%s match_id=%s category=%s",
        filed.id,
        reporter_id,
        reported_user_id,
        match_id,
        category,
    )
    return filed
