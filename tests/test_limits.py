"""Shared rate limits: one sliding limit per key whether counted in PostgreSQL or Redis, a burst
across a window's edge still one burst, Redis down falling back to PostgreSQL, typing a throttle
that lets exactly one of a burst through, and the limited routes answering 429 with Retry-After.
"""

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from afterhours.db import Database
from afterhours.limits import Limit, Limiter, Limits, PostgresStore, RedisStore
from afterhours.settings import Settings
from tests.support.chat import MakeChat
from tests.support.clients import assert_error
from tests.support.events import TYPING
from tests.support.moderation import REPORTS
from tests.support.processes import redis_process, redis_url
from tests.support.server import free_port
from tests.support.sessions import set_up, start

FIVE_PER_SECOND = Limit("test", 5, 1)


@pytest.fixture(params=["postgres", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[object]:
    if request.param == "postgres":
        yield PostgresStore()
        return
    port = free_port()
    with redis_process(tmp_path, port):
        redis = RedisStore(redis_url(port), PostgresStore())
        yield redis
        await redis.aclose()


def limiter_on(store: object, base_settings: Settings) -> Limiter:
    return Limiter(Limits.from_settings(base_settings), store)  # type: ignore[arg-type]


async def take(database: Database, limiter: Limiter, key: str, n: int) -> list[int | None]:
    async with database.transaction() as db:
        return await limiter.take(db, [(FIVE_PER_SECOND, key)] * n)


async def just_after_a_window_starts(seconds: int) -> None:
    """Wait for the next window edge (windows are aligned on the epoch), so what follows
    straddles nothing by chance."""
    await asyncio.sleep(math.ceil(time.time() / seconds) * seconds - time.time() + 0.01)


async def test_a_batch_is_judged_hit_by_hit_and_a_burst_stays_one_across_a_windows_edge(
    store: object, base_settings: Settings, database: Database
) -> None:
    limiter = limiter_on(store, base_settings)
    key = str(uuid.uuid4())
    await just_after_a_window_starts(1)
    answers = await take(database, limiter, key, 7)
    assert answers[:5] == [None] * 5
    assert all(wait is not None and wait >= 1 for wait in answers[5:])
    # Into the next window at once: the burst still counts (fixed windows would let 5 more in).
    await just_after_a_window_starts(1)
    assert await take(database, limiter, key, 1) == [1]
    # Another key is not touched by this one's burst.
    assert await take(database, limiter, str(uuid.uuid4()), 5) == [None] * 5


async def test_counting_falls_back_to_postgres_when_redis_is_down(
    base_settings: Settings, database: Database, tmp_path: Path
) -> None:
    port = free_port()
    with redis_process(tmp_path, port):
        store = RedisStore(redis_url(port), PostgresStore())
    # Redis is stopped now: the limit is still counted, and holds.
    limiter = limiter_on(store, base_settings)
    key = str(uuid.uuid4())
    await just_after_a_window_starts(1)
    answers = await take(database, limiter, key, 6)
    assert answers[:5] == [None] * 5 and answers[5] is not None
    await store.aclose()


async def test_a_burst_of_typing_relays_exactly_once(make_chat: MakeChat) -> None:
    chat = await make_chat()
    acks = await asyncio.gather(
        *(
            chat.sa.client.call("after_hours:typing", {"matchId": chat.match_id}, timeout=10)
            for _ in range(20)
        )
    )
    assert all(ack == {"ok": True} for ack in acks)
    await chat.sb.wait_for(TYPING)
    # A message sent after the burst arrives after any relay of it: one relay, not several.
    ack = await chat.sa.client.call(
        "after_hours:send_message", {"matchId": chat.match_id, "content": "hi"}, timeout=10
    )
    assert ack["ok"]
    await chat.sb.wait_for("after_hours:message")
    assert len(chat.sb.named(TYPING)) == 1


async def test_session_starts_are_limited_per_hour(client, make_user, base_settings) -> None:
    hourly = Limit.parse("hourly", base_settings.limit_session_starts_hourly)
    user = make_user()
    await set_up(client, user)
    place = (12.5, 45.0)
    for _ in range(hourly.hits):
        assert (await start(client, user, place=place)).status_code == 201
        r = await client.post("/api/after-hours/session/end", headers=user.headers)
        assert r.status_code == 200
    r = await start(client, user, place=place)
    body = assert_error(r, 429, "RATE_LIMITED")
    assert 1 <= int(r.headers["Retry-After"]) <= 3600 and "session starts" in body["error"]


async def test_reports_and_blocks_are_limited(client, make_user, base_settings, sql) -> None:
    reporter = make_user()
    limit = Limit.parse("reports", base_settings.limit_reports).hits
    targets = [make_user() for _ in range(limit + 1)]
    for target in targets:  # each exists once it has made a request
        r = await client.get("/api/after-hours/session", headers=target.headers)
        assert r.status_code == 200
    for target in targets[:limit]:
        body = {"reportedUserId": str(target.id), "category": "spam"}
        assert (await client.post(REPORTS, json=body, headers=reporter.headers)).status_code == 201
    body = {"reportedUserId": str(targets[-1].id), "category": "spam"}
    r = await client.post(REPORTS, json=body, headers=reporter.headers)
    assert_error(r, 429, "RATE_LIMITED")
    assert int(r.headers["Retry-After"]) >= 1
    assert await sql(
        "SELECT count(*) FROM after_hours_reports WHERE reporter_id = %s", reporter.id
    ) == [(limit,)]
    blocker = make_user()
    blocks = Limit.parse("blocks", base_settings.limit_blocks).hits
    statuses = []
    for target in (targets * 3)[: blocks + 1]:
        r = await client.post(
            "/api/after-hours/blocks", json={"userId": str(target.id)}, headers=blocker.headers
        )
        statuses.append(r.status_code)
    assert statuses == [201] * blocks + [429]
