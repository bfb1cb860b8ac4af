import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import Field, StringConstraints, ValidationInfo, field_validator

from afterhours.profiles.models import Gender
from afterhours.schemas import DisplayLine, DisplayText, Ok, WireModel

Age = Annotated[int, Field(ge=18, le=99)]


class ProfileIn(WireModel):
    name: Annotated[DisplayLine, StringConstraints(min_length=1, max_length=100)]
    birth_date: date
    gender: Gender


class ProfileOut(WireModel):
    user_id: uuid.UUID
    name: str
    birth_date: date
    age: int
    gender: Gender


class ProfileResponse(Ok):
    profile: ProfileOut


class AfterHoursProfileIn(WireModel):
    description: Annotated[DisplayText, StringConstraints(max_length=500)]


class AfterHoursProfileOut(WireModel):
    user_id: uuid.UUID
    description: str
    photo_url: str | None
    created_at: datetime
    updated_at: datetime


class AfterHoursProfileResponse(Ok):
    profile: AfterHoursProfileOut


class PhotoResponse(Ok):
    photo_url: str


class PreferencesIn(WireModel):
    seeking_genders: Annotated[list[Gender], Field(min_length=1, max_length=3)]
    min_age: Age
    max_age: Age
    max_distance_km: Annotated[int, Field(ge=1, le=100)]

    @field_validator("max_age")
    @classmethod
    def check_age_order(cls, max_age: int, info: ValidationInfo) -> int:
        min_age = info.data.get("min_age")
        if min_age is not None and min_age > max_age:
            raise ValueError("maxAge must not be below minAge")
        return max_age


class PreferencesOut(WireModel):
    seeking_genders: list[Gender]
    min_age: int
    max_age: int
    max_distance_km: int


class PreferencesResponse(Ok):
    preferences: PreferencesOut
