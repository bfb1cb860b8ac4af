"""Every table, imported in one place so Alembic sees the whole schema."""

from afterhours.db import Base
from afterhours.profiles.models import AfterHoursProfile, Preferences, Profile
from afterhours.realtime import UserEvent
from afterhours.sessions.models import Session
from afterhours.users import DeviceFingerprint, User

__all__ = [
    "AfterHoursProfile",
    "Base",
    "DeviceFingerprint",
    "Preferences",
    "Profile",
    "Session",
    "User",
    "UserEvent",
]
