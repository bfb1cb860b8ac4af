"""The production layout (docs/operations.md): two `serve --no-worker`, two `worker`, one
PostgreSQL, fan-out over a real Redis or PostgreSQL NOTIFY. People on different serving
processes meet, chat, save and expire; a serving process killed mid-chat loses nothing that was
acknowledged; with Redis stopped, the gap is logged, /ready says so, and resume by seq covers it."""

import asyncio
import signal
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from afterhours.auth import TokenVerifier
from afterhours.settings import Settings
from tests.support.clients import Recorder, User
from tests.support.events import MATCH, MESSAGE, SAVED
from tests.support.places import random_place
from tests.support.processes import redis_process, redis_url, serve_process, worker_process
from tests.support.server import free_port, fresh_database, settings_for
from tests.support.sessions import go, set_up


@dataclass
class Layout:
    settings: Settings
    serving: list[str]  # base URLs
    processes: list[asyncio.subprocess.Process]
    logs: list[Path]
    verifier: TokenVerifier
    redis: "subprocess.Popen[bytes] | None" = None
    redis_port: int = 0
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, n: int) -> httpx.AsyncClient:
        return self.clients[n]


@pytest.fixture(params=["postgres", "redis"])
def fan_out(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    with fresh_database("afterhours_layout") as url:
        yield url


@pytest.fixture
async def layout(fan_out: str, database: str, tmp_path: Path) -> AsyncIterator[Layout]:
    async with AsyncExitStack() as stack:
        redis_port = free_port()
        redis = (
            stack.enter_context(redis_process(tmp_path, redis_port)) if fan_out == "redis" else None
        )
        url = redis_url(redis_port) if redis else None
        settings = settings_for(database, tmp_path, url).model_copy(
            update={"match_delay_start_seconds": 0.2, "match_sweep_seconds": 1.0}
        )
        for _ in range(2):
            await stack.enter_async_context(worker_process(settings))
        serving, processes, logs = [], [], []
        for n in range(2):
            log = tmp_path / f"serve-{n}.log"
            proc, base = await stack.enter_async_context(
                serve_process(settings, with_worker=False, log=log)
            )
            serving.append(base)
            processes.append(proc)
            logs.append(log)
        verifier = TokenVerifier(settings)
        here = Layout(settings, serving, processes, logs, verifier, redis, redis_port)
        for base in serving:
            here.clients.append(
                await stack.enter_async_context(httpx.AsyncClient(base_url=base, timeout=10))
            )
        await until_ready(here.client(0), within=30)
        yield here


async def until_ready(client: httpx.AsyncClient, *, within: float) -> None:
    async with asyncio.timeout(within):
        while True:
            if (await client.get("/ready")).status_code == 200:
                return
            await asyncio.sleep(0.1)


async def person(layout: Layout, n: int, place: tuple[float, float]) -> tuple[User, Recorder]:
    """Someone using serving process `n`, with profiles, placed at `place`, socket open."""
    user = User(layout.verifier, premium=True)
    user.place = place
    await set_up(layout.client(n), user)
    return user, await phone(layout.serving[n], user)


async def phone(base: str, user: User, **auth: Any) -> Recorder:
    recorder = Recorder()
    await recorder.client.connect(
        base, auth={"token": user.token, **auth}, transports=["websocket"], wait_timeout=5
    )
    return recorder


async def matched_across(
    layout: Layout, duration: int = 60
) -> tuple[User, Recorder, User, Recorder, str]:
    """One person on each serving process, at one spot, matched and chatting; their sessions
    last `duration` minutes (a minute is SESSION_MINUTE seconds here)."""
    here = random_place()
    (a, pa), (b, pb) = await person(layout, 0, here), await person(layout, 1, here)
    await go(layout.client(0), a, duration=duration)
    await go(layout.client(1), b, duration=duration)
    match_id = (await pa.wait_for(MATCH))["id"]
    assert (await pb.wait_for(MATCH))["id"] == match_id
    for n, user in ((0, a), (1, b)):
        r = await layout.client(n).post(
            f"/api/after-hours/matches/{match_id}/accept", headers=user.headers
        )
        assert r.status_code == 200, r.text
    await pa.wait_for("after_hours:chat_open")
    await pb.wait_for("after_hours:chat_open")
    return a, pa, b, pb, match_id


async def send(recorder: Recorder, match_id: str, client_id: str) -> dict[str, Any]:
    try:
        ack: dict[str, Any] = await recorder.client.call(
            "after_hours:send_message",
            {"matchId": match_id, "content": client_id, "clientMessageId": client_id},
            timeout=5,
        )
    except Exception as exc:  # noqa: BLE001 — the process went away under the call
        return {"ok": False, "error": {"code": type(exc).__name__}}
    return ack


async def stored(url: str, match_id: str) -> Counter[str]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        rows = await (
            await conn.execute(
                "SELECT client_message_id FROM after_hours_messages WHERE match_id = %s",
                (match_id,),
            )
        ).fetchall()
    return Counter(row[0] for row in rows)


async def missed(client: httpx.AsyncClient, user: User, after: int) -> list[dict[str, Any]]:
    r = await client.get(f"/api/after-hours/events?after={after}", headers=user.headers)
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()["events"]
    return events


async def test_people_on_different_processes_meet_chat_save_and_expire(layout: Layout) -> None:
    a, pa, b, pb, match_id = await matched_across(layout, duration=15)
    assert (await send(pa, match_id, "hello"))["ok"]
    assert (await pb.wait_for(MESSAGE))["content"] == "hello"
    assert (await send(pb, match_id, "hi back"))["ok"]
    assert (await pa.wait_for(MESSAGE, count=2))["content"] == "hi back"
    for n, user in ((0, a), (1, b)):
        r = await layout.client(n).post(
            f"/api/after-hours/matches/{match_id}/save", headers=user.headers
        )
        assert r.status_code == 200, r.text
    await pa.wait_for(SAVED)
    await pb.wait_for(SAVED)
    # A 15-minute session here lasts 6 s; the workers end both and tell each phone.
    for recorder in (pa, pb):
        await recorder.wait_for("after_hours:session_expired", within=15)
    for recorder in (pa, pb):
        await recorder.client.disconnect()


async def test_a_serving_process_killed_mid_chat_loses_nothing_acknowledged(
    layout: Layout,
) -> None:
    a, pa, b, pb, match_id = await matched_across(layout)
    ids = [f"m{n}" for n in range(8)]
    sends = [asyncio.create_task(send(pa, match_id, cid)) for cid in ids]
    await asyncio.sleep(0.01)  # some are acknowledged, some still on the wire
    layout.processes[0].send_signal(signal.SIGKILL)
    acks = dict(zip(ids, await asyncio.gather(*sends), strict=True))
    acknowledged = {cid for cid, ack in acks.items() if ack.get("ok")}

    kept = await stored(layout.settings.database_url or "", match_id)
    assert acknowledged <= set(kept), (acks, kept)
    assert set(kept.values()) <= {1}
    # The phone moves to the surviving process and sends again what got no answer.
    pa2 = await phone(layout.serving[1], a)
    for cid in sorted(set(ids) - acknowledged):
        assert (await send(pa2, match_id, cid))["ok"]
    kept = await stored(layout.settings.database_url or "", match_id)
    assert set(kept) == set(ids) and set(kept.values()) == {1}
    # The other side has each exactly once: live, or on resume by seq (a message committed just
    # before the kill may have missed its live publish).
    opened = pb.named("after_hours:chat_open")[0]["seq"]
    logged = Counter(
        e["data"]["clientMessageId"]
        for e in await missed(layout.client(1), b, opened)
        if e["event"] == MESSAGE
    )
    assert logged == Counter(ids)
    live = Counter(m["clientMessageId"] for m in pb.named(MESSAGE))
    assert set(live) <= set(ids) and set(live.values()) <= {1}, live
    for recorder in (pa2, pb):
        await recorder.client.disconnect()


@pytest.mark.parametrize("fan_out", ["redis"])
async def test_with_redis_stopped_the_gap_is_loud_and_resume_covers_it(
    layout: Layout, tmp_path: Path
) -> None:
    a, pa, b, pb, match_id = await matched_across(layout)
    last_seq = (await pb.wait_for("after_hours:chat_open"))["seq"]
    redis_dir = tmp_path / "redis-again"
    redis_dir.mkdir()
    assert layout.redis is not None
    layout.redis.kill()  # started again below, on the same port
    layout.redis.wait()
    r = await layout.client(1).get("/ready")
    assert r.status_code == 503 and "redis" in r.json()["error"].lower(), r.text
    ack = await send(pa, match_id, "during the outage")
    assert ack["ok"], ack  # stored: the database is the truth
    # Not delivered live; the log says why; resume by seq has it.
    events = await missed(layout.client(1), b, last_seq)
    assert [e["data"]["content"] for e in events if e["event"] == MESSAGE] == ["during the outage"]
    assert "redis" in layout.logs[0].read_text().lower()
    with redis_process(redis_dir, layout.redis_port):
        await until_ready(layout.client(1), within=20)
        pb2 = await phone(layout.serving[1], b, lastSeq=last_seq)
        replayed = await pb2.wait_for(MESSAGE)
        assert replayed["content"] == "during the outage"
        # Live fan-out comes back by itself, once the listeners have resubscribed (their
        # backoff: what is published before is stored, and found on resume).
        async with asyncio.timeout(15):
            for n in range(100):
                assert (await send(pa, match_id, f"after {n}"))["ok"]
                if pb2.named(MESSAGE)[1:]:
                    break
                await asyncio.sleep(1.1)  # the per-sender limit is 10 in 10 s
        await pb2.client.disconnect()
    for recorder in (pa, pb):
        await recorder.client.disconnect()
