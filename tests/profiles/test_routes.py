import json
import time
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

from afterhours import clock
from tests.support.clients import assert_error
from tests.support.places import random_place
from tests.support.server import TEST_SECRET

ADULT = {"name": "Sam", "birthDate": "1995-04-02", "gender": "woman"}
DEFAULT_PREFERENCES = {
    "seekingGenders": ["man", "woman", "nonbinary"],
    "minAge": 18,
    "maxAge": 99,
    "maxDistanceKm": 25,
}
VALID_PREFERENCES = {
    "seekingGenders": ["woman"],
    "minAge": 25,
    "maxAge": 40,
    "maxDistanceKm": 10,
}


def years_ago(years: int, *, days: int = 0) -> str:
    today = clock.now().date()
    try:
        then = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        then = today.replace(year=today.year - years, day=28)
    return (then + timedelta(days=days)).isoformat()


async def with_profile(client: httpx.AsyncClient, user: Any, **fields: Any) -> dict[str, Any]:
    r = await client.put("/api/profile", json={**ADULT, **fields}, headers=user.headers)
    assert r.status_code == 200, r.text
    profile: dict[str, Any] = r.json()["profile"]
    return profile


def detail_fields(body: dict[str, Any]) -> set[str]:
    return {d["field"] for d in body["details"]}


# --- base profile -----------------------------------------------------------------------------


async def test_put_then_get_profile_returns_age(client: httpx.AsyncClient, make_user) -> None:
    user = make_user(premium=False)
    r = await client.put("/api/profile", json=ADULT, headers=user.headers)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"success", "profile"}
    profile = r.json()["profile"]
    assert set(profile) == {"userId", "name", "birthDate", "age", "gender"}
    assert profile["userId"] == str(user.id)
    assert profile["name"] == "Sam"
    assert profile["birthDate"] == "1995-04-02"
    assert profile["gender"] == "woman"
    assert profile["age"] >= 30
    r = await client.get("/api/profile", headers=user.headers)
    assert r.json() == {"success": True, "profile": profile}


async def test_second_put_replaces_the_profile(client: httpx.AsyncClient, make_user) -> None:
    user = make_user(premium=False)
    await with_profile(client, user)
    updated = await with_profile(client, user, name="  Alex  ", gender="nonbinary")
    assert updated["name"] == "Alex"
    assert updated["gender"] == "nonbinary"
    r = await client.get("/api/profile", headers=user.headers)
    assert r.json()["profile"] == updated


async def test_exactly_eighteen_today_is_accepted(client: httpx.AsyncClient, make_user) -> None:
    profile = await with_profile(client, make_user(), birthDate=years_ago(18))
    assert profile["age"] == 18


async def test_minor_is_rejected_with_validation_error(
    client: httpx.AsyncClient, make_user
) -> None:
    user = make_user()
    r = await client.put(
        "/api/profile", json={**ADULT, "birthDate": years_ago(18, days=1)}, headers=user.headers
    )
    body = assert_error(r, 400, "VALIDATION_ERROR")
    assert body["details"][0]["field"] == "birthDate"
    assert_error(await client.get("/api/profile", headers=user.headers), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "birth_date",
    [(date.today() + timedelta(days=3)).isoformat(), "1850-01-01", "1995-02-30", "02/04/1995", ""],
    ids=["future", "implausible", "no-such-day", "not-iso", "empty"],
)
async def test_bad_birth_date_is_400_on_birth_date(
    client: httpx.AsyncClient, make_user, birth_date: str
) -> None:
    r = await client.put(
        "/api/profile", json={**ADULT, "birthDate": birth_date}, headers=make_user().headers
    )
    assert detail_fields(assert_error(r, 400, "VALIDATION_ERROR")) == {"birthDate"}


@pytest.mark.parametrize("gender", ["male", "MAN", "", None, 1, ["woman"]])
async def test_bad_gender_is_400_on_gender(client: httpx.AsyncClient, make_user, gender) -> None:
    r = await client.put(
        "/api/profile", json={**ADULT, "gender": gender}, headers=make_user().headers
    )
    assert detail_fields(assert_error(r, 400, "VALIDATION_ERROR")) == {"gender"}


