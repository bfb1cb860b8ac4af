"""People who can be matched, a matched pair, the open match as REST shows it, and a match
attempt run by the test itself (on a server without a worker)."""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from afterhours import realtime
from afterhours.db import Database
from afterhours.matching import sweep
from afterhours.settings import Settings
from afterhours.storage import LocalStorage
from tests.support.clients import Recorder, User
from tests.support.sessions import BASE_PROFILE

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


async def matchable_user(client: httpx.AsyncClient, user: User, place: tuple[float, float]) -> User:
    """`user` with both profiles (default preferences: anyone 18-99 within 25 km), at `place`."""
    r = await client.put("/api/profile", json=BASE_PROFILE, headers=user.headers)
    assert r.status_code == 200, r.text
    about = {"description": "x"}
    r = await client.put("/api/after-hours/profile", json=about, headers=user.headers)
    assert r.status_code == 200, r.text
    user.place = place
    return user


async def sweep_once(settings: Settings, *, focus_user: uuid.UUID) -> None:
    """A match attempt for `focus_user`, as the worker's job would run it, events included."""
    assert settings.database_url
    database = Database(settings.database_url, outbox=realtime.external_emitter(settings))
    try:
        async with database.transaction() as db:
            await sweep.sweep(
                db, settings=settings, storage=LocalStorage(settings), focus_user=focus_user
            )
    finally:
        await database.dispose()
