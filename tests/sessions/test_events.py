"""Expiry warnings and expiries reach every device of the user, on time (±1 s)."""

import asyncio
import time
import uuid
from datetime import datetime

import pytest
import socketio

from tests.support.sessions import start
from tests.support.waiting import until

TOLERANCE = 1.0
SESSION_MINUTE = 0.5  # tests/conftest.py base settings


def session_events(recorder) -> list[str]:
    return [name for name, _ in recorder.events if name.startswith("after_hours:session_")]


def seconds_until(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp() - time.time()


async def test_warning_and_expiry_reach_every_device_on_time(client, ready_user, connect) -> None:
    user = await ready_user()
    phone, tablet = await connect(user), await connect(user)
    session = (await start(client, user)).json()["session"]
    expires_in = seconds_until(session["expiresAt"])

    warning = await phone.wait_for("after_hours:session_expiring", within=expires_in + 2)
    warned_at = time.time()
    assert warning["sessionId"] == session["id"]
    assert warning["minutesRemaining"] == 2
    assert warning["expiresAt"] == session["expiresAt"] or datetime.fromisoformat(
        warning["expiresAt"]
    ) == datetime.fromisoformat(session["expiresAt"])
    expected_warning = datetime.fromisoformat(session["expiresAt"]).timestamp() - 2 * SESSION_MINUTE
    assert abs(warned_at - expected_warning) <= TOLERANCE

    expired = await phone.wait_for("after_hours:session_expired", within=5)
    expired_at = time.time()
    assert expired == {"sessionId": session["id"], "reason": "timeout", "seq": expired["seq"]}
    assert abs(expired_at - datetime.fromisoformat(session["expiresAt"]).timestamp()) <= TOLERANCE
    assert expired["seq"] > warning["seq"]

    await tablet.wait_for("after_hours:session_expired", within=2)
    assert session_events(tablet) == session_events(phone)
    assert len(phone.named("after_hours:session_expiring")) == 1
    assert len(phone.named("after_hours:session_expired")) == 1


async def test_extend_moves_both_warning_and_expiry(client, ready_user, connect) -> None:
    user = await ready_user()
    phone = await connect(user)
    await start(client, user)
    r = await client.post(
        "/api/after-hours/session/extend", json={"additionalMinutes": 15}, headers=user.headers
    )
    new_expiry = datetime.fromisoformat(r.json()["session"]["expiresAt"]).timestamp()

    warning = await phone.wait_for("after_hours:session_expiring", within=20)
    assert abs(time.time() - (new_expiry - 2 * SESSION_MINUTE)) <= TOLERANCE
    assert datetime.fromisoformat(warning["expiresAt"]).timestamp() == new_expiry
    await phone.wait_for("after_hours:session_expired", within=5)
    assert abs(time.time() - new_expiry) <= TOLERANCE
    # The jobs deferred for the first expiry found it moved and sent nothing.
    assert session_events(phone) == ["after_hours:session_expiring", "after_hours:session_expired"]


async def jobs_to_run(sql, session_id: str) -> list[str]:
    """The session's jobs still waiting or running (the worker deletes the ones that succeed)."""
    rows = await sql(
        "SELECT task_name FROM procrastinate_jobs"
        " WHERE args->>'session_id' = %s AND status IN ('todo', 'doing') ORDER BY task_name",
        session_id,
    )
    return [task for (task,) in rows]


async def test_ending_early_cancels_warning_and_expiry(client, ready_user, connect, sql) -> None:
    user = await ready_user()
    phone = await connect(user)
    session = (await start(client, user)).json()["session"]
    assert await jobs_to_run(sql, session["id"]) == ["sessions:expire", "sessions:warn"]
    r = await client.post("/api/after-hours/session/end", headers=user.headers)
    assert r.status_code == 200
    # The warning and the expiry still run at the original times (7.5 s here) and find the
    # session ended; once neither is left, whatever they would send is in the event log.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds_until(session["expiresAt"]) + 15
    while await jobs_to_run(sql, session["id"]):
        assert loop.time() < deadline, "the session's jobs never ran"
        await asyncio.sleep(0.2)
    r = await client.get("/api/after-hours/events", params={"after": 0}, headers=user.headers)
    assert r.status_code == 200, r.text
    logged = [e["event"] for e in r.json()["events"]]
    assert "after_hours:session_expiring" not in logged
    assert "after_hours:session_expired" not in logged
    assert session_events(phone) == []


async def test_a_session_is_capped_and_keeps_one_expiry_and_one_warning_job(
    client, ready_user, sql
) -> None:
    user = await ready_user()
    session = (await start(client, user, duration=60)).json()["session"]
    codes = []
    for _ in range(100):
        r = await client.post(
            "/api/after-hours/session/extend", json={"additionalMinutes": 15}, headers=user.headers
        )
        codes.append(r.status_code if r.status_code == 200 else r.json()["code"])
    # 60 minutes and eight extensions reach the 180-minute cap (tests/conftest.py keeps the
    # default); everything after is refused and moves nothing.
    assert codes == [200] * 8 + ["SESSION_LIMIT_REACHED"] * 92
    r = await client.get("/api/after-hours/session", headers=user.headers)
    now = r.json()["session"]
    length = datetime.fromisoformat(now["expiresAt"]) - datetime.fromisoformat(now["startedAt"])
    assert length.total_seconds() == 180 * SESSION_MINUTE
    assert await jobs_to_run(sql, session["id"]) == ["sessions:expire", "sessions:warn"]


async def test_missed_events_replay_by_seq_at_connect_and_over_rest(
    client, ready_user, connect
) -> None:
    user = await ready_user()
    live = await connect(user)
    await start(client, user)
    await live.wait_for("after_hours:session_expired", within=12)
    seqs = [data["seq"] for _, data in live.events]
    assert seqs == list(range(1, len(seqs) + 1))  # strictly increasing, nothing skipped
    warning_seq = live.named("after_hours:session_expiring")[0]["seq"]

    late = await connect(user, lastSeq=warning_seq)
    replayed = await late.wait_for("after_hours:session_expired", within=5)
    assert replayed["seq"] == live.named("after_hours:session_expired")[0]["seq"]
    assert late.named("after_hours:session_expiring") == []
    assert all(data["seq"] > warning_seq for _, data in late.events)

    r = await client.get("/api/after-hours/events", params={"after": 0}, headers=user.headers)
    events = r.json()["events"]
    assert [e["seq"] for e in events] == seqs
    assert [e["event"] for e in events] == [name for name, _ in live.events]


async def test_socket_with_bad_token_is_refused(base_url) -> None:
    client = socketio.AsyncClient(reconnection=False)
    refused: list = []
    client.on("connect_error", lambda data: refused.append(data))
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(base_url, auth={"token": "bad"}, transports=["websocket"])
    assert not client.connected
    assert refused and refused[0]["data"] == {"code": "UNAUTHORIZED"}


async def test_a_socket_is_disconnected_when_its_token_expires(base_url, verifier) -> None:
    token = verifier.issue(uuid.uuid4(), premium=True, ttl=2)
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(base_url, auth={"token": token}, transports=["websocket"])
    connected_at = time.monotonic()
    assert client.connected

    async def gone() -> bool:
        return not client.connected

    await until(gone, within=4)
    # Not before its `exp` (whole seconds: between 1 and 2 s after the connect).
    assert time.monotonic() - connected_at > 0.9
