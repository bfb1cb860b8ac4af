"""Chat tests: two people in an active match, talking over real sockets and REST."""

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx
import psycopg
import pytest

from afterhours import clock
from afterhours.clock import FrozenClock
from afterhours.settings import Settings
from tests.conftest import Recorder
from tests.matching.conftest import (  # noqa: F401 (fixtures)
    MakePair,
    Pair,
    Person,
    database,
    go,
    matched,
    person,
)

MATCH = "after_hours:match"
MESSAGE = "after_hours:message"
TYPING = "after_hours:typing"
SAVED = "after_hours:match_saved"
CLOSED = "after_hours:match_closed"
NO_MATCHES = "after_hours:no_matches"


Chat = Pair
MakeChat = Callable[..., Awaitable[Chat]]


@pytest.fixture
def make_chat(client: httpx.AsyncClient, matched: MakePair) -> MakeChat:  # noqa: F811
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


async def send(recorder: Recorder, match_id: str, content: str, **extra: Any) -> dict[str, Any]:
    """after_hours:send_message over the socket; returns the ack."""
    ack: dict[str, Any] = await recorder.client.call(
        "after_hours:send_message", {"matchId": match_id, "content": content, **extra}, timeout=10
    )
    return ack


@pytest.fixture
async def sql(base_settings: Settings) -> AsyncIterator[Callable[..., Awaitable[list[Any]]]]:
    """Run SQL on the test database directly (to look behind the API, or age a row)."""
    assert base_settings.database_url
    conn = await psycopg.AsyncConnection.connect(base_settings.database_url, autocommit=True)

    async def run(query: str, *params: Any) -> list[Any]:
        named = len(params) == 1 and isinstance(params[0], dict)
        cursor = await conn.execute(query, params[0] if named else params)
        return await cursor.fetchall() if cursor.description else []

    yield run
    await conn.close()


@contextmanager
def frozen_at(at: datetime) -> Iterator[None]:
    """The service's clock at `at`, just for the block (the server in this process sees it too,
    so keep the block to the service calls under test)."""
    previous = clock.set_clock(FrozenClock(at))
    try:
        yield
    finally:
        clock.set_clock(previous)
