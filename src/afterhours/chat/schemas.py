import uuid
from datetime import datetime
from typing import Annotated, TypedDict

from pydantic import StringConstraints

from afterhours.chat.models import MAX_CLIENT_MESSAGE_ID, MAX_CONTENT
from afterhours.realtime import ServerEvent
from afterhours.schemas import DisplayText, Ok, WireModel

# Trimmed first, so "   " is empty (refused) and the 1,000 limit counts what is stored.
Content = Annotated[DisplayText, StringConstraints(min_length=1, max_length=MAX_CONTENT)]
ClientMessageId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CLIENT_MESSAGE_ID)]


class MessageIn(WireModel):
    content: Content
    client_message_id: ClientMessageId | None = None


class SendMessageIn(MessageIn):
    """`after_hours:send_message` over the socket: the REST body plus the match."""

    match_id: uuid.UUID


class TypingIn(WireModel):
    match_id: uuid.UUID


class MessageOut(WireModel):
    id: uuid.UUID
    match_id: uuid.UUID
    sender_id: uuid.UUID
    content: str
    created_at: datetime
    client_message_id: str | None


class MessageWire(TypedDict):
    """A stored message in wire form: MessageOut's JSON (`model_dump(mode="json",
    by_alias=True)`), built without a model on chat's hot path (a socket send builds its ack and
    both events from it). tests/chat/test_writer.py holds the two to the same output."""

    id: str
    matchId: str
    senderId: str
    content: str
    createdAt: str
    clientMessageId: str | None


class ChatMessageResponse(Ok):
    message: MessageOut


class ChatMessagesResponse(Ok):
    messages: list[MessageOut]


class MessageSent(MessageOut, ServerEvent):
    name = "after_hours:message"


class Typing(ServerEvent):
    """Relayed straight to the other participant's sockets: never stored, carries no seq."""

    name = "after_hours:typing"
    match_id: uuid.UUID
    user_id: uuid.UUID
