import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from afterhours.realtime import ServerEvent
from afterhours.schemas import Ok, WireModel

DurationMinutes = Literal[15, 30, 60]


class StartIn(WireModel):
    duration: DurationMinutes
    latitude: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
    longitude: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


class ExtendIn(WireModel):
    additional_minutes: DurationMinutes


class StartedSession(WireModel):
    id: uuid.UUID
    started_at: datetime
    expires_at: datetime
    duration_minutes: int


class StartResponse(Ok):
    session: StartedSession


class ExtendedSession(WireModel):
    id: uuid.UUID
    expires_at: datetime
    extended_by_minutes: int


class ExtendResponse(Ok):
    session: ExtendedSession


class SessionStatus(WireModel):
    id: uuid.UUID
    started_at: datetime
    expires_at: datetime
    remaining_seconds: int


class StatusResponse(Ok):
    active: bool
    session: SessionStatus | None


class SessionExpiring(ServerEvent):
    name = "after_hours:session_expiring"
    session_id: uuid.UUID
    expires_at: datetime
    minutes_remaining: int = 2


class SessionExpired(ServerEvent):
    name = "after_hours:session_expired"
    session_id: uuid.UUID
    reason: Literal["timeout"] = "timeout"
