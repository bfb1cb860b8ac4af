"""A chat ends when a session's time does, with no job run (a server without a worker): the
active match takes no message and relays no typing, while a saved one chats on."""

from tests.support.chat import MakeChat, Sql, chat_rows, send
from tests.support.clients import assert_error
from tests.support.events import MESSAGE, SAVED, TYPING
from tests.support.sessions import lapse


async def stored_status(sql: Sql, match_id: str) -> str:
    [(status,)] = await sql("SELECT status FROM after_hours_matches WHERE id = %s", match_id)
    return str(status)


async def test_send_once_a_session_expired_is_refused_and_stores_and_sends_nothing(
    idle_client, idle_chat: MakeChat, idle_sql: Sql
) -> None:
    chat = await idle_chat()
    assert (await send(chat.sa, chat.match_id, "before"))["ok"]
    await chat.sb.wait_for(MESSAGE)
    await lapse(idle_sql, chat.a)
    # Either side is refused, b too, whose session goes on: a match needs both.
    for recorder in (chat.sa, chat.sb):
        ack = await send(recorder, chat.match_id, "after", clientMessageId="late")
        assert ack["ok"] is False and ack["error"]["code"] == "MATCH_NOT_OPEN", ack
    for user in (chat.a, chat.b):
        r = await idle_client.post(
            chat.path("/messages"), json={"content": "after"}, headers=user.headers
        )
        assert_error(r, 409, "MATCH_NOT_OPEN")
    assert await chat_rows(idle_sql, chat.match_id) == (1, 2, 1)
    # Nothing was sent: each one's event log holds the first message only.
    for user in (chat.a, chat.b):
        r = await idle_client.get("/api/after-hours/events", headers=user.headers)
        assert [e["event"] for e in r.json()["events"]].count(MESSAGE) == 1
    assert len(chat.sa.named(MESSAGE)) == len(chat.sb.named(MESSAGE)) == 1
    assert await stored_status(idle_sql, chat.match_id) == "active"  # no job closed it


async def test_typing_once_the_sessions_expired_is_refused_and_not_relayed(
    idle_chat: MakeChat, idle_sql: Sql
) -> None:
    chat = await idle_chat()
    await lapse(idle_sql, chat.a, chat.b)
    for typist in (chat.sa, chat.sb):
        ack = await typist.client.call("after_hours:typing", {"matchId": chat.match_id}, timeout=10)
        assert ack["ok"] is False and ack["error"]["code"] == "MATCH_NOT_OPEN", ack
    assert chat.sa.named(TYPING) == [] and chat.sb.named(TYPING) == []
    assert await stored_status(idle_sql, chat.match_id) == "active"


async def test_a_saved_chat_goes_on_after_the_sessions_expire_where_an_active_one_stops(
    idle_client, idle_chat: MakeChat, idle_sql: Sql
) -> None:
    saved, active = await idle_chat(), await idle_chat()
    for user in (saved.a, saved.b):
        r = await idle_client.post(saved.path("/save"), headers=user.headers)
        assert r.status_code == 200, r.text
    await saved.sa.wait_for(SAVED)
    await lapse(idle_sql, saved.a, saved.b, active.a, active.b)

    ack = await send(saved.sa, saved.match_id, "still here")
    assert ack["ok"] is True, ack
    r = await idle_client.post(
        saved.path("/messages"), json={"content": "me too"}, headers=saved.b.headers
    )
    assert r.status_code == 201, r.text
    ack = await saved.sb.client.call("after_hours:typing", {"matchId": saved.match_id}, timeout=10)
    assert ack == {"ok": True}
    await saved.sa.wait_for(TYPING)
    await saved.sa.wait_for(MESSAGE, count=2)
    r = await idle_client.get(saved.path("/messages"), headers=saved.a.headers)
    assert [m["content"] for m in r.json()["messages"]] == ["still here", "me too"]

    ack = await send(active.sa, active.match_id, "and here?")
    assert ack["ok"] is False and ack["error"]["code"] == "MATCH_NOT_OPEN", ack
    assert (await chat_rows(idle_sql, active.match_id))[2] == 0
