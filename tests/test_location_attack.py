"""A patient attacker against location privacy (docs/privacy.md): trilateration from chosen
spots on the real service, reading `distanceKm` off match cards, and what even knowing a public
point exactly tells of where its person is, over many people.

Run with `-s` to see the numbers docs/privacy.md quotes."""

import math
import random
import statistics
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pytest
from scipy.optimize import least_squares

from afterhours import geo
from afterhours.auth import TokenVerifier
from afterhours.settings import Settings
from tests.support.clients import User, assert_error
from tests.support.matching import matchable_user, open_match, sweep_once
from tests.support.server import TEST_SECRET, running_server
from tests.support.sessions import start

SECRET = "attack-test-location-secret-" + "s" * 36
TRUTH = geo.Point(47.3769, 8.5417)
# Ids are fixed (so is the secret) to make the attack replay exactly. The target is the first
# of a run of ids whose public point the former scheme (the cell's centre moved up to 1 km)
# put within 100 m of the truth, here: 42 m — the 1 person in 100 it exposed outright.
TARGET = uuid.UUID("0a77ac40-0000-0000-0000-00000000003c")
# 28 measurements need 4 accounts: each may start 8 sessions an hour (limits.py).
ATTACKERS = [uuid.UUID(int=(0xA77AC4 << 100) + 1000 + i) for i in range(4)]
# The attacker knows the neighbourhood: spots on rings around a guess 2 km off.
GUESS = geo.offset(TRUTH, north_km=1.4, east_km=1.4)


@dataclass
class Service:
    settings: Settings
    client: httpx.AsyncClient
    verifier: TokenVerifier


@pytest.fixture
async def service(isolated_url: str, tmp_path: Path) -> AsyncIterator[Service]:
    """The real app on a database of its own, no worker: the test runs each match attempt (as
    the worker's job would), so the attack replays exactly."""
    settings = Settings(
        database_url=isolated_url,
        data_dir=tmp_path,
        jwt_secret=TEST_SECRET,
        location_secret=SECRET,
        _env_file=None,  # type: ignore[call-arg]
    )
    async with (
        running_server(settings, with_worker=False) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as client,
    ):
        yield Service(settings, client, TokenVerifier(settings))


async def person(service: Service, user_id: uuid.UUID, place: geo.Point) -> User:
    user = User(service.verifier, premium=True, user_id=user_id)
    return await matchable_user(service.client, user, (place.lat, place.lon))


async def measure(service: Service, attacker: User, spot: geo.Point) -> int:
    """Start a session at `spot`, be matched with the target, read the card's distance, leave
    (ending the session closes the match without a decline, so the target is free again)."""
    r = await start(service.client, attacker, place=(spot.lat, spot.lon))
    assert r.status_code == 201, r.text
    await sweep_once(service.settings, focus_user=attacker.id)
    match = await open_match(service.client, attacker)
    assert match is not None and match["profile"]["userId"] == str(TARGET)
    r = await service.client.post("/api/after-hours/session/end", headers=attacker.headers)
    assert r.status_code == 200, r.text
    km: int = match["profile"]["distanceKm"]
    return km


def plane(origin: geo.Point, p: geo.Point) -> tuple[float, float]:
    """km east and north of `origin` (a local flat map: metres of error over a few km)."""
    east = (p.lon - origin.lon) * geo.KM_PER_DEGREE_LAT * math.cos(math.radians(origin.lat))
    return east, (p.lat - origin.lat) * geo.KM_PER_DEGREE_LAT


def trilaterate(origin: geo.Point, spots: list[geo.Point], shown: list[int]) -> geo.Point:
    """The point whose distances to the spots best fit what the cards showed, by least squares
    (a card's whole km, rounded up, taken as the middle of that km): the best of a 200 m grid
    within 8 km of `origin`, refined."""
    xy = np.array([plane(origin, s) for s in spots])
    km = np.array(shown, dtype=float) - 0.5

    def misfit(at: np.ndarray) -> np.ndarray:
        return np.hypot(at[0] - xy[:, 0], at[1] - xy[:, 1]) - km

    axis = np.arange(-8, 8.0001, 0.2)
    grid = np.array(np.meshgrid(axis, axis)).reshape(2, -1)
    cost = ((np.hypot(grid[0][:, None] - xy[:, 0], grid[1][:, None] - xy[:, 1]) - km) ** 2).sum(1)
    east, north = least_squares(misfit, grid[:, np.argmin(cost)], bounds=(-8, 8)).x
    return geo.offset(origin, north_km=float(north), east_km=float(east))


def spots_around(guess: geo.Point) -> list[geo.Point]:
    """28 spots on rings around a guess, as the attacker chose them."""
    return [
        geo.destination(guess, distance_km=radius, bearing=2 * math.pi * (k + radius / 7) / 7)
        for radius in (1.5, 3.0, 4.5, 6.0)
        for k in range(7)
    ]


SPOTS = spots_around(GUESS)


