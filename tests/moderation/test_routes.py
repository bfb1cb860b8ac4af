"""The report route refuses a bad report, and a refused report files (and blocks) nothing."""

import uuid

from tests.support.chat import MakeChat, send
from tests.support.clients import assert_error
from tests.support.moderation import REPORTS


async def test_bad_reports_are_refused(client, make_chat: MakeChat, make_user) -> None:
    chat = await make_chat()
    other = await make_chat()
    ok = {"reportedUserId": str(chat.b.id), "category": "spam"}
    h = chat.a.headers
    for body in (
        {**ok, "category": "rude"},
        {"category": "spam"},
        {**ok, "details": "x" * 2001},
        {**ok, "reportedUserId": str(chat.a.id)},
        {**ok, "matchId": "nope"},
        {**ok, "extra": 1},
    ):
        assert_error(await client.post(REPORTS, json=body, headers=h), 400, "VALIDATION_ERROR")
    # The match must be the reporter's, with the reported user in it.
    assert_error(
        await client.post(REPORTS, json={**ok, "matchId": other.match_id}, headers=h),
        404,
        "NOT_FOUND",
    )
    body = {**ok, "reportedUserId": str(other.a.id), "matchId": chat.match_id}
    assert_error(await client.post(REPORTS, json=body, headers=h), 400, "VALIDATION_ERROR")
    stranger_message = (await send(other.sa, other.match_id, "not yours"))["message"]["id"]
    for message_id in (stranger_message, str(uuid.uuid4())):
        body = {**ok, "messageId": message_id}
        assert_error(await client.post(REPORTS, json=body, headers=h), 404, "NOT_FOUND")
    body = {"reportedUserId": str(uuid.uuid4()), "category": "spam"}
    assert_error(await client.post(REPORTS, json=body, headers=h), 404, "NOT_FOUND")
    assert_error(
        await client.post(REPORTS, json=ok, headers=make_user(premium=False).headers),
        403,
        "PREMIUM_REQUIRED",
    )
    assert_error(await client.post(REPORTS, json=ok), 401, "UNAUTHORIZED")
    # Nothing was filed, so nothing blocked: their chat is still open.
    assert (await send(chat.sa, chat.match_id, "still talking"))["ok"]
