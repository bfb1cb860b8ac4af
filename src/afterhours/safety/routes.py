import uuid
from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import StringConstraints

from afterhours.auth import DB, PremiumUser
from afterhours.openapi import errors
from afterhours.profiles.schemas import MessageResponse
from afterhours.safety import service
from afterhours.safety.models import MAX_REPORT_DETAILS
from afterhours.schemas import Ok, WireModel

router = APIRouter(prefix="/api/after-hours", tags=["safety"])


class BlockIn(WireModel):
    user_id: uuid.UUID


class ReportIn(WireModel):
    reported_user_id: uuid.UUID
    match_id: uuid.UUID | None = None
    message_id: uuid.UUID | None = None
    category: Literal["harassment", "spam", "inappropriate_content", "underage", "scam", "other"]
    details: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_REPORT_DETAILS)]
        | None
    ) = None


class ReportRef(WireModel):
    id: uuid.UUID


class ReportResponse(Ok):
    report: ReportRef


@router.post("/blocks", status_code=201, responses=errors(400, 401, 403, 404))
async def block(body: BlockIn, user: PremiumUser, db: DB) -> MessageResponse:
    await service.block(db, blocker_id=user.user_id, blocked_id=body.user_id)
    return MessageResponse(message="User blocked")


@router.delete("/blocks/{user_id}", responses=errors(400, 401, 403, 404))
async def unblock(user_id: uuid.UUID, user: PremiumUser, db: DB) -> MessageResponse:
    await service.unblock(db, blocker_id=user.user_id, blocked_id=user_id)
    return MessageResponse(message="Block lifted")


@router.post("/reports", status_code=201, responses=errors(400, 401, 403, 404))
async def report(body: ReportIn, user: PremiumUser, db: DB) -> ReportResponse:
    """Report a user (optionally naming the match or one message); the report also blocks them.
    While the report is open, the match and its messages are kept for moderation."""
    filed = await service.report(
        db,
        reporter_id=user.user_id,
        reported_user_id=body.reported_user_id,
        match_id=body.match_id,
        message_id=body.message_id,
        category=body.category,
        details=body.details,
    )
    return ReportResponse(report=ReportRef(id=filed.id))
