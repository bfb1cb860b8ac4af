"""Reports: filed against a user (and their match or one message), they also block."""

from tests.support.chat import MakeChat, send
from tests.support.events import CLOSED
from tests.support.moderation import REPORTS


async def test_report_is_filed_and_blocks(client, make_chat: MakeChat, sql) -> None:
    chat = await make_chat()
    r = await client.post(
        REPORTS,
        json={
            "reportedUserId": str(chat.b.id),
            "matchId": chat.match_id,
            "category": "harassment",
            "details": "  rude  ",
        },
        headers=chat.a.headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["success"] is True and set(body["report"]) == {"id"}
    [row] = await sql(
        "SELECT reporter_id, reported_user_id, match_id::text, category, details, status"
        " FROM after_hours_reports WHERE id = %s",
        body["report"]["id"],
    )
    assert row == (chat.a.id, chat.b.id, chat.match_id, "harassment", "rude", "open")
    # The block closes their match for both, and keeps them apart.
    for recorder in (chat.sa, chat.sb):
        closed = await recorder.wait_for(CLOSED)
        assert (closed["matchId"], closed["status"]) == (chat.match_id, "blocked")
    assert await sql(
        "SELECT 1 FROM after_hours_blocks WHERE blocker_id = %s AND blocked_id = %s",
        chat.a.id,
        chat.b.id,
    ) == [(1,)]


async def test_report_naming_a_message_is_held_on_its_match(
    client, make_chat: MakeChat, sql
) -> None:
    chat = await make_chat()
    ack = await send(chat.sb, chat.match_id, "buy my crypto")
    message_id = ack["message"]["id"]
    r = await client.post(
        REPORTS,
        json={"reportedUserId": str(chat.b.id), "messageId": message_id, "category": "scam"},
        headers=chat.a.headers,
    )
    assert r.status_code == 201, r.text
    [row] = await sql(
        "SELECT match_id::text, message_id::text FROM after_hours_reports WHERE id = %s",
        r.json()["report"]["id"],
    )
    assert row == (chat.match_id, message_id)
