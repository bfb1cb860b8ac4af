"""Users as the host app names them, and the device fingerprints seen for each (hashed only)."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, String, func, select
from sqlalchemy import exists as sql_exists
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from afterhours.db import Base


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The last `seq` given to one of this user's events (see realtime.emit).
    event_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class DeviceFingerprint(Base):
    __tablename__ = "device_fingerprints"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    fingerprint_hash: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    last_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


async def ensure_user(
    db: AsyncSession, *, user_id: uuid.UUID, fingerprint_hash: str | None
) -> None:
    """Create the user row on first sight; remember the device it came from."""
    await db.execute(insert(User).values(id=user_id).on_conflict_do_nothing())
    if fingerprint_hash:
        await db.execute(
            insert(DeviceFingerprint)
            .values(user_id=user_id, fingerprint_hash=fingerprint_hash)
            .on_conflict_do_update(
                index_elements=["user_id", "fingerprint_hash"],
                set_={"last_seen_at": func.now()},
            )
        )


async def exists(db: AsyncSession, user_id: uuid.UUID) -> bool:
    return bool(await db.scalar(select(sql_exists().where(User.id == user_id))))
