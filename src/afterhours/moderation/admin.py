"""The admin API (`role: "admin"`): the report queue, one report with its transcript, the
moderator's actions on it, bans, and a user's record. Every action is written to the moderation
log with its author (service._record); reads are not logged."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from afterhours import bans, users
from afterhours.auth import DB, AdminUser
from afterhours.errors import not_found
from afterhours.moderation import service
from afterhours.moderation.models import ModerationAction, Report, ReportCategory, ReportStatus
from afterhours.moderation.schemas import (
    ActionOut,
    BanIn,
    BanOut,
    EscalateIn,
    ReportDetail,
    ReportOut,
    ReportResponse,
    ReportsPage,
    ResolveIn,
    StatusCounts,
    TranscriptMessage,
    UserRecord,
    UserRecordResponse,
)
from afterhours.openapi import errors
from afterhours.schemas import MessageResponse

router = APIRouter(prefix="/api/admin", tags=["admin"])


def report_out(report: Report) -> ReportOut:
    return ReportOut.model_validate(report, from_attributes=True)


def actions_out(actions: list[ModerationAction]) -> list[ActionOut]:
    return [ActionOut.model_validate(a, from_attributes=True) for a in actions]


@router.get("/reports", responses=errors(400, 401, 403))
async def list_reports(
    _: AdminUser,
    db: DB,
    status: ReportStatus = "open",
    category: ReportCategory | None = None,
    cursor: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = service.PAGE_SIZE,
) -> ReportsPage:
    """The queue: open and escalated reports oldest first, resolved ones newest first, `limit`
    at a time; pass `nextCursor` back as `cursor` for the next page. `counts` are per status."""
    reports = await service.list_reports(
        db, status=status, category=category, after=cursor, limit=limit
    )
    return ReportsPage(
        reports=[report_out(r) for r in reports],
        counts=StatusCounts(**await service.status_counts(db)),
        next_cursor=reports[-1].id if len(reports) == limit else None,
    )


@router.get("/reports/{report_id}", responses=errors(401, 403, 404))
async def get_report(report_id: uuid.UUID, _: AdminUser, db: DB) -> ReportDetail:
    """One report: both users' ids, its history, and the reported match's retained messages in
    order, the reported one marked."""
    report = await service.get_report(db, report_id)
    received = (await service.reports_about(db, user_id=report.reported_user_id))[1]
    return ReportDetail(
        report=report_out(report),
        messages=[
            TranscriptMessage(
                id=m.id,
                sender_id=m.sender_id,
                content=m.content,
                created_at=m.created_at,
                reported=m.id == report.message_id,
            )
            for m in await service.transcript(db, report)
        ],
        history=actions_out(await service.history(db, report_id=report.id)),
        reports_against_user=len(received),
    )


@router.post("/reports/{report_id}/resolve", responses=errors(400, 401, 403, 404, 409))
async def resolve(
    report_id: uuid.UUID, body: ResolveIn, request: Request, admin: AdminUser, db: DB
) -> ReportResponse:
    """Resolve: `dismiss`, or `ban` the reported user (as POST /users/{id}/ban). 409
    REPORT_ALREADY_RESOLVED if it is. The chat it held then falls under the normal retention."""
    report = await service.resolve(
        db,
        report_id=report_id,
        actor_id=admin.user_id,
        action=body.action,
        note=body.note,
        session_reactions=request.app.state.lifecycle.sessions,
    )
    return ReportResponse(report=report_out(report))


@router.post("/reports/{report_id}/assign", responses=errors(401, 403, 404, 409))
async def assign(report_id: uuid.UUID, admin: AdminUser, db: DB) -> ReportResponse:
    """Take the report: it is assigned to the calling moderator."""
    report = await service.assign(db, report_id=report_id, actor_id=admin.user_id)
    return ReportResponse(report=report_out(report))


@router.post("/reports/{report_id}/escalate", responses=errors(400, 401, 403, 404, 409))
async def escalate(
    report_id: uuid.UUID, body: EscalateIn, admin: AdminUser, db: DB
) -> ReportResponse:
    """Escalate with a note (status `escalated`); it keeps holding the chat until resolved."""
    report = await service.escalate(db, report_id=report_id, actor_id=admin.user_id, note=body.note)
    return ReportResponse(report=report_out(report))


@router.post("/users/{user_id}/ban", responses=errors(400, 401, 403, 404))
async def ban(
    user_id: uuid.UUID, body: BanIn, request: Request, admin: AdminUser, db: DB
) -> MessageResponse:
    """Ban the user and every device seen for them, at once: their session and open match end
    (the other side is told the match closed, not why), their sockets on every process are
    disconnected, and After Hours answers them 403 USER_BANNED (DEVICE_BANNED for any account
    on a banned device). Banning a banned user changes nothing."""
    if not await users.exists(db, user_id):
        raise not_found("User")
    await service.ban_user(
        db,
        user_id=user_id,
        actor_id=admin.user_id,
        reason=body.reason,
        session_reactions=request.app.state.lifecycle.sessions,
    )
    return MessageResponse(message="User banned")


@router.delete("/users/{user_id}/ban", responses=errors(401, 403, 404))
async def unban(user_id: uuid.UUID, admin: AdminUser, db: DB) -> MessageResponse:
    """Lift the ban, and the device bans that came with it. 404 if the user is not banned."""
    await service.unban_user(db, user_id=user_id, actor_id=admin.user_id)
    return MessageResponse(message="Ban lifted")


@router.get("/users/{user_id}", responses=errors(401, 403, 404))
async def get_user(user_id: uuid.UUID, _: AdminUser, db: DB) -> UserRecordResponse:
    """A user's record: ban state, reports filed and received, messages the screen refused, and
    the moderation log about them. Also for a deleted account that left reports or a ban."""
    ban_row = await bans.ban_of(db, user_id=user_id)
    filed, received = await service.reports_about(db, user_id=user_id)
    if not (await users.exists(db, user_id) or ban_row or filed or received):
        raise not_found("User")
    ban_out = None
    if ban_row is not None:
        ban_out = BanOut(
            banned_at=ban_row.banned_at,
            banned_by=ban_row.banned_by,
            reason=ban_row.reason,
            devices_banned=await bans.devices_banned(db, user_id=user_id),
        )
    return UserRecordResponse(
        user=UserRecord(
            id=user_id,
            ban=ban_out,
            reports_filed=[report_out(r) for r in filed],
            reports_received=[report_out(r) for r in received],
            messages_rejected=await service.messages_rejected(db, user_id=user_id),
            history=actions_out(await service.history(db, user_id=user_id)),
        )
    )
