import uuid
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import StringConstraints

from afterhours.auth import DB, PremiumUser
from afterhours.limits import counted
from afterhours.moderation import service
from afterhours.moderation.models import MAX_REPORT_DETAILS, ReportCategory
from afterhours.openapi import errors
from afterhours.schemas import DisplayText, Ok, WireModel

router = APIRouter(prefix="/api/after-hours", tags=["safety"])


class ReportIn(WireModel):
    reported_user_id: uuid.UUID
    match_id: uuid.UUID | None = None
    message_id: uuid.UUID | None = None
    category: ReportCategory
    details: Annotated[DisplayText, StringConstraints(max_length=MAX_REPORT_DETAILS)] | None = None


class ReportRef(WireModel):
    id: uuid.UUID


class ReportResponse(Ok):
    report: ReportRef


@router.post(
    "/reports",
    status_code=201,
    responses=errors(400, 401, 403, 404, 429),
    dependencies=[counted("reports", "reports")],
)
async def report(body: ReportIn, request: Request, user: PremiumUser, db: DB) -> ReportResponse:
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
        block_reactions=request.app.state.lifecycle.safety,
    )
    return ReportResponse(report=ReportRef(id=filed.id))
