"""Safety holds across serving processes: a ban disconnects the user's sockets on every process
within a second and ends their session and match; the message limit is one limit, however many
processes a sender spreads their sockets over. Both with fan-out (and counting) on PostgreSQL
and on a real Redis."""

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from afterhours.auth import TokenVerifier
from afterhours.settings import Settings
from tests.support.clients import Recorder, User
from tests.support.events import CLOSED, MATCH
from tests.support.places import random_place
from tests.support.processes import redis_process, redis_url, serve_process
from tests.support.server import free_port, fresh_database, settings_for
from tests.support.sessions import go, set_up
from tests.support.waiting import until


class Two:
    """Two `afterhours serve` processes on one database (the first runs the job worker)."""

    def __init__(self, settings: Settings, bases: list[str]) -> None:
        self.settings = settings
        self.bases = bases
        self.verifier = TokenVerifier(settings)
        self.clients = [httpx.AsyncClient(base_url=base, timeout=10) for base in bases]
        self.phones: list[Recorder] = []

    async def phone(self, n: int, user: User, **auth: Any) -> Recorder:
        recorder = Recorder()
        await recorder.client.connect(
            self.bases[n], auth={"token": user.token, **auth}, transports=["websocket"]
        )
        self.phones.append(recorder)
        return recorder

    async def close(self) -> None:
        for recorder in self.phones:
            if recorder.client.connected:
                await recorder.client.disconnect()
        for client in self.clients:
            await client.aclose()


@pytest.fixture(params=["postgres", "redis"])
async def two(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Two]:
    async with AsyncExitStack() as stack:
        url = stack.enter_context(fresh_database("afterhours_safety"))
        redis = None
        if request.param == "redis":
            port = free_port()
            stack.enter_context(redis_process(tmp_path, port))
            redis = redis_url(port)
        settings = settings_for(url, tmp_path, redis).model_copy(
            update={"match_delay_start_seconds": 0.2, "match_sweep_seconds": 1.0}
        )
        bases = []
        for n in range(2):
            _, base = await stack.enter_async_context(
                serve_process(settings, with_worker=n == 0, log=tmp_path / f"serve-{n}.log")
            )
            bases.append(base)
        here = Two(settings, bases)
        stack.push_async_callback(here.close)
        yield here


async def matched(two: Two) -> tuple[User, Recorder, User, Recorder, str]:
    """`a` on process 0 and `b` on process 1, matched and chatting."""
    place = random_place()
    a, b = User(two.verifier, premium=True), User(two.verifier, premium=True)
    for n, user in ((0, a), (1, b)):
        user.place = place
        await set_up(two.clients[n], user)
    pa, pb = await two.phone(0, a), await two.phone(1, b)
    await go(two.clients[0], a)
    await go(two.clients[1], b)
    match_id = (await pa.wait_for(MATCH))["id"]
    for n, user in ((0, a), (1, b)):
        r = await two.clients[n].post(
            f"/api/after-hours/matches/{match_id}/accept", headers=user.headers
        )
        assert r.status_code == 200, r.text
    await pa.wait_for("after_hours:chat_open")
    await pb.wait_for("after_hours:chat_open")
    return a, pa, b, pb, match_id


async def test_a_ban_reaches_the_users_sockets_on_both_processes_within_a_second(
    two: Two,
) -> None:
    partner, partner_phone, banned, banned_phone, match_id = await matched(two)
    fingerprint = f"phone-{banned.id}"
    # The banned user's phone was seen with its fingerprint; they have a socket on each process.
    headers = {**banned.headers, "X-Device-Fingerprint": fingerprint}
    assert (await two.clients[1].get("/api/after-hours/session", headers=headers)).is_success
    other_phone = await two.phone(0, banned)
    admin = User(two.verifier, premium=False, admin=True)

    began = time.monotonic()
    r = await two.clients[0].post(
        f"/api/admin/users/{banned.id}/ban", json={"reason": "threats"}, headers=admin.headers
    )
    assert r.status_code == 200, r.text

    async def both_gone() -> bool:
        return not banned_phone.client.connected and not other_phone.client.connected

    await until(both_gone, within=1.0)
    took = time.monotonic() - began
    closed = await partner_phone.wait_for(CLOSED)
    assert (closed["matchId"], closed["status"], closed["reason"]) == (
        match_id,
        "ended",
        "session_ended",
    )
    assert partner_phone.client.connected  # only the banned user is turned away
    r = await two.clients[1].get("/api/after-hours/session", headers=banned.headers)
    assert (r.status_code, r.json()["code"]) == (403, "USER_BANNED")
    # A second account on the banned phone: refused at session start and at connect.
    newcomer = User(two.verifier, premium=True)
    await set_up(two.clients[1], newcomer)
    r = await two.clients[1].post(
        "/api/after-hours/session/start",
        json={"duration": 15, "latitude": 1.0, "longitude": 1.0},
        headers={**newcomer.headers, "X-Device-Fingerprint": fingerprint},
    )
    assert (r.status_code, r.json()["code"]) == (403, "DEVICE_BANNED")
    refused: list[Any] = []
    client = socketio.AsyncClient(reconnection=False)
    client.on("connect_error", lambda data: refused.append(data))
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            two.bases[1],
            auth={"token": newcomer.token, "fingerprint": fingerprint},
            transports=["websocket"],
        )
    assert refused[0]["data"] == {"code": "DEVICE_BANNED"}
    print(f"ban to both sockets gone: {took * 1000:.0f} ms")


async def test_the_message_limit_holds_across_two_serving_processes(two: Two) -> None:
    a, pa, _, _, match_id = await matched(two)
    pa_other = await two.phone(1, a)
    phones = [pa, pa_other]

    async def send(n: int) -> dict[str, Any]:
        ack: dict[str, Any] = await phones[n % 2].client.call(
            "after_hours:send_message", {"matchId": match_id, "content": f"m{n}"}, timeout=10
        )
        return ack

    # Ten (the configured count) pass, spread over both processes; the eleventh is refused.
    acks = [await send(n) for n in range(11)]
    assert [ack["ok"] for ack in acks] == [True] * 10 + [False], acks
    error = acks[-1]["error"]
    assert error["code"] == "RATE_LIMITED" and 1 <= error["retryAfter"] <= 10
    # And over REST on either process too.
    r = await two.clients[1].post(
        f"/api/after-hours/matches/{match_id}/messages",
        json={"content": "one more"},
        headers=a.headers,
    )
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 10
