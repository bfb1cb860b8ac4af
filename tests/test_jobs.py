"""Jobs deferred in a unit of work: inserted together as it commits, never for a unit that rolls
back, and a job whose queueing lock is taken dropped without taking the others with it. On a
database of its own, with no worker: the jobs stay where they were put."""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from afterhours import jobs, wiring
from afterhours.db import Database
from tests.conftest import sql_on


@pytest.fixture
async def database(isolated_url: str) -> AsyncIterator[Database]:
    jobs.register_tasks(wiring.JOB_BLUEPRINTS)
    database = Database(isolated_url)
    yield database
    await database.dispose()


async def waiting(isolated_url: str, marker: str) -> list[tuple[str, Any]]:
    async with sql_on(isolated_url) as sql:
        rows = await sql(
            "SELECT task_name, queueing_lock FROM procrastinate_jobs"
            " WHERE %s IN (args->>'session_id', args->>'user_id') AND status = 'todo' ORDER BY id",
            marker,
        )
    return [(task, lock) for task, lock in rows]


async def test_a_units_jobs_exist_once_it_commits_and_never_if_it_rolls_back(
    database: Database, isolated_url: str
) -> None:
    kept, dropped = str(uuid.uuid4()), str(uuid.uuid4())
    async with database.transaction() as db:
        await jobs.defer(db, "sessions:expire", session_id=kept)
        await jobs.defer(db, "sessions:warn", queueing_lock=f"w:{kept}", session_id=kept)
        # Nothing is written before the unit commits.
        assert await waiting(isolated_url, kept) == []
    assert await waiting(isolated_url, kept) == [
        ("sessions:expire", None),
        ("sessions:warn", f"w:{kept}"),
    ]

    with pytest.raises(RuntimeError):
        async with database.transaction() as db:
            await jobs.defer(db, "sessions:expire", session_id=dropped)
            raise RuntimeError("the unit fails")
    assert await waiting(isolated_url, dropped) == []


async def test_a_job_whose_queueing_lock_is_taken_is_dropped_and_the_rest_are_kept(
    database: Database, isolated_url: str
) -> None:
    marker = str(uuid.uuid4())
    taken = f"sessions:expire:{marker}"
    async with database.transaction() as db:
        await jobs.defer(db, "sessions:expire", queueing_lock=taken, session_id=marker)

    async with database.transaction() as db:
        await jobs.defer(db, "sessions:expire", queueing_lock=taken, session_id=marker)
        await jobs.defer(db, "sessions:warn", queueing_lock=f"w:{marker}", session_id=marker)
        await jobs.defer(db, "matching:attempt", user_id=marker)
        await jobs.defer_many(db, "push:send", [{"user_id": marker}])

    assert await waiting(isolated_url, marker) == [
        ("sessions:expire", taken),
        ("sessions:warn", f"w:{marker}"),
        ("matching:attempt", None),
        ("push:send", None),
    ]
