from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import Field

from afterhours.auth import DB, CurrentUser, PremiumUser
from afterhours.openapi import errors
from afterhours.push import service
from afterhours.push.models import MAX_TOKEN_LENGTH, Platform
from afterhours.schemas import Ok, WireModel

router = APIRouter(prefix="/api/after-hours", tags=["push"])

# Printable ASCII without spaces: what APNs and FCM tokens are made of.
TOKEN_PATTERN = r"^[\x21-\x7e]+$"
Token = Annotated[str, Field(min_length=1, max_length=MAX_TOKEN_LENGTH, pattern=TOKEN_PATTERN)]


class DeviceIn(WireModel):
    platform: Platform
    token: Token


@router.put("/devices", responses=errors(400, 401, 403, 413))
async def register_device(body: DeviceIn, user: PremiumUser, db: DB) -> Ok:
    """Push this phone's events here while the app has no socket open. Idempotent."""
    await service.register_device(
        db, user_id=user.user_id, platform=body.platform, token=body.token
    )
    return Ok()


@router.delete("/devices/{token}", responses=errors(400, 401))
async def remove_device(
    token: Annotated[str, Path(min_length=1, max_length=MAX_TOKEN_LENGTH, pattern=TOKEN_PATTERN)],
    user: CurrentUser,
    db: DB,
) -> Ok:
    """Stop pushing to this phone (at sign-out; allowed without premium). Idempotent."""
    await service.remove_device(db, user_id=user.user_id, token=token)
    return Ok()
