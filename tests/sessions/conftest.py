from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.conftest import User, random_place

BASE_PROFILE = {"name": "Alex", "birthDate": "1994-06-01", "gender": "man"}


@pytest.fixture
def ready_user(
    client: httpx.AsyncClient, make_user: Callable[..., User]
) -> Callable[..., Awaitable[User]]:
    """A premium user with a base and an After Hours profile: able to start a session."""

    async def make(**profile: Any) -> User:
        user = make_user()
        r = await client.put("/api/profile", json={**BASE_PROFILE, **profile}, headers=user.headers)
        assert r.status_code == 200, r.text
        r = await client.put(
            "/api/after-hours/profile", json={"description": "hi"}, headers=user.headers
        )
        assert r.status_code == 200, r.text
        user.place = random_place()
        return user

    return make


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
