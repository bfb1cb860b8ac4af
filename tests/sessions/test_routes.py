import asyncio
from datetime import datetime

import httpx

from tests.support.clients import assert_error
from tests.support.places import random_place
from tests.support.sessions import start


async def test_start_returns_201_with_session_and_no_location(client, ready_user) -> None:
    user = await ready_user()
    r = await start(client, user, duration=30)
    assert r.status_code == 201, r.text
    session = r.json()["session"]
    assert set(session) == {"id", "startedAt", "expiresAt", "durationMinutes"}
    assert session["durationMinutes"] == 30
    started = datetime.fromisoformat(session["startedAt"])
    expires = datetime.fromisoformat(session["expiresAt"])
    assert (expires - started).total_seconds() == 30 * 0.5  # one session-minute is 0.5 s here


async def test_status_reports_active_session_with_remaining_seconds(client, ready_user) -> None:
    user = await ready_user()
    r = await client.get("/api/after-hours/session", headers=user.headers)
    assert r.json() == {"success": True, "active": False, "session": None}
    sid = (await start(client, user, duration=60)).json()["session"]["id"]
    body = (await client.get("/api/after-hours/session", headers=user.headers)).json()
    assert body["active"] is True
    assert body["session"]["id"] == sid
    assert 0 < body["session"]["remainingSeconds"] <= 30


async def test_second_start_is_409_session_already_active(client, ready_user) -> None:
    user = await ready_user()
    assert (await start(client, user)).status_code == 201
    assert_error(await start(client, user), 409, "SESSION_ALREADY_ACTIVE")


async def test_twenty_concurrent_starts_make_exactly_one_session(client, ready_user) -> None:
    user = await ready_user()
    place = random_place()
    responses = await asyncio.gather(*(start(client, user, place=place) for _ in range(20)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 19
    for r in responses:
        if r.status_code == 409:
            assert r.json()["code"] == "SESSION_ALREADY_ACTIVE"


async def test_start_without_after_hours_profile_is_profile_required(client, make_user) -> None:
    assert_error(await start(client, make_user()), 400, "PROFILE_REQUIRED")


async def test_start_needs_premium(client, make_user) -> None:
    assert_error(await start(client, make_user(premium=False)), 403, "PREMIUM_REQUIRED")


async def test_start_validates_duration_and_coordinates(client, ready_user) -> None:
    user = await ready_user()
    for body, field in [
        ({"duration": 20, "latitude": 0, "longitude": 0}, "duration"),
        ({"duration": 15, "latitude": 91, "longitude": 0}, "latitude"),
        ({"duration": 15, "latitude": 0, "longitude": -181}, "longitude"),
        ({"duration": 15, "latitude": 0}, "longitude"),
    ]:
        r = await client.post("/api/after-hours/session/start", json=body, headers=user.headers)
        details = assert_error(r, 400, "VALIDATION_ERROR")["details"]
        assert details[0]["field"] == field
    status = await client.get("/api/after-hours/session", headers=user.headers)
    assert status.json()["active"] is False


async def test_end_then_end_again_is_404(client, ready_user) -> None:
    user = await ready_user()
    await start(client, user)
    r = await client.post("/api/after-hours/session/end", headers=user.headers)
    assert r.status_code == 200 and r.json()["success"] is True
    assert_error(
        await client.post("/api/after-hours/session/end", headers=user.headers),
        404,
        "NO_ACTIVE_SESSION",
    )
    assert (await start(client, user)).status_code == 201


async def test_extend_moves_expiry(client, ready_user) -> None:
    user = await ready_user()
    session = (await start(client, user)).json()["session"]
    r = await client.post(
        "/api/after-hours/session/extend", json={"additionalMinutes": 30}, headers=user.headers
    )
    assert r.status_code == 200, r.text
    extended = r.json()["session"]
    assert extended["id"] == session["id"]
    assert extended["extendedByMinutes"] == 30
    moved = datetime.fromisoformat(extended["expiresAt"]) - datetime.fromisoformat(
        session["expiresAt"]
    )
    assert moved.total_seconds() == 15


async def test_extend_without_session_is_404_and_bad_minutes_400(client, ready_user) -> None:
    user = await ready_user()
    path = "/api/after-hours/session/extend"
    assert_error(
        await client.post(path, json={"additionalMinutes": 15}, headers=user.headers),
        404,
        "NO_ACTIVE_SESSION",
    )
    assert_error(
        await client.post(path, json={"additionalMinutes": 45}, headers=user.headers),
        400,
        "VALIDATION_ERROR",
    )


async def test_impossible_travel_is_location_rejected(client, ready_user) -> None:
    user = await ready_user()
    assert (await start(client, user, place=(48.85, 2.35))).status_code == 201  # Paris
    await client.post("/api/after-hours/session/end", headers=user.headers)
    sydney = await start(client, user, place=(-33.87, 151.21))
    assert_error(sydney, 400, "LOCATION_REJECTED")
    nearby = await start(client, user, place=(48.86, 2.36))
    assert nearby.status_code == 201


async def test_expired_session_is_inactive_without_any_job(
    client: httpx.AsyncClient, ready_user
) -> None:
    # Whatever the worker does, once expiresAt has passed the session reads as over.
    user = await ready_user()
    await start(client, user)
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        body = (await client.get("/api/after-hours/session", headers=user.headers)).json()
        if not body["active"]:
            break
        assert body["session"]["remainingSeconds"] >= 0
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.2)
    assert (await start(client, user)).status_code == 201
