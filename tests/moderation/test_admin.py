"""The admin API: the report queue, a report's transcript, assign/escalate/resolve, bans that
hold at once (session, match, sockets, devices) and are lifted again, and the moderation log."""

import hashlib
import uuid
from typing import Any

import socketio

from afterhours.retention import service as retention
from afterhours.retention import tasks as retention_tasks
from tests.support.chat import MakeChat, send
from tests.support.clients import assert_error
from tests.support.events import CLOSED
from tests.support.moderation import REPORTS
from tests.support.sessions import set_up, start
from tests.support.waiting import until

ADMIN = "/api/admin"


async def file_report(client, reporter, reported, **fields: Any) -> str:
    body = {"reportedUserId": str(reported.id), "category": "harassment", **fields}
    r = await client.post(REPORTS, json=body, headers=reporter.headers)
    assert r.status_code == 201, r.text
    return str(r.json()["report"]["id"])


async def test_admin_routes_need_the_admin_role(client, make_user) -> None:
    premium = make_user()
    some_id = uuid.uuid4()
    routes = [
        ("GET", f"{ADMIN}/reports", None),
        ("GET", f"{ADMIN}/reports/{some_id}", None),
        ("POST", f"{ADMIN}/reports/{some_id}/resolve", {"action": "dismiss"}),
        ("POST", f"{ADMIN}/reports/{some_id}/assign", None),
        ("POST", f"{ADMIN}/reports/{some_id}/escalate", {"note": "x"}),
        ("POST", f"{ADMIN}/users/{some_id}/ban", {}),
        ("DELETE", f"{ADMIN}/users/{some_id}/ban", None),
        ("GET", f"{ADMIN}/users/{some_id}", None),
    ]
    for method, path, body in routes:
        r = await client.request(method, path, json=body)
        assert_error(r, 401, "UNAUTHORIZED")
        r = await client.request(method, path, json=body, headers=premium.headers)
        assert_error(r, 403, "FORBIDDEN")


async def test_the_queue_lists_by_status_oldest_first_in_pages_with_counts(
    client, make_chat: MakeChat, make_user
) -> None:
    admin = make_user(admin=True)
    chats = [await make_chat() for _ in range(3)]
    ids = [
        await file_report(client, c.a, c.b, category="spam" if n == 1 else "harassment")
        for n, c in enumerate(chats)
    ]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"status": "open", "limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await client.get(f"{ADMIN}/reports", params=params, headers=admin.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [report["id"] for report in page["reports"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    # Other tests' reports share the queue; ours come in the order they were filed.
    assert [i for i in seen if i in ids] == ids
    assert set(page["counts"]) == {"open", "escalated", "resolved"}
    assert page["counts"]["open"] >= 3
    r = await client.get(
        f"{ADMIN}/reports", params={"status": "open", "category": "spam"}, headers=admin.headers
    )
    spam = [report["id"] for report in r.json()["reports"]]
    assert ids[1] in spam and ids[0] not in spam and ids[2] not in spam
    for params in ({"status": "closed"}, {"category": "rude"}, {"cursor": str(uuid.uuid4())}):
        r = await client.get(f"{ADMIN}/reports", params=params, headers=admin.headers)
        assert_error(r, 400, "VALIDATION_ERROR")


async def test_a_report_shows_its_transcript_marked_and_its_history(
    client, make_chat: MakeChat, make_user
) -> None:
    admin = make_user(admin=True)
    chat = await make_chat()
    first = (await send(chat.sa, chat.match_id, "hi"))["message"]
    nasty = (await send(chat.sb, chat.match_id, "something nasty"))["message"]
    report_id = await file_report(client, chat.a, chat.b, messageId=nasty["id"])
    r = await client.post(f"{ADMIN}/reports/{report_id}/assign", headers=admin.headers)
    assert r.status_code == 200 and r.json()["report"]["assignedTo"] == str(admin.id)
    r = await client.post(
        f"{ADMIN}/reports/{report_id}/escalate", json={"note": "repeat"}, headers=admin.headers
    )
    assert r.status_code == 200 and r.json()["report"]["status"] == "escalated"
    r = await client.get(f"{ADMIN}/reports/{report_id}", headers=admin.headers)
    assert r.status_code == 200, r.text
    detail = r.json()
    assert detail["report"]["reporterId"] == str(chat.a.id)
    assert detail["report"]["reportedUserId"] == str(chat.b.id)
    assert detail["report"]["matchId"] == chat.match_id
    assert [(m["id"], m["senderId"], m["content"], m["reported"]) for m in detail["messages"]] == [
        (first["id"], str(chat.a.id), "hi", False),
        (nasty["id"], str(chat.b.id), "something nasty", True),
    ]
    assert [(h["action"], h["actorId"], h["note"]) for h in detail["history"]] == [
        ("assign", str(admin.id), None),
        ("escalate", str(admin.id), "repeat"),
    ]
    assert detail["reportsAgainstUser"] == 1
    r = await client.get(f"{ADMIN}/reports/{uuid.uuid4()}", headers=admin.headers)
    assert_error(r, 404, "NOT_FOUND")


