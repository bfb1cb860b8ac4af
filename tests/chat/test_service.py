"""The chat rules: only an open match's participants talk, a resend is stored once, and each
sender is rate limited."""

import uuid

from tests.support.chat import MakeChat, send
from tests.support.clients import assert_error
from tests.support.events import MESSAGE


async def test_resend_with_same_client_message_id_is_stored_and_sent_once(
    client, make_chat: MakeChat
) -> None:
    chat = await make_chat()
    first = await send(chat.sa, chat.match_id, "only once", clientMessageId="dup")
    again = await send(chat.sa, chat.match_id, "only once", clientMessageId="dup")
    r = await client.post(
        chat.path("/messages"),
        json={"content": "only once", "clientMessageId": "dup"},
        headers=chat.a.headers,
    )
    assert first["ok"] and again["ok"] and r.status_code == 201
    assert again["message"] == first["message"] == r.json()["message"]
    # The same clientMessageId from the other participant is a different message.
    theirs = await send(chat.sb, chat.match_id, "mine too", clientMessageId="dup")
    assert theirs["message"]["id"] != first["message"]["id"]
    # Events arrive in order: had a resend been sent, it would come before this one.
    await chat.sb.wait_for(MESSAGE, count=2)
    assert [m["id"] for m in chat.sb.named(MESSAGE)] == [
        first["message"]["id"],
        theirs["message"]["id"],
    ]
    r = await client.get(chat.path("/messages"), headers=chat.b.headers)
    assert [m["content"] for m in r.json()["messages"]] == ["only once", "mine too"]


async def test_non_participant_and_unknown_match_are_not_found(
    client, make_chat: MakeChat, make_user, connect
) -> None:
    chat = await make_chat()
    stranger = make_user()
    ss = await connect(stranger)
    ack = await send(ss, chat.match_id, "let me in")
    assert ack == {"ok": False, "error": {"code": "NOT_FOUND", "message": "Match not found"}}
    ack = await send(chat.sa, str(uuid.uuid4()), "anyone?")
    assert ack["error"]["code"] == "NOT_FOUND"
    ack = await ss.client.call("after_hours:typing", {"matchId": chat.match_id}, timeout=10)
    assert ack["ok"] is False and ack["error"]["code"] == "NOT_FOUND"
    h = stranger.headers
    assert_error(
        await client.post(chat.path("/messages"), json={"content": "x"}, headers=h),
        404,
        "NOT_FOUND",
    )
    assert_error(await client.get(chat.path("/messages"), headers=h), 404, "NOT_FOUND")
    assert_error(await client.post(chat.path("/save"), headers=h), 404, "NOT_FOUND")
    assert chat.sa.named(MESSAGE) == [] and chat.sb.named(MESSAGE) == []


async def test_pending_match_is_not_open_for_messages(client, make_chat: MakeChat) -> None:
    chat = await make_chat(accept=False)
    ack = await send(chat.sa, chat.match_id, "too early")
    assert ack["ok"] is False and ack["error"]["code"] == "MATCH_NOT_OPEN"
    r = await client.post(chat.path("/messages"), json={"content": "x"}, headers=chat.b.headers)
    assert_error(r, 409, "MATCH_NOT_OPEN")
    # A pending match is open, so its (empty) history can be read.
    r = await client.get(chat.path("/messages"), headers=chat.a.headers)
    assert r.status_code == 200 and r.json() == {"success": True, "messages": []}


async def test_declined_match_is_closed_for_messages_and_history(
    client, make_chat: MakeChat
) -> None:
    chat = await make_chat()
    assert (await send(chat.sa, chat.match_id, "bye?"))["ok"]
    r = await client.post(chat.path("/decline"), headers=chat.b.headers)
    assert r.status_code == 200
    ack = await send(chat.sa, chat.match_id, "wait")
    assert ack["ok"] is False and ack["error"]["code"] == "MATCH_NOT_OPEN"
    ack = await chat.sa.client.call("after_hours:typing", {"matchId": chat.match_id}, timeout=10)
    assert ack["error"]["code"] == "MATCH_NOT_OPEN"
    assert_error(
        await client.get(chat.path("/messages"), headers=chat.a.headers), 409, "MATCH_NOT_OPEN"
    )


async def test_more_than_ten_messages_in_ten_seconds_is_rate_limited(
    client, make_chat: MakeChat
) -> None:
    chat = await make_chat()
    for n in range(9):
        ack = await send(chat.sa, chat.match_id, f"spam {n}", clientMessageId=f"s{n}")
        assert ack["ok"] is True, ack
    # A resend of a stored message is not a new message: it does not use up the allowance.
    assert (await send(chat.sa, chat.match_id, "spam 0", clientMessageId="s0"))["ok"]
    assert (await send(chat.sa, chat.match_id, "tenth", clientMessageId="s9"))["ok"]
    # The eleventh in 10 s is refused, over the socket and over REST.
    ack = await send(chat.sa, chat.match_id, "one more")
    assert ack["ok"] is False and ack["error"]["code"] == "RATE_LIMITED"
    r = await client.post(chat.path("/messages"), json={"content": "rest"}, headers=chat.a.headers)
    assert_error(r, 429, "RATE_LIMITED")
    assert 1 <= int(r.headers["Retry-After"]) <= 10
    # The other participant has an allowance of their own.
    assert (await send(chat.sb, chat.match_id, "calm down"))["ok"]
    await chat.sa.wait_for(MESSAGE, count=11)
    assert len(chat.sb.named(MESSAGE)) == 11
