import uuid
from datetime import datetime
from typing import Literal

from afterhours.matching.models import ClosedStatus, MatchStatus
from afterhours.realtime import ServerEvent
from afterhours.schemas import Ok, WireModel


class Card(WireModel):
    """The other user, as the match shows them."""

    user_id: uuid.UUID
    name: str
    age: int
    photo_url: str | None
    description: str
    distance_km: int


class MatchOut(WireModel):
    id: uuid.UUID
    status: MatchStatus
    created_at: datetime
    auto_decline_at: datetime
    accepted_by_me: bool
    accepted_by_them: bool
    saved_by_me: bool
    saved_by_them: bool
    permanent_match_id: uuid.UUID | None
    profile: Card


class MatchResponse(Ok):
    match: MatchOut


class OpenMatchResponse(Ok):
    match: MatchOut | None


class MatchDelivered(MatchOut, ServerEvent):
    name = "after_hours:match"


class NoMatches(ServerEvent):
    name = "after_hours:no_matches"
    session_id: uuid.UUID
    active_users_nearby: int


class MatchAccepted(ServerEvent):
    name = "after_hours:match_accepted"
    match_id: uuid.UUID
    by: Literal["me", "them"]


class ChatOpen(ServerEvent):
    name = "after_hours:chat_open"
    match_id: uuid.UUID


class MatchClosed(ServerEvent):
    name = "after_hours:match_closed"
    match_id: uuid.UUID
    status: ClosedStatus
    reason: str


class MatchSaved(ServerEvent):
    name = "after_hours:match_saved"
    match_id: uuid.UUID
    permanent_match_id: uuid.UUID
