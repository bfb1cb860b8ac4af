from typing import Annotated

from fastapi import APIRouter, Depends, Request

from afterhours import clock
from afterhours.auth import DB, PremiumUser
from afterhours.limits import counted
from afterhours.openapi import errors
from afterhours.schemas import MessageResponse
from afterhours.sessions import service
from afterhours.sessions.schemas import (
    ExtendedSession,
    ExtendIn,
    ExtendResponse,
    SessionStatus,
    StartedSession,
    StartIn,
    StartResponse,
    StatusResponse,
)

router = APIRouter(prefix="/api/after-hours/session", tags=["sessions"])


def get_reactions(request: Request) -> service.Reactions:
    reactions: service.Reactions = request.app.state.lifecycle.sessions
    return reactions


Reactions = Annotated[service.Reactions, Depends(get_reactions)]


@router.post(
    "/start",
    status_code=201,
    responses=errors(400, 401, 403, 409, 429),
    dependencies=[counted("session starts", "session_starts_hourly", "session_starts_daily")],
)
async def start(
    body: StartIn, request: Request, user: PremiumUser, db: DB, reactions: Reactions
) -> StartResponse:
    state = request.app.state
    session = await service.start_session(
        db,
        settings=state.settings,
        location_secret=state.location_secret,
        user_id=user.user_id,
        duration_minutes=body.duration,
        latitude=body.latitude,
        longitude=body.longitude,
        fingerprint_hash=request.state.fingerprint_hash,
        reactions=reactions,
    )
    return StartResponse(session=StartedSession.model_validate(session, from_attributes=True))


@router.post("/end", responses=errors(401, 403, 404))
async def end(user: PremiumUser, db: DB, reactions: Reactions) -> MessageResponse:
    await service.end_session(db, user_id=user.user_id, reactions=reactions)
    return MessageResponse(message="Session ended")


@router.post("/extend", responses=errors(400, 401, 403, 404, 409))
async def extend(body: ExtendIn, request: Request, user: PremiumUser, db: DB) -> ExtendResponse:
    session = await service.extend_session(
        db,
        settings=request.app.state.settings,
        user_id=user.user_id,
        additional_minutes=body.additional_minutes,
    )
    return ExtendResponse(
        session=ExtendedSession(
            id=session.id,
            expires_at=session.expires_at,
            extended_by_minutes=body.additional_minutes,
        )
    )


@router.get("", responses=errors(401, 403))
async def status(user: PremiumUser, db: DB) -> StatusResponse:
    session = await service.active_session(db, user_id=user.user_id)
    if session is None:
        return StatusResponse(active=False, session=None)
    remaining = max(0, int((session.expires_at - clock.now()).total_seconds()))
    return StatusResponse(
        active=True,
        session=SessionStatus(
            id=session.id,
            started_at=session.started_at,
            expires_at=session.expires_at,
            remaining_seconds=remaining,
        ),
    )
