"""People who can be matched, a matched pair, and the open match as REST shows it."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.clients import Recorder, User

Person = Callable[..., Awaitable[User]]


@dataclass
class Pair:
    """Two people at a fresh spot, both in session and matched (pending), sockets open."""

    a: User
    b: User
    sa: Recorder
    sb: Recorder
    match_id: str

    def path(self, tail: str = "") -> str:
        return f"/api/after-hours/matches/{self.match_id}{tail}"


MakePair = Callable[[], Awaitable[Pair]]


async def open_match(client: httpx.AsyncClient, user: User) -> dict[str, Any] | None:
    r = await client.get("/api/after-hours/match", headers=user.headers)
    assert r.status_code == 200, r.text
    match: dict[str, Any] | None = r.json()["match"]
    return match
