"""Reports: a user's report of another. Filing one also blocks; while a report is open, the
reported match and its messages are kept for moderation (retention and account deletion pass
them by)."""

import logging
import uuid
from typing import Literal

from sqlalchemy import ColumnElement, exists, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from afterhours import bans, clock, realtime
from afterhours.chat import service as chat
from afterhours.errors import AppError, not_found, validation_error
from afterhours.matching import service as matching
from afterhours.moderation.models import (
    REPORT_STATUSES,
    UNRESOLVED,
    ActionKind,
    ModerationAction,
    Report,
)
from afterhours.moderation.schemas import ReportOut
from afterhours.safety import service as safety
from afterhours.sessions import service as sessions

log = logging.getLogger("afterhours.moderation")


def held_by_open_report(
    match_id: QueryableAttribute[uuid.UUID] | ColumnElement[uuid.UUID],
) -> ColumnElement[bool]:
    """Whether an unresolved report (open or escalated) keeps the match `match_id` from
    deletion (retention, account deletion): the one exception to "closed chats go after 30
    days" and "your data goes with you"."""
    return exists().where(Report.match_id == match_id, Report.status.in_(UNRESOLVED))


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
    announce(db, "admin:report_filed", filed)
    log.info(
        "report_filed report_id=%s reporter_id=%s reported_user_id=%s match_id=%s category=%s",
        filed.id,
        reporter_id,
        reported_user_id,
        match_id,
        category,
    )
    return filed


# --- moderators -----------------------------------------------------------------------------

PAGE_SIZE = 50
TRANSCRIPT_LIMIT = 2000


def report_not_found() -> AppError:
    return not_found("Report")


def already_resolved() -> AppError:
    return AppError("REPORT_ALREADY_RESOLVED", "This report is already resolved", status=409)


def announce(db: AsyncSession, event: str, report: Report) -> None:
    """Tell every open console of the report's new state, once `db` commits."""
    payload = ReportOut.model_validate(report, from_attributes=True)
    realtime.to_admins(db, event, {"report": payload.model_dump(mode="json", by_alias=True)})


async def _record(
    db: AsyncSession,
    *,
    actor_id: uuid.UUID,
    action: ActionKind,
    subject_user_id: uuid.UUID,
    report_id: uuid.UUID | None = None,
    note: str | None = None,
) -> None:
    """One line of the moderation log; every moderator action writes one, with its author."""
    db.add(
        ModerationAction(
            actor_id=actor_id,
            action=action,
            subject_user_id=subject_user_id,
            report_id=report_id,
            note=note or None,
            created_at=clock.now(),
        )
    )
    await db.flush()
    if report_id is not None:
        report = await db.get(Report, report_id)  # in the session already: no query
        assert report is not None
        announce(db, "admin:report_updated", report)
    log.info(
        "moderation_action action=%s actor_id=%s subject_user_id=%s report_id=%s",
        action,
        actor_id,
        subject_user_id,
        report_id,
    )


async def status_counts(db: AsyncSession) -> dict[str, int]:
    rows = await db.execute(select(Report.status, func.count()).group_by(Report.status))
    counts: dict[str, int] = dict.fromkeys(REPORT_STATUSES, 0)
    counts.update({status: n for status, n in rows})
    return counts


async def list_reports(
    db: AsyncSession,
    *,
    status: str,
    category: str | None,
    after: uuid.UUID | None,
    limit: int = PAGE_SIZE,
) -> list[Report]:
    """A queue page: unresolved reports oldest first (the longest waiting on top), resolved
    ones newest first (recent decisions); `after` is the last report of the previous page."""
    newest_first = status == "resolved"
    order = (Report.created_at, Report.id)
    stmt = select(Report).where(Report.status == status)
    if category is not None:
        stmt = stmt.where(Report.category == category)
    if after is not None:
        cursor = (await db.execute(select(*order).where(Report.id == after))).one_or_none()
        if cursor is None:
            raise validation_error("cursor", "No such report")
        key, at = tuple_(*order), tuple_(cursor.created_at, cursor.id)
        stmt = stmt.where(key < at if newest_first else key > at)
    if newest_first:
        stmt = stmt.order_by(Report.created_at.desc(), Report.id.desc())
    else:
        stmt = stmt.order_by(*order)
    return list(await db.scalars(stmt.limit(limit)))


async def get_report(db: AsyncSession, report_id: uuid.UUID, *, for_update: bool = False) -> Report:
    stmt = select(Report).where(Report.id == report_id)
    if for_update:
        stmt = stmt.with_for_update()
    report = (await db.scalars(stmt)).one_or_none()
    if report is None:
        raise report_not_found()
    return report


