"""Base profiles, After Hours profiles, preferences and account deletion."""

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Uuid, delete, exists, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from afterhours import clock
from afterhours.db import any_of, fetch_all
from afterhours.errors import AppError, not_found, validation_error
from afterhours.profiles.models import GENDERS as GENDERS  # re-exported: matching's engine
from afterhours.profiles.models import AfterHoursProfile, Preferences, Profile
from afterhours.users import User

MIN_AGE = 18

UserHook = Callable[..., Awaitable[None]]  # called as hook(db, user_id=...)


@dataclass(frozen=True)
class Reactions:
    """What other features do, in the same transaction, before a user's account or After Hours
    profile goes (their session ends, matches not held by a report go). Wired in
    afterhours.wiring."""

    account_deleting: Sequence[UserHook] = ()
    profile_deleting: Sequence[UserHook] = ()


# Preferences of a user who never set any: (seeking genders, min age, max age, max km).
DEFAULT_PREFERENCES: tuple[list[str], int, int, int] = (list(GENDERS), 18, 99, 25)


def age_on(birth_date: date, today: date) -> int:
    before_birthday = (today.month, today.day) < (birth_date.month, birth_date.day)
    return today.year - birth_date.year - before_birthday


def check_birth_date(birth_date: date) -> None:
    today = clock.now().date()
    if birth_date > today:
        raise validation_error("birthDate", "Birth date is in the future")
    age = age_on(birth_date, today)
    if age < MIN_AGE:
        raise validation_error("birthDate", f"You must be at least {MIN_AGE}")
    if age > 120:
        raise validation_error("birthDate", "Birth date is not plausible")


async def put_profile(
    db: AsyncSession, *, user_id: uuid.UUID, name: str, birth_date: date, gender: str
) -> Profile:
    check_birth_date(birth_date)
    values = {"name": name, "birth_date": birth_date, "gender": gender}
    stmt = (
        insert(Profile)
        .values(user_id=user_id, **values)
        .on_conflict_do_update(index_elements=[Profile.user_id], set_=values)
        .returning(Profile)
    )
    return (await db.scalars(stmt, execution_options={"populate_existing": True})).one()


async def get_profile(db: AsyncSession, *, user_id: uuid.UUID) -> Profile:
    profile = await db.get(Profile, user_id)
    if profile is None:
        raise not_found("Profile")
    return profile


async def delete_account(
    db: AsyncSession, *, user_id: uuid.UUID, reactions: Reactions
) -> list[str]:
    """Delete the user (their tables cascade); returns photo keys to remove from storage.

    Reactions run first: the cascade would remove rows without a word, and an open match must
    end the normal way, so the other side is told."""
    photo_keys = list(
        await db.scalars(
            select(AfterHoursProfile.photo_key).where(
                AfterHoursProfile.user_id == user_id, AfterHoursProfile.photo_key.is_not(None)
            )
        )
    )
    for react in reactions.account_deleting:
        await react(db, user_id=user_id)
    await db.execute(delete(User).where(User.id == user_id))
    return [key for key in photo_keys if key]


async def put_after_hours_profile(
    db: AsyncSession, *, user_id: uuid.UUID, description: str
) -> AfterHoursProfile:
    await check_base_profile(db, user_id=user_id)
    stmt = (
        insert(AfterHoursProfile)
        .values(user_id=user_id, description=description)
        .on_conflict_do_update(
            index_elements=[AfterHoursProfile.user_id],
            set_={"description": description, "updated_at": clock.now()},
        )
        .returning(AfterHoursProfile)
    )
    return (await db.scalars(stmt, execution_options={"populate_existing": True})).one()


async def set_photo(db: AsyncSession, *, user_id: uuid.UUID, photo_key: str) -> str | None:
    """Point the profile at a stored photo; returns the key it replaced, for deletion."""
    await check_base_profile(db, user_id=user_id)
    await db.execute(
        insert(AfterHoursProfile)
        .values(user_id=user_id, description="")
        .on_conflict_do_nothing(index_elements=[AfterHoursProfile.user_id])
    )
    # Locked, so two uploads racing each see the other's key as "previous" and none is orphaned.
    previous = await db.scalar(
        select(AfterHoursProfile.photo_key)
        .where(AfterHoursProfile.user_id == user_id)
        .with_for_update()
    )
    await db.execute(
        update(AfterHoursProfile)
        .where(AfterHoursProfile.user_id == user_id)
        .values(photo_key=photo_key, updated_at=clock.now())
    )
    return previous


