"""Retention runs against the real database, with the clock moved to the night in question."""

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import croniter
import psycopg

from afterhours import jobs, wiring
from afterhours.db import Database
from afterhours.retention import tasks
from afterhours.storage import LocalStorage
from tests.support.chat import MakeChat, chat_rows, send
from tests.support.clock import frozen_at
from tests.support.server import settings_for


async def test_chat_purge_takes_unsaved_chats_closed_30_days_ago_only(
    client, make_chat: MakeChat, sql, database: Database
) -> None:
    declined, saved, reported, resolved, active = [await make_chat() for _ in range(5)]
    for chat in (declined, saved, reported, resolved, active):
        assert (await send(chat.sa, chat.match_id, "hi"))["ok"]
        assert (await send(chat.sb, chat.match_id, "hello"))["ok"]
    await client.post(declined.path("/decline"), headers=declined.a.headers)
    for user in (saved.a, saved.b):
        await client.post(saved.path("/save"), headers=user.headers)
    for chat in (reported, resolved):
        r = await client.post(
            "/api/after-hours/reports",
            json={"reportedUserId": str(chat.b.id), "matchId": chat.match_id, "category": "spam"},
            headers=chat.a.headers,
        )
        assert r.status_code == 201, r.text
    await sql(
        "UPDATE after_hours_reports SET status = 'resolved', resolved_at = now()"
        " WHERE match_id = %s",
        resolved.match_id,
    )
    everyone = (declined, saved, reported, resolved, active)
    now = datetime.now(UTC)

    with frozen_at(now + timedelta(days=29)):
        await tasks.purge_chats_now(database)
    for chat in everyone:
        assert await chat_rows(sql, chat.match_id) == (1, 2, 2)

    with frozen_at(now + timedelta(days=31)):
        counts = await tasks.purge_chats_now(database)
    assert counts["messages_deleted"] >= 4 and counts["matches_deleted"] >= 2
    for gone in (declined, resolved):
        assert await chat_rows(sql, gone.match_id) == (0, 0, 0)
    for kept in (saved, reported, active):
        assert await chat_rows(sql, kept.match_id) == (1, 2, 2)
    r = await client.get(saved.path("/messages"), headers=saved.a.headers)
    assert [m["content"] for m in r.json()["messages"]] == ["hi", "hello"]


