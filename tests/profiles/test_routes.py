from datetime import date, timedelta

import httpx

from tests.conftest import assert_error

ADULT = {"name": "Sam", "birthDate": "1995-04-02", "gender": "woman"}


async def test_put_then_get_profile_returns_age(client: httpx.AsyncClient, make_user) -> None:
    user = make_user(premium=False)
    r = await client.put("/api/profile", json=ADULT, headers=user.headers)
    assert r.status_code == 200, r.text
    profile = r.json()["profile"]
    assert profile["userId"] == str(user.id)
    assert profile["gender"] == "woman"
    assert profile["age"] >= 30
    r = await client.get("/api/profile", headers=user.headers)
    assert r.json() == {"success": True, "profile": profile}


async def test_minor_is_rejected_with_validation_error(client: httpx.AsyncClient, make_user) -> None:
    user = make_user()
    seventeen = date.today() - timedelta(days=17 * 365)
    r = await client.put(
        "/api/profile", json={**ADULT, "birthDate": seventeen.isoformat()}, headers=user.headers
    )
    body = assert_error(r, 400, "VALIDATION_ERROR")
    assert body["details"][0]["field"] == "birthDate"


async def test_missing_profile_is_404(client: httpx.AsyncClient, make_user) -> None:
    assert_error(await client.get("/api/profile", headers=make_user().headers), 404, "NOT_FOUND")


async def test_no_token_is_401(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/profile"), 401, "UNAUTHORIZED")
    bad = {"Authorization": "Bearer nonsense"}
    assert_error(await client.get("/api/profile", headers=bad), 401, "UNAUTHORIZED")