async def public_point(database_url: str, user_id: uuid.UUID) -> geo.Point:
    """The target's stored public point: what the service thinks, to compare the attack with."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT fuzzed_lat, fuzzed_lon FROM after_hours_sessions WHERE user_id = %s",
            (user_id,),
        )
        [(lat, lon)] = await cursor.fetchall()
    return geo.Point(lat, lon)


async def test_trilateration_from_chosen_spots_never_finds_the_person(
    service: Service, isolated_url: str
) -> None:
    target = await person(service, TARGET, TRUTH)
    r = await start(service.client, target, duration=60)
    assert r.status_code == 201, r.text
    attackers = [await person(service, a, GUESS) for a in ATTACKERS]

    shown = [await measure(service, attackers[i // 7], spot) for i, spot in enumerate(SPOTS)]
    # Once more from the first spot, with the same account: the very same answer.
    assert await measure(service, attackers[0], SPOTS[0]) == shown[0]
    # That was the account's 8th start this hour; a 9th is refused (more accounts it must be).
    r = await start(service.client, attackers[0], place=(SPOTS[1].lat, SPOTS[1].lon))
    assert_error(r, 429, "RATE_LIMITED")

    public = await public_point(isolated_url, TARGET)
    estimate = trilaterate(GUESS, SPOTS, shown)
    to_public, to_truth = geo.haversine_km(estimate, public), geo.haversine_km(estimate, TRUTH)
    print(
        f"\ntrilateration, {len(shown)} cards: estimate {to_public * 1000:.0f} m from the public"
        f" point, {to_truth * 1000:.0f} m from the person;"
        f" public point {geo.haversine_km(public, TRUTH) * 1000:.0f} m from the person"
    )
    assert geo.haversine_km(public, TRUTH) >= geo.PRIVACY_FLOOR_KM
    assert to_truth >= geo.PRIVACY_FLOOR_KM


def random_spot(rng: random.Random) -> geo.Point:
    """Uniform over the globe (not over latitudes: that would crowd the poles)."""
    return geo.Point(math.degrees(math.asin(rng.uniform(-1, 1))), rng.uniform(-180, 180))


def test_knowing_a_public_point_exactly_never_puts_anyone_within_the_floor() -> None:
    """10,000 people anywhere: the best an attacker can make of a public point, even known
    exactly, is the point itself (the truth lies on a ring around it, in no known direction)."""
    rng = random.Random(2024)
    secret = rng.randbytes(64)
    errors = sorted(
        geo.haversine_km(
            spot, geo.fuzz(spot, user_id=uuid.UUID(int=rng.getrandbits(128)), secret=secret)
        )
        for spot in (random_spot(rng) for _ in range(10_000))
    )
    within = {m: sum(e < m / 1000 for e in errors) / len(errors) for m in (100, 300, 500)}
    print(
        f"\npublic point known exactly, 10,000 people: min {errors[0] * 1000:.0f} m,"
        f" 1st percentile {errors[100] * 1000:.0f} m, median {errors[5000] * 1000:.0f} m,"
        f" mean {statistics.mean(errors) * 1000:.0f} m, max {errors[-1] * 1000:.0f} m;"
        + "".join(f" within {m} m: {share:.2%}" for m, share in within.items())
    )
    assert within[300] == 0
    assert errors[0] >= geo.PRIVACY_FLOOR_KM
    assert errors[-1] <= geo.MAX_ERROR_KM + 1e-9
    assert statistics.mean(errors) >= 1.0


def test_trilateration_of_many_people_places_almost_nobody_near_the_truth() -> None:
    """The attack above, replayed on the arithmetic alone for 1,000 people, each measured from
    28 spots by 4 accounts: its estimate is the person's public point give or take the
    attacker's own fuzz, so it lands near the truth only by chance (and the attacker cannot
    tell when)."""
    rng = random.Random(5)
    secret = rng.randbytes(64)
    errors = []
    for _ in range(1000):
        truth = geo.Point(rng.uniform(-60, 60), rng.uniform(-180, 180))
        public = geo.fuzz(truth, user_id=uuid.UUID(int=rng.getrandbits(128)), secret=secret)
        guess = geo.offset(truth, north_km=rng.uniform(-2, 2), east_km=rng.uniform(-2, 2))
        spots = spots_around(guess)
        accounts = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(4)]
        shown = [
            geo.display_km(
                geo.haversine_km(public, geo.fuzz(s, user_id=accounts[i // 7], secret=secret))
            )
            for i, s in enumerate(spots)
        ]
        errors.append(geo.haversine_km(trilaterate(guess, spots, shown), truth))
    within = {m: sum(e < m / 1000 for e in errors) / len(errors) for m in (100, 300, 500)}
    print(
        f"\ntrilateration of 1,000 people: estimate to person min {min(errors) * 1000:.0f} m,"
        f" median {statistics.median(errors) * 1000:.0f} m,"
        f" mean {statistics.mean(errors) * 1000:.0f} m;"
        + "".join(f" within {m} m: {share:.1%}" for m, share in within.items())
    )
    assert within[100] == 0
    assert within[300] <= 0.01
    assert statistics.mean(errors) >= 1.0
