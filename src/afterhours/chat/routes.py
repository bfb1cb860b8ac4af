import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from afterhours.auth import DB, PremiumUser
from afterhours.chat import service
from afterhours.chat.schemas import ChatMessageResponse, ChatMessagesResponse, MessageIn
from afterhours.errors import AppError, render
from afterhours.openapi import errors

router = APIRouter(prefix="/api/after-hours/matches", tags=["chat"])


@router.post(
    "/{match_id}/messages",
    status_code=201,
    response_model=ChatMessageResponse,
    responses=errors(400, 401, 403, 404, 409, 429),
)
async def send_message(
    match_id: uuid.UUID, body: MessageIn, request: Request, user: PremiumUser, db: DB
) -> Any:
    """Send a message (also `after_hours:send_message` over the socket). Both participants'
    devices receive it as `after_hours:message`; a resend with the same `clientMessageId`
    returns the stored message and sends nothing. 409 MATCH_NOT_OPEN unless the match is active
    or saved; 400 MESSAGE_REJECTED if moderation's screen refuses it; 429 RATE_LIMITED past
    the messages limit (10 in 10 s by default)."""
    state = request.app.state
    send = service.Send(
        match_id=match_id,
        sender_id=user.user_id,
        content=body.content,
        client_message_id=body.client_message_id,
    )
    result = await service.send_message(
        db, await service.screened(send, state.screen), limiter=state.limiter
    )
    if isinstance(result, AppError):
        return render(result)  # answered without rolling back: see service.send_message
    return ChatMessageResponse(message=result)


@router.get("/{match_id}/messages", responses=errors(400, 401, 403, 404, 409))
async def list_messages(
    match_id: uuid.UUID,
    user: PremiumUser,
    db: DB,
    before: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE_SIZE)] = service.PAGE_SIZE,
) -> ChatMessagesResponse:
    """The `limit` messages just older than message `before` (the latest without it), oldest
    first. Participants only, while the match is open or saved."""
    messages = await service.list_messages(
        db, match_id=match_id, user_id=user.user_id, before=before, limit=limit
    )
    return ChatMessagesResponse(messages=messages)