async def test_unknown_field_is_400_naming_it(client: httpx.AsyncClient, make_user) -> None:
    r = await client.put(
        "/api/profile", json={**ADULT, "isAdmin": True}, headers=make_user().headers
    )
    assert detail_fields(assert_error(r, 400, "VALIDATION_ERROR")) == {"isAdmin"}


async def test_missing_fields_are_each_named(client: httpx.AsyncClient, make_user) -> None:
    r = await client.put("/api/profile", json={}, headers=make_user().headers)
    body = assert_error(r, 400, "VALIDATION_ERROR")
    assert detail_fields(body) == {"name", "birthDate", "gender"}


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, 7])
async def test_bad_name_is_400_on_name(client: httpx.AsyncClient, make_user, name) -> None:
    r = await client.put("/api/profile", json={**ADULT, "name": name}, headers=make_user().headers)
    assert detail_fields(assert_error(r, 400, "VALIDATION_ERROR")) == {"name"}


@pytest.mark.parametrize("text", ["a\x00b", "\ud800"], ids=["nul", "lone-surrogate"])
async def test_text_the_database_cannot_store_is_400_not_500(
    client: httpx.AsyncClient, make_user, text: str
) -> None:
    user = make_user()
    # Sent escaped ("\\u0000", "\\ud800"), as JSON allows; PostgreSQL text can hold neither.
    raw = json.dumps({**ADULT, "name": text})
    headers = {**user.headers, "Content-Type": "application/json"}
    r = await client.put("/api/profile", content=raw, headers=headers)
    assert detail_fields(assert_error(r, 400, "VALIDATION_ERROR")) == {"name"}


async def test_missing_profile_is_404(client: httpx.AsyncClient, make_user) -> None:
    assert_error(await client.get("/api/profile", headers=make_user().headers), 404, "NOT_FOUND")


async def test_base_profile_needs_no_premium(client: httpx.AsyncClient, make_user) -> None:
    user = make_user(premium=False)
    await with_profile(client, user)
    assert (await client.get("/api/profile", headers=user.headers)).status_code == 200


# --- auth -------------------------------------------------------------------------------------


def token(claims: dict[str, Any], *, secret: str = TEST_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, None if algorithm == "none" else secret, algorithm=algorithm)


def future() -> int:
    return int(time.time()) + 600


BAD_AUTHORIZATION = {
    "empty": "",
    "no-scheme": "sometoken",
    "basic": "Basic dXNlcjpwYXNz",
    "bearer-without-token": "Bearer",
    "garbage": "Bearer nonsense",
    "expired": "Bearer " + token({"sub": str(uuid.uuid4()), "exp": int(time.time()) - 60}),
    "no-exp": "Bearer " + token({"sub": str(uuid.uuid4())}),
    "no-sub": "Bearer " + token({"exp": future()}),
    "non-uuid-sub": "Bearer " + token({"sub": "user-42", "exp": future()}),
    "numeric-sub": "Bearer " + token({"sub": 42, "exp": future()}),
    "other-secret": "Bearer " + token({"sub": str(uuid.uuid4()), "exp": future()}, secret="y" * 64),
    "alg-none": "Bearer " + token({"sub": str(uuid.uuid4()), "exp": future()}, algorithm="none"),
}


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATION.values(), ids=BAD_AUTHORIZATION.keys())
async def test_bad_token_is_401_unauthorized(client: httpx.AsyncClient, authorization: str) -> None:
    r = await client.get("/api/profile", headers={"Authorization": authorization})
    assert_error(r, 401, "UNAUTHORIZED")


