import uuid
from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from afterhours.db import Base, one_of

ReportCategory = Literal["harassment", "spam", "inappropriate_content", "underage", "scam", "other"]
REPORT_CATEGORIES: tuple[ReportCategory, ...] = get_args(ReportCategory)
REPORT_STATUSES = ("open", "resolved")
MAX_REPORT_DETAILS = 2000


class Report(Base):
    """A user's report of another; while open, it keeps the reported match and its messages."""

    __tablename__ = "after_hours_reports"
    __table_args__ = (
        CheckConstraint(one_of("category", REPORT_CATEGORIES), name="category"),
        CheckConstraint(one_of("status", REPORT_STATUSES), name="status"),
        # Retention and account deletion ask "is this match held by an open report?".
        Index(
            "ix_after_hours_reports_open_match",
            "match_id",
            postgresql_where=text("status = 'open'"),
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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
