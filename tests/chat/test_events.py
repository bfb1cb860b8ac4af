"""Messages and typing over real sockets: who hears them, in what order; the socket asks for
premium like REST."""

from afterhours.chat.schemas import MessageSent
from tests.support.chat import MakeChat, send
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


async def test_socket_chat_needs_premium_like_rest(make_chat: MakeChat, make_user, connect) -> None:
    chat = await make_chat()
    free = await connect(make_user(premium=False))
    for event, payload in (
        ("after_hours:send_message", {"matchId": chat.match_id, "content": "hi"}),
        ("after_hours:typing", {"matchId": chat.match_id}),
    ):
        ack = await free.client.call(event, payload, timeout=10)
        assert ack["ok"] is False and ack["error"]["code"] == "PREMIUM_REQUIRED"


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


async def test_an_event_with_the_wrong_arity_or_shape_gets_a_validation_error_ack(
    make_chat: MakeChat,
) -> None:
    chat = await make_chat()
    payload = {"matchId": chat.match_id, "content": "hi"}
    for args in [(payload, "extra"), (payload, 1, 2), ("just text",), ([payload],), (None, None)]:
        ack = await chat.sa.client.call("after_hours:send_message", args, timeout=10)
        assert ack["ok"] is False and ack["error"]["code"] == "VALIDATION_ERROR", (args, ack)
    assert (await send(chat.sa, chat.match_id, "after"))["ok"]
    await chat.sb.wait_for(MESSAGE)
    assert [m["content"] for m in chat.sb.named(MESSAGE)] == ["after"]  # the bad ones sent nothing
