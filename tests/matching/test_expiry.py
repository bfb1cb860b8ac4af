"""A pending match whose time is up is no longer open, with no job run to close it (a server
without a worker): past its auto-decline deadline, or once a participant's session expired."""

from tests.support.chat import MakeChat, Sql
from tests.support.clients import assert_error
from tests.support.matching import open_match
from tests.support.sessions import lapse


async def accepted(sql: Sql, match_id: str) -> int:
    [(count,)] = await sql(
        "SELECT count(accepted_at) FROM after_hours_match_participants WHERE match_id = %s",
        match_id,
    )
    return int(count)


async def test_accept_past_the_auto_decline_deadline_is_refused(
    idle_client, idle_chat: MakeChat, idle_sql: Sql
) -> None:
    chat = await idle_chat(accept=False)
    assert (await idle_client.post(chat.path("/accept"), headers=chat.a.headers)).status_code == 200
    await idle_sql(
        "UPDATE after_hours_matches SET auto_decline_at = now() - interval '1 second'"
        " WHERE id = %s",
        chat.match_id,
    )
    r = await idle_client.post(chat.path("/accept"), headers=chat.b.headers)
    assert_error(r, 409, "MATCH_NOT_OPEN")
    assert await accepted(idle_sql, chat.match_id) == 1  # the chat never opened
    # What it will be closed as once the job runs; meanwhile nobody's open match.
    r = await idle_client.get(chat.path(), headers=chat.b.headers)
    assert r.json()["match"]["status"] == "expired"
    assert await open_match(idle_client, chat.a) is None
    assert await open_match(idle_client, chat.b) is None


async def test_accept_once_a_session_expired_is_refused(
    idle_client, idle_chat: MakeChat, idle_sql: Sql
) -> None:
    chat = await idle_chat(accept=False)
    await lapse(idle_sql, chat.a)
    for user in (chat.a, chat.b):
        r = await idle_client.post(chat.path("/accept"), headers=user.headers)
        assert_error(r, 409, "MATCH_NOT_OPEN")
    assert await accepted(idle_sql, chat.match_id) == 0
    r = await idle_client.get(chat.path(), headers=chat.b.headers)
    assert r.json()["match"]["status"] == "ended"
    assert await open_match(idle_client, chat.b) is None