async def history(
    db: AsyncSession, *, report_id: uuid.UUID | None = None, user_id: uuid.UUID | None = None
) -> list[ModerationAction]:
    """The moderation log of a report, or about a user, oldest first."""
    stmt = select(ModerationAction)
    if report_id is not None:
        stmt = stmt.where(ModerationAction.report_id == report_id)
    if user_id is not None:
        stmt = stmt.where(ModerationAction.subject_user_id == user_id)
    return list(await db.scalars(stmt.order_by(ModerationAction.created_at, ModerationAction.id)))


async def transcript(db: AsyncSession, report: Report) -> list[chat.MessageOut]:
    """The reported match's messages, oldest first (none when the report names no match)."""
    if report.match_id is None:
        return []
    return await chat.transcript(db, match_id=report.match_id, limit=TRANSCRIPT_LIMIT)


async def reports_about(
    db: AsyncSession, *, user_id: uuid.UUID
) -> tuple[list[Report], list[Report]]:
    """(filed by the user, received by the user), newest first."""
    newest = (Report.created_at.desc(), Report.id.desc())
    filed = await db.scalars(select(Report).where(Report.reporter_id == user_id).order_by(*newest))
    received = await db.scalars(
        select(Report).where(Report.reported_user_id == user_id).order_by(*newest)
    )
    return list(filed), list(received)


async def messages_rejected(db: AsyncSession, *, user_id: uuid.UUID) -> int:
    return await chat.rejected_count(db, user_id=user_id)


async def unresolved_report(db: AsyncSession, report_id: uuid.UUID) -> Report:
    """The report, locked, for an action only an unresolved report takes."""
    report = await get_report(db, report_id, for_update=True)
    if report.status == "resolved":
        raise already_resolved()
    return report


async def assign(db: AsyncSession, *, report_id: uuid.UUID, actor_id: uuid.UUID) -> Report:
    """The calling moderator takes the report (from whoever had it)."""
    report = await unresolved_report(db, report_id)
    report.assigned_to = actor_id
    await _record(
        db,
        actor_id=actor_id,
        action="assign",
        subject_user_id=report.reported_user_id,
        report_id=report.id,
    )
    return report


async def escalate(
    db: AsyncSession, *, report_id: uuid.UUID, actor_id: uuid.UUID, note: str
) -> Report:
    """Hand the report to senior moderators (status `escalated`; it keeps holding the chat)."""
    report = await unresolved_report(db, report_id)
    report.status = "escalated"
    await _record(
        db,
        actor_id=actor_id,
        action="escalate",
        subject_user_id=report.reported_user_id,
        report_id=report.id,
        note=note,
    )
    return report


async def resolve(
    db: AsyncSession,
    *,
    report_id: uuid.UUID,
    actor_id: uuid.UUID,
    action: Literal["dismiss", "ban"],
    note: str | None,
    session_reactions: sessions.Reactions,
) -> Report:
    """Close the report, dismissed or with a ban of the reported user. From now on the chat it
    held falls under the normal 30-day retention again."""
    report = await unresolved_report(db, report_id)
    report.status = "resolved"
    report.resolution = "banned" if action == "ban" else "dismissed"
    report.resolved_at = clock.now()
    if action == "ban":
        await ban_user(
            db,
            user_id=report.reported_user_id,
            actor_id=actor_id,
            reason=note,
            report_id=report.id,
            session_reactions=session_reactions,
        )
    else:
        await _record(
            db,
            actor_id=actor_id,
            action="dismiss",
            subject_user_id=report.reported_user_id,
            report_id=report.id,
            note=note,
        )
    # Other reports of the same match stay open and keep holding it.
    return report


async def ban_user(
    db: AsyncSession,
    *,
    user_id: uuid.UUID,
    actor_id: uuid.UUID,
    reason: str | None,
    session_reactions: sessions.Reactions,
    report_id: uuid.UUID | None = None,
) -> None:
    """Ban the user everywhere, at once, in this transaction: the account and every device seen
    for it banned, the session ended (which closes an open match; the other side is told only
    that it closed), and, once this commits, the user's sockets on every process disconnected."""
    if user_id == actor_id:
        raise validation_error("userId", "You cannot ban yourself")
    newly = await bans.ban(db, user_id=user_id, by=actor_id, reason=reason)
    if newly:
        await sessions.end_for_user(
            db, user_id=user_id, reason="banned", reactions=session_reactions
        )
        realtime.turn_away(db, user_id)
    elif report_id is None:
        return  # already banned: nothing more to do, and nothing to log
    # A report resolved by a ban that already held is still a decision, logged as one.
    await _record(
        db,
        actor_id=actor_id,
        action="ban",
        subject_user_id=user_id,
        report_id=report_id,
        note=reason,
    )


async def unban_user(db: AsyncSession, *, user_id: uuid.UUID, actor_id: uuid.UUID) -> None:
    """Lift the user's ban and the device bans that came with it."""
    if not await bans.lift(db, user_id=user_id):
        raise not_found("Ban")
    await _record(db, actor_id=actor_id, action="unban", subject_user_id=user_id)
