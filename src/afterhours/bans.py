"""Bans of users and of the devices they used: the one answer to "may this account act?".

A shared module because the answer is asked below every feature (each After Hours request, each
socket connect); only moderation sets and lifts bans, through `ban` and `lift`.

Neither table has a foreign key to `users`: a banned user who deletes their account and comes
back under the same id, or on the same phone, is still banned.
"""

import uuid
from datetime import datetime

from sqlalchemy import DateTime, String, delete, exists, func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from afterhours.db import Base
from afterhours.errors import AppError
from afterhours.users import DeviceFingerprint

MAX_REASON = 2000
NOT_BANNED = "not_banned"  # db.info: (user, fingerprint) pairs checked in this unit of work


class UserBan(Base):
    __tablename__ = "user_bans"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    banned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    banned_by: Mapped[uuid.UUID]
    reason: Mapped[str | None] = mapped_column(String(MAX_REASON))


class DeviceBan(Base):
    """A device fingerprint (keyed hash) banned with `user_id`'s ban, and lifted with it."""

    __tablename__ = "device_bans"

    fingerprint_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, index=True)
    banned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


def user_banned() -> AppError:
    return AppError("USER_BANNED", "This account is banned", status=403)


def device_banned() -> AppError:
    return AppError("DEVICE_BANNED", "This device is banned", status=403)


async def check_not_banned(
    db: AsyncSession, *, user_id: uuid.UUID, fingerprint_hash: str | None
) -> None:
    """USER_BANNED or DEVICE_BANNED, in one round trip, once per unit of work (a request's
    identity check and the service it calls both ask)."""
    checked: set[tuple[uuid.UUID, str | None]] = db.info.setdefault(NOT_BANNED, set())
    if (user_id, fingerprint_hash) in checked:
        return
    user = exists().where(UserBan.user_id == user_id)
    device = (
        exists().where(DeviceBan.fingerprint_hash == fingerprint_hash)
        if fingerprint_hash
        else literal(False)
    )
    row = (await db.execute(select(user, device))).one()
    if row[0]:
        raise user_banned()
    if row[1]:
        raise device_banned()
    checked.add((user_id, fingerprint_hash))


async def ban(db: AsyncSession, *, user_id: uuid.UUID, by: uuid.UUID, reason: str | None) -> bool:
    """Ban the user and every device fingerprint seen for them; False if already banned."""
    db.info.pop(NOT_BANNED, None)
    inserted = await db.scalar(
        insert(UserBan)
        .values(user_id=user_id, banned_by=by, reason=reason)
        .on_conflict_do_nothing()
        .returning(UserBan.user_id)
    )
    await db.execute(
        insert(DeviceBan)
        .from_select(
            ["fingerprint_hash", "user_id"],
            select(DeviceFingerprint.fingerprint_hash, DeviceFingerprint.user_id).where(
                DeviceFingerprint.user_id == user_id
            ),
        )
        .on_conflict_do_nothing()
    )
    return inserted is not None


async def lift(db: AsyncSession, *, user_id: uuid.UUID) -> bool:
    """Lift the user's ban and the device bans that came with it; False if there was none."""
    await db.execute(delete(DeviceBan).where(DeviceBan.user_id == user_id))
    lifted = await db.scalar(
        delete(UserBan).where(UserBan.user_id == user_id).returning(UserBan.user_id)
    )
    return lifted is not None


async def ban_of(db: AsyncSession, *, user_id: uuid.UUID) -> UserBan | None:
    return await db.get(UserBan, user_id)


async def devices_banned(db: AsyncSession, *, user_id: uuid.UUID) -> int:
    return int(await db.scalar(select(func.count()).where(DeviceBan.user_id == user_id)) or 0)