async def test_a_report_holds_its_chat_past_retention_and_both_accounts_until_resolved(
    client, make_chat: MakeChat, make_user, database, sql
) -> None:
    admin = make_user(admin=True)
    chat = await make_chat()
    assert (await send(chat.sb, chat.match_id, "evidence"))["ok"]
    report_id = await file_report(client, chat.a, chat.b, matchId=chat.match_id)
    for user in (chat.b, chat.a):
        assert (await client.delete("/api/account", headers=user.headers)).status_code == 200
    # The match closed when the reporter blocked; 31 days on, retention passes it by.
    await sql(
        "UPDATE after_hours_matches SET closed_at = now() - interval '31 days' WHERE id = %s",
        chat.match_id,
    )
    await retention_tasks.run_steps(database, retention.chat_steps())
    r = await client.get(f"{ADMIN}/reports/{report_id}", headers=admin.headers)
    assert [m["content"] for m in r.json()["messages"]] == ["evidence"]
    assert r.json()["report"]["reporterId"] is None  # the reporter's account is gone
    r = await client.post(
        f"{ADMIN}/reports/{report_id}/resolve",
        json={"action": "dismiss", "note": "not enough"},
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["report"]["status"], r.json()["report"]["resolution"]) == (
        "resolved",
        "dismissed",
    )
    r = await client.post(
        f"{ADMIN}/reports/{report_id}/resolve", json={"action": "ban"}, headers=admin.headers
    )
    assert_error(r, 409, "REPORT_ALREADY_RESOLVED")
    # Resolved, the chat is under the normal retention again: 31 days closed, it goes.
    await retention_tasks.run_steps(database, retention.chat_steps())
    assert await sql(
        "SELECT count(*) FROM after_hours_messages WHERE match_id = %s", chat.match_id
    ) == [(0,)]


async def refused_code(base_url: str, user, **auth: Any) -> str:
    """The code a refused socket connect carries (fails if the connect is accepted)."""
    client = socketio.AsyncClient(reconnection=False)
    refused: list[Any] = []
    client.on("connect_error", lambda data: refused.append(data))
    try:
        await client.connect(
            base_url, auth={"token": user.token, **auth}, transports=["websocket"], wait_timeout=5
        )
    except socketio.exceptions.ConnectionError:
        return str(refused[0]["data"]["code"])
    await client.disconnect()
    raise AssertionError("the connect was accepted")


