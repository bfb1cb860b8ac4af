"""Message screening: a refused message gets MESSAGE_REJECTED, is never stored or delivered,
and is counted for moderators; the list's rules and a classifier entry point."""

import re

import pytest

from afterhours.chat import screening
from tests.support.chat import MakeChat, send
from tests.support.clients import assert_error
from tests.support.events import MESSAGE


async def test_a_screened_message_is_refused_never_stored_or_delivered_and_counted(
    client, make_chat: MakeChat, make_user, sql
) -> None:
    chat = await make_chat()
    ack = await send(chat.sb, chat.match_id, "Please send me money tonight")
    assert ack["ok"] is False and ack["error"]["code"] == "MESSAGE_REJECTED"
    r = await client.post(
        chat.path("/messages"), json={"content": "Buy a GIFT CARD for me"}, headers=chat.b.headers
    )
    assert_error(r, 400, "MESSAGE_REJECTED")
    # A clean message after them arrives, alone.
    assert (await send(chat.sb, chat.match_id, "sorry, hello"))["ok"]
    assert (await chat.sa.wait_for(MESSAGE))["content"] == "sorry, hello"
    assert [m["content"] for m in chat.sa.named(MESSAGE)] == ["sorry, hello"]
    assert await sql(
        "SELECT content FROM after_hours_messages WHERE match_id = %s", chat.match_id
    ) == [("sorry, hello",)]
    admin = make_user(admin=True)
    r = await client.get(f"/api/admin/users/{chat.b.id}", headers=admin.headers)
    assert r.json()["user"]["messagesRejected"] == 2
    rules = await sql(
        "SELECT rule FROM after_hours_message_rejections WHERE sender_id = %s", chat.b.id
    )
    assert all(rule.startswith("list:") for (rule,) in rules) and len(rules) == 2


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("send me money", True),
        ("SEND   me\nMONEY", True),  # any case, any spacing
        ("ｓｅｎｄ ｍｅ ｍｏｎｅｙ", True),  # full-width forms fold to the same words
        ("resend me moneyball stats", False),  # whole words only
        ("add me: t.me/someone", True),  # a regex rule
        ("I love telegram", False),
        ("", False),
    ],
)
async def test_the_list_matches_whole_words_folded_and_its_regexes(
    text: str, refused: bool
) -> None:
    screen = screening.WordList("# comment\n\nsend me money\nre: \\bt\\.me/\\S+\n")
    rule = await screen(text)
    assert (rule is not None) is refused
    if refused:
        assert rule in {"list:3", "list:4"}


async def test_a_classifier_entry_point_is_loaded_sync_or_async() -> None:
    sync = screening.load("tests.support.screens:shouting")
    assert await sync("WHY ARE YOU NOT ANSWERING") == "shouting"
    assert await sync("hello") is None
    asynchronous = screening.load("tests.support.screens:slow_and_careful")
    assert await asynchronous("anything") is None
    with pytest.raises(re.error):
        screening.WordList("re: (unclosed")  # a broken list fails at start, not per message


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("please wire me", "list:1"),
        ("a gift card", "list:2"),
        ("two gift cards", "list:3"),
        ("pay at t.me/someone", "list:4"),
        ("cash app me now", "list:5"),
        ("nothing here, ok?", None),
    ],
)
async def test_each_rule_reports_its_own_line(text: str, rule: str | None) -> None:
    # Phrases are tested together at each word boundary; each still names its own line.
    screen = screening.WordList(
        "wire me\ngift card\ngift cards\nre: \\bt\\.me/\\S+\nre: \\bcash\\s*app\\s+me\\b\n"
    )
    assert await screen(text) == rule
