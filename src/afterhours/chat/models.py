import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from afterhours.db import Base

MAX_CONTENT = 1000
MAX_CLIENT_MESSAGE_ID = 128


class Message(Base):
    """One chat message of a match. Server-side only: its content is never logged."""

    __tablename__ = "after_hours_messages"
    __table_args__ = (
        # A resend with the same clientMessageId finds this row instead of storing a copy.
        # NULLs are distinct, so messages sent without an id never collide.
        UniqueConstraint("match_id", "sender_id", "client_message_id"),
        # History pages: a match's messages in (created_at, id) order, read backwards.
        Index("ix_after_hours_messages_match_created", "match_id", "created_at", "id"),
        # The API trims and checks 1-1,000 characters; the table holds the line too.
        CheckConstraint("char_length(content) >= 1", name="content_not_empty"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    match_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("after_hours_matches.id", ondelete="CASCADE")
    )
    # No foreign key on purpose: a match held by an open safety report keeps its messages, and
    # who sent each, after the sender deletes their account (CONTRACT: the one exception to
    # "their data goes with them"). Every other message goes with its match (the FK above).
    sender_id: Mapped[uuid.UUID] = mapped_column()
    content: Mapped[str] = mapped_column(String(MAX_CONTENT))
    client_message_id: Mapped[str | None] = mapped_column(String(MAX_CLIENT_MESSAGE_ID))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MessageRejection(Base):
    """A message the screen refused: who, in which match, by which rule — never its content.
    Moderators see the count per user."""

    __tablename__ = "after_hours_message_rejections"

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    # No foreign keys, like a message's sender: the count stays with a report's evidence.
    sender_id: Mapped[uuid.UUID] = mapped_column(index=True)
    match_id: Mapped[uuid.UUID]
    rule: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
