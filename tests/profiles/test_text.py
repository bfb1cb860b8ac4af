"""Text other people see (names, descriptions, messages, reports) is stored as it will be shown:
NFC, trimmed, and free of characters that draw nothing or turn the text around them."""

import json
import unicodedata
import uuid
from typing import Any

import httpx
import pytest

from tests.support.chat import MakeChat
from tests.support.clients import assert_error

ADULT = {"birthDate": "1995-04-02", "gender": "woman"}

INVISIBLE = {
    "zero-width-space": "Sam\u200bJones",
    "right-to-left-override": "\u202enaS",
    "left-to-right-isolate": "Sam\u2066Jones",
    "byte-order-mark": "\ufeffSam",
    "soft-hyphen": "Sa\u00adm",
    "control": "Sam\x07",
    "line-separator": "Sam\u2028Jones",
    "private-use": "Sam\ue000",
    "unassigned": "Sam\U000e0080",
    "lone-joiner": "\u200d",
    "tag-outside-a-flag": "Sam\U000e0067",
}
BLANK = {
    "spaces": "   ",
    "ideographic-space": "\u3000\u3000",
    "hangul-filler": "\u3164",
    "braille-blank": "\u2800\u2800",
    "a-combining-mark-alone": "\u0301",
}
ACCEPTED = {
    "accents": "Zoë Ångström",
    "other-scripts": "김민준 · Мария · محمد",
    "emoji": "Sam 🌙",
    "recent-emoji": "Sam \U0001fae8",  # Unicode 15: unassigned in Python 3.11's own tables
    "zwj-sequence": "👩\u200d💻",
    "flag-with-variation-selector": "🏳\ufe0f\u200d🌈",
    "subdivision-flag": "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
    "persian-zero-width-non-joiner": "می\u200cخواهم",
    "sinhala-conjunct": "ශ්\u200dරී",
}


def fields(body: dict[str, Any]) -> set[str]:
    return {d["field"] for d in body["details"]}


async def put_name(client: httpx.AsyncClient, user: Any, name: str) -> httpx.Response:
    # Sent as escaped JSON, so the characters arrive exactly as a client would send them.
    raw = json.dumps({**ADULT, "name": name})
    headers = {**user.headers, "Content-Type": "application/json"}
    return await client.put("/api/profile", content=raw, headers=headers)


async def put_description(client: httpx.AsyncClient, user: Any, text: str) -> httpx.Response:
    r = await put_name(client, user, "Sam")
    assert r.status_code == 200, r.text
    raw = json.dumps({"description": text})
    headers = {**user.headers, "Content-Type": "application/json"}
    return await client.put("/api/after-hours/profile", content=raw, headers=headers)


@pytest.mark.parametrize("name", INVISIBLE.values(), ids=INVISIBLE.keys())
async def test_name_with_an_invisible_character_is_400_on_name(
    client: httpx.AsyncClient, make_user, name: str
) -> None:
    user = make_user()
    body = assert_error(await put_name(client, user, name), 400, "VALIDATION_ERROR")
    assert fields(body) == {"name"}
    assert_error(await client.get("/api/profile", headers=user.headers), 404, "NOT_FOUND")


@pytest.mark.parametrize("name", BLANK.values(), ids=BLANK.keys())
async def test_name_that_shows_nothing_is_400_on_name(
    client: httpx.AsyncClient, make_user, name: str
) -> None:
    body = assert_error(await put_name(client, make_user(), name), 400, "VALIDATION_ERROR")
    assert fields(body) == {"name"}


async def test_name_on_two_lines_is_400_on_name(client: httpx.AsyncClient, make_user) -> None:
    body = assert_error(await put_name(client, make_user(), "Sam\nJones"), 400, "VALIDATION_ERROR")
    assert fields(body) == {"name"}


@pytest.mark.parametrize("name", ACCEPTED.values(), ids=ACCEPTED.keys())
async def test_names_people_write_are_kept_as_written(
    client: httpx.AsyncClient, make_user, name: str
) -> None:
    user = make_user()
    r = await put_name(client, user, f"  {name}  ")
    assert r.status_code == 200, r.text
    assert r.json()["profile"]["name"] == name
    r = await client.get("/api/profile", headers=user.headers)
    assert r.json()["profile"]["name"] == name


async def test_decomposed_name_is_stored_composed(client: httpx.AsyncClient, make_user) -> None:
    user = make_user()
    decomposed = unicodedata.normalize("NFD", "Zoë Ångström")
    assert decomposed != "Zoë Ångström"
    r = await put_name(client, user, decomposed)
    assert r.status_code == 200, r.text
    r = await client.get("/api/profile", headers=user.headers)
    assert r.json()["profile"]["name"] == "Zoë Ångström"


async def test_name_length_counts_the_composed_text(client: httpx.AsyncClient, make_user) -> None:
    # 100 "é" are 200 code points decomposed, 100 composed: within the limit of 100.
    r = await put_name(client, make_user(), "e\u0301" * 100)
    assert r.status_code == 200, r.text
    assert r.json()["profile"]["name"] == "é" * 100


@pytest.mark.parametrize("text", INVISIBLE.values(), ids=INVISIBLE.keys())
async def test_description_with_an_invisible_character_is_400_on_description(
    client: httpx.AsyncClient, make_user, text: str
) -> None:
    r = await put_description(client, make_user(), f"late walks {text}")
    assert fields(assert_error(r, 400, "VALIDATION_ERROR")) == {"description"}


async def test_description_that_shows_nothing_is_400(client: httpx.AsyncClient, make_user) -> None:
    r = await put_description(client, make_user(), "\u3164\u2800")
    assert fields(assert_error(r, 400, "VALIDATION_ERROR")) == {"description"}


async def test_description_keeps_emoji_accents_and_line_breaks(
    client: httpx.AsyncClient, make_user
) -> None:
    user = make_user()
    written = unicodedata.normalize("NFD", "Café au lait ☕\r\nNight owl 🦉 👩\u200d💻")
    r = await put_description(client, user, written)
    assert r.status_code == 200, r.text
    stored = "Café au lait ☕\nNight owl 🦉 👩\u200d💻"
    assert r.json()["profile"]["description"] == stored
    r = await client.get("/api/after-hours/profile", headers=user.headers)
    assert r.json()["profile"]["description"] == stored


async def test_empty_description_is_still_allowed(client: httpx.AsyncClient, make_user) -> None:
    r = await put_description(client, make_user(), "  ")
    assert r.status_code == 200, r.text
    assert r.json()["profile"]["description"] == ""


async def test_message_with_a_bidi_override_is_400_on_content(
    client: httpx.AsyncClient, make_chat: MakeChat
) -> None:
    chat = await make_chat()
    path = chat.path("/messages")
    r = await client.post(path, json={"content": "pay \u202e0001$"}, headers=chat.a.headers)
    assert fields(assert_error(r, 400, "VALIDATION_ERROR")) == {"content"}
    r = await client.post(path, json={"content": "café ☕\nsoon?"}, headers=chat.a.headers)
    assert r.status_code == 201, r.text
    assert r.json()["message"]["content"] == "café ☕\nsoon?"


async def test_report_details_with_a_zero_width_space_are_400_on_details(
    client: httpx.AsyncClient, make_user
) -> None:
    reporter = make_user()
    body = {"reportedUserId": str(uuid.uuid4()), "category": "spam", "details": "a\u200bb"}
    r = await client.post("/api/after-hours/reports", json=body, headers=reporter.headers)
    assert fields(assert_error(r, 400, "VALIDATION_ERROR")) == {"details"}