async def test_no_token_is_401(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/profile"), 401, "UNAUTHORIZED")


async def test_lowercase_bearer_scheme_is_accepted(client: httpx.AsyncClient, make_user) -> None:
    user = make_user()
    await with_profile(client, user)
    r = await client.get("/api/profile", headers={"Authorization": f"bearer {user.token}"})
    assert r.status_code == 200


async def test_auth_is_checked_before_the_body(client: httpx.AsyncClient) -> None:
    r = await client.put("/api/profile", json={"junk": 1})
    assert_error(r, 401, "UNAUTHORIZED")


async def test_device_fingerprint_over_256_chars_is_400(
    client: httpx.AsyncClient, make_user
) -> None:
    user = make_user()
    await with_profile(client, user)
    ok = await client.get(
        "/api/profile", headers={**user.headers, "X-Device-Fingerprint": "f" * 256}
    )
    assert ok.status_code == 200
    r = await client.get(
        "/api/profile", headers={**user.headers, "X-Device-Fingerprint": "f" * 257}
    )
    assert detail_fields(assert_error(r, 400, "VALIDATION_ERROR")) == {"x-device-fingerprint"}


# --- account deletion -------------------------------------------------------------------------


async def test_delete_account_removes_the_users_data(client: httpx.AsyncClient, make_user) -> None:
    user = make_user()
    await with_profile(client, user)
    r = await client.put(
        "/api/after-hours/profile", json={"description": "night owl"}, headers=user.headers
    )
    assert r.status_code == 200
    r = await client.put(
        "/api/after-hours/preferences", json=VALID_PREFERENCES, headers=user.headers
    )
    assert r.status_code == 200

    r = await client.delete("/api/account", headers=user.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "message": "Account deleted"}

    assert_error(await client.get("/api/profile", headers=user.headers), 404, "NOT_FOUND")
    r = await client.get("/api/after-hours/profile", headers=user.headers)
    assert_error(r, 404, "NOT_FOUND")
    r = await client.get("/api/after-hours/preferences", headers=user.headers)
    assert r.json()["preferences"] == DEFAULT_PREFERENCES


async def test_delete_account_of_a_user_with_nothing_succeeds(
    client: httpx.AsyncClient, make_user
) -> None:
    r = await client.delete("/api/account", headers=make_user(premium=False).headers)
    assert r.status_code == 200
    assert r.json()["success"] is True


async def test_delete_account_leaves_other_users_alone(
    client: httpx.AsyncClient, make_user
) -> None:
    leaving, staying = make_user(), make_user()
    await with_profile(client, leaving)
    kept = await with_profile(client, staying, name="Stays")
    await client.delete("/api/account", headers=leaving.headers)
    r = await client.get("/api/profile", headers=staying.headers)
    assert r.json()["profile"] == kept


# --- After Hours profile ----------------------------------------------------------------------


async def test_after_hours_profile_requires_a_base_profile(
    client: httpx.AsyncClient, make_user
) -> None:
    r = await client.put(
        "/api/after-hours/profile", json={"description": "hi"}, headers=make_user().headers
    )
    assert_error(r, 400, "BASE_PROFILE_REQUIRED")


async def test_put_then_get_after_hours_profile(client: httpx.AsyncClient, make_user) -> None:
    user = make_user()
    await with_profile(client, user)
    r = await client.put(
        "/api/after-hours/profile", json={"description": "  late walks  "}, headers=user.headers
    )
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"success", "profile"}
    profile = r.json()["profile"]
    assert set(profile) == {"userId", "description", "photoUrl", "createdAt", "updatedAt"}
    assert profile["userId"] == str(user.id)
    assert profile["description"] == "late walks"
    assert profile["photoUrl"] is None
    created = datetime.fromisoformat(profile["createdAt"])
    assert created.tzinfo is not None
    r = await client.get("/api/after-hours/profile", headers=user.headers)
    assert r.json() == {"success": True, "profile": profile}


async def test_updating_the_description_keeps_created_at(
    client: httpx.AsyncClient, make_user
) -> None:
    user = make_user()
    await with_profile(client, user)
    first = (
        await client.put(
            "/api/after-hours/profile", json={"description": "one"}, headers=user.headers
        )
    ).json()["profile"]
    second = (
        await client.put(
            "/api/after-hours/profile", json={"description": "two"}, headers=user.headers
        )
    ).json()["profile"]
    assert second["description"] == "two"
    assert second["createdAt"] == first["createdAt"]
    assert datetime.fromisoformat(second["updatedAt"]) >= datetime.fromisoformat(first["updatedAt"])


