"""A PostgreSQL restart under load, on a server of this module's own (so no other test's server
sees it): the worker comes back by itself, REST answers 503 (never 500) while the database is
away, and nothing acknowledged is lost."""

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pgserver
import psycopg
import pytest
from pgserver._commands import pg_ctl

from afterhours import migrations
from afterhours.auth import TokenVerifier
from afterhours.settings import Settings
from tests.support.chat import Chat, MakeChat
from tests.support.clients import Recorder, User, socket_of
from tests.support.gateway import SECRET, push_gateway
from tests.support.places import random_place
from tests.support.processes import logged, serve_process, worker_process
from tests.support.server import ROOT, settings_for
from tests.support.sessions import go, set_up
from tests.support.waiting import until

PGDATA = ROOT / "var" / "outage-postgres"


@pytest.fixture(scope="module")
def restartable() -> Iterator[pgserver.PostgresServer]:  # type: ignore[name-defined]
    """An embedded PostgreSQL of this module's own, stopped at the end."""
    PGDATA.parent.mkdir(exist_ok=True)
    server = pgserver.get_server(PGDATA, cleanup_mode=None)
    yield server
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=PGDATA, user=server.system_user)


def restart(server: Any) -> None:
    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=PGDATA, user=server.system_user, timeout=60)


def outage_database(restartable: Any) -> str:
    """A new, migrated database on the restartable server; its URL."""
    admin_url = str(restartable.get_uri())
    name = f"afterhours_outage_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.replace("/postgres?", f"/{name}?")
    migrations.upgrade(url)
    return url


