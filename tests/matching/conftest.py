from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from afterhours.db import Database
from afterhours.settings import Settings
from tests.conftest import Recorder, User, random_place
from tests.sessions.conftest import start

Person = Callable[..., Awaitable[User]]


@pytest.fixture
def person(client: httpx.AsyncClient, make_user: Callable[..., User]) -> Person:
    """A premium user with profiles and preferences, placed at `place` (a fresh spot if unset)."""

    async def make(
        gender: str = "nonbinary",
        *,
        birth_date: str = "1995-01-01",
        seeking: list[str] | None = None,
        min_age: int = 18,
        max_age: int = 99,
        max_km: int = 25,
        place: tuple[float, float] | None = None,
    ) -> User:
        user = make_user()
        h = user.headers
        profile = {"name": f"P{str(user.id)[:4]}", "birthDate": birth_date, "gender": gender}
        assert (await client.put("/api/profile", json=profile, headers=h)).status_code == 200
        r = await client.put("/api/after-hours/profile", json={"description": "hey"}, headers=h)
        assert r.status_code == 200
        prefs = {
            "seekingGenders": seeking or ["man", "woman", "nonbinary"],
            "minAge": min_age,
            "maxAge": max_age,
            "maxDistanceKm": max_km,
        }
        r = await client.put("/api/after-hours/preferences", json=prefs, headers=h)
        assert r.status_code == 200, r.text
        user.place = place or random_place()
        return user

    return make


async def go(client: httpx.AsyncClient, user: User, duration: int = 60) -> dict[str, Any]:
    r = await start(client, user, duration=duration)
    assert r.status_code == 201, r.text
    session: dict[str, Any] = r.json()["session"]
    return session


async def open_match(client: httpx.AsyncClient, user: User) -> dict[str, Any] | None:
    r = await client.get("/api/after-hours/match", headers=user.headers)
    assert r.status_code == 200, r.text
    match: dict[str, Any] | None = r.json()["match"]
    return match


@pytest.fixture
async def database(base_settings: Settings) -> Any:
    """Direct access to the test database, for driving the service as a second worker would."""
    assert base_settings.database_url
    db = Database(base_settings.database_url)
    yield db
    await db.dispose()


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


@pytest.fixture
def matched(client: httpx.AsyncClient, person: Person, connect: Any) -> MakePair:
    async def make() -> Pair:
        here = random_place()
        a, b = await person(place=here), await person(place=here)
        sa, sb = await connect(a), await connect(b)
        await go(client, a)
        await go(client, b)
        match_id = (await sa.wait_for("after_hours:match"))["id"]
        await sb.wait_for("after_hours:match")
        return Pair(a, b, sa, sb, match_id)

    return make
