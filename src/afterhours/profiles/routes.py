import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request

from afterhours import clock
from afterhours.auth import DB, CurrentUser, PremiumUser
from afterhours.errors import validation_error
from afterhours.openapi import errors
from afterhours.profiles import photos, service, tasks
from afterhours.profiles.models import AfterHoursProfile, Preferences, Profile
from afterhours.profiles.schemas import (
    AfterHoursProfileIn,
    AfterHoursProfileOut,
    AfterHoursProfileResponse,
    PhotoResponse,
    PreferencesIn,
    PreferencesOut,
    PreferencesResponse,
    ProfileIn,
    ProfileOut,
    ProfileResponse,
)
from afterhours.schemas import MessageResponse
from afterhours.storage import PhotoStorage

router = APIRouter(prefix="/api")


def get_storage(request: Request) -> PhotoStorage:
    storage: PhotoStorage = request.app.state.storage
    return storage


Storage = Annotated[PhotoStorage, Depends(get_storage)]


def get_reactions(request: Request) -> service.Reactions:
    reactions: service.Reactions = request.app.state.lifecycle.profiles
    return reactions


Reactions = Annotated[service.Reactions, Depends(get_reactions)]


def profile_out(profile: Profile) -> ProfileOut:
    return ProfileOut(
        user_id=profile.user_id,
        name=profile.name,
        birth_date=profile.birth_date,
        age=service.age_on(profile.birth_date, clock.now().date()),
        gender=profile.gender,
    )


def after_hours_profile_out(
    profile: AfterHoursProfile, storage: PhotoStorage
) -> AfterHoursProfileOut:
    return AfterHoursProfileOut(
        user_id=profile.user_id,
        description=profile.description,
        photo_url=storage.url(profile.photo_key) if profile.photo_key else None,
        created_at=profile.created_at,
        updated_at=profile.updated_at,
    )


def preferences_out(preferences: Preferences) -> PreferencesOut:
    return PreferencesOut.model_validate(preferences, from_attributes=True)


@router.put("/profile", responses=errors(400, 401))
async def put_profile(body: ProfileIn, user: CurrentUser, db: DB) -> ProfileResponse:
    profile = await service.put_profile(db, user_id=user.user_id, **body.model_dump())
    return ProfileResponse(profile=profile_out(profile))


@router.get("/profile", responses=errors(401, 404))
async def get_profile(user: CurrentUser, db: DB) -> ProfileResponse:
    profile = await service.get_profile(db, user_id=user.user_id)
    return ProfileResponse(profile=profile_out(profile))


@router.delete("/account", responses=errors(401))
async def delete_account(
    user: CurrentUser, db: DB, storage: Storage, reactions: Reactions
) -> MessageResponse:
    photo_keys = await service.delete_account(db, user_id=user.user_id, reactions=reactions)
    await tasks.delete_later(db, photo_keys)
    return MessageResponse(message="Account deleted")


@router.put("/after-hours/profile", responses=errors(400, 401, 403))
async def put_after_hours_profile(
    body: AfterHoursProfileIn, user: PremiumUser, db: DB, storage: Storage
) -> AfterHoursProfileResponse:
    profile = await service.put_after_hours_profile(
        db, user_id=user.user_id, description=body.description
    )
    return AfterHoursProfileResponse(profile=after_hours_profile_out(profile, storage))


@router.put(
    "/after-hours/profile/photo",
    responses=errors(400, 401, 403, 413, 429),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                t: {"schema": {"type": "string", "format": "binary"}} for t in photos.ACCEPTED_TYPES
            },
        }
    },
)
async def put_photo(
    request: Request,
    user: PremiumUser,
    db: DB,
    storage: Storage,
    content_type: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> PhotoResponse:
    await service.check_base_profile(db, user_id=user.user_id)
    photos.count_upload(user.user_id)  # before the body is read: a refused upload costs nothing
    data = await request.body()
    if not data:
        raise validation_error("body", "Photo body is empty")
    clean = await photos.clean(data, content_type or "")
    key = f"{user.user_id}/{uuid.uuid4()}.jpg"
    await storage.put(key, clean, photos.OUTPUT_CONTENT_TYPE)
    previous = await service.set_photo(db, user_id=user.user_id, photo_key=key)
    if previous:
        await tasks.delete_later(db, [previous])
    return PhotoResponse(photo_url=storage.url(key))


@router.get("/after-hours/profile", responses=errors(401, 403, 404))
async def get_after_hours_profile(
    user: PremiumUser, db: DB, storage: Storage
) -> AfterHoursProfileResponse:
    profile = await service.get_after_hours_profile(db, user_id=user.user_id)
    return AfterHoursProfileResponse(profile=after_hours_profile_out(profile, storage))


@router.delete("/after-hours/profile", responses=errors(401, 403, 404))
async def delete_after_hours_profile(
    user: PremiumUser, db: DB, storage: Storage, reactions: Reactions
) -> MessageResponse:
    photo_key = await service.delete_after_hours_profile(
        db, user_id=user.user_id, reactions=reactions
    )
    if photo_key:
        await tasks.delete_later(db, [photo_key])
    return MessageResponse(message="After Hours profile deleted")


@router.put("/after-hours/preferences", responses=errors(400, 401, 403))
async def put_preferences(body: PreferencesIn, user: PremiumUser, db: DB) -> PreferencesResponse:
    preferences = await service.put_preferences(db, user_id=user.user_id, **body.model_dump())
    return PreferencesResponse(preferences=preferences_out(preferences))


@router.get("/after-hours/preferences", responses=errors(401, 403))
async def get_preferences(user: PremiumUser, db: DB) -> PreferencesResponse:
    preferences = await service.get_preferences(db, user_id=user.user_id)
    return PreferencesResponse(preferences=preferences_out(preferences))
