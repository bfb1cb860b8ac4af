"""The envelope every failure shares, the operations routes, and the OpenAPI document."""

import io
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from afterhours.app import create_app
from afterhours.profiles.routes import router as profiles_router
from afterhours.settings import Settings
from tests.support.clients import assert_error
from tests.support.server import serving

CODE = re.compile(r"^[A-Z][A-Z_]*$")


async def test_health_is_200(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    assert r.status_code == 200
    assert r.json()["success"] is True


async def test_ready_is_200_on_a_migrated_database(client: httpx.AsyncClient) -> None:
    r = await client.get("/ready")
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-Id"])
    r = await client.get("/health", headers={"X-Request-Id": "edge-1234"})
    assert r.headers["X-Request-Id"] == "edge-1234"
    # An id that could forge log fields is replaced, not echoed.
    r = await client.get("/health", headers={"X-Request-Id": "abc def=1 path=/x"})
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-Id"])


async def test_unknown_route_is_404_not_found(client: httpx.AsyncClient, make_user) -> None:
    assert_error(await client.get("/nope"), 404, "NOT_FOUND")
    r = await client.get("/api/does-not-exist", headers=make_user().headers)
    assert_error(r, 404, "NOT_FOUND")


async def test_wrong_method_is_405_method_not_allowed(client: httpx.AsyncClient, make_user) -> None:
    r = await client.post("/api/profile", json={}, headers=make_user().headers)
    assert_error(r, 405, "METHOD_NOT_ALLOWED")
    assert r.headers["Allow"] == "GET, PUT"
    assert_error(await client.delete("/health"), 405, "METHOD_NOT_ALLOWED")


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"name": "Sam",}', b"not json", b"\xff\xfe\x00garbage", b"[" * 20_000],
    ids=["truncated", "trailing-comma", "text", "invalid-utf8", "deeply-nested"],
)
async def test_malformed_json_is_400_validation_error_with_details(
    client: httpx.AsyncClient, make_user, raw: bytes
) -> None:
    headers = {**make_user().headers, "Content-Type": "application/json"}
    r = await client.put("/api/profile", content=raw, headers=headers)
    body = assert_error(r, 400, "VALIDATION_ERROR")
    assert body["details"], body
    assert all(set(d) == {"field", "message"} for d in body["details"])


async def test_json_that_is_not_an_object_is_400_validation_error(
    client: httpx.AsyncClient, make_user
) -> None:
    for payload in ([], "text", 42, None):
        r = await client.put("/api/profile", json=payload, headers=make_user().headers)
        body = assert_error(r, 400, "VALIDATION_ERROR")
        assert body["details"]


async def test_json_body_over_64_kib_is_413(client: httpx.AsyncClient, make_user) -> None:
    user = make_user()
    big = {"name": "x" * (64 * 1024), "birthDate": "1990-01-01", "gender": "man"}
    refused = await client.put("/api/profile", json=big, headers=user.headers)
    assert_error(refused, 413, "PAYLOAD_TOO_LARGE")
    assert refused.headers["X-Request-Id"]

    # Without a Content-Length (chunked), the limit holds while the body streams in.
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(80):
            yield b"x" * 1024
        yield b'"}'

    r = await client.put(
        "/api/profile",
        content=chunks(),
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert_error(r, 413, "PAYLOAD_TOO_LARGE")


async def test_json_body_just_under_the_limit_is_read(client: httpx.AsyncClient, make_user) -> None:
    user = make_user()
    body = {"name": "x" * (60 * 1024), "birthDate": "1990-01-01", "gender": "man"}
    r = await client.put("/api/profile", json=body, headers=user.headers)
    # Read and validated (the name is too long), not refused for its size.
    assert_error(r, 400, "VALIDATION_ERROR")


async def test_photo_over_5_mb_is_413(client: httpx.AsyncClient, make_user) -> None:
    user = make_user()
    headers = {**user.headers, "Content-Type": "image/jpeg"}
    r = await client.put(
        "/api/after-hours/profile/photo", content=b"\xff" * (5 * 1024 * 1024 + 1), headers=headers
    )
    assert_error(r, 413, "PAYLOAD_TOO_LARGE")


async def test_photo_just_under_5_mb_is_not_refused_for_size(
    client: httpx.AsyncClient, make_user
) -> None:
    user = make_user()
    await client.put(
        "/api/profile",
        json={"name": "Big", "birthDate": "1990-01-01", "gender": "man"},
        headers=user.headers,
    )
    # A real JPEG padded with trailing bytes decoders ignore: ~5 MB on the wire, still an image.
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), "blue").save(buf, "JPEG")
    padded = buf.getvalue() + b"\x00" * (5 * 1024 * 1024 - len(buf.getvalue()))
    r = await client.put(
        "/api/after-hours/profile/photo",
        content=padded,
        headers={**user.headers, "Content-Type": "image/jpeg"},
    )
    assert r.status_code == 200, r.text