async def test_description_of_500_chars_is_accepted_501_is_not(
    client: httpx.AsyncClient, make_user
) -> None:
    user = make_user()
    await with_profile(client, user)
    r = await client.put(
        "/api/after-hours/profile", json={"description": "é" * 500}, headers=user.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["profile"]["description"] == "é" * 500
    r = await client.put(
        "/api/after-hours/profile", json={"description": "x" * 501}, headers=user.headers
    )
    assert detail_fields(assert_error(r, 400, "VALIDATION_ERROR")) == {"description"}


@pytest.mark.parametrize("body", [{}, {"description": None}, {"description": 5}, {"bio": "x"}])
async def test_bad_after_hours_profile_body_is_400(
    client: httpx.AsyncClient, make_user, body: dict[str, Any]
) -> None:
    user = make_user()
    await with_profile(client, user)
    r = await client.put("/api/after-hours/profile", json=body, headers=user.headers)
    assert_error(r, 400, "VALIDATION_ERROR")


async def test_no_after_hours_profile_is_404(client: httpx.AsyncClient, make_user) -> None:
    user = make_user()
    await with_profile(client, user)
    assert_error(
        await client.get("/api/after-hours/profile", headers=user.headers), 404, "NOT_FOUND"
    )
    r = await client.delete("/api/after-hours/profile", headers=user.headers)
    assert_error(r, 404, "NOT_FOUND")


async def test_delete_after_hours_profile_keeps_the_base_profile(
    client: httpx.AsyncClient, make_user
) -> None:
    user = make_user()
    base = await with_profile(client, user)
    await client.put("/api/after-hours/profile", json={"description": "x"}, headers=user.headers)
    r = await client.delete("/api/after-hours/profile", headers=user.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "message": "After Hours profile deleted"}
    assert_error(
        await client.get("/api/after-hours/profile", headers=user.headers), 404, "NOT_FOUND"
    )
    assert (await client.get("/api/profile", headers=user.headers)).json()["profile"] == base


PREMIUM_ROUTES = [
    ("GET", "/api/after-hours/profile", None),
    ("PUT", "/api/after-hours/profile", {"description": "x"}),
    ("DELETE", "/api/after-hours/profile", None),
    ("GET", "/api/after-hours/preferences", None),
    ("PUT", "/api/after-hours/preferences", VALID_PREFERENCES),
]


@pytest.mark.parametrize(("method", "path", "body"), PREMIUM_ROUTES)
async def test_non_premium_is_403_premium_required(
    client: httpx.AsyncClient, make_user, method: str, path: str, body: Any
) -> None:
    user = make_user(premium=False)
    await with_profile(client, user)
    r = await client.request(method, path, json=body, headers=user.headers)
    assert_error(r, 403, "PREMIUM_REQUIRED")


# --- preferences ------------------------------------------------------------------------------


async def test_preferences_default_when_never_set(client: httpx.AsyncClient, make_user) -> None:
    r = await client.get("/api/after-hours/preferences", headers=make_user().headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "preferences": DEFAULT_PREFERENCES}


async def test_put_then_get_preferences(client: httpx.AsyncClient, make_user) -> None:
    user = make_user()
    r = await client.put(
        "/api/after-hours/preferences", json=VALID_PREFERENCES, headers=user.headers
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "preferences": VALID_PREFERENCES}
    r = await client.get("/api/after-hours/preferences", headers=user.headers)
    assert r.json() == {"success": True, "preferences": VALID_PREFERENCES}
    changed = {**VALID_PREFERENCES, "maxDistanceKm": 70}
    r = await client.put("/api/after-hours/preferences", json=changed, headers=user.headers)
    assert r.json()["preferences"] == changed


async def test_preferences_bounds_are_inclusive(client: httpx.AsyncClient, make_user) -> None:
    user = make_user()
    for prefs in [
        {"seekingGenders": ["man"], "minAge": 18, "maxAge": 99, "maxDistanceKm": 1},
        {"seekingGenders": ["man"], "minAge": 99, "maxAge": 99, "maxDistanceKm": 100},
        {"seekingGenders": ["man"], "minAge": 30, "maxAge": 30, "maxDistanceKm": 50},
    ]:
        r = await client.put("/api/after-hours/preferences", json=prefs, headers=user.headers)
        assert r.status_code == 200, (prefs, r.text)
        assert r.json()["preferences"] == prefs


async def test_repeated_genders_are_stored_once(client: httpx.AsyncClient, make_user) -> None:
    user = make_user()
    prefs = {**VALID_PREFERENCES, "seekingGenders": ["woman", "man", "woman"]}
    r = await client.put("/api/after-hours/preferences", json=prefs, headers=user.headers)
    assert r.status_code == 200, r.text
    assert r.json()["preferences"]["seekingGenders"] == ["man", "woman"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"minAge": 41, "maxAge": 40}, "maxAge"),
        ({"minAge": 17}, "minAge"),
        ({"minAge": 100, "maxAge": 100}, "minAge"),
        ({"maxAge": 100}, "maxAge"),
        ({"maxAge": 17, "minAge": 17}, "minAge"),
        ({"maxDistanceKm": 0}, "maxDistanceKm"),
        ({"maxDistanceKm": 101}, "maxDistanceKm"),
        ({"maxDistanceKm": 2.5}, "maxDistanceKm"),
        ({"minAge": "twenty"}, "minAge"),
        ({"seekingGenders": []}, "seekingGenders"),
        ({"seekingGenders": ["robot"]}, "seekingGenders.0"),
        ({"seekingGenders": "woman"}, "seekingGenders"),
        ({"radius": 5}, "radius"),
    ],
)
async def test_bad_preferences_are_400_validation_error(
    client: httpx.AsyncClient, make_user, change: dict[str, Any], field: str
) -> None:
    user = make_user()
    r = await client.put(
        "/api/after-hours/preferences", json={**VALID_PREFERENCES, **change}, headers=user.headers
    )
    body = assert_error(r, 400, "VALIDATION_ERROR")
    assert field in detail_fields(body), body
    r = await client.get("/api/after-hours/preferences", headers=user.headers)
    assert r.json()["preferences"] == DEFAULT_PREFERENCES


