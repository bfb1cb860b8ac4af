"""Messages over real sockets and REST: who hears them, in what order, and what is refused."""

import uuid

import httpx

from afterhours.chat.schemas import MessageSent
from tests.support.chat import Chat, MakeChat, send
from tests.support.clients import assert_error
from tests.support.events import MESSAGE, TYPING


def wire(event: dict) -> dict:
    return {k: v for k, v in event.items() if k != "seq"}


async def test_message_reaches_every_device_of_both(client, make_chat: MakeChat, connect) -> None:
    chat = await make_chat()
    sa2 = await connect(chat.a)  # the sender's second phone
    ack = await send(chat.sa, chat.match_id, "  hello there  ", clientMessageId="c-1")
    assert ack["ok"] is True, ack
    message = ack["message"]
    assert message["content"] == "hello there"  # trimmed
    assert message["matchId"] == chat.match_id
    assert message["senderId"] == str(chat.a.id)
    assert message["clientMessageId"] == "c-1"
    assert set(message) == {"id", "matchId", "senderId", "content", "createdAt", "clientMessageId"}
    for device in (chat.sa, sa2, chat.sb):
        event = await device.wait_for(MESSAGE)
        assert wire(event) == message
        assert isinstance(event["seq"], int)
        MessageSent.model_validate(wire(event))
    # The other way, over REST: both of a's phones hear it, in order after the first.
    r = await client.post(chat.path("/messages"), json={"content": "hi!"}, headers=chat.b.headers)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["success"] is True and body["message"]["clientMessageId"] is None
    for device in (chat.sa, sa2, chat.sb):
        second = await device.wait_for(MESSAGE, count=2)
        assert second["id"] == body["message"]["id"]
        assert second["seq"] > device.named(MESSAGE)[0]["seq"]


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


async def test_socket_chat_needs_premium_like_rest(make_chat: MakeChat, make_user, connect) -> None:
    chat = await make_chat()
    free = await connect(make_user(premium=False))
    for event, payload in (
        ("after_hours:send_message", {"matchId": chat.match_id, "content": "hi"}),
        ("after_hours:typing", {"matchId": chat.match_id}),
    ):
        ack = await free.client.call(event, payload, timeout=10)
        assert ack["ok"] is False and ack["error"]["code"] == "PREMIUM_REQUIRED"


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


async def test_bad_content_is_a_validation_error(client, make_chat: MakeChat) -> None:
    chat = await make_chat()
    for content in ("x" * 1001, "   \n\t ", ""):
        ack = await send(chat.sa, chat.match_id, content)
        assert ack["ok"] is False and ack["error"]["code"] == "VALIDATION_ERROR", ack
        assert ack["error"]["details"][0]["field"] == "content"
        r = await client.post(
            chat.path("/messages"), json={"content": content}, headers=chat.a.headers
        )
        body = assert_error(r, 400, "VALIDATION_ERROR")
        assert body["details"][0]["field"] == "content"
    for payload in ({"matchId": "nope", "content": "x"}, {"content": "x"}, None):
        ack = await chat.sa.client.call("after_hours:send_message", payload, timeout=10)
        assert ack["ok"] is False and ack["error"]["code"] == "VALIDATION_ERROR"
    r = await client.post(
        chat.path("/messages"),
        json={"content": "x", "clientMessageId": "k" * 129},
        headers=chat.a.headers,
    )
    assert_error(r, 400, "VALIDATION_ERROR")
    # 1,000 characters after trimming is the most, and fine.
    ack = await send(chat.sa, chat.match_id, " " + "y" * 1000 + " ")
    assert ack["ok"] is True and len(ack["message"]["content"]) == 1000
    await chat.sb.wait_for(MESSAGE)
    assert len(chat.sb.named(MESSAGE)) == 1


async def page(client: httpx.AsyncClient, chat: Chat, **params: object) -> list[str]:
    r = await client.get(chat.path("/messages"), params=params, headers=chat.b.headers)
    assert r.status_code == 200, r.text
    return [m["content"] for m in r.json()["messages"]]


async def test_history_pages_backwards_oldest_first(client, make_chat: MakeChat) -> None:
    chat = await make_chat()
    ids = []
    for n in range(7):
        sender = chat.a if n % 2 == 0 else chat.b
        r = await client.post(
            chat.path("/messages"), json={"content": f"m{n}"}, headers=sender.headers
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["message"]["id"])
    assert await page(client, chat) == [f"m{n}" for n in range(7)]
    assert await page(client, chat, limit=3) == ["m4", "m5", "m6"]
    assert await page(client, chat, limit=3, before=ids[4]) == ["m1", "m2", "m3"]
    assert await page(client, chat, limit=3, before=ids[1]) == ["m0"]
    assert await page(client, chat, limit=3, before=ids[0]) == []
    # What the sockets heard is the stored order.
    await chat.sa.wait_for(MESSAGE, count=7)
    assert [m["id"] for m in chat.sa.named(MESSAGE)] == ids
    for params in ({"limit": 0}, {"limit": 101}, {"before": "x"}, {"before": str(uuid.uuid4())}):
        r = await client.get(chat.path("/messages"), params=params, headers=chat.a.headers)
        assert_error(r, 400, "VALIDATION_ERROR")


async def test_typing_reaches_the_other_participant_only_and_is_not_stored(
    client, make_chat: MakeChat, connect
) -> None:
    chat = await make_chat()
    sa2, sb2 = await connect(chat.a), await connect(chat.b)
    ack = await chat.sa.client.call("after_hours:typing", {"matchId": chat.match_id}, timeout=10)
    assert ack == {"ok": True}
    for device in (chat.sb, sb2):
        assert await device.wait_for(TYPING) == {"matchId": chat.match_id, "userId": str(chat.a.id)}
    # Within 2 s a second "typing" is acknowledged but not relayed again.
    ack = await sa2.client.call("after_hours:typing", {"matchId": chat.match_id}, timeout=10)
    assert ack == {"ok": True}
    assert (await send(chat.sa, chat.match_id, "done typing"))["ok"]
    await chat.sb.wait_for(MESSAGE)  # sent after the typings, so it arrives after them too
    assert len(chat.sb.named(TYPING)) == 1
    assert chat.sa.named(TYPING) == [] and sa2.named(TYPING) == []
    # Not in the event log (nothing to replay), and no seq.
    r = await client.get("/api/after-hours/events", headers=chat.b.headers)
    assert TYPING not in [e["event"] for e in r.json()["events"]]
    ack = await chat.sa.client.call("after_hours:typing", {"matchId": "nope"}, timeout=10)
    assert ack["error"]["code"] == "VALIDATION_ERROR"


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