async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    spec: dict[str, Any] = r.json()
    return spec


def api_operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in spec["paths"].items()
        if path.startswith("/api/")
        for method, op in ops.items()
    ]


async def test_openapi_lists_every_api_route(client: httpx.AsyncClient) -> None:
    documented = {(method, path) for method, path, _ in api_operations(await openapi(client))}
    for route in profiles_router.routes:
        for method in route.methods:  # type: ignore[attr-defined]
            assert (method, route.path) in documented  # type: ignore[attr-defined]
    assert len(documented) >= len(profiles_router.routes)


async def test_every_api_route_documents_its_error_envelope(client: httpx.AsyncClient) -> None:
    spec = await openapi(client)
    assert "ErrorBody" in spec["components"]["schemas"]
    for method, path, op in api_operations(spec):
        responses = op["responses"]
        assert "401" in responses, (method, path)
        # 422 is FastAPI's default and never what this service answers (it answers 400).
        assert "422" not in responses, (method, path)
        errors = {s: r for s, r in responses.items() if s == "default" or s[0] in "45"}
        assert "default" in errors, (method, path)
        for status, response in errors.items():
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
        if "requestBody" in op:
            assert "400" in responses, (method, path)


# What each foundation route can answer besides success (each is exercised in tests/profiles).
PROFILE_ROUTE_ERRORS = {
    ("PUT", "/api/profile"): {"400", "401"},
    ("GET", "/api/profile"): {"401", "404"},
    ("DELETE", "/api/account"): {"401"},
    ("PUT", "/api/after-hours/profile"): {"400", "401", "403"},
    ("GET", "/api/after-hours/profile"): {"401", "403", "404"},
    ("DELETE", "/api/after-hours/profile"): {"401", "403", "404"},
    ("PUT", "/api/after-hours/profile/photo"): {"400", "401", "403", "413", "429"},
    ("GET", "/api/after-hours/preferences"): {"401", "403"},
    ("PUT", "/api/after-hours/preferences"): {"400", "401", "403"},
}


async def test_profile_routes_document_each_error_they_give(client: httpx.AsyncClient) -> None:
    documented = {
        (m, p): set(op["responses"]) for m, p, op in api_operations(await openapi(client))
    }
    for route, statuses in PROFILE_ROUTE_ERRORS.items():
        assert statuses <= documented[route], (route, documented[route])
    photo = (await openapi(client))["paths"]["/api/after-hours/profile/photo"]["put"]
    assert set(photo["requestBody"]["content"]) == {"image/jpeg", "image/png", "image/webp"}


async def test_documented_routes_answer_401_without_a_token(client: httpx.AsyncClient) -> None:
    for method, path, _ in api_operations(await openapi(client)):
        url = re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)
        r = await client.request(method, url)
        assert_error(r, 401, "UNAUTHORIZED")


def find_fastapi(app: Any) -> FastAPI:
    """create_app() wraps FastAPI in ASGI layers (body limit, Socket.IO); find the FastAPI."""
    seen = 0
    while not isinstance(app, FastAPI):
        app = getattr(app, "app", None) or getattr(app, "other_asgi_app", None)
        seen += 1
        assert app is not None and seen < 10, "no FastAPI inside create_app()"
    return app


async def test_unexpected_error_is_500_internal_error_with_request_id_and_no_trace(
    base_settings: Settings,
) -> None:
    app = create_app(base_settings)

    async def boom() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    find_fastapi(app).add_api_route("/boom", boom, methods=["GET"])
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as c:
        r = await c.get("/boom", headers={"X-Request-Id": "req-500-check"})
        body = assert_error(r, 500, "INTERNAL_ERROR")
        assert body["requestId"] == r.headers["X-Request-Id"] == "req-500-check"
        assert "secret" not in r.text and "Traceback" not in r.text

        r = await c.get("/boom")
        body = assert_error(r, 500, "INTERNAL_ERROR")
        assert re.fullmatch(r"[0-9a-f]{32}", body["requestId"])


async def test_error_codes_are_upper_snake_case(client: httpx.AsyncClient, make_user) -> None:
    responses = [
        await client.get("/nope"),
        await client.get("/api/profile"),
        await client.get("/api/profile", headers=make_user().headers),
        await client.get("/api/after-hours/profile", headers=make_user(premium=False).headers),
    ]
    for r in responses:
        assert CODE.match(r.json()["code"]), r.text
