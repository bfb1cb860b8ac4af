"""The exact location never leaves the server: not in a response, an event, the event log or a
log line; what is stored for discovery is the fuzzed point, the same for each visit to a spot."""

import json
import logging
import math
import re
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from afterhours import geo
from tests.support.sessions import start

# Distinctive enough that any spelling of it in a response is the location and nothing else.
SPOT = (12.345678, 98.765432)
# A number this close to either coordinate (in degrees, ≈ 5 km) is the exact or the fuzzed point.
NEAR_DEGREES = 0.05


def spellings(value: float) -> set[str]:
    """The coordinate as text: rounded and cut to 3-6 decimals, and as micro-degrees."""
    whole, fraction = f"{value:.6f}".split(".")
    forms = {whole + fraction}
    for decimals in range(3, 7):
        forms.add(f"{value:.{decimals}f}")
        forms.add(f"{whole}.{fraction[:decimals]}")
    return forms


# Not preceded by a digit, ":" or ".": so "…T10:00:12.3461Z" (a time's seconds) is no match.
LEAK = re.compile(
    "|".join(
        rf"(?<![\d:.]){re.escape(form)}"
        for form in sorted(spellings(SPOT[0]) | spellings(SPOT[1]), key=len, reverse=True)
    )
)


def numbers(value: Any) -> Iterator[float]:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from numbers(item)


def assert_no_location(where: str, value: Any) -> None:
    text = value if isinstance(value, str) else json.dumps(value)
    found = LEAK.search(text)
    assert found is None, f"{where} spells the location ({found.group()!r}): {text}"
    if not isinstance(value, str):
        for n in numbers(value):
            assert all(abs(n - c) > NEAR_DEGREES for c in SPOT), f"{where} carries {n}: {text}"


def test_leak_check_catches_the_spellings_it_is_meant_to() -> None:
    for leaked in (
        {"lat": 12.345678},
        {"lon": 98.7654},
        {"latitude": 12.3461},  # the fuzzed point is this close too
        {"where": "12.346,98.765"},
        {"e6": 12345678},
    ):
        with pytest.raises(AssertionError):
            assert_no_location("probe", leaked)
    assert_no_location("probe", {"at": "2030-01-01T10:00:12.346123Z", "seq": 12, "km": 98})


async def test_exact_location_is_in_no_response_event_or_log_line(
    client, ready_user, connect, caplog
) -> None:
    caplog.set_level(logging.INFO)  # what `afterhours serve` logs
    a, b = await ready_user(), await ready_user()
    phone_a, phone_b = await connect(a), await connect(b)
    seen: list[tuple[str, Any]] = []

    async def call(method: str, path: str, user, **kwargs: Any) -> Any:
        r = await client.request(method, path, headers=user.headers, **kwargs)
        assert r.status_code < 300, r.text
        seen.append((f"{method} {path}", r.text))
        return r.json()

    # Both at the very same spot: matched to each other, each shown the other's card.
    for user in (a, b):
        r = await start(client, user, duration=15, place=SPOT)
        assert r.status_code == 201, r.text
        seen.append(("POST /api/after-hours/session/start", r.text))
    card = await phone_a.wait_for("after_hours:match", within=10)
    await phone_b.wait_for("after_hours:match", within=10)
    km = card["profile"]["distanceKm"]
    assert isinstance(km, int) and 1 <= km <= math.ceil(2 * geo.MAX_ERROR_KM)
    match_id = card["id"]
    for user in (a, b):
        await call("GET", "/api/after-hours/session", user)
        await call("GET", "/api/after-hours/match", user)
        await call("GET", f"/api/after-hours/matches/{match_id}", user)
        await call("POST", f"/api/after-hours/matches/{match_id}/accept", user)
    await phone_a.wait_for("after_hours:chat_open")
    await phone_b.wait_for("after_hours:chat_open")

    await call("POST", "/api/after-hours/session/extend", b, json={"additionalMinutes": 15})
    await call("POST", "/api/after-hours/session/end", b)
    await phone_a.wait_for("after_hours:match_closed")
    # a's session runs out: its warning and expiry are sent too (15 session-minutes = 7.5 s).
    await phone_a.wait_for("after_hours:session_expired", within=15)
    await call("GET", "/api/after-hours/session", a)

    for user in (a, b):
        await call("GET", "/api/after-hours/events", user, params={"after": 0})
    replayed = await connect(a, lastSeq=0)
    await replayed.wait_for("after_hours:session_expired")

    for where, text in seen:
        assert_no_location(where, text)
        assert_no_location(where, json.loads(text))
    received = [
        (f"{name} to {who}", data)
        for who, phone in (("a", phone_a), ("b", phone_b), ("a (replay)", replayed))
        for name, data in phone.events
    ]
    assert {name.split(" to ")[0] for name, _ in received} >= {
        "after_hours:match",
        "after_hours:match_accepted",
        "after_hours:chat_open",
        "after_hours:match_closed",
        "after_hours:session_expiring",
        "after_hours:session_expired",
    }
    for where, data in received:
        assert_no_location(where, data)
    lines = [record.getMessage() for record in caplog.records]
    assert any("session_started" in line for line in lines)  # the log was really captured
    for line in lines:
        assert_no_location("log line", line)


async def stored_points(database_url: str, user_id: uuid.UUID) -> list[tuple[float, ...]]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT exact_lat, exact_lon, fuzzed_lat, fuzzed_lon FROM after_hours_sessions"
            " WHERE user_id = %s ORDER BY started_at",
            (user_id,),
        )
        return [tuple(row) for row in await cursor.fetchall()]


async def session_at(client, user, place: tuple[float, float]) -> None:
    r = await start(client, user, place=place)
    assert r.status_code == 201, r.text
    r = await client.post("/api/after-hours/session/end", headers=user.headers)
    assert r.status_code == 200, r.text


async def test_stored_fuzzed_point_is_not_the_exact_one_and_repeats_for_one_spot(
    client, ready_user, database_url
) -> None:
    user, neighbour = await ready_user(), await ready_user()
    spot = user.place
    elsewhere = geo.offset(geo.Point(*spot), north_km=3, east_km=0)  # another cell, 3 km on
    for place in (spot, spot, (elsewhere.lat, elsewhere.lon), spot):
        await session_at(client, user, place)
    await session_at(client, neighbour, spot)

    first, second, moved, back = await stored_points(database_url, user.id)
    (theirs,) = await stored_points(database_url, neighbour.id)
    exact = geo.Point(*spot)
    for row in (first, second, back):
        assert row[:2] == spot  # the exact point is kept as sent (for the travel check)
    fuzzed = geo.Point(*first[2:])
    assert fuzzed != exact
    assert geo.PRIVACY_FLOOR_KM <= geo.haversine_km(exact, fuzzed) <= geo.MAX_ERROR_KM
    # Same user, same spot: the same point every time, so nothing to average towards the truth.
    assert second[2:] == first[2:] == back[2:]
    # Another cell, or another user at the same spot: another point.
    assert moved[2:] != first[2:]
    assert theirs[2:] != first[2:]
    assert (
        geo.PRIVACY_FLOOR_KM <= geo.haversine_km(exact, geo.Point(*theirs[2:])) <= geo.MAX_ERROR_KM
    )
