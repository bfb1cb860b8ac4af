import uuid
from datetime import date, datetime
from typing import Literal, get_args

from sqlalchemy import (
    ARRAY,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    SmallInteger,
    String,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from afterhours.db import Base, one_of

Gender = Literal["man", "woman", "nonbinary"]
GENDERS: tuple[Gender, ...] = get_args(Gender)


class Profile(Base):
    """The host app's base profile, kept here so the service runs on its own."""

    __tablename__ = "profiles"
    __table_args__ = (CheckConstraint(one_of("gender", GENDERS), name="gender"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[date] = mapped_column(Date)
    gender: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class AfterHoursProfile(Base):
    __tablename__ = "after_hours_profiles"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    description: Mapped[str] = mapped_column(String(500), default="")
    photo_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Preferences(Base):
    __tablename__ = "after_hours_preferences"
    __table_args__ = (
        CheckConstraint("min_age BETWEEN 18 AND 99 AND max_age BETWEEN 18 AND 99", name="ages"),
        CheckConstraint("min_age <= max_age", name="age_order"),
        CheckConstraint("max_distance_km BETWEEN 1 AND 100", name="distance"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    seeking_genders: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    min_age: Mapped[int] = mapped_column(SmallInteger)
    max_age: Mapped[int] = mapped_column(SmallInteger)
    max_distance_km: Mapped[int] = mapped_column(SmallInteger)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
