from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.support.clients import User
from tests.support.places import random_place
from tests.support.sessions import BASE_PROFILE


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
