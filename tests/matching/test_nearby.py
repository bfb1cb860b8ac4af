"""`activeUsersNearby` of `after_hours:no_matches`: only people matching could pair the user
with, in coarse steps, so stepping a preference cannot single anyone out (docs/privacy.md)."""

import httpx
import pytest

from afterhours.matching import engine
from afterhours.matching.sweep import nearby_band
from tests.matching.test_engine import north, row
from tests.support.events import MATCH, NO_MATCHES
from tests.support.places import random_place
from tests.support.sessions import go


@pytest.mark.parametrize(
    ("count", "told"),
    [
        (0, 0),
        (1, 0),
        (4, 0),
        (5, 5),
        (9, 5),
        (10, 10),
        (19, 10),
        (20, 20),
        (49, 40),
        (50, 50),
        (99, 50),
        (100, 100),
        (149, 100),
        (1234, 1200),
    ],
)
def test_the_count_is_told_in_coarse_steps(count: int, told: int) -> None:
    assert nearby_band(count) == told


def test_suitors_are_those_compatible_both_ways() -> None:
    w = engine.Waiting.from_rows(
        [
            row(max_age=40),  # the user the count is for
            row(north(3)),  # suits, and is suited
            row(north(1), age=45),  # too old for the user
            row(north(2), seeking=("man",)),  # does not seek the user's gender
            row(north(10), max_km=5),  # within the user's 25 km, beyond their own 5 km
            row(north(30)),  # beyond the user's 25 km
        ]
    )
    assert engine.suitors(w, 0).tolist() == [1]


async def busy_pairs(client: httpx.AsyncClient, person, connect, here, pairs: int) -> None:
    """`pairs` × 2 people at `here`, each in session and in a match (so nobody is free)."""
    for _ in range(pairs):
        a, b = await person(place=here), await person(place=here)
        sa, sb = await connect(a), await connect(b)
        await go(client, a)
        await go(client, b)
        await sa.wait_for(MATCH)
        await sb.wait_for(MATCH)


async def told_nearby(client: httpx.AsyncClient, connect, user) -> int:
    phone = await connect(user)
    await go(client, user)
    nothing = await phone.wait_for(NO_MATCHES)
    count: int = nothing["activeUsersNearby"]
    return count


async def test_six_people_who_could_be_matched_are_told_as_five(client, person, connect) -> None:
    here = random_place()
    await busy_pairs(client, person, connect, here, 3)  # in a match: counted, they may free up
    assert await told_nearby(client, connect, await person(place=here)) == 5


async def test_someone_who_blocked_the_user_is_not_counted(client, person, connect) -> None:
    here = random_place()
    me = await person(place=here)
    await busy_pairs(client, person, connect, here, 2)
    blocker = await person(place=here)
    r = await client.post(
        "/api/after-hours/blocks", json={"userId": str(me.id)}, headers=blocker.headers
    )
    assert r.status_code == 201
    await go(client, blocker)
    # Four who could be matched with me: told as 0; counting the blocker would make it 5.
    assert await told_nearby(client, connect, me) == 0


async def test_someone_incompatible_is_not_counted(client, person, connect) -> None:
    here = random_place()
    await busy_pairs(client, person, connect, here, 2)
    too_old = await person(birth_date="1950-01-01", place=here)  # seeks anyone; I do not
    await go(client, too_old)
    me = await person(max_age=50, place=here)
    assert await told_nearby(client, connect, me) == 0


async def test_someone_the_user_blocked_is_not_counted(client, person, connect) -> None:
    here = random_place()
    me = await person(place=here)
    await busy_pairs(client, person, connect, here, 2)
    blocked = await person(place=here)
    r = await client.post(
        "/api/after-hours/blocks", json={"userId": str(blocked.id)}, headers=me.headers
    )
    assert r.status_code == 201
    await go(client, blocked)
    assert await told_nearby(client, connect, me) == 0
