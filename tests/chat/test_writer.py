"""Sends that share a transaction: each still answered, stored and ordered on its own."""

import asyncio
import logging
import uuid

import psycopg
import pytest

from afterhours.chat import screening, service
from afterhours.chat.schemas import MessageOut
from afterhours.chat.writer import MessageWriter
from afterhours.db import Database
from afterhours.errors import AppError
from afterhours.limits import Limiter
from tests.support.chat import MakeChat, send
from tests.support.events import MESSAGE


async def test_concurrent_sends_arrive_once_each_in_one_order_everywhere(
    client, make_chat: MakeChat
) -> None:
    chats = [await make_chat() for _ in range(3)]
    sends = [
        send(device, chat.match_id, f"{n} from {side}", clientMessageId=f"{side}-{n}")
        for chat in chats
        for side, device in (("a", chat.sa), ("b", chat.sb))
        for n in range(4)
    ]
    acks = await asyncio.gather(*sends)  # all in flight at once: they share transactions
    assert all(ack["ok"] for ack in acks), acks
    for chat in chats:
        stored = (await client.get(chat.path("/messages"), headers=chat.a.headers)).json()
        stored_ids = [m["id"] for m in stored["messages"]]
        assert len(stored_ids) == 8
        # Both participants hear every message once, in storage order, with rising seqs.
        for device in (chat.sa, chat.sb):
            await device.wait_for(MESSAGE, count=8)
            events = device.named(MESSAGE)
            assert [e["id"] for e in events] == stored_ids
            seqs = [e["seq"] for e in events]
            assert seqs == sorted(set(seqs))
        # Sent without waiting for acks, one device's messages may commit in either order;
        # what holds is that each is stored once, under its sender.
        for side, user in (("a", chat.a), ("b", chat.b)):
            mine = {
                m["clientMessageId"] for m in stored["messages"] if m["senderId"] == str(user.id)
            }
            assert mine == {f"{side}-{n}" for n in range(4)}


async def test_each_send_in_a_batch_gets_its_own_answer(
    make_chat: MakeChat, database: Database, limiter: Limiter, make_user, sql
) -> None:
    open_chat = await make_chat()
    pending = await make_chat(accept=False)
    stranger = make_user()
    await sql("INSERT INTO users (id) VALUES (%s) ON CONFLICT DO NOTHING", stranger.id)
    match = uuid.UUID(open_chat.match_id)
    sends = [
        service.Send(match, open_chat.a.id, "first", "k1"),
        service.Send(match, stranger.id, "let me in", "k2"),
        service.Send(uuid.UUID(pending.match_id), pending.a.id, "too early", "k3"),
        service.Send(match, open_chat.b.id, "second", None),
        service.Send(match, open_chat.a.id, "first, again", "k1"),  # a resend, same batch
    ]
    async with database.transaction() as db:
        first, stranger_answer, early, second, resend = await service.store_messages(
            db, sends, limiter=limiter
        )
    assert not isinstance(first, AppError) and not isinstance(second, AppError)
    # Answers are built in wire form, without a model: exactly MessageOut's JSON.
    for answer in (first, second):
        assert MessageOut.model_validate(answer).model_dump(mode="json", by_alias=True) == answer
    assert (
        MessageOut.model_validate(first).created_at < MessageOut.model_validate(second).created_at
    )
    assert isinstance(stranger_answer, AppError) and stranger_answer.code == "NOT_FOUND"
    assert isinstance(early, AppError) and early.code == "MATCH_NOT_OPEN"
    assert resend == first
    rows = await sql(
        "SELECT content FROM after_hours_messages WHERE match_id = %s ORDER BY created_at", match
    )
    assert rows == [("first",), ("second",)]
    assert await sql(
        "SELECT count(*) FROM after_hours_messages WHERE match_id = %s", pending.match_id
    ) == [(0,)]
    # Two events per stored message, one in each participant's log.
    events = await sql(
        "SELECT count(*) FROM user_events WHERE event = %s AND data->>'matchId' = %s",
        MESSAGE,
        open_chat.match_id,
    )
    assert events == [(4,)]


@pytest.fixture
async def poison(sql) -> str:
    """Content the database refuses (a trigger), as if it failed that message's transaction."""
    word = f"poison-{uuid.uuid4()}"
    await sql(
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" IF NEW.content = '{word}' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$"
    )
    await sql(
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON after_hours_messages"
        " FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
    )
    yield word
    await sql("DROP TRIGGER refuse_poison ON after_hours_messages")
    await sql("DROP FUNCTION refuse_poison()")


async def test_a_failed_batch_is_retried_one_by_one(
    make_chat: MakeChat, database: Database, limiter: Limiter, poison: str, sql, caplog
) -> None:
    chat = await make_chat()
    match = uuid.UUID(chat.match_id)
    writer = MessageWriter(database, limiter=limiter, screen=screening.load(None), writers=1)
    caplog.set_level(logging.ERROR, logger="afterhours.chat")
    before, failed, after = await asyncio.gather(
        writer.send(service.Send(match, chat.a.id, "before")),
        writer.send(service.Send(match, chat.b.id, poison)),
        writer.send(service.Send(match, chat.a.id, "after")),
        return_exceptions=True,
    )
    assert "message_batch_failed size=3" in caplog.text  # they did go as one transaction
    assert isinstance(failed, psycopg.errors.RaiseException)
    assert before["content"] == "before" and after["content"] == "after"  # type: ignore[index]
    rows = await sql(
        "SELECT content FROM after_hours_messages WHERE match_id = %s ORDER BY created_at", match
    )
    assert rows == [("before",), ("after",)]
