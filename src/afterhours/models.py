"""Every table, imported in one place so Alembic sees the whole schema."""

from afterhours.chat.models import Message
from afterhours.db import Base
from afterhours.matching.models import Decline, Match, Participant, PermanentMatch
from afterhours.moderation.models import Report
from afterhours.presence import ServingProcess, SocketPresence
from afterhours.profiles.models import AfterHoursProfile, Preferences, Profile
from afterhours.push.models import DeviceToken, PendingPush
from afterhours.realtime import UserEvent
from afterhours.safety.models import Block
from afterhours.sessions.models import Session
from afterhours.users import DeviceFingerprint, User

__all__ = [
    "AfterHoursProfile",
    "Base",
    "Block",
    "Decline",
    "Match",
    "Message",
    "Participant",
    "PermanentMatch",
    "DeviceFingerprint",
    "DeviceToken",
    "PendingPush",
    "Preferences",
    "Profile",
    "Report",
    "ServingProcess",
    "SocketPresence",
    "Session",
    "User",
    "UserEvent",
]
