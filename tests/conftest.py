"""Tests run the real app on a real port against a real embedded PostgreSQL."""

import asyncio
import os
import random
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pgserver
import psycopg
import pytest
import socketio
import uvicorn

from afterhours import migrations
from afterhours.app import create_app
from afterhours.auth import TokenVerifier
from afterhours.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-secret-" + "x" * 64


def embedded_server_url() -> str:
    """The embedded server the tests use (kept apart from `make run`'s), started if needed."""
    (ROOT / "var").mkdir(exist_ok=True)
    return str(pgserver.get_server(ROOT / "var" / "test-postgres", cleanup_mode=None).get_uri())


@pytest.fixture(scope="session")
def database_url() -> Any:
    """A fresh database for this run on the embedded server (kept apart from `make run`'s)."""
    name = f"afterhours_test_{os.getpid()}"
    admin_url = embedded_server_url()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.replace("/postgres?", f"/{name}?")
    migrations.upgrade(url)
    yield url
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def isolated_url() -> Any:
    """A database of its own, so no other test's worker touches these jobs."""
    admin_url = embedded_server_url()
    name = f"afterhours_workers_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.replace("/postgres?", f"/{name}?")
    migrations.upgrade(url)
    yield url
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def base_settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # One session-minute is half a second: a 15-minute session lasts 7.5 s, its warning comes 1 s
    # before the end. Every test places its users at a random spot on the globe, so tests running
    # against the one shared worker never see each other's users.
    return Settings(
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("data"),
        jwt_secret=TEST_SECRET,
        session_minute_seconds=0.5,
        worker_poll_seconds=0.1,
        match_delay_start_seconds=0.2,
        match_delay_decline_seconds=0.2,
        match_sweep_seconds=1.0,
        auto_decline_seconds=4.0,
        _env_file=None,  # type: ignore[call-arg]
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(30):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def running_server(settings: Settings, **app_options: Any) -> Any:
    """Serve create_app(settings, **app_options); an async context manager of its base URL."""
    return serving(create_app(settings, **app_options))


@pytest.fixture(scope="session")
async def base_url(base_settings: Settings) -> AsyncIterator[str]:
    async with running_server(base_settings, with_worker=True) as url:
        yield url


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as c:
        yield c


@pytest.fixture(scope="session")
def verifier(base_settings: Settings) -> TokenVerifier:
    return TokenVerifier(base_settings)


class User:
    """A test user with a fresh id and the headers that authenticate them."""

    def __init__(self, verifier: TokenVerifier, *, premium: bool, admin: bool = False) -> None:
        self.id = uuid.uuid4()
        self.token = verifier.issue(self.id, premium=premium, admin=admin)
        self.headers = {"Authorization": f"Bearer {self.token}"}
        self.place: tuple[float, float] | None = None  # where their sessions start


@pytest.fixture
def make_user(verifier: TokenVerifier) -> Callable[..., User]:
    def make(*, premium: bool = True, admin: bool = False) -> User:
        return User(verifier, premium=premium, admin=admin)

    return make


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is False
    assert body["code"] == code
    assert isinstance(body["error"], str) and body["error"]
    return body


class Recorder:
    """A real Socket.IO client that records every event it receives, in order."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self._arrived = asyncio.Condition()

        @self.client.on("*")
        async def any_event(event: str, data: Any) -> None:
            async with self._arrived:
                self.events.append((event, data))
                self._arrived.notify_all()

    def named(self, event: str) -> list[Any]:
        return [data for name, data in self.events if name == event]

    async def wait_for(self, event: str, *, within: float = 10.0, count: int = 1) -> Any:
        """The `count`-th payload of `event`, waiting up to `within` seconds for it."""
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.named(event)) >= count), within
            )
        return self.named(event)[count - 1]


@pytest.fixture
async def connect(base_url: str) -> AsyncIterator[Callable[..., Any]]:
    recorders: list[Recorder] = []

    async def open_socket(user: User, **auth: Any) -> Recorder:
        recorder = Recorder()
        await recorder.client.connect(
            base_url, auth={"token": user.token, **auth}, transports=["websocket"], wait_timeout=5
        )
        recorders.append(recorder)
        return recorder

    yield open_socket
    for recorder in recorders:
        await recorder.client.disconnect()


def random_place() -> tuple[float, float]:
    """A spot far from every other test's (1 in ~10^5 chance of two within 100 km)."""
    return random.uniform(-60, 60), random.uniform(-179, 179)


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is required in CI (.ci/run installs it)")
        pytest.skip("redis-server not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
