import uuid

from fastapi import APIRouter

from afterhours.auth import DB, PremiumUser
from afterhours.openapi import errors
from afterhours.profiles.schemas import MessageResponse
from afterhours.safety import service
from afterhours.schemas import WireModel

router = APIRouter(prefix="/api/after-hours", tags=["safety"])


class BlockIn(WireModel):
    user_id: uuid.UUID


@router.post("/blocks", status_code=201, responses=errors(400, 401, 403, 404))
async def block(body: BlockIn, user: PremiumUser, db: DB) -> MessageResponse:
    await service.block(db, blocker_id=user.user_id, blocked_id=body.user_id)
    return MessageResponse(message="User blocked")


@router.delete("/blocks/{user_id}", responses=errors(400, 401, 403, 404))
async def unblock(user_id: uuid.UUID, user: PremiumUser, db: DB) -> MessageResponse:
    await service.unblock(db, blocker_id=user.user_id, blocked_id=user_id)
    return MessageResponse(message="Block lifted")
