"""Sweeping by shard misses nobody at a border and makes each pair once: a shard sweeps its
own people with everyone within reach as partners, and keeps the pairs whose longer-waiting
member is its own."""

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import psycopg
import pytest

from afterhours.db import Database
from afterhours.geo import Box
from afterhours.matching import sweep
from afterhours.settings import Settings
from afterhours.storage import LocalStorage
from tests.support.clients import User
from tests.support.server import running_server, settings_for
from tests.support.sessions import go

# Two shards meeting at 20°E. People stand 5 km or more from the line, beyond the ~2.2 km the
# location fuzz may move them (geo.MAX_ERROR_KM), so each is in the shard the test means.
WEST = Box(10.0, 11.0, 18.0, 20.0)
EAST = Box(10.0, 11.0, 20.0, 22.0)


@pytest.fixture
async def place(
    isolated_url: str, tmp_path: Path, make_user: Callable[..., User]
) -> AsyncIterator[Callable[..., object]]:
    """Start sessions for new people at given points, in the order given (the waiting order);
    no worker runs on this database, so the sweeps below are the only matchmakers."""
    settings = settings_for(isolated_url, tmp_path)
    async with (
        running_server(settings, with_worker=False) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):

        async def start(*points: tuple[float, float], gender: str = "nonbinary") -> list[User]:
            users = []
            for lat, lon in points:
                user = make_user()
                profile = {"name": "B", "birthDate": "1990-01-01", "gender": gender}
                await client.put("/api/profile", json=profile, headers=user.headers)
                await client.put(
                    "/api/after-hours/profile", json={"description": ""}, headers=user.headers
                )
                if gender != "nonbinary":
                    seeking = {"man": "woman", "woman": "man"}[gender]
                    prefs = {"seekingGenders": [seeking], "minAge": 18, "maxAge": 99}
                    prefs["maxDistanceKm"] = 25
                    r = await client.put(
                        "/api/after-hours/preferences", json=prefs, headers=user.headers
                    )
                    assert r.status_code == 200, r.text
                user.place = (lat, lon)
                await go(client, user)
                users.append(user)
            return users

        yield start


async def sweep_shards(settings: Settings, *boxes: Box, together: bool = False) -> list[int]:
    databases = [Database(settings.database_url or "") for _ in boxes]
    storage = LocalStorage(settings)

    async def one(db: Database, box: Box) -> int:
        async with db.transaction() as session:
            return (await sweep.sweep(session, settings=settings, storage=storage, shard=box)).pairs

    try:
        if together:
            return list(await asyncio.gather(*map(one, databases, boxes)))
        return [await one(db, box) for db, box in zip(databases, boxes, strict=True)]
    finally:
        for db in databases:
            await db.dispose()


def partners(url: str) -> dict[str, str]:
    """Each open participant's partner, by user id."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT a.user_id, b.user_id FROM after_hours_match_participants a"
            " JOIN after_hours_match_participants b ON b.match_id = a.match_id"
            " AND b.user_id <> a.user_id WHERE a.is_open"
        ).fetchall()
    return {str(a): str(b) for a, b in rows}


async def test_a_pair_across_a_border_is_made_by_the_shard_of_whoever_waited_longer(
    place, isolated_url: str, tmp_path: Path
) -> None:
    settings = settings_for(isolated_url, tmp_path)
    west, east = await place((10.5, 19.95), (10.5, 20.05))  # 11 km apart; west waited longer
    middle = await place((10.5, 21.0), (10.5, 21.02))  # deep inside the east shard
    assert await sweep_shards(settings, EAST) == [1]
    made = partners(isolated_url)
    assert made[str(middle[0].id)] == str(middle[1].id)
    assert str(west.id) not in made and str(east.id) not in made  # the west shard's to make
    assert await sweep_shards(settings, WEST) == [1]
    assert partners(isolated_url)[str(west.id)] == str(east.id)


async def test_a_crowd_on_a_border_is_paired_once_each_by_shards_side_by_side(
    place, isolated_url: str, tmp_path: Path
) -> None:
    settings = settings_for(isolated_url, tmp_path)
    # Men west of the line, women east of it: every possible pair crosses the border.
    crowd = await place(*[(10.5 + n * 0.01, 19.94) for n in range(12)], gender="man")
    crowd += await place(*[(10.5 + n * 0.01, 20.06) for n in range(12)], gender="woman")
    await sweep_shards(settings, WEST, EAST, together=True)
    first = partners(isolated_url)
    assert all(first[first[user]] == user for user in first)  # nobody in two matches
    await sweep_shards(settings, WEST, EAST)  # whatever the race between them left
    made = partners(isolated_url)
    assert len(made) == len(crowd)  # everyone paired, across the line or not
    assert all(made[made[user]] == user for user in made)
