import uuid

from fastapi import APIRouter, Request

from afterhours.auth import DB, PremiumUser
from afterhours.matching import saving, service
from afterhours.matching.schemas import MatchResponse, OpenMatchResponse
from afterhours.openapi import errors

router = APIRouter(prefix="/api/after-hours", tags=["matches"])


@router.get("/match", responses=errors(401, 403))
async def current_match(request: Request, user: PremiumUser, db: DB) -> OpenMatchResponse:
    match = await service.open_match(db, storage=request.app.state.storage, user_id=user.user_id)
    return OpenMatchResponse(match=match)


@router.get("/matches/{match_id}", responses=errors(400, 401, 403, 404))
async def get_match(
    match_id: uuid.UUID, request: Request, user: PremiumUser, db: DB
) -> MatchResponse:
    match = await service.get_match(
        db, storage=request.app.state.storage, match_id=match_id, user_id=user.user_id
    )
    return MatchResponse(match=match)


@router.post("/matches/{match_id}/accept", responses=errors(400, 401, 403, 404, 409))
async def accept(match_id: uuid.UUID, request: Request, user: PremiumUser, db: DB) -> MatchResponse:
    match = await service.accept(
        db, storage=request.app.state.storage, match_id=match_id, user_id=user.user_id
    )
    return MatchResponse(match=match)


@router.post("/matches/{match_id}/decline", responses=errors(400, 401, 403, 404, 409))
async def decline(
    match_id: uuid.UUID, request: Request, user: PremiumUser, db: DB
) -> MatchResponse:
    state = request.app.state
    match = await service.decline(
        db,
        settings=state.settings,
        storage=state.storage,
        match_id=match_id,
        user_id=user.user_id,
    )
    return MatchResponse(match=match)


@router.post("/matches/{match_id}/save", responses=errors(400, 401, 403, 404, 409))
async def save(match_id: uuid.UUID, request: Request, user: PremiumUser, db: DB) -> MatchResponse:
    """Save an active match. Once both have saved, it becomes a permanent match
    (`after_hours:match_saved` to both) and its chat outlives the sessions."""
    state = request.app.state
    match = await saving.save(
        db,
        settings=state.settings,
        storage=state.storage,
        match_id=match_id,
        user_id=user.user_id,
    )
    return MatchResponse(match=match)
