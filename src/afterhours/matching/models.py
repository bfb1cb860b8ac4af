import uuid
from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from afterhours.db import Base

OpenStatus = Literal["pending", "active"]
ClosedStatus = Literal["declined", "expired", "ended", "blocked", "saved"]
MatchStatus = Literal[OpenStatus, ClosedStatus]
OPEN_STATUSES: tuple[OpenStatus, ...] = get_args(OpenStatus)


class Match(Base):
    __tablename__ = "after_hours_matches"
    __table_args__ = (
        Index(
            "ix_after_hours_matches_open_auto_decline",
            "auto_decline_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_after_hours_matches_closed_at", "closed_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    auto_decline_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    close_reason: Mapped[str | None] = mapped_column(String(32))
    # Whole km between the two fuzzed locations when matched (never from exact ones).
    distance_km: Mapped[int] = mapped_column(SmallInteger)
    permanent_match_id: Mapped[uuid.UUID | None] = mapped_column()


class Participant(Base):
    """One side of a match: that user's own flags, and the open-match guard."""

    __tablename__ = "after_hours_match_participants"
    __table_args__ = (
        # At most one open (pending or active) match per user, whatever two workers do at once.
        Index(
            "uq_after_hours_match_participants_open_user",
            "user_id",
            unique=True,
            postgresql_where=text("is_open"),
        ),
    )

    match_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("after_hours_matches.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("after_hours_sessions.id", ondelete="SET NULL")
    )
    is_open: Mapped[bool] = mapped_column(Boolean, default=True)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    saved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Decline(Base):
    """`user_id` turned down `declined_user_id` (or let the card lapse): no rematch for a while."""

    __tablename__ = "after_hours_declines"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    declined_user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )


class PermanentMatch(Base):
    """Stands in for the host app's matches: what a match both people saved becomes."""

    __tablename__ = "permanent_matches"

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    # user_a < user_b, so one pair reads the same whoever saved last.
    user_a: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    user_b: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Unique: one After Hours match becomes at most one permanent match, whatever races.
    after_hours_match_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("after_hours_matches.id", ondelete="SET NULL"), unique=True
    )
