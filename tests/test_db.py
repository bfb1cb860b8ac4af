"""The transaction owner: each batch of a batch loop is its own unit of work, so what one batch
did is sent when that batch commits, whatever a later batch does."""

from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.exc import DBAPIError

from afterhours import realtime, wiring
from afterhours.db import Database
from afterhours.sessions import service as sessions
from afterhours.sessions import tasks as session_tasks
from tests.conftest import running_server
from tests.sessions.conftest import start
from tests.sessions.test_workers import session_user, settings_for, socket


async def test_events_of_a_committed_batch_go_out_when_a_later_batch_fails(
    isolated_url: str,
    tmp_path: Path,
    make_user,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Redis fan-out publishes after commit (NOTIFY would ride the commit itself), so this shows
    # the after-commit side: a batch's events must not wait for the end of the whole loop.
    settings = settings_for(isolated_url, tmp_path, redis_url)
    async with (
        running_server(settings, with_worker=False) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        first, second = [await session_user(client, make_user) for _ in range(2)]
        phone = await socket(base, first)
        for user in (first, second):
            assert (await start(client, user)).status_code == 201
        with psycopg.connect(isolated_url, autocommit=True) as conn:
            # Both lapsed without their expiry jobs (no worker runs here), the first one earlier,
            # and closing the second is refused: the sweep's second batch fails.
            for user, ago in ((first, "2 seconds"), (second, "1 second")):
                conn.execute(
                    "UPDATE after_hours_sessions SET expires_at = now() - %s::interval"
                    " WHERE user_id = %s",
                    (ago, user.id),
                )
            conn.execute(
                "CREATE FUNCTION refuse_close() RETURNS trigger LANGUAGE plpgsql AS $$"
                f" BEGIN IF NEW.user_id = '{second.id}' AND NEW.ended_at IS NOT NULL THEN"
                " RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$"
            )
            conn.execute(
                "CREATE TRIGGER refuse_close BEFORE UPDATE ON after_hours_sessions"
                " FOR EACH ROW EXECUTE FUNCTION refuse_close()"
            )
        monkeypatch.setattr(sessions, "CLOSE_BATCH", 1)
        database = Database(isolated_url, outbox=realtime.external_emitter(settings))
        try:
            with pytest.raises(DBAPIError, match="refused"):
                await session_tasks.close_all_expired(database, wiring.lifecycle(settings).sessions)
        finally:
            await database.dispose()
        expired = await phone.wait_for("after_hours:session_expired", within=5)
        await phone.client.disconnect()
        with psycopg.connect(isolated_url) as conn:
            ended = dict(
                conn.execute(
                    "SELECT user_id, ended_at IS NOT NULL FROM after_hours_sessions"
                ).fetchall()
            )
    assert ended == {first.id: True, second.id: False}
    assert expired["seq"] >= 1
