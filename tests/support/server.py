"""Serving the real app on a loopback port, and the settings of a server of a test's own."""

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pgserver
import psycopg
import uvicorn

from afterhours import migrations
from afterhours import serving as afterhours_serving
from afterhours.app import create_app
from afterhours.settings import Settings

ROOT = Path(__file__).resolve().parent.parent.parent
TEST_SECRET = "test-secret-" + "x" * 64
# One session-minute of a server of a test's own (settings_for): a 15-minute session lasts 6 s.
SESSION_MINUTE = 0.4


def embedded_server_url() -> str:
    """The embedded server the tests use (kept apart from `make run`'s), started if needed."""
    (ROOT / "var").mkdir(exist_ok=True)
    return str(pgserver.get_server(ROOT / "var" / "test-postgres", cleanup_mode=None).get_uri())


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A new, migrated database on the tests' embedded server; its URL. Dropped afterwards."""
    admin_url = embedded_server_url()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.replace("/postgres?", f"/{name}?")
    migrations.upgrade(url)
    try:
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port, speaking HTTP and WebSocket as
    `afterhours serve` does; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        http=afterhours_serving.BoundedHeaders,
        **afterhours_serving.WEBSOCKET_OPTIONS,
    )
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


def settings_for(url: str, data_dir: Path, redis: str | None = None) -> Settings:
    """Settings for a server (and worker) of a test's own, on the database at `url`."""
    return Settings(
        database_url=url,
        redis_url=redis,
        data_dir=data_dir,
        jwt_secret=TEST_SECRET,
        session_minute_seconds=SESSION_MINUTE,
        worker_poll_seconds=0.1,
        _env_file=None,  # type: ignore[call-arg]
    )
