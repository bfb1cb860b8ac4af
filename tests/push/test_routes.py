"""PUT/DELETE /api/after-hours/devices: device tokens, as the phone registers and drops them."""

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from afterhours.push.service import MAX_DEVICES
from tests.support.chat import Sql
from tests.support.clients import User, assert_error

DEVICES = "/api/after-hours/devices"


async def tokens_of(sql: Sql, user: User) -> list[tuple[str, str]]:
    rows = await sql(
        "SELECT platform, token FROM device_tokens WHERE user_id = %s ORDER BY token", user.id
    )
    return [tuple(row) for row in rows]


async def register(client: httpx.AsyncClient, user: User, token: str, platform: str = "ios") -> Any:
    return await client.put(
        DEVICES, json={"platform": platform, "token": token}, headers=user.headers
    )


async def test_registering_is_idempotent_and_a_token_moves_to_its_latest_user(
    client: httpx.AsyncClient, make_user: Callable[..., User], sql: Sql
) -> None:
    a, b = make_user(), make_user()
    token = f"apns-{a.id.hex}"
    for _ in range(2):
        r = await register(client, a, token)
        assert r.status_code == 200 and r.json() == {"success": True}
    assert await tokens_of(sql, a) == [("ios", token)]
    # The phone changes hands (sign-out, sign-in as someone else): it wakes the new user only.
    assert (await register(client, b, token, "android")).status_code == 200
    assert await tokens_of(sql, a) == []
    assert await tokens_of(sql, b) == [("android", token)]


async def test_deleting_drops_ones_own_token_and_never_another_users(
    client: httpx.AsyncClient, make_user: Callable[..., User], sql: Sql
) -> None:
    a, b = make_user(), make_user()
    await register(client, a, f"fcm:{a.id.hex}")
    await register(client, b, f"fcm:{b.id.hex}")
    r = await client.delete(f"{DEVICES}/fcm:{b.id.hex}", headers=a.headers)
    assert r.status_code == 200
    assert await tokens_of(sql, b) == [("ios", f"fcm:{b.id.hex}")]
    for _ in range(2):  # again: still a success, nothing left to drop
        r = await client.delete(f"{DEVICES}/fcm:{a.id.hex}", headers=a.headers)
        assert r.status_code == 200 and r.json() == {"success": True}
    assert await tokens_of(sql, a) == []


async def test_a_user_keeps_their_newest_devices(
    client: httpx.AsyncClient, make_user: Callable[..., User], sql: Sql
) -> None:
    user = make_user()
    for n in range(MAX_DEVICES + 2):
        assert (await register(client, user, f"device-{n:02d}")).status_code == 200
    kept = [token for _, token in await tokens_of(sql, user)]
    assert kept == [f"device-{n:02d}" for n in range(2, MAX_DEVICES + 2)]


async def test_tokens_go_with_the_account(
    client: httpx.AsyncClient, make_user: Callable[..., User], sql: Sql
) -> None:
    user = make_user()
    await register(client, user, f"gone-{user.id.hex}")
    assert (await client.delete("/api/account", headers=user.headers)).status_code == 200
    assert await sql("SELECT * FROM device_tokens WHERE token = %s", f"gone-{user.id.hex}") == []


@pytest.mark.parametrize(
    "body",
    [
        {"platform": "windows", "token": "abc"},
        {"platform": "ios", "token": ""},
        {"platform": "ios", "token": "has space"},
        {"platform": "ios", "token": "x" * 513},
        {"platform": "ios"},
        {"platform": "ios", "token": "abc", "extra": 1},
        {"platform": "ios", "token": 42},
    ],
)
async def test_a_bad_device_is_400_and_stores_nothing(
    client: httpx.AsyncClient, make_user: Callable[..., User], sql: Sql, body: dict[str, Any]
) -> None:
    user = make_user()
    assert_error(
        await client.put(DEVICES, json=body, headers=user.headers), 400, "VALIDATION_ERROR"
    )
    assert await tokens_of(sql, user) == []


async def test_registering_needs_premium_and_signing_out_does_not(
    client: httpx.AsyncClient, make_user: Callable[..., User]
) -> None:
    lapsed = make_user(premium=False)
    assert_error(await register(client, lapsed, "t-1"), 403, "PREMIUM_REQUIRED")
    assert (await client.delete(f"{DEVICES}/t-1", headers=lapsed.headers)).status_code == 200
    assert_error(
        await client.put(DEVICES, json={"platform": "ios", "token": "t"}), 401, "UNAUTHORIZED"
    )
