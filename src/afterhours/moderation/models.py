import uuid
from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from afterhours.db import Base, one_of

ReportCategory = Literal["harassment", "spam", "inappropriate_content", "underage", "scam", "other"]
REPORT_CATEGORIES: tuple[ReportCategory, ...] = get_args(ReportCategory)
ReportStatus = Literal["open", "escalated", "resolved"]
REPORT_STATUSES: tuple[ReportStatus, ...] = get_args(ReportStatus)
# Until resolved, a report holds its match's messages for moderators.
UNRESOLVED = ("open", "escalated")
Resolution = Literal["dismissed", "banned"]
RESOLUTIONS: tuple[Resolution, ...] = get_args(Resolution)
ActionKind = Literal["assign", "escalate", "dismiss", "ban", "unban"]
ACTION_KINDS: tuple[ActionKind, ...] = get_args(ActionKind)
MAX_REPORT_DETAILS = 2000
MAX_NOTE = 2000


class Report(Base):
    """A user's report of another; while open, it keeps the reported match and its messages."""

    __tablename__ = "after_hours_reports"
    __table_args__ = (
        CheckConstraint(one_of("category", REPORT_CATEGORIES), name="category"),
        CheckConstraint(one_of("status", REPORT_STATUSES), name="status"),
        CheckConstraint(one_of("resolution", RESOLUTIONS), name="resolution"),
        # Retention and account deletion ask "is this match held by an unresolved report?".
        Index(
            "ix_after_hours_reports_unresolved_match",
            "match_id",
            postgresql_where=text("status IN ('open', 'escalated')"),
        ),
        Index("ix_after_hours_reports_status_created", "status", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    # The report outlives a reporter who deletes their account: the harm reported still matters.
    reporter_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # No foreign key: the reported user deleting their account must not erase the report.
    reported_user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    match_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("after_hours_matches.id", ondelete="SET NULL")
    )
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("after_hours_messages.id", ondelete="SET NULL")
    )
    category: Mapped[str] = mapped_column(String(32))
    details: Mapped[str | None] = mapped_column(String(MAX_REPORT_DETAILS))
    status: Mapped[str] = mapped_column(String(16), default="open")
    # The moderator working on it (an admin's user id; no foreign key, like the log's authors).
    assigned_to: Mapped[uuid.UUID | None]
    resolution: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ModerationAction(Base):
    """The moderation log: every moderator action, with its author, subject and note. Never
    updated or deleted: it is the record of who did what to whom."""

    __tablename__ = "moderation_actions"
    __table_args__ = (
        CheckConstraint(one_of("action", ACTION_KINDS), name="action"),
        Index("ix_moderation_actions_subject", "subject_user_id", "created_at"),
        Index("ix_moderation_actions_report", "report_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    # No foreign keys: the record outlives the moderator's, the subject's and the report's rows.
    actor_id: Mapped[uuid.UUID]
    action: Mapped[str] = mapped_column(String(16))
    subject_user_id: Mapped[uuid.UUID]
    report_id: Mapped[uuid.UUID | None]
    note: Mapped[str | None] = mapped_column(String(MAX_NOTE))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
