"""/openapi.json as a client generator reads it: who must authenticate, which values a status
takes, and links that work from wherever the client runs."""

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pydantic
import pytest

from afterhours.settings import Settings
from tests.support.clients import User
from tests.support.photos import ADULT, PHOTO, image_bytes
from tests.support.server import running_server

PUBLIC_URL = "https://api.example.test"
MATCH_STATUSES = {"pending", "active", "declined", "expired", "ended", "blocked", "saved"}


async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    spec: dict[str, Any] = r.json()
    return spec


def api_operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in spec["paths"].items():
        if path.startswith("/api/"):
            for method, op in ops.items():
                yield method.upper(), path, op


def bearer_schemes(spec: dict[str, Any]) -> set[str]:
    schemes = spec["components"]["securitySchemes"]
    return {
        name
        for name, scheme in schemes.items()
        if scheme["type"] == "http" and scheme["scheme"].lower() == "bearer"
    }


async def test_every_api_operation_requires_the_bearer_scheme(client: httpx.AsyncClient) -> None:
    spec = await openapi(client)
    bearer = bearer_schemes(spec)
    assert bearer, spec["components"].get("securitySchemes")
    operations = list(api_operations(spec))
    assert len(operations) > 30
    for method, path, op in operations:
        named = {name for requirement in op.get("security", []) for name in requirement}
        assert named & bearer, (method, path, op.get("security"))


async def test_the_bearer_scheme_says_it_takes_a_jwt(client: httpx.AsyncClient) -> None:
    spec = await openapi(client)
    for name in bearer_schemes(spec):
        assert spec["components"]["securitySchemes"][name]["bearerFormat"] == "JWT"


async def test_health_and_ready_need_no_token(client: httpx.AsyncClient) -> None:
    spec = await openapi(client)
    for path in ("/health", "/ready"):
        assert "security" not in spec["paths"][path]["get"]


async def test_token_errors_keep_the_envelope_with_the_scheme_declared(
    client: httpx.AsyncClient,
) -> None:
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}):
        r = await client.get("/api/profile", headers=headers)
        assert r.status_code == 401, r.text
        assert r.json() == {
            "success": False,
            "error": "Missing bearer token",
            "code": "UNAUTHORIZED",
        }


def status_properties(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, schema in spec["components"]["schemas"].items():
        for field, prop in schema.get("properties", {}).items():
            if field == "status":
                yield name, prop


async def test_every_status_in_a_schema_is_an_enum(client: httpx.AsyncClient) -> None:
    found = dict(status_properties(await openapi(client)))
    assert {"MatchOut", "ReportOut"} <= set(found)
    for name, prop in found.items():
        assert prop.get("type") == "string" and prop.get("enum"), (name, prop)


async def test_match_status_lists_each_state_of_a_match(client: httpx.AsyncClient) -> None:
    match = (await openapi(client))["components"]["schemas"]["MatchOut"]
    assert set(match["properties"]["status"]["enum"]) == MATCH_STATUSES


# --- AFTERHOURS_PUBLIC_URL ----------------------------------------------------------------


@pytest.mark.parametrize(
    "given", [PUBLIC_URL, PUBLIC_URL + "/", PUBLIC_URL + "//"], ids=["bare", "slash", "slashes"]
)
def test_public_url_is_kept_without_a_trailing_slash(given: str) -> None:
    assert Settings(public_url=given, _env_file=None).public_url == PUBLIC_URL  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "given",
    ["api.example.test", "ftp://api.example.test", "https://", "https://api.example.test/?a=1"],
)
def test_public_url_that_is_not_an_http_url_is_refused(given: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="AFTERHOURS_PUBLIC_URL"):
        Settings(public_url=given, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture(scope="module")
async def public_base_url(base_settings: Settings) -> Any:
    """A server of its own with AFTERHOURS_PUBLIC_URL set (given with a trailing slash)."""
    settings = Settings(  # type: ignore[call-arg]
        **{**base_settings.model_dump(), "public_url": PUBLIC_URL + "/"}, _env_file=None
    )
    async with running_server(settings, with_worker=False) as url:
        yield url


async def test_photo_url_is_absolute_under_the_public_url(
    public_base_url: str, make_user: Any
) -> None:
    user: User = make_user()
    async with httpx.AsyncClient(base_url=public_base_url, timeout=10) as c:
        assert (await c.put("/api/profile", json=ADULT, headers=user.headers)).status_code == 200
        r = await c.put(
            "/api/after-hours/profile", json={"description": "hi"}, headers=user.headers
        )
        assert r.status_code == 200, r.text
        r = await c.put(
            PHOTO,
            content=image_bytes("JPEG"),
            headers={**user.headers, "Content-Type": "image/jpeg"},
        )
        assert r.status_code == 200, r.text
        url = r.json()["photoUrl"]
        assert url.startswith(PUBLIC_URL + "/photos/"), url
        r = await c.get("/api/after-hours/profile", headers=user.headers)
        assert r.json()["profile"]["photoUrl"].startswith(PUBLIC_URL + "/photos/")

        # The same link, asked of this server directly (the proxy in front would pass it on).
        parts = urlsplit(url)
        r = await c.get(f"{parts.path}?{parts.query}")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/jpeg"

        spec = await openapi(c)
        assert spec["servers"] == [{"url": PUBLIC_URL}]
