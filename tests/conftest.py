"""Tests run the real app on a real port against a real embedded PostgreSQL.

Fixtures only; the helpers they use (and tests use) live in tests/support."""

import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import psycopg
import pytest

from afterhours import migrations
from afterhours.auth import TokenVerifier
from afterhours.db import Database
from afterhours.limits import Limiter
from afterhours.settings import Settings
from tests.support.chat import Chat, MakeChat, Sql
from tests.support.clients import Recorder, User, socket_of
from tests.support.events import MATCH
from tests.support.matching import (
    MakePair,
    Pair,
    Person,
    matchable_user,
    open_match,
    sweep_once,
)
from tests.support.places import random_place
from tests.support.server import (
    TEST_SECRET,
    embedded_server_url,
    fresh_database,
    running_server,
    settings_for,
)
from tests.support.sessions import go


@pytest.fixture(scope="session")
def database_url() -> Any:
    """A fresh database for this run on the embedded server (kept apart from `make run`'s)."""
    name = f"afterhours_test_{os.getpid()}"
    admin_url = embedded_server_url()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.replace("/postgres?", f"/{name}?")
    migrations.upgrade(url)
    yield url
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def isolated_url() -> Any:
    """A database of its own, so no other test's worker touches these jobs."""
    with fresh_database("afterhours_workers") as url:
        yield url


@pytest.fixture(scope="session")
def base_settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # One session-minute is half a second: a 15-minute session lasts 7.5 s, its warning comes 1 s
    # before the end. Every test places its users at a random spot on the globe, so tests running
    # against the one shared worker never see each other's users.
    return Settings(
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("data"),
        jwt_secret=TEST_SECRET,
        session_minute_seconds=0.5,
        worker_poll_seconds=0.1,
        match_delay_start_seconds=0.2,
        match_delay_decline_seconds=0.2,
        match_sweep_seconds=1.0,
        auto_decline_seconds=4.0,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture(scope="session")
async def base_url(base_settings: Settings) -> AsyncIterator[str]:
    async with running_server(base_settings, with_worker=True) as url:
        yield url


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as c:
        yield c


@pytest.fixture(scope="session")
def verifier(base_settings: Settings) -> TokenVerifier:
    return TokenVerifier(base_settings)


@pytest.fixture
def make_user(verifier: TokenVerifier) -> Callable[..., User]:
    def make(*, premium: bool = True, admin: bool = False) -> User:
        return User(verifier, premium=premium, admin=admin)

    return make


@pytest.fixture
async def connect(base_url: str) -> AsyncIterator[Callable[..., Any]]:
    recorders: list[Recorder] = []

    async def open_socket(user: User, **auth: Any) -> Recorder:
        recorder = Recorder()
        await recorder.client.connect(
            base_url, auth={"token": user.token, **auth}, transports=["websocket"], wait_timeout=5
        )
        recorders.append(recorder)
        return recorder

    yield open_socket
    for recorder in recorders:
        await recorder.client.disconnect()


@pytest.fixture
async def database(base_settings: Settings) -> Any:
    """Direct access to the test database, for driving the service as a second worker would."""
    assert base_settings.database_url
    db = Database(base_settings.database_url)
    yield db
    await db.dispose()


@pytest.fixture
def limiter(base_settings: Settings) -> Limiter:
    """The shared rate limits as the app counts them (PostgreSQL, in the caller's transaction)."""
    return Limiter.from_settings(base_settings)


@asynccontextmanager
async def sql_on(url: str) -> AsyncIterator[Sql]:
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)

    async def run(query: str, *params: Any) -> list[Any]:
        named = len(params) == 1 and isinstance(params[0], dict)
        cursor = await conn.execute(query, params[0] if named else params)
        return await cursor.fetchall() if cursor.description else []

    try:
        yield run
    finally:
        await conn.close()


@pytest.fixture
async def sql(base_settings: Settings) -> AsyncIterator[Sql]:
    """Run SQL on the test database directly (to look behind the API, or age a row)."""
    assert base_settings.database_url
    async with sql_on(base_settings.database_url) as run:
        yield run


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


@pytest.fixture
def matched(client: httpx.AsyncClient, person: Person, connect: Any) -> MakePair:
    async def make() -> Pair:
        here = random_place()
        a, b = await person(place=here), await person(place=here)
        sa, sb = await connect(a), await connect(b)
        await go(client, a)
        await go(client, b)
        match_id = (await sa.wait_for(MATCH))["id"]
        await sb.wait_for(MATCH)
        return Pair(a, b, sa, sb, match_id)

    return make


@pytest.fixture
def make_chat(client: httpx.AsyncClient, matched: MakePair) -> MakeChat:
    """Two people at a fresh spot, matched; both accepted (the chat is open) unless told not to."""

    async def make(*, accept: bool = True) -> Chat:
        chat = await matched()
        if accept:
            for user in (chat.a, chat.b):
                r = await client.post(chat.path("/accept"), headers=user.headers)
                assert r.status_code == 200, r.text
            await chat.sa.wait_for("after_hours:chat_open")
            await chat.sb.wait_for("after_hours:chat_open")
        return chat

    return make


# --- a server with no worker: nothing closes by a job, only by what the database says of time


@pytest.fixture(scope="session")
def idle_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings of a server on a database of its own that no worker ever runs on."""
    with fresh_database("afterhours_idle") as url:
        yield settings_for(url, tmp_path_factory.mktemp("idle"))


@pytest.fixture(scope="session")
async def idle_base_url(idle_settings: Settings) -> AsyncIterator[str]:
    async with running_server(idle_settings, with_worker=False) as url:
        yield url


@pytest.fixture
async def idle_client(idle_base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=idle_base_url, timeout=10) as c:
        yield c


@pytest.fixture
async def idle_sql(idle_settings: Settings) -> AsyncIterator[Sql]:
    assert idle_settings.database_url
    async with sql_on(idle_settings.database_url) as run:
        yield run


@pytest.fixture
async def idle_chat(
    idle_client: httpx.AsyncClient,
    idle_base_url: str,
    idle_settings: Settings,
    make_user: Callable[..., User],
) -> AsyncIterator[MakeChat]:
    """make_chat on the server with no worker: a sweep run here makes the match."""
    recorders: list[Recorder] = []

    async def make(*, accept: bool = True) -> Chat:
        here = random_place()
        people = [await matchable_user(idle_client, make_user(), here) for _ in range(2)]
        for user in people:
            recorders.append(await socket_of(idle_base_url, user))
            await go(idle_client, user)
        await sweep_once(idle_settings, focus_user=people[0].id)
        match = await open_match(idle_client, people[0])
        assert match is not None, "the sweep paired them"
        chat = Chat(*people, *recorders[-2:], match_id=match["id"])
        await chat.sa.wait_for(MATCH)
        await chat.sb.wait_for(MATCH)
        if accept:
            for user in people:
                r = await idle_client.post(chat.path("/accept"), headers=user.headers)
                assert r.status_code == 200, r.text
            await chat.sa.wait_for("after_hours:chat_open")
            await chat.sb.wait_for("after_hours:chat_open")
        return chat

    yield make
    for recorder in recorders:
        await recorder.client.disconnect()