async def test_a_ban_holds_at_once_everywhere_and_unban_restores(
    client, base_url: str, make_chat: MakeChat, make_user, connect, sql
) -> None:
    admin = make_user(admin=True)
    chat = await make_chat()
    banned, partner = chat.b, chat.a
    # The banned user's phone has been seen with a fingerprint; a second account uses it later.
    phone = {"X-Device-Fingerprint": f"phone-{uuid.uuid4()}"}
    r = await client.get("/api/after-hours/session", headers={**banned.headers, **phone})
    assert r.status_code == 200
    second_socket = await connect(banned)
    report_id = await file_report(client, partner, banned, matchId=chat.match_id)
    # The report's block closed their match already; the ban must end the session too.
    await chat.sb.wait_for(CLOSED)

    r = await client.post(
        f"{ADMIN}/reports/{report_id}/resolve",
        json={"action": "ban", "note": "threats"},
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["report"]["resolution"] == "banned"

    async def disconnected() -> bool:
        return not chat.sb.client.connected and not second_socket.client.connected

    await until(disconnected, within=1.0)
    assert await sql(
        "SELECT end_reason FROM after_hours_sessions WHERE user_id = %s AND ended_at IS NOT NULL",
        banned.id,
    ) == [("banned",)]
    for method, path in (("GET", "/api/after-hours/session"), ("GET", "/api/after-hours/match")):
        assert_error(await client.request(method, path, headers=banned.headers), 403, "USER_BANNED")
    assert await refused_code(base_url, banned) == "USER_BANNED"
    # Their own data stays theirs: the base profile can be read and the account deleted.
    assert (await client.get("/api/profile", headers=banned.headers)).status_code == 200

    newcomer = make_user()
    await set_up(client, newcomer)
    assert_error(
        await client.post(
            "/api/after-hours/session/start",
            json={"duration": 15, "latitude": 10.0, "longitude": 10.0},
            headers={**newcomer.headers, **phone},
        ),
        403,
        "DEVICE_BANNED",
    )
    fingerprint = phone["X-Device-Fingerprint"]
    assert await refused_code(base_url, newcomer, fingerprint=fingerprint) == "DEVICE_BANNED"
    # Stored as a keyed hash, never the raw string or its plain SHA-256.
    [(stored,)] = await sql(
        "SELECT fingerprint_hash FROM device_bans WHERE user_id = %s", banned.id
    )
    assert stored not in (fingerprint, hashlib.sha256(fingerprint.encode()).hexdigest())

    r = await client.get(f"{ADMIN}/users/{banned.id}", headers=admin.headers)
    record = r.json()["user"]
    assert record["ban"]["reason"] == "threats" and record["ban"]["devicesBanned"] == 1
    assert [rep["id"] for rep in record["reportsReceived"]] == [report_id]

    r = await client.delete(f"{ADMIN}/users/{banned.id}/ban", headers=admin.headers)
    assert r.status_code == 200, r.text
    assert_error(
        await client.delete(f"{ADMIN}/users/{banned.id}/ban", headers=admin.headers),
        404,
        "NOT_FOUND",
    )
    assert (await client.get("/api/after-hours/session", headers=banned.headers)).status_code == 200
    assert (await start(client, newcomer, place=(10.0, 10.0))).status_code == 201
    back = await connect(banned)
    assert back.client.connected
    r = await client.get(f"{ADMIN}/users/{banned.id}", headers=admin.headers)
    record = r.json()["user"]
    assert record["ban"] is None
    assert [(h["action"], h["actorId"]) for h in record["history"]] == [
        ("ban", str(admin.id)),
        ("unban", str(admin.id)),
    ]


async def test_a_ban_closes_an_open_match_and_the_other_side_is_told_only_that(
    client, make_chat: MakeChat, make_user
) -> None:
    admin = make_user(admin=True)
    chat = await make_chat()
    r = await client.post(
        f"{ADMIN}/users/{chat.b.id}/ban", json={"reason": "spam ring"}, headers=admin.headers
    )
    assert r.status_code == 200, r.text
    closed = await chat.sa.wait_for(CLOSED)
    assert (closed["matchId"], closed["status"], closed["reason"]) == (
        chat.match_id,
        "ended",
        "session_ended",
    )
    # A second ban changes nothing; banning nobody is 404; an admin cannot ban themselves.
    r = await client.post(f"{ADMIN}/users/{chat.b.id}/ban", json={}, headers=admin.headers)
    assert r.status_code == 200
    r = await client.get(f"{ADMIN}/users/{chat.b.id}", headers=admin.headers)
    assert [h["action"] for h in r.json()["user"]["history"]] == ["ban"]
    r = await client.post(f"{ADMIN}/users/{uuid.uuid4()}/ban", json={}, headers=admin.headers)
    assert_error(r, 404, "NOT_FOUND")
    r = await client.post(f"{ADMIN}/users/{admin.id}/ban", json={}, headers=admin.headers)
    assert_error(r, 400, "VALIDATION_ERROR")


async def test_consoles_hear_of_reports_as_they_are_filed_and_decided(
    client, make_user, connect
) -> None:
    admin, other_admin, stranger = make_user(admin=True), make_user(admin=True), make_user()
    console, bystander = await connect(admin), await connect(stranger)
    reporter, reported = make_user(), make_user()
    for user in (reporter, reported):  # a user row is made at their first request
        r = await client.get("/api/after-hours/session", headers=user.headers)
        assert r.status_code == 200, r.text
    report_id = await file_report(client, reporter, reported, details="rude")
    filed = await console.wait_for("admin:report_filed")
    assert filed["report"]["id"] == report_id
    assert filed["report"]["status"] == "open" and filed["report"]["details"] == "rude"
    assert "seq" not in filed  # a broadcast, not one of the user's numbered events
    # The reported user was banned already: resolving with a ban is still a logged decision.
    r = await client.post(
        f"{ADMIN}/users/{reported.id}/ban", json={"reason": "x"}, headers=other_admin.headers
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        f"{ADMIN}/reports/{report_id}/resolve", json={"action": "ban"}, headers=admin.headers
    )
    assert r.status_code == 200, r.text
    updated = await console.wait_for("admin:report_updated")
    assert updated["report"]["id"] == report_id and updated["report"]["status"] == "resolved"
    r = await client.get(f"{ADMIN}/reports/{report_id}", headers=admin.headers)
    assert [a["action"] for a in r.json()["history"]] == ["ban"]
    assert not [name for name, _ in bystander.events if name.startswith("admin:")]
