import uuid
from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from afterhours.db import Base, one_of

Platform = Literal["ios", "android"]
PLATFORMS: tuple[Platform, ...] = get_args(Platform)
MAX_TOKEN_LENGTH = 512  # APNs tokens are 64 hex digits, FCM's about 160 characters


class DeviceToken(Base):
    """A phone's push token; it belongs to whoever registered it last (a shared phone)."""

    __tablename__ = "device_tokens"
    __table_args__ = (CheckConstraint(one_of("platform", PLATFORMS), name="platform"),)

    token: Mapped[str] = mapped_column(String(MAX_TOKEN_LENGTH), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    platform: Mapped[str] = mapped_column(String(8))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PendingPush(Base):
    """The push a user has coming: the latest event it stands for, and how many events it
    gathers. One row per user, so a burst of events becomes one push (push.service)."""

    __tablename__ = "pending_pushes"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    event: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    events: Mapped[int] = mapped_column(Integer)
