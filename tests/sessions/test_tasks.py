"""A separate `afterhours worker` process: its events reach sockets on the serving process, with
PostgreSQL LISTEN/NOTIFY or with Redis, and after downtime it catches up on what is overdue."""

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.exc import DBAPIError

from afterhours import realtime, wiring
from afterhours.db import Database
from afterhours.sessions import service as sessions
from afterhours.sessions import tasks as session_tasks
from tests.support.clients import Recorder, User
from tests.support.processes import redis_server, worker_process
from tests.support.server import running_server, settings_for
from tests.support.sessions import BASE_PROFILE, start


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path) as url:
        yield url


async def wait_ready(client: httpx.AsyncClient) -> None:
    deadline = asyncio.get_running_loop().time() + 20
    while (await client.get("/ready")).status_code != 200:
        assert asyncio.get_running_loop().time() < deadline, "worker never became ready"
        await asyncio.sleep(0.2)


async def session_user(client: httpx.AsyncClient, make_user: Callable[..., User]) -> User:
    user = make_user()
    await client.put("/api/profile", json=BASE_PROFILE, headers=user.headers)
    await client.put("/api/after-hours/profile", json={"description": "x"}, headers=user.headers)
    return user


async def socket(base: str, user: User) -> Recorder:
    recorder = Recorder()
    await recorder.client.connect(base, auth={"token": user.token}, transports=["websocket"])
    return recorder


@pytest.mark.parametrize("fan_out", ["postgres", "redis"])
async def test_events_from_a_separate_worker_reach_sockets_on_the_server(
    fan_out: str, isolated_url: str, tmp_path: Path, make_user, request: pytest.FixtureRequest
) -> None:
    redis = request.getfixturevalue("redis_url") if fan_out == "redis" else None
    settings = settings_for(isolated_url, tmp_path, redis)
    async with (
        running_server(settings, with_worker=False) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        not_ready = await client.get("/ready")
        assert not_ready.status_code == 503
        assert "worker" in not_ready.json()["error"]
        async with worker_process(settings):
            await wait_ready(client)
            user = await session_user(client, make_user)
            phone = await socket(base, user)
            session = (await start(client, user)).json()["session"]
            warning = await phone.wait_for("after_hours:session_expiring", within=10)
            expired = await phone.wait_for("after_hours:session_expired", within=10)
            assert warning["sessionId"] == expired["sessionId"] == session["id"]
            await phone.client.disconnect()


async def test_restarted_worker_delivers_overdue_expiry_and_skips_stale_warning(
    isolated_url: str, tmp_path: Path, make_user
) -> None:
    settings = settings_for(isolated_url, tmp_path)
    async with (
        running_server(settings, with_worker=False) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        user = await session_user(client, make_user)
        phone = await socket(base, user)
        session = (await start(client, user)).json()["session"]
        # No worker is running: the session is over by time alone.
        deadline = asyncio.get_running_loop().time() + 10
        while (await client.get("/api/after-hours/session", headers=user.headers)).json()["active"]:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.2)
        assert phone.events == []  # nothing is sent before a worker runs

        async with worker_process(settings):
            expired = await phone.wait_for("after_hours:session_expired", within=20)
        assert expired["sessionId"] == session["id"]
        assert phone.named("after_hours:session_expiring") == []
        await phone.client.disconnect()


async def test_events_of_a_committed_batch_go_out_when_a_later_batch_fails(
    isolated_url: str,
    tmp_path: Path,
    make_user,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Redis fan-out publishes after commit (NOTIFY would ride the commit itself), so this shows
    # the after-commit side: a batch's events must not wait for the end of the whole loop.
    settings = settings_for(isolated_url, tmp_path, redis_url)
    async with (
        running_server(settings, with_worker=False) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        first, second = [await session_user(client, make_user) for _ in range(2)]
        phone = await socket(base, first)
        for user in (first, second):
            assert (await start(client, user)).status_code == 201
        with psycopg.connect(isolated_url, autocommit=True) as conn:
            # Both lapsed without their expiry jobs (no worker runs here), the first one earlier,
            # and closing the second is refused: the sweep's second batch fails.
            for user, ago in ((first, "2 seconds"), (second, "1 second")):
                conn.execute(
                    "UPDATE after_hours_sessions SET expires_at = now() - %s::interval"
                    " WHERE user_id = %s",
                    (ago, user.id),
                )
            conn.execute(
                "CREATE FUNCTION refuse_close() RETURNS trigger LANGUAGE plpgsql AS $$"
                f" BEGIN IF NEW.user_id = '{second.id}' AND NEW.ended_at IS NOT NULL THEN"
                " RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$"
            )
            conn.execute(
                "CREATE TRIGGER refuse_close BEFORE UPDATE ON after_hours_sessions"
                " FOR EACH ROW EXECUTE FUNCTION refuse_close()"
            )
        monkeypatch.setattr(sessions, "CLOSE_BATCH", 1)
        database = Database(isolated_url, outbox=realtime.external_emitter(settings))
        try:
            with pytest.raises(DBAPIError, match="refused"):
                await session_tasks.close_all_expired(database, wiring.lifecycle(settings).sessions)
        finally:
            await database.dispose()
        expired = await phone.wait_for("after_hours:session_expired", within=5)
        await phone.client.disconnect()
        with psycopg.connect(isolated_url) as conn:
            ended = dict(
                conn.execute(
                    "SELECT user_id, ended_at IS NOT NULL FROM after_hours_sessions"
                ).fetchall()
            )
    assert ended == {first.id: True, second.id: False}
    assert expired["seq"] >= 1
