"""Cross-origin access: closed by default, open to the origins AFTERHOURS_CORS_ORIGINS lists,
the same on REST and on Socket.IO (polling handshake and websocket alike)."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pydantic
import pytest
import socketio

from afterhours.settings import Settings
from tests.support.clients import User
from tests.support.server import running_server

ALLOWED = "https://app.example.test"
FOREIGN = "https://evil.example.test"
HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization,content-type",
    }


async def socket_with_origin(base_url: str, user: User, origin: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(
        base_url,
        auth={"token": user.token},
        headers={"Origin": origin},
        transports=["websocket"],
        wait_timeout=5,
    )
    return client


async def assert_socket_refused(base_url: str, user: User, origin: str) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError):
        client = await socket_with_origin(base_url, user, origin)
        await client.disconnect()


async def assert_foreign_origin_refused(
    c: httpx.AsyncClient, base_url: str, user: User, origin: str
) -> None:
    r = await c.get("/api/after-hours/preferences", headers={**user.headers, "Origin": origin})
    assert "access-control-allow-origin" not in r.headers
    r = await c.options("/api/profile", headers=preflight(origin))
    assert "access-control-allow-origin" not in r.headers
    r = await c.get(HANDSHAKE, headers={"Origin": origin})
    assert r.status_code == 400, r.text
    assert "access-control-allow-origin" not in r.headers
    await assert_socket_refused(base_url, user, origin)


# --- the default: no origin configured -------------------------------------------------------


async def test_by_default_a_foreign_origin_is_refused_on_rest_and_socket(
    client: httpx.AsyncClient, base_url: str, make_user: Any
) -> None:
    await assert_foreign_origin_refused(client, base_url, make_user(), FOREIGN)
    # Not even an origin another deployment would list.
    await assert_foreign_origin_refused(client, base_url, make_user(), ALLOWED)


async def test_by_default_clients_without_an_origin_connect(
    client: httpx.AsyncClient, base_url: str, make_user: Any
) -> None:
    # Native apps send no Origin: CORS is a browser's matter and never stands in their way.
    assert (await client.get(HANDSHAKE)).status_code == 200
    socket = socketio.AsyncClient(reconnection=False)
    await socket.connect(
        base_url, auth={"token": make_user().token}, transports=["websocket"], wait_timeout=5
    )
    assert socket.connected
    await socket.disconnect()


async def test_by_default_the_services_own_origin_may_open_a_socket(
    client: httpx.AsyncClient, base_url: str, make_user: Any
) -> None:
    r = await client.get(HANDSHAKE, headers={"Origin": base_url})
    assert r.status_code == 200, r.text
    socket = await socket_with_origin(base_url, make_user(), base_url)
    assert socket.connected
    await socket.disconnect()


# --- AFTERHOURS_CORS_ORIGINS set -------------------------------------------------------------


@pytest.fixture(scope="module")
async def cors_base_url(base_settings: Settings) -> AsyncIterator[str]:
    settings = base_settings.model_copy(update={"cors_origins": [ALLOWED]})
    async with running_server(settings, with_worker=False) as url:
        yield url


@pytest.fixture
async def cors_client(cors_base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=cors_base_url, timeout=10) as c:
        yield c


async def test_a_configured_origin_is_allowed_on_rest(
    cors_client: httpx.AsyncClient, make_user: Any
) -> None:
    user = make_user()
    r = await cors_client.options("/api/profile", headers=preflight(ALLOWED))
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == ALLOWED
    assert "PUT" in r.headers["access-control-allow-methods"]
    assert "authorization" in r.headers["access-control-allow-headers"].lower()

    r = await cors_client.get(
        "/api/after-hours/preferences", headers={**user.headers, "Origin": ALLOWED}
    )
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == ALLOWED
    assert "x-request-id" in r.headers["access-control-expose-headers"].lower()

    # A refusal carries the header too, or the page could not read the error.
    r = await cors_client.get("/api/profile", headers={"Origin": ALLOWED})
    assert r.status_code == 401
    assert r.headers["access-control-allow-origin"] == ALLOWED


async def test_a_configured_origin_may_open_a_socket(
    cors_client: httpx.AsyncClient, cors_base_url: str, make_user: Any
) -> None:
    r = await cors_client.get(HANDSHAKE, headers={"Origin": ALLOWED})
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == ALLOWED
    socket = await socket_with_origin(cors_base_url, make_user(), ALLOWED)
    assert socket.connected
    await socket.disconnect()


async def test_with_origins_listed_the_services_own_pages_still_open_sockets(
    cors_client: httpx.AsyncClient, cors_base_url: str, make_user: Any
) -> None:
    r = await cors_client.get(HANDSHAKE, headers={"Origin": cors_base_url})
    assert r.status_code == 200, r.text
    socket = await socket_with_origin(cors_base_url, make_user(admin=True), cors_base_url)
    assert socket.connected  # the moderation console at /admin is one of them
    await socket.disconnect()


async def test_an_origin_not_listed_is_still_refused(
    cors_client: httpx.AsyncClient, cors_base_url: str, make_user: Any
) -> None:
    await assert_foreign_origin_refused(cors_client, cors_base_url, make_user(), FOREIGN)


# --- the setting itself ----------------------------------------------------------------------


def test_origins_are_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AFTERHOURS_CORS_ORIGINS", " https://App.example.test/ , http://localhost:3000,"
    )
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.cors_origins == ["https://app.example.test", "http://localhost:3000"]


def test_no_origins_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AFTERHOURS_CORS_ORIGINS", raising=False)
    assert Settings(_env_file=None).cors_origins == []  # type: ignore[call-arg]
    monkeypatch.setenv("AFTERHOURS_CORS_ORIGINS", "")
    assert Settings(_env_file=None).cors_origins == []  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "given", ["app.example.test", "ftp://app.example.test", "https://app.example.test/path"]
)
def test_an_origin_that_is_not_one_is_refused(monkeypatch: pytest.MonkeyPatch, given: str) -> None:
    monkeypatch.setenv("AFTERHOURS_CORS_ORIGINS", given)
    with pytest.raises(pydantic.ValidationError, match="AFTERHOURS_CORS_ORIGINS"):
        Settings(_env_file=None)  # type: ignore[call-arg]