async def test_nightly_cleanup_deletes_what_it_names_and_keeps_the_rest(
    isolated_url: str, tmp_path: Path
) -> None:
    settings = settings_for(isolated_url, tmp_path)
    storage = LocalStorage(settings)
    u = [uuid.uuid4() for _ in range(6)]
    day = timedelta(days=1)
    now = datetime.now(UTC)
    await storage.put(f"{u[4]}/orphan.jpg", b"jpeg", "image/jpeg")
    async with await psycopg.AsyncConnection.connect(isolated_url, autocommit=True) as conn:
        for user in u:
            await conn.execute("INSERT INTO users (id) VALUES (%s)", (user,))
        await conn.cursor().executemany(
            "INSERT INTO after_hours_declines (user_id, declined_user_id, created_at)"
            " VALUES (%s, %s, %s)",
            [(u[0], u[1], now - 8 * day), (u[1], u[0], now - 6 * day)],
        )
        await conn.cursor().executemany(
            "INSERT INTO user_events (user_id, seq, event, data, created_at)"
            " VALUES (%s, %s, 'after_hours:no_matches', '{}', %s)",
            [(u[0], 1, now - 8 * day), (u[0], 2, now - 6 * day)],
        )
        await conn.cursor().executemany(
            "INSERT INTO device_fingerprints (user_id, fingerprint_hash, last_seen_at)"
            " VALUES (%s, %s, %s)",
            [(u[0], "old", now - 91 * day), (u[2], "recent", now - 89 * day)],
        )
        # A session past its time that no expiry job closed.
        await conn.execute(
            "INSERT INTO after_hours_sessions (user_id, started_at, expires_at, duration_minutes,"
            " exact_lat, exact_lon, fuzzed_lat, fuzzed_lon) VALUES (%s, %s, %s, 15, 0, 0, 0, 0)",
            (u[3], now - 2 * day, now - 2 * day + timedelta(minutes=15)),
        )
        # u[3] has a base profile; u[4] lost theirs (the host app deleted it); u[5] never had one.
        await conn.execute(
            "INSERT INTO profiles (user_id, name, birth_date, gender)"
            " VALUES (%s, 'Kept', '1990-01-01', 'man')",
            (u[3],),
        )
        await conn.cursor().executemany(
            "INSERT INTO after_hours_profiles (user_id, description, photo_key)"
            " VALUES (%s, '', %s)",
            [(u[3], None), (u[4], f"{u[4]}/orphan.jpg")],
        )
        await conn.cursor().executemany(
            "INSERT INTO after_hours_preferences"
            " (user_id, seeking_genders, min_age, max_age, max_distance_km, updated_at)"
            " VALUES (%s, '{man}', 18, 99, 25, %s)",
            [(u[3], now - 60 * day), (u[5], now - 31 * day), (u[0], now - 29 * day)],
        )

    database = Database(isolated_url)
    try:
        with frozen_at(now):
            counts = await tasks.nightly_cleanup_now(database, wiring.lifecycle(settings).sessions)
    finally:
        await database.dispose()
    assert counts == {
        "sessions_closed": 1,
        "declines_deleted": 1,
        "events_deleted": 1,
        "fingerprints_deleted": 1,
        "orphan_profiles_deleted": 1,
        "orphan_preferences_deleted": 1,
        "orphan_matches_deleted": 0,
        "rejections_deleted": 0,
        "rate_windows_deleted": 0,
    }
    async with await psycopg.AsyncConnection.connect(isolated_url) as conn:

        async def rows(query: str) -> list[tuple]:
            return await (await conn.execute(query)).fetchall()

        assert await rows("SELECT user_id, declined_user_id FROM after_hours_declines") == [
            (u[1], u[0])
        ]
        # The closed session's expiry event is new; of the old ones only the 6-day-old is left.
        events = await rows("SELECT seq, event FROM user_events ORDER BY seq")
        assert (1, "after_hours:no_matches") not in events
        assert (2, "after_hours:no_matches") in events
        # A ban is kept in device_bans, not here: sightings only go stale.
        assert await rows("SELECT fingerprint_hash FROM device_fingerprints") == [("recent",)]
        assert await rows("SELECT end_reason FROM after_hours_sessions") == [("timeout",)]
        assert await rows("SELECT user_id FROM after_hours_profiles") == [(u[3],)]
        assert sorted(await rows("SELECT user_id FROM after_hours_preferences")) == sorted(
            [(u[3],), (u[0],)]
        )
        # The orphan's photo goes by a job (tests/profiles/test_photo_deletion.py runs it).
        assert await rows(
            "SELECT args FROM procrastinate_jobs WHERE task_name = 'profiles:delete_photos'"
        ) == [({"keys": [f"{u[4]}/orphan.jpg"], "attempt": 0},)]


def test_retention_runs_nightly_at_3_and_4_utc() -> None:
    app = jobs.register_tasks(wiring.JOB_BLUEPRINTS)
    crons = {pt.task.name: pt.cron for pt in app.periodic_registry.periodic_tasks.values()}
    assert crons["retention:purge_chats"] == "0 3 * * *"
    assert crons["retention:nightly_cleanup"] == "0 4 * * *"
    # croniter reads a timestamp as UTC, whatever the server's local zone.
    at = croniter.croniter("0 3 * * *").get_next(datetime, datetime(2026, 1, 1, 12, tzinfo=UTC))
    assert at == datetime(2026, 1, 2, 3, tzinfo=UTC)
