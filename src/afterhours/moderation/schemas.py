"""The admin API's shapes (reports, their transcript, the moderation log, a user's record)."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import StringConstraints

from afterhours.bans import MAX_REASON
from afterhours.moderation.models import (
    MAX_NOTE,
    ActionKind,
    ReportCategory,
    ReportStatus,
    Resolution,
)
from afterhours.schemas import DisplayText, Ok, WireModel

Note = Annotated[DisplayText, StringConstraints(max_length=MAX_NOTE)]
Reason = Annotated[DisplayText, StringConstraints(max_length=MAX_REASON)]


class ReportOut(WireModel):
    id: uuid.UUID
    status: ReportStatus
    category: ReportCategory
    details: str | None
    # None once the reporter has deleted their account.
    reporter_id: uuid.UUID | None
    reported_user_id: uuid.UUID
    match_id: uuid.UUID | None
    message_id: uuid.UUID | None
    assigned_to: uuid.UUID | None
    resolution: Resolution | None
    created_at: datetime
    resolved_at: datetime | None


class StatusCounts(WireModel):
    open: int
    escalated: int
    resolved: int


class ReportsPage(Ok):
    reports: list[ReportOut]
    counts: StatusCounts
    # The `cursor` for the next page; None on the last one.
    next_cursor: uuid.UUID | None


class ActionOut(WireModel):
    """One line of the moderation log."""

    id: uuid.UUID
    actor_id: uuid.UUID
    action: ActionKind
    subject_user_id: uuid.UUID
    report_id: uuid.UUID | None
    note: str | None
    created_at: datetime


class TranscriptMessage(WireModel):
    id: uuid.UUID
    sender_id: uuid.UUID
    content: str
    created_at: datetime
    # The message the report names.
    reported: bool


class ReportDetail(Ok):
    report: ReportOut
    # The reported match's retained messages, oldest first.
    messages: list[TranscriptMessage]
    # The moderation log of this report, oldest first.
    history: list[ActionOut]
    # Reports the reported user has received in all (this one included).
    reports_against_user: int


class ReportResponse(Ok):
    report: ReportOut


class ResolveIn(WireModel):
    action: Literal["dismiss", "ban"]
    note: Note | None = None


class EscalateIn(WireModel):
    note: Annotated[Note, StringConstraints(min_length=1)]


class BanIn(WireModel):
    reason: Reason | None = None


class BanOut(WireModel):
    banned_at: datetime
    banned_by: uuid.UUID
    reason: str | None
    devices_banned: int


class UserRecord(WireModel):
    id: uuid.UUID
    # None while the user is not banned.
    ban: BanOut | None
    reports_filed: list[ReportOut]
    reports_received: list[ReportOut]
    messages_rejected: int
    # The moderation log about this user, oldest first.
    history: list[ActionOut]


class UserRecordResponse(Ok):
    user: UserRecord
