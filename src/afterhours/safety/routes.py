import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from afterhours.auth import DB, PremiumUser
from afterhours.limits import counted
from afterhours.openapi import errors
from afterhours.safety import service
from afterhours.schemas import MessageResponse, WireModel

router = APIRouter(prefix="/api/after-hours", tags=["safety"])


def get_reactions(request: Request) -> service.Reactions:
    reactions: service.Reactions = request.app.state.lifecycle.safety
    return reactions


Reactions = Annotated[service.Reactions, Depends(get_reactions)]


class BlockIn(WireModel):
    user_id: uuid.UUID


@router.post(
    "/blocks",
    status_code=201,
    responses=errors(400, 401, 403, 404, 429),
    dependencies=[counted("blocks", "blocks")],
)
async def block(body: BlockIn, user: PremiumUser, db: DB, reactions: Reactions) -> MessageResponse:
    await service.block(db, blocker_id=user.user_id, blocked_id=body.user_id, reactions=reactions)
    return MessageResponse(message="User blocked")


@router.delete("/blocks/{user_id}", responses=errors(400, 401, 403, 404))
async def unblock(user_id: uuid.UUID, user: PremiumUser, db: DB) -> MessageResponse:
    await service.unblock(db, blocker_id=user.user_id, blocked_id=user_id)
    return MessageResponse(message="Block lifted")
