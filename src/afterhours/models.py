"""Every table, imported in one place so Alembic sees the whole schema."""

from afterhours.bans import DeviceBan, UserBan
from afterhours.chat.models import Message, MessageRejection
from afterhours.db import Base
from afterhours.limits import RateCount, Throttle
from afterhours.matching.models import Decline, Match, Participant, PermanentMatch
from afterhours.moderation.models import ModerationAction, Report
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
    "DeviceBan",
    "Match",
    "Message",
    "MessageRejection",
    "ModerationAction",
    "Participant",
    "PermanentMatch",
    "DeviceFingerprint",
    "DeviceToken",
    "PendingPush",
    "Preferences",
    "Profile",
    "RateCount",
    "Report",
    "ServingProcess",
    "SocketPresence",
    "Session",
    "Throttle",
    "User",
    "UserBan",
    "UserEvent",
]
