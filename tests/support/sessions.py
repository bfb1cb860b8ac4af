"""Starting sessions over REST."""

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tests.support.clients import User
from tests.support.places import random_place

BASE_PROFILE = {"name": "Alex", "birthDate": "1994-06-01", "gender": "man"}


async def set_up(
    client: httpx.AsyncClient, user: User, profile: dict[str, str] = BASE_PROFILE
) -> None:
    """Give `user` the profiles and preferences a session needs: a man seeking men within
    25 km, unless `profile` says otherwise (so any two such people can be paired)."""
    r = await client.put("/api/profile", json=profile, headers=user.headers)
    assert r.is_success, r.text
    r = await client.put(
        "/api/after-hours/profile", json={"description": "x"}, headers=user.headers
    )
    assert r.is_success, r.text
    prefs = {"seekingGenders": ["man"], "minAge": 18, "maxAge": 99, "maxDistanceKm": 25}
    r = await client.put("/api/after-hours/preferences", json=prefs, headers=user.headers)
    assert r.is_success, r.text


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


async def lapse(sql: Callable[..., Awaitable[list[Any]]], *users: User) -> None:
    """Move the users' open sessions' `expires_at` into the past, as if their time ran out with
    no job run since."""
    await sql(
        "UPDATE after_hours_sessions SET expires_at = now() - interval '1 second'"
        " WHERE user_id = ANY(%s) AND ended_at IS NULL",
        [user.id for user in users],
    )
