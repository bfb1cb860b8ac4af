"""Push through a real gateway (an HTTP server of the test's own), from two real serving
processes on one database: A runs the job worker, B only serves sockets."""

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from afterhours.auth import TokenVerifier
from afterhours.push.service import MANY_MESSAGES
from afterhours.settings import Settings
from tests.support.clients import Recorder, User, socket_of
from tests.support.events import MATCH, MESSAGE
from tests.support.gateway import SECRET, Gateway, push_gateway
from tests.support.places import random_place
from tests.support.processes import logged, serve_process
from tests.support.server import ROOT, fresh_database, settings_for
from tests.support.sessions import go, set_up
from tests.support.waiting import until

PUSH_FIELDS = {"userId", "event", "seq", "tokens", "title", "body"}
HEARTBEAT = 0.3  # a killed process's users count as away after three of these


@dataclass
class Layout:
    url: str
    gateway: Gateway
    verifier: TokenVerifier
    serving: list[str]  # A (with the worker), B
    processes: list[asyncio.subprocess.Process]
    log: Path  # A's
    clients: list[httpx.AsyncClient] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    places: list[tuple[float, float]] = field(default_factory=list)

    async def person(self, platform: str = "ios") -> User:
        """Someone with profiles and a registered phone, on process A's REST API."""
        user = User(self.verifier, premium=True)
        user.place = self.places[-1]
        name = f"Zephyrine{len(self.names)}"
        self.names.append(name)
        client = self.clients[0]
        await set_up(client, user, {"name": name, "birthDate": "1994-06-01", "gender": "man"})
        device = {"platform": platform, "token": f"token-{user.id}"}
        r = await client.put("/api/after-hours/devices", json=device, headers=user.headers)
        assert r.status_code == 200, r.text
        return user

    def spot(self) -> None:
        self.places.append(random_place())

    async def sql(self, query: str, *params: Any) -> list[Any]:
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchall() if cursor.description else []

    def assert_discreet(self, calls: list[Any], *secrets: str) -> None:
        """No push carries more than the contract's fields: no names, places or messages."""
        for call in calls:
            assert set(call.body) == PUSH_FIELDS
            text = call.raw.decode()
            for secret in [*self.names, *secrets]:
                assert secret not in text
            for lat, lon in self.places:
                assert f"{lat:.3f}"[:-1] not in text and f"{lon:.3f}"[:-1] not in text


def push_settings(url: str, data_dir: Path, gateway: Gateway, **changes: Any) -> Settings:
    return settings_for(url, data_dir).model_copy(
        update={
            "match_delay_start_seconds": 0.2,
            "match_sweep_seconds": 1.0,
            "presence_heartbeat_seconds": HEARTBEAT,
            "push_webhook_url": gateway.url,
            "push_webhook_secret": SECRET,
            "push_collapse_seconds": 1.0,
            "push_retry_seconds": 0.2,
            "push_timeout_seconds": 0.5,
            **changes,
        }
    )


@pytest.fixture
async def layout(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Layout]:
    changes = getattr(request, "param", {})
    with fresh_database("afterhours_push") as url:
        async with AsyncExitStack() as stack:
            gateway = await stack.enter_async_context(push_gateway())
            settings = push_settings(url, tmp_path, gateway, **changes)
            log = tmp_path / "serve-a.log"
            a, base_a = await stack.enter_async_context(serve_process(settings, log=log))
            b, base_b = await stack.enter_async_context(serve_process(settings, with_worker=False))
            here = Layout(url, gateway, TokenVerifier(settings), [base_a, base_b], [a, b], log)
            for base in here.serving:
                here.clients.append(
                    await stack.enter_async_context(httpx.AsyncClient(base_url=base, timeout=10))
                )
            here.spot()
            yield here


async def pair(layout: Layout) -> tuple[User, User, Recorder]:
    """x, away from every socket, and y, with a socket on process B, matched."""
    x, y = await layout.person("ios"), await layout.person("android")
    phone = await socket_of(layout.serving[1], y)
    await go(layout.clients[0], x)
    await go(layout.clients[0], y)
    await phone.wait_for(MATCH)
    return x, y, phone


async def jobs_for(layout: Layout, user: User, *statuses: str) -> int:
    rows = await layout.sql(
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'push:send'"
        " AND args->>'user_id' = %s AND status::text = ANY(%s)",
        str(user.id),
        list(statuses),
    )
    return int(rows[0][0])


async def settled(layout: Layout, user: User, within: float = 10) -> None:
    """Until no push for `user` is waiting or being sent."""

    async def idle() -> bool:
        return await jobs_for(layout, user, "todo", "doing") == 0

    await until(idle, within=within)


def documented_check() -> Any:
    """The Python check docs/events.md gives gateway authors, run as written."""
    doc = (ROOT / "docs" / "events.md").read_text()
    code = doc.split("in constant time:\n\n```python\n", 1)[1].split("```", 1)[0]
    scope: dict[str, Any] = {}
    exec(code, scope)  # noqa: S102 — our own documentation
    return scope["verified"]


