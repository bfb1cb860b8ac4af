import uuid
from datetime import datetime

from sqlalchemy import DateTime, Double, ForeignKey, Index, SmallInteger, String, text
from sqlalchemy.orm import Mapped, mapped_column

from afterhours.db import Base


class Session(Base):
    __tablename__ = "after_hours_sessions"
    __table_args__ = (
        # At most one open session per user, whatever races: the database says no to a second.
        Index(
            "uq_after_hours_sessions_open_user",
            "user_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
        ),
        # Matching reads open sessions by area.
        Index(
            "ix_after_hours_sessions_open_area",
            "fuzzed_lat",
            "fuzzed_lon",
            postgresql_where=text("ended_at IS NULL"),
        ),
        Index(
            "ix_after_hours_sessions_open_expiry",
            "expires_at",
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_reason: Mapped[str | None] = mapped_column(String(16))
    duration_minutes: Mapped[int] = mapped_column(SmallInteger)
    # The exact point never leaves the server; everything public uses the fuzzed one.
    exact_lat: Mapped[float] = mapped_column(Double)
    exact_lon: Mapped[float] = mapped_column(Double)
    fuzzed_lat: Mapped[float] = mapped_column(Double)
    fuzzed_lon: Mapped[float] = mapped_column(Double)
