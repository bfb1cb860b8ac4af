"""Saving a match: one save waits for the other; both make it permanent, beyond the sessions."""

from tests.support.chat import MakeChat, send
from tests.support.clients import assert_error
from tests.support.events import CLOSED, MESSAGE, NO_MATCHES, SAVED
from tests.support.sessions import go


async def test_one_save_waits_then_both_make_a_permanent_match(
    client, make_chat: MakeChat, sql
) -> None:
    chat = await make_chat()
    r = await client.post(chat.path("/save"), headers=chat.a.headers)
    assert r.status_code == 200, r.text
    match = r.json()["match"]
    assert (match["status"], match["savedByMe"], match["savedByThem"]) == ("active", True, False)
    assert match["permanentMatchId"] is None
    r = await client.get(chat.path(), headers=chat.b.headers)
    assert r.json()["match"]["savedByThem"] is True and r.json()["match"]["savedByMe"] is False

    waited = [len(s.named(NO_MATCHES)) for s in (chat.sa, chat.sb)]  # from before the match
    r = await client.post(chat.path("/save"), headers=chat.b.headers)
    assert r.status_code == 200, r.text
    match = r.json()["match"]
    assert match["status"] == "saved" and match["savedByMe"] and match["savedByThem"]
    permanent_id = match["permanentMatchId"]
    assert permanent_id is not None
    for device in (chat.sa, chat.sb):
        saved = await device.wait_for(SAVED)
        assert {k: v for k, v in saved.items() if k != "seq"} == {
            "matchId": chat.match_id,
            "permanentMatchId": permanent_id,
        }
    # One event each: the first save sent nothing.
    assert len(chat.sa.named(SAVED)) == len(chat.sb.named(SAVED)) == 1
    rows = await sql(
        "SELECT user_a, user_b, after_hours_match_id::text FROM permanent_matches WHERE id = %s",
        permanent_id,
    )
    assert len(rows) == 1
    assert {rows[0][0], rows[0][1]} == {chat.a.id, chat.b.id}
    assert rows[0][2] == chat.match_id
    # Saving again changes nothing; both are free for a new match, but not with each other.
    r = await client.post(chat.path("/save"), headers=chat.a.headers)
    assert r.status_code == 200 and r.json()["match"]["permanentMatchId"] == permanent_id
    assert (await client.get("/api/after-hours/match", headers=chat.a.headers)).json()[
        "match"
    ] is None
    await chat.sa.wait_for(NO_MATCHES, count=waited[0] + 1)
    await chat.sb.wait_for(NO_MATCHES, count=waited[1] + 1)
    assert len(chat.sa.named("after_hours:match")) == 1


async def test_only_an_active_match_can_be_saved(client, make_chat: MakeChat) -> None:
    pending = await make_chat(accept=False)
    assert_error(
        await client.post(pending.path("/save"), headers=pending.a.headers), 409, "MATCH_NOT_OPEN"
    )
    await client.post(pending.path("/decline"), headers=pending.b.headers)
    assert_error(
        await client.post(pending.path("/save"), headers=pending.a.headers), 409, "MATCH_NOT_OPEN"
    )


async def test_saved_chat_outlives_both_sessions(client, make_chat: MakeChat) -> None:
    chat = await make_chat()
    assert (await send(chat.sa, chat.match_id, "before"))["ok"]
    for user in (chat.a, chat.b):
        await client.post(chat.path("/save"), headers=user.headers)
    await chat.sa.wait_for(SAVED)
    for user in (chat.a, chat.b):
        r = await client.post("/api/after-hours/session/end", headers=user.headers)
        assert r.status_code == 200, r.text
    ack = await send(chat.sa, chat.match_id, "after the sessions", clientMessageId="late")
    assert ack["ok"] is True, ack
    r = await client.post(
        chat.path("/messages"), json={"content": "still here"}, headers=chat.b.headers
    )
    assert r.status_code == 201, r.text
    await chat.sa.wait_for(MESSAGE, count=3)
    r = await client.get(chat.path("/messages"), headers=chat.a.headers)
    contents = [m["content"] for m in r.json()["messages"]]
    assert contents == ["before", "after the sessions", "still here"]
    r = await client.get(chat.path(), headers=chat.b.headers)
    assert r.json()["match"]["status"] == "saved"
    # Ending the sessions closed nothing: the saved match is not an open one.
    assert chat.sa.named(CLOSED) == [] and chat.sb.named(CLOSED) == []
    # A new session later (its attempt finds nobody), and the saved chat is still there.
    waited = len(chat.sa.named(NO_MATCHES))
    await go(client, chat.a)
    await chat.sa.wait_for(NO_MATCHES, count=waited + 1)
    assert (await send(chat.sb, chat.match_id, "welcome back"))["ok"]


async def test_a_block_stops_a_saved_chat(client, make_chat: MakeChat) -> None:
    chat = await make_chat()
    for user in (chat.a, chat.b):
        await client.post(chat.path("/save"), headers=user.headers)
    await chat.sb.wait_for(SAVED)
    r = await client.post(
        "/api/after-hours/blocks", json={"userId": str(chat.a.id)}, headers=chat.b.headers
    )
    assert r.status_code == 201
    for recorder in (chat.sa, chat.sb):
        ack = await send(recorder, chat.match_id, "hello?")
        assert ack["ok"] is False and ack["error"]["code"] == "MATCH_NOT_OPEN"
    # The history stays readable to both.
    r = await client.get(chat.path("/messages"), headers=chat.a.headers)
    assert r.status_code == 200