async def test_a_match_wakes_a_phone_away_and_not_one_with_a_socket_on_another_process(
    layout: Layout,
) -> None:
    x, y, phone = await pair(layout)
    [call] = await layout.gateway.wait_for(x.id)
    assert call.signed_correctly()
    assert not call.signed_correctly(secret="another secret")
    verified = documented_check()
    headers = httpx.Headers(call.headers)
    assert verified(SECRET.encode(), headers, call.raw)
    assert not verified(SECRET.encode(), headers, call.raw.replace(b"match", b"matcH"))
    assert abs(int(call.headers["x-afterhours-timestamp"]) - time.time()) < 60
    body = call.body
    assert body["event"] == MATCH and isinstance(body["seq"], int)
    assert body["tokens"] == [{"platform": "ios", "token": f"token-{x.id}"}]
    assert body["title"] and body["body"]
    # The seq is the one of the stored event, so the app can fetch and dedupe it.
    events = (
        await layout.clients[0].get("/api/after-hours/events?after=0", headers=x.headers)
    ).json()["events"]
    assert [e["seq"] for e in events if e["event"] == MATCH] == [body["seq"]]
    # y's socket lives on B, not on the worker's process: no push was even queued for them.
    await settled(layout, x)
    assert layout.gateway.for_user(y.id) == []
    assert await jobs_for(layout, y, "todo", "doing", "succeeded", "failed") == 0
    layout.assert_discreet(layout.gateway.calls)
    await phone.client.disconnect()


async def test_a_gateway_failing_twice_gets_three_calls(layout: Layout) -> None:
    layout.gateway.script = [500, "hang"]  # then 200; "hang" outlasts the 0.5 s timeout
    x, _, phone = await pair(layout)
    calls = await layout.gateway.wait_for(x.id, count=3)
    assert len({call.body["seq"] for call in calls}) == 1
    assert all(call.signed_correctly() for call in calls)
    await logged(layout.log, "attempt=3 status=200")
    await settled(layout, x)
    assert len(layout.gateway.for_user(x.id)) == 3
    await phone.client.disconnect()


@pytest.mark.parametrize("layout", [{"push_attempts": 3}], indirect=True)
async def test_a_gateway_that_always_fails_is_given_up_and_logged(layout: Layout) -> None:
    layout.gateway.script = [503] * 10
    x, _, phone = await pair(layout)
    await logged(layout.log, f"push_gave_up user={x.id}")
    await settled(layout, x)
    assert len(layout.gateway.for_user(x.id)) == 3
    await phone.client.disconnect()


async def test_a_dead_token_is_forgotten(layout: Layout) -> None:
    layout.gateway.script = [410]
    x, _, phone = await pair(layout)
    await layout.gateway.wait_for(x.id)
    await logged(layout.log, f"push_sent user={x.id}")
    assert await layout.sql("SELECT token FROM device_tokens WHERE user_id = %s", x.id) == []
    await phone.client.disconnect()


async def test_ten_messages_to_a_user_away_give_one_push(layout: Layout) -> None:
    x, y, phone = await pair(layout)
    await layout.gateway.wait_for(x.id)
    match_id = (await phone.wait_for(MATCH))["id"]
    for user in (x, y):
        r = await layout.clients[0].post(
            f"/api/after-hours/matches/{match_id}/accept", headers=user.headers
        )
        assert r.status_code == 200, r.text
    [_, chat_open] = await layout.gateway.wait_for(x.id, count=2)
    assert chat_open.body["event"] == "after_hours:chat_open"
    text = "meet me by the fountain at nine"
    for n in range(10):
        ack = await phone.client.call(
            "after_hours:send_message",
            {"matchId": match_id, "content": f"{text} {n}", "clientMessageId": f"c{n}"},
            timeout=5,
        )
        assert ack["ok"], ack
    calls = await layout.gateway.wait_for(x.id, count=3)
    await settled(layout, x)
    assert len(layout.gateway.for_user(x.id)) == 3
    burst = calls[2].body
    assert burst["event"] == MESSAGE and burst["body"] == MANY_MESSAGES
    events = (
        await layout.clients[0].get(
            f"/api/after-hours/events?after={chat_open.body['seq']}", headers=x.headers
        )
    ).json()["events"]
    assert [e["event"] for e in events] == [MESSAGE] * 10
    assert burst["seq"] == events[-1]["seq"]  # the newest: the app resumes up to it
    layout.assert_discreet(layout.gateway.calls, text)
    await phone.client.disconnect()


async def test_users_of_a_killed_process_count_as_away_within_three_heartbeats(
    layout: Layout,
) -> None:
    y = await layout.person("android")
    phone = await socket_of(layout.serving[1], y)
    await go(layout.clients[0], y)  # alone: no match yet
    online = (
        "SELECT count(*) FROM socket_presence p JOIN serving_processes s ON s.id = p.process_id"
        " WHERE p.user_id = %s AND s.seen_at > now() - make_interval(secs => %s)"
    )

    async def here() -> bool:
        return bool((await layout.sql(online, y.id, 3 * HEARTBEAT))[0][0])

    async def away() -> bool:
        return not await here()

    await until(here, within=10)
    killed = time.monotonic()
    layout.processes[1].send_signal(signal.SIGKILL)
    await until(away, within=10)
    assert time.monotonic() - killed < 3 * HEARTBEAT + 1
    x = await layout.person("ios")
    await go(layout.clients[0], x)
    [call] = await layout.gateway.wait_for(y.id)
    assert call.body["event"] == MATCH
    # A's heartbeat has taken the dead process's rows away.
    assert (await layout.sql("SELECT count(*) FROM serving_processes"))[0][0] == 1
    assert await layout.sql("SELECT * FROM socket_presence WHERE user_id = %s", y.id) == []
    await phone.client.disconnect()
