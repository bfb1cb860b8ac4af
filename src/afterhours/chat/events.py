"""Chat's Socket.IO handlers: send_message and typing, each answered through the ack (wired in
afterhours.wiring)."""

from typing import Any

import socketio
from sqlalchemy.ext.asyncio import AsyncSession

from afterhours import realtime, sockets
from afterhours.auth import Identity, check_premium
from afterhours.chat import service
from afterhours.chat.schemas import SendMessageIn, Typing, TypingIn
from afterhours.chat.writer import MessageWriter
from afterhours.limits import Limiter


def message_sender(writer: MessageWriter) -> sockets.Handler[SendMessageIn]:
    """Sends go through the writer, which owns their (shared) transactions."""

    async def send_message(identity: Identity, data: SendMessageIn) -> dict[str, Any]:
        check_premium(identity)
        message = await writer.send(
            service.Send(
                match_id=data.match_id,
                sender_id=identity.user_id,
                content=data.content,
                client_message_id=data.client_message_id,
            )
        )
        return {"message": message}

    return send_message


def typing_relay(sio: socketio.AsyncServer, limiter: Limiter) -> sockets.UnitHandler[TypingIn]:
    async def typing(db: AsyncSession, identity: Identity, data: TypingIn) -> dict[str, Any]:
        """Relay "typing" to the other participant's sockets, at most once per window of the
        typing limit (2 s) per user and match, on every process together; the rest are
        dropped silently, before any other work.

        The one event that bypasses the event log (realtime.emit): it is stale within seconds,
        so it is neither stored, nor numbered, nor replayed; a phone that misses it misses
        nothing. It still crosses processes, through the Socket.IO client manager."""
        check_premium(identity)
        # Counted and checked in one statement: a burst cannot pass between check and mark.
        key = f"{identity.user_id}:{data.match_id}"
        if not await limiter.throttle(db, limiter.limits.typing, key):
            return {}
        other = await service.typing_recipient(db, match_id=data.match_id, user_id=identity.user_id)
        event = Typing(match_id=data.match_id, user_id=identity.user_id)
        await sio.emit(
            Typing.name, event.model_dump(mode="json", by_alias=True), to=realtime.room(other)
        )
        return {}

    return typing
