import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ColumnElement,
    DateTime,
    ForeignKey,
    Index,
    String,
    exists,
    func,
    text,
)
from sqlalchemy.orm import Mapped, QueryableAttribute, mapped_column

from afterhours.db import Base

REPORT_CATEGORIES = ("harassment", "spam", "inappropriate_content", "underage", "scam", "other")
MAX_REPORT_DETAILS = 2000


class Block(Base):
    """`blocker_id` never wants to see `blocked_id` again; matching honours it both ways."""

    __tablename__ = "after_hours_blocks"
    __table_args__ = (CheckConstraint("blocker_id <> blocked_id", name="not_self"),)

    blocker_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    blocked_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Report(Base):
    """A user's report of another; while open, it keeps the reported match and its messages."""

    __tablename__ = "after_hours_reports"
    __table_args__ = (
        CheckConstraint(
            "category IN ('harassment', 'spam', 'inappropriate_content', 'underage', 'scam',"
            " 'other')",
            name="category",
        ),
        CheckConstraint("status IN ('open', 'resolved')", name="status"),
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


def held_by_open_report(
    match_id: QueryableAttribute[uuid.UUID] | ColumnElement[uuid.UUID],
) -> ColumnElement[bool]:
    """Whether an open report keeps the match `match_id` from deletion (retention, account
    deletion): the one exception to "closed chats go after 30 days" and "your data goes with you".
    """
    return exists().where(Report.match_id == match_id, Report.status == "open")