async def test_missing_preference_fields_are_each_named(
    client: httpx.AsyncClient, make_user
) -> None:
    r = await client.put("/api/after-hours/preferences", json={}, headers=make_user().headers)
    body = assert_error(r, 400, "VALIDATION_ERROR")
    assert detail_fields(body) == {"seekingGenders", "minAge", "maxAge", "maxDistanceKm"}


# --- deletion ends the session ----------------------------------------------------------------


async def start_session(client: httpx.AsyncClient, user: Any) -> dict[str, Any]:
    lat, lon = random_place()
    r = await client.post(
        "/api/after-hours/session/start",
        json={"duration": 60, "latitude": lat, "longitude": lon},
        headers=user.headers,
    )
    assert r.status_code == 201, r.text
    session: dict[str, Any] = r.json()["session"]
    return session


async def test_deleting_the_after_hours_profile_ends_the_active_session(
    client: httpx.AsyncClient, make_user
) -> None:
    user = make_user()
    await with_profile(client, user)
    await client.put("/api/after-hours/profile", json={"description": "x"}, headers=user.headers)
    await start_session(client, user)
    r = await client.get("/api/after-hours/session", headers=user.headers)
    assert r.json()["active"] is True

    r = await client.delete("/api/after-hours/profile", headers=user.headers)
    assert r.status_code == 200, r.text
    r = await client.get("/api/after-hours/session", headers=user.headers)
    assert r.json() == {"success": True, "active": False, "session": None}
    r = await client.post("/api/after-hours/session/end", headers=user.headers)
    assert_error(r, 404, "NO_ACTIVE_SESSION")


async def test_deleting_the_account_ends_the_active_session(
    client: httpx.AsyncClient, make_user
) -> None:
    user = make_user()
    await with_profile(client, user)
    await client.put("/api/after-hours/profile", json={"description": "x"}, headers=user.headers)
    await start_session(client, user)
    r = await client.delete("/api/account", headers=user.headers)
    assert r.status_code == 200, r.text
    r = await client.get("/api/after-hours/session", headers=user.headers)
    assert r.json() == {"success": True, "active": False, "session": None}
