"""Starting sessions over REST."""

from typing import Any

import httpx

from tests.support.clients import User
from tests.support.places import random_place

BASE_PROFILE = {"name": "Alex", "birthDate": "1994-06-01", "gender": "man"}


async def start(
    client: httpx.AsyncClient,
    user: User,
    *,
    duration: int = 15,
    place: tuple[float, float] | None = None,
) -> httpx.Response:
    lat, lon = place or user.place or random_place()
    return await client.post(
        "/api/after-hours/session/start",
        json={"duration": duration, "latitude": lat, "longitude": lon},
        headers=user.headers,
    )


async def go(client: httpx.AsyncClient, user: User, duration: int = 60) -> dict[str, Any]:
    """Start a session at the user's place (it must succeed); returns the session."""
    r = await start(client, user, duration=duration)
    assert r.status_code == 201, r.text
    session: dict[str, Any] = r.json()["session"]
    return session