async def has_after_hours_profile(db: AsyncSession, *, user_id: uuid.UUID) -> bool:
    found = await db.scalar(select(exists().where(AfterHoursProfile.user_id == user_id)))
    return bool(found)


async def check_base_profile(db: AsyncSession, *, user_id: uuid.UUID) -> None:
    if await db.get(Profile, user_id) is None:
        raise AppError("BASE_PROFILE_REQUIRED", "Create your base profile first")


async def get_after_hours_profile(db: AsyncSession, *, user_id: uuid.UUID) -> AfterHoursProfile:
    profile = await db.get(AfterHoursProfile, user_id)
    if profile is None:
        raise not_found("After Hours profile")
    return profile


async def delete_after_hours_profile(
    db: AsyncSession, *, user_id: uuid.UUID, reactions: Reactions
) -> str | None:
    """Delete the After Hours profile; returns its photo key for deletion from storage."""
    profile = await get_after_hours_profile(db, user_id=user_id)
    for react in reactions.profile_deleting:
        await react(db, user_id=user_id)
    await db.delete(profile)
    await db.flush()
    return profile.photo_key


async def put_preferences(
    db: AsyncSession,
    *,
    user_id: uuid.UUID,
    seeking_genders: list[str],
    min_age: int,
    max_age: int,
    max_distance_km: int,
) -> Preferences:
    values = {
        # Each gender once, in the one canonical order the defaults use too.
        "seeking_genders": [g for g in GENDERS if g in seeking_genders],
        "min_age": min_age,
        "max_age": max_age,
        "max_distance_km": max_distance_km,
    }
    stmt = (
        insert(Preferences)
        .values(user_id=user_id, **values)
        .on_conflict_do_update(index_elements=[Preferences.user_id], set_=values)
        .returning(Preferences)
    )
    return (await db.scalars(stmt, execution_options={"populate_existing": True})).one()


async def get_preferences(db: AsyncSession, *, user_id: uuid.UUID) -> Preferences:
    preferences = await db.get(Preferences, user_id)
    if preferences is not None:
        return preferences
    seeking, min_age, max_age, max_km = DEFAULT_PREFERENCES
    return Preferences(
        user_id=user_id,
        seeking_genders=list(seeking),
        min_age=min_age,
        max_age=max_age,
        max_distance_km=max_km,
    )


@dataclass(frozen=True)
class MatchingFacts:
    """What matching needs to know of a user: who they are and whom they seek."""

    user_id: uuid.UUID
    name: str
    gender: str
    birth_date: date
    description: str
    photo_key: str | None
    seeking_genders: list[str]
    min_age: int
    max_age: int
    max_distance_km: int


async def matching_facts(
    db: AsyncSession, *, user_ids: list[uuid.UUID]
) -> dict[uuid.UUID, MatchingFacts]:
    """Facts of every user in `user_ids` that has both profiles, in one query."""
    rows = await fetch_all(
        db,
        select(
            Profile.user_id,
            Profile.name,
            Profile.gender,
            Profile.birth_date,
            AfterHoursProfile.description,
            AfterHoursProfile.photo_key,
            Preferences.seeking_genders,
            Preferences.min_age,
            Preferences.max_age,
            Preferences.max_distance_km,
        )
        .join(AfterHoursProfile, AfterHoursProfile.user_id == Profile.user_id)
        .outerjoin(Preferences, Preferences.user_id == Profile.user_id)
        .where(any_of(Profile.user_id, user_ids, Uuid)),
    )
    facts = {}
    for user_id, name, gender, birth_date, description, photo_key, *prefs in rows:
        seeking, min_age, max_age, max_km = prefs if prefs[0] is not None else DEFAULT_PREFERENCES
        facts[user_id] = MatchingFacts(
            user_id=user_id,
            name=name,
            gender=gender,
            birth_date=birth_date,
            description=description,
            photo_key=photo_key,
            seeking_genders=list(seeking),
            min_age=min_age,
            max_age=max_age,
            max_distance_km=max_km,
        )
    return facts
