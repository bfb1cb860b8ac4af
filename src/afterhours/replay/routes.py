"""Missed events, by seq: what a client that was away asks for before going live again."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from afterhours import realtime
from afterhours.auth import DB, PremiumUser
from afterhours.openapi import errors
from afterhours.schemas import Ok, WireModel

router = APIRouter(prefix="/api/after-hours", tags=["events"])


class EventOut(WireModel):
    seq: int
    event: str
    data: dict[str, Any]
    created_at: datetime


class EventsResponse(Ok):
    events: list[EventOut]


@router.get("/events", responses=errors(400, 401, 403))
async def events(
    user: PremiumUser,
    db: DB,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
) -> EventsResponse:
    rows = await realtime.events_after(db, user_id=user.user_id, after=after, limit=limit)
    return EventsResponse(
        events=[
            EventOut(
                seq=r.seq, event=r.event, data={**r.data, "seq": r.seq}, created_at=r.created_at
            )
            for r in rows
        ]
    )
