"""Two sweeps at once (as two workers would run them) never put anyone in two open matches."""

import asyncio
from pathlib import Path

import httpx
import psycopg

from afterhours.db import Database
from afterhours.matching import sweep
from afterhours.storage import LocalStorage
from tests.support.places import random_place
from tests.support.server import running_server, settings_for
from tests.support.sessions import go


async def test_two_concurrent_sweeps_never_double_book(
    isolated_url: str, tmp_path: Path, make_user
) -> None:
    settings = settings_for(isolated_url, tmp_path)
    here = random_place()
    users = []
    # No worker runs on this database: the two sweeps below are the only matchmakers.
    async with (
        running_server(settings, with_worker=False) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        for _ in range(40):
            user = make_user()
            profile = {"name": "R", "birthDate": "1990-01-01", "gender": "nonbinary"}
            await client.put("/api/profile", json=profile, headers=user.headers)
            await client.put(
                "/api/after-hours/profile", json={"description": ""}, headers=user.headers
            )
            user.place = here
            await go(client, user)
            users.append(user)

    databases = [Database(isolated_url) for _ in range(2)]
    storage = LocalStorage(settings)

    async def one_sweep(db: Database) -> int:
        async with db.transaction() as session:
            return (await sweep.sweep(session, settings=settings, storage=storage)).pairs

    made = await asyncio.gather(*(one_sweep(db) for db in databases))
    for db in databases:
        await db.dispose()

    with psycopg.connect(isolated_url) as conn:
        per_user = conn.execute(
            "SELECT user_id, count(*) FROM after_hours_match_participants WHERE is_open"
            " GROUP BY user_id"
        ).fetchall()
        matches = conn.execute(
            "SELECT count(*) FROM after_hours_matches WHERE status = 'pending'"
        ).fetchone()
    assert all(count == 1 for _, count in per_user)
    assert len(per_user) == 40  # everyone paired exactly once
    assert matches == (20,)
    assert sum(made) == 20  # what one sweep paired, the other found taken or dropped
