"""Deleting an account takes the user's chats with it, except one an open report holds."""

from afterhours.retention import service, tasks
from tests.support.chat import MakeChat, chat_rows, send
from tests.support.events import CLOSED


async def test_account_deletion_takes_the_users_matches_and_messages(
    client, make_chat: MakeChat, sql
) -> None:
    chat = await make_chat()
    assert (await send(chat.sa, chat.match_id, "hi"))["ok"]
    assert (await send(chat.sb, chat.match_id, "hey"))["ok"]
    for user in (chat.a, chat.b):
        await client.post(chat.path("/save"), headers=user.headers)
    await chat.sb.wait_for("after_hours:match_saved")
    r = await client.delete("/api/account", headers=chat.a.headers)
    assert r.status_code == 200, r.text
    # The other phone hears that the saved chat is gone.
    closed = await chat.sb.wait_for(CLOSED)
    assert (closed["matchId"], closed["status"], closed["reason"]) == (
        chat.match_id,
        "ended",
        "account_deleted",
    )
    assert await chat_rows(sql, chat.match_id) == (0, 0, 0)
    assert await sql("SELECT 1 FROM after_hours_messages WHERE sender_id = %s", chat.a.id) == []
    assert (
        await sql(
            "SELECT 1 FROM permanent_matches WHERE user_a = %(u)s OR user_b = %(u)s",
            {"u": chat.a.id},
        )
        == []
    )
    r = await client.get(chat.path(), headers=chat.b.headers)
    assert r.status_code == 404


async def test_an_active_chat_ends_and_goes_with_the_account(
    client, make_chat: MakeChat, sql
) -> None:
    chat = await make_chat()
    assert (await send(chat.sb, chat.match_id, "hello"))["ok"]
    r = await client.delete("/api/account", headers=chat.b.headers)
    assert r.status_code == 200, r.text
    # Closed the usual way first (the session ends with the account), then deleted.
    closed = await chat.sa.wait_for(CLOSED)
    assert (closed["matchId"], closed["status"]) == (chat.match_id, "ended")
    assert await chat_rows(sql, chat.match_id) == (0, 0, 0)


async def test_a_reported_chat_survives_the_account_until_the_report_is_resolved(
    client, make_chat: MakeChat, sql, database
) -> None:
    chat = await make_chat()
    assert (await send(chat.sb, chat.match_id, "something nasty"))["ok"]
    assert (await send(chat.sa, chat.match_id, "stop"))["ok"]
    r = await client.post(
        "/api/after-hours/reports",
        json={
            "reportedUserId": str(chat.b.id),
            "matchId": chat.match_id,
            "category": "harassment",
        },
        headers=chat.a.headers,
    )
    assert r.status_code == 201, r.text
    r = await client.delete("/api/account", headers=chat.b.headers)
    assert r.status_code == 200, r.text
    # The match and every message (with its sender) stay for the moderators.
    assert await chat_rows(sql, chat.match_id) == (1, 1, 2)
    senders = await sql(
        "SELECT sender_id FROM after_hours_messages WHERE match_id = %s ORDER BY created_at",
        chat.match_id,
    )
    assert senders == [(chat.b.id,), (chat.a.id,)]
    [(reported,)] = await sql(
        "SELECT reported_user_id FROM after_hours_reports WHERE match_id = %s", chat.match_id
    )
    assert reported == chat.b.id
    # Resolved, the hold ends: the night's orphan sweep takes the one-sided match.
    await sql(
        "UPDATE after_hours_reports SET status = 'resolved', resolved_at = now()"
        " WHERE match_id = %s",
        chat.match_id,
    )
    step = service.Step("orphan_matches_deleted", service.delete_orphan_matches)
    await tasks.run_steps(database, [step])
    assert await chat_rows(sql, chat.match_id) == (0, 0, 0)
