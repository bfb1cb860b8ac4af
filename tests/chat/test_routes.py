"""The message routes: what content is refused (the socket refuses the same) and history paging."""

import uuid

import httpx

from tests.support.chat import Chat, MakeChat, send
from tests.support.clients import assert_error
from tests.support.events import MESSAGE


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
