"""A worker killed with SIGKILL in the middle of a sweep: the next worker takes the sweep over once
the dead one has missed its heartbeats. No match is lost or delivered twice, and no pending match
outlives its auto-decline."""

import asyncio
from pathlib import Path

import httpx
import psycopg

from afterhours.settings import Settings
from tests.support.events import MATCH
from tests.support.places import random_place
from tests.support.processes import worker_process
from tests.support.server import running_server, settings_for
from tests.support.sessions import go

PAIRS = 100
AUTO_DECLINE = 3.0


async def waiting_crowd(settings: Settings, make_user, count: int) -> list[str]:
    """`count` compatible people in session at one spot, with no worker yet to pair them."""
    here = random_place()
    ids = []
    async with (
        running_server(settings, with_worker=False) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        for _ in range(count):
            user = make_user()
            profile = {"name": "K", "birthDate": "1990-01-01", "gender": "nonbinary"}
            await client.put("/api/profile", json=profile, headers=user.headers)
            await client.put(
                "/api/after-hours/profile", json={"description": ""}, headers=user.headers
            )
            user.place = here
            await go(client, user, duration=60)
            ids.append(str(user.id))
    return ids


async def until(conn: psycopg.AsyncConnection, query: str, *, within: float) -> list[tuple]:
    """Poll `query` until it returns rows; the rows."""
    async with asyncio.timeout(within):
        while True:
            if rows := await (await conn.execute(query)).fetchall():
                return rows
            await asyncio.sleep(0.005)


async def test_a_sweep_killed_midway_is_taken_over_and_nothing_is_lost_or_doubled(
    isolated_url: str, tmp_path: Path, make_user
) -> None:
    settings = settings_for(isolated_url, tmp_path).model_copy(
        update={
            # No per-session attempt is due during the test: the sweep does all the pairing.
            "match_delay_start_seconds": 600.0,
            "match_delay_decline_seconds": 0.2,
            "match_sweep_seconds": 0.5,
            "auto_decline_seconds": AUTO_DECLINE,
            "worker_heartbeat_max_age_seconds": 2.0,
        }
    )
    users = await waiting_crowd(settings, make_user, 2 * PAIRS)
    conn = await psycopg.AsyncConnection.connect(isolated_url, autocommit=True)

    async with worker_process(settings) as doomed:
        ((killed_job,),) = await until(
            conn,
            "SELECT id FROM procrastinate_jobs"
            " WHERE task_name = 'matching:sweep' AND status = 'doing'",
            within=30,
        )
        doomed.kill()
        await doomed.wait()
    (stuck,) = await (
        await conn.execute("SELECT status FROM procrastinate_jobs WHERE id = %s", (killed_job,))
    ).fetchone()
    assert stuck == "doing"  # killed in the middle of it, holding the "matching" lock

    async with worker_process(settings):
        # Everyone is paired; the first cards then time out and people are paired afresh.
        await until(
            conn,
            "SELECT 1 WHERE (SELECT count(DISTINCT user_id) FROM after_hours_match_participants)"
            f" = {2 * PAIRS}",
            within=30,
        )
        # Past the first cards' auto-decline deadline (and a second's grace), none is pending.
        ((left,),) = await until(
            conn,
            "SELECT extract(epoch FROM min(created_at) - now()) FROM after_hours_matches",
            within=1,
        )
        await asyncio.sleep(float(left) + AUTO_DECLINE + 2.5)
        pending_overdue = await (
            await conn.execute(
                "SELECT id FROM after_hours_matches WHERE status = 'pending'"
                " AND created_at < now() - make_interval(secs => %s)",
                (AUTO_DECLINE + 1.0,),
            )
        ).fetchall()
        open_twice = await (
            await conn.execute(
                "SELECT user_id FROM after_hours_match_participants WHERE is_open"
                " GROUP BY user_id HAVING count(*) > 1"
            )
        ).fetchall()
        deliveries = await (
            await conn.execute(
                "SELECT p.user_id, p.match_id, count(e.seq) FROM after_hours_match_participants p"
                " LEFT JOIN user_events e ON e.user_id = p.user_id AND e.event = %s"
                " AND e.data->>'id' = p.match_id::text GROUP BY p.user_id, p.match_id",
                (MATCH,),
            )
        ).fetchall()
        retried = await (
            await conn.execute("SELECT status FROM procrastinate_jobs WHERE id = %s", (killed_job,))
        ).fetchall()
    await conn.close()

    # Given up by its dead worker: run again (successful jobs are deleted), or marked failed when
    # the next sweep was already queued behind it.
    assert retried in ([], [("failed",)])
    assert not open_twice
    assert not pending_overdue
    assert {str(user) for user, _, _ in deliveries} == set(users)
    assert {count for _, _, count in deliveries} == {1}  # each card delivered once, none lost