@pytest.fixture(scope="module")
def base_settings(restartable: Any, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = settings_for(outage_database(restartable), tmp_path_factory.mktemp("outage"))
    return settings.model_copy(
        update={"match_delay_start_seconds": 0.2, "match_sweep_seconds": 1.0}
    )


@pytest.fixture(scope="module")
def verifier(base_settings: Settings) -> TokenVerifier:
    return TokenVerifier(base_settings)


@pytest.fixture(scope="module")
async def base_url(base_settings: Settings) -> AsyncIterator[str]:
    """`afterhours serve` with its worker, as `make run` starts it."""
    async with serve_process(base_settings) as (_, url):
        yield url


async def hammer(client: httpx.AsyncClient, user: User, statuses: Counter[int]) -> None:
    while True:
        try:
            r = await client.get("/api/after-hours/session", headers=user.headers)
        except httpx.TransportError as exc:  # a keep-alive client must never be cut off
            statuses[type(exc).__name__] += 1  # type: ignore[index]
        else:
            statuses[r.status_code] += 1
            if r.status_code >= 500:
                assert r.json()["code"] == "SERVICE_UNAVAILABLE", r.text
        await asyncio.sleep(0.01)


async def send(sender: Recorder, match_id: str, client_id: str) -> dict[str, Any]:
    try:
        ack: dict[str, Any] = await sender.client.call(
            "after_hours:send_message",
            {"matchId": match_id, "content": f"hello {client_id}", "clientMessageId": client_id},
            timeout=10,
        )
    except TimeoutError:
        return {"ok": False, "error": {"code": "TIMEOUT"}}
    return ack


async def chatter(chat: Chat, acks: dict[str, dict[str, Any]]) -> None:
    """One message a second (the per-sender limit is 10 in 10 s)."""
    for n in range(100_000):
        client_id = f"{chat.match_id[:8]}-{n}"
        acks[client_id] = await send(chat.sa, chat.match_id, client_id)
        await asyncio.sleep(1.05)


async def stored_messages(url: str, match_id: str) -> Counter[str]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute(
            "SELECT client_message_id FROM after_hours_messages WHERE match_id = %s", (match_id,)
        )
        return Counter(row[0] for row in await cursor.fetchall())


async def test_after_a_database_restart_the_worker_resumes_and_nothing_acknowledged_is_lost(
    restartable: Any,
    base_settings: Settings,
    client: httpx.AsyncClient,
    make_chat: MakeChat,
    person: Any,
    connect: Any,
) -> None:
    chats = [await make_chat() for _ in range(4)]
    waiting = await person()
    phone = await connect(waiting)
    session = await go(client, waiting, duration=15)  # 7.5 s: it ends after the restart
    expires_at = time.time() + 15 * base_settings.session_minute_seconds

    statuses: Counter[int] = Counter()
    acks: list[dict[str, dict[str, Any]]] = [{} for _ in chats]
    load = [asyncio.create_task(hammer(client, waiting, statuses))]
    for chat, chat_acks in zip(chats, acks, strict=True):
        load.append(asyncio.create_task(chatter(chat, chat_acks)))
        await asyncio.sleep(0.25)  # spread the sends over each second
    await asyncio.to_thread(restart, restartable)
    back = time.time()

    expired = await phone.wait_for("after_hours:session_expired", within=20)
    arrived = time.time()
    await asyncio.sleep(0.5)  # load after the restart too
    for task in load:
        task.cancel()
    await asyncio.gather(*load, return_exceptions=True)

    assert expired["sessionId"] == session["id"]
    # The job runs on time: at its expiry, or within 10 s of the database coming back.
    assert arrived <= max(expires_at, back + 10) + 1.0, (arrived - expires_at, arrived - back)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[200] > 0 and statuses[503] > 0, statuses

    refusals: Counter[str] = Counter()
    for chat, chat_acks in zip(chats, acks, strict=True):
        acknowledged = {cid for cid, ack in chat_acks.items() if ack.get("ok")}
        refused = set(chat_acks) - acknowledged
        refusals.update(chat_acks[cid]["error"]["code"] for cid in refused)
        stored = await stored_messages(base_settings.database_url or "", chat.match_id)
        assert acknowledged <= set(stored), acknowledged - set(stored)
        assert set(stored.values()) == {1}, stored  # none twice
        # What was refused was stored once or not at all: the phone's retry (same id) settles it.
        for cid in refused:
            assert (await send(chat.sa, chat.match_id, cid))["ok"] is True
            await asyncio.sleep(1.05)
        stored = await stored_messages(base_settings.database_url or "", chat.match_id)
        assert set(stored) == set(chat_acks) and set(stored.values()) == {1}, stored
        received = Counter(m["clientMessageId"] for m in chat.sb.named("after_hours:message"))
        assert set(received) == set(chat_acks) and set(received.values()) == {1}, received
    assert set(refusals) <= {"SERVICE_UNAVAILABLE", "TIMEOUT"}, refusals


async def test_presence_is_recorded_again_once_the_database_is_back(
    restartable: Any, base_settings: Settings, verifier: TokenVerifier, tmp_path: Path
) -> None:
    url = base_settings.database_url or ""
    settings = base_settings.model_copy(update={"presence_heartbeat_seconds": 0.2})

    def counted(user: User, expected: list[int]) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                cursor = await conn.execute(
                    "SELECT sockets FROM socket_presence WHERE user_id = %s", (user.id,)
                )
                return [n for (n,) in await cursor.fetchall()] == expected

        return check

    log = tmp_path / "serve.log"
    async with serve_process(settings, with_worker=False, log=log) as (_, base):
        before, after = (User(verifier, premium=True) for _ in range(2))
        first = await socket_of(base, before)
        await until(counted(before, [1]), within=10)
        await asyncio.to_thread(
            pg_ctl, ["-w", "-m", "fast", "stop"], pgdata=PGDATA, user=restartable.system_user
        )
        try:
            second = await socket_of(base, after)  # a socket needs no database to connect
            await first.client.disconnect()
            await logged(log, "presence_write_failed")  # its heartbeat and writes fail
        finally:
            await asyncio.to_thread(restart, restartable)  # starts the stopped server
        await until(counted(after, [1]), within=20)
        await until(counted(before, []), within=20)
        await second.client.disconnect()
        await until(counted(after, []), within=20)


async def test_a_push_whose_retry_meets_a_database_outage_is_sent_once_it_is_back(
    restartable: Any, base_settings: Settings, verifier: TokenVerifier, tmp_path: Path
) -> None:
    stopped = asyncio.Event()

    async def stop() -> None:
        await asyncio.to_thread(
            pg_ctl, ["-w", "-m", "fast", "stop"], pgdata=PGDATA, user=restartable.system_user
        )
        stopped.set()

    async with push_gateway() as gateway:
        # The gateway fails the first call and takes the database away before it answers, so
        # the worker cannot record the retry it owes.
        gateway.script = [500]
        gateway.on_first_call = stop
        # A database of its own: the module's server (base_url) has a worker too, with no
        # gateway, and would otherwise take the users' match attempts and queue no push.
        settings = base_settings.model_copy(
            update={
                "database_url": outage_database(restartable),
                "push_webhook_url": gateway.url,
                "push_webhook_secret": SECRET,
                "push_collapse_seconds": 0.2,
                "push_retry_seconds": 0.2,
                "worker_heartbeat_max_age_seconds": 3.0,
                "worker_max_backoff_seconds": 0.5,
            }
        )
        async with (
            serve_process(settings, log=tmp_path / "serve.log") as (_, base),
            httpx.AsyncClient(base_url=base, timeout=10) as client,
        ):
            here = random_place()
            for _ in range(2):
                user = User(verifier, premium=True)
                user.place = here
                await set_up(client, user)
                device = {"platform": "ios", "token": f"t-{user.id}"}
                r = await client.put("/api/after-hours/devices", json=device, headers=user.headers)
                assert r.status_code == 200, r.text
                await go(client, user)
            await asyncio.wait_for(stopped.wait(), 30)
            first = gateway.calls[0].body
            await asyncio.to_thread(restart, restartable)  # starts the stopped server

            # The retry carries the push it owed; newer events may meanwhile go out as pushes of
            # their own, in either order.
            async def retried() -> bool:
                later = gateway.for_user(first["userId"])[1:]
                return any(call.body["seq"] == first["seq"] for call in later)

            await until(retried, within=60)


async def test_a_worker_that_cannot_get_its_database_back_exits_non_zero(
    restartable: Any, base_settings: Settings
) -> None:
    settings = base_settings.model_copy(
        update={"worker_give_up_seconds": 3.0, "worker_max_backoff_seconds": 0.5}
    )
    async with worker_process(settings) as worker:
        await wait_until_working(base_settings.database_url or "")
        await asyncio.to_thread(
            pg_ctl, ["-w", "-m", "fast", "stop"], pgdata=PGDATA, user=restartable.system_user
        )
        try:
            # For its supervisor to start a fresh one (a status 0 would read "stopped on purpose").
            assert await asyncio.wait_for(worker.wait(), 30) == 1
        finally:
            # restart starts a stopped server with the options it last ran with
            await asyncio.to_thread(restart, restartable)


async def wait_until_working(url: str) -> None:
    """Until a worker has registered on the database at `url`."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        async with asyncio.timeout(30):
            while True:
                cursor = await conn.execute("SELECT 1 FROM procrastinate_workers")
                if await cursor.fetchone():
                    return
                await asyncio.sleep(0.1)
