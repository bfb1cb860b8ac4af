"""`afterhours serve` as operators and attackers meet it: headers bounded, malformed socket frames
cost one short log line at most, and SIGTERM lets requests in flight finish while every socket
is told to reconnect (to the next process, here one started on the same port)."""

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import socketio
import websockets

from afterhours.auth import TokenVerifier
from afterhours.settings import Settings
from tests.support.clients import User
from tests.support.processes import environment, logged, serve_process, worker_process
from tests.support.server import ROOT, free_port, fresh_database, settings_for


@pytest.fixture(scope="module")
def own_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with fresh_database("afterhours_serving") as url:
        yield settings_for(url, tmp_path_factory.mktemp("serving"))


@pytest.fixture
async def served(own_settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    log = tmp_path / "serve.log"
    async with serve_process(own_settings, log=log) as (_, base):
        yield base, log


async def raw_request(base: str, head: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head)
        await writer.drain()
    except ConnectionError:
        pass  # the server may close before it has read everything: the answer is still there
    answer = await asyncio.wait_for(reader.read(), 10)  # until the server closes
    writer.close()
    return answer


async def test_headers_over_32_kib_are_refused_with_431_and_the_connection_closed(served) -> None:
    base, _ = served
    huge = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (8 * 1024 * 1024) + b"\r\n\r\n"
    answer = await raw_request(base, huge)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    assert b'"code": "PAYLOAD_TOO_LARGE"' in answer
    # Ordinary headers are untouched, and the service is still there.
    ok = await raw_request(base, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200 ")


MALFORMED = ["4x", "4", "42[", '42["after_hours:send_message"', "4{", "", "9", "40/nope,"]


async def test_malformed_socket_frames_cost_one_short_log_line_at_most(served) -> None:
    base, log = served
    url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    before = log.stat().st_size
    for _ in range(5):
        for frame in MALFORMED:
            async with websockets.connect(url) as ws:
                await ws.recv()  # the Engine.IO open packet
                await ws.send(frame)
                with contextlib.suppress(TimeoutError, websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 0.05)
    async with httpx.AsyncClient(base_url=base) as client:
        assert (await client.get("/health")).status_code == 200
    written = log.read_text()[before:]
    assert "Traceback" not in written
    # 40 bad frames in about two seconds: a line a second at most, each short.
    complaints = [line for line in written.splitlines() if "malformed_socket_traffic" in line]
    assert 1 <= len(complaints) <= 4, complaints
    assert all(len(line) < 300 for line in written.splitlines()), written[-2000:]


async def test_sigterm_finishes_requests_in_flight_and_sockets_reconnect_to_the_next_process(
    own_settings: Settings, tmp_path: Path
) -> None:
    user = User(TokenVerifier(own_settings), premium=True)
    port = free_port()
    phone = socketio.AsyncClient(reconnection=True, reconnection_delay=0.2)
    connects: list[str] = []
    reconnected = asyncio.Event()

    def connected() -> None:
        connects.append(phone.sid or "")
        if len(connects) == 2:
            reconnected.set()

    phone.on("connect", connected)

    sent_first = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b'{"name": "Slow", '
        sent_first.set()
        await asyncio.sleep(1.5)
        yield b'"birthDate": "1990-01-01", "gender": "woman"}'

    async with serve_process(own_settings, port=port) as (first, base):
        await phone.connect(base, auth={"token": user.token}, transports=["websocket"])
        async with httpx.AsyncClient(base_url=base, timeout=20) as client:
            upload = asyncio.create_task(
                client.put(
                    "/api/profile",
                    content=slow_body(),
                    headers={**user.headers, "Content-Type": "application/json"},
                )
            )
            await sent_first.wait()
            first.send_signal(signal.SIGTERM)
            response = await upload
        assert response.status_code == 200, response.text  # finished, not cut off
        # Stopped on its own once done: uvicorn re-raises the signal it handled, so the status
        # says "ended by SIGTERM", which supervisors count as a clean stop.
        assert await asyncio.wait_for(first.wait(), 30) == -signal.SIGTERM

    assert len(connects) == 1
    async with serve_process(own_settings, port=port):
        await asyncio.wait_for(reconnected.wait(), 15)  # the phone reconnects by itself
    await phone.disconnect()


def postmaster(data_dir: Path) -> psutil.Process | None:
    """The embedded PostgreSQL under `data_dir`, if it runs."""
    pid_file = data_dir / "postgres" / "postmaster.pid"
    if not pid_file.exists():
        return None
    try:
        return psutil.Process(int(pid_file.read_text().split()[0]))
    except psutil.NoSuchProcess:
        return None


async def test_the_embedded_postgres_stops_with_the_last_process_using_it(tmp_path: Path) -> None:
    # No DATABASE_URL: `serve` starts the embedded server, and the worker finds it running.
    settings = Settings(data_dir=tmp_path, jwt_secret="x" * 64, _env_file=None)  # type: ignore[call-arg]
    async with serve_process(settings) as (serve, _):
        server = postmaster(tmp_path)
        assert server is not None and server.is_running()
        async with worker_process(settings, log=tmp_path / "worker.log") as worker:
            await logged(tmp_path / "worker.log", "Starting worker")
            serve.send_signal(signal.SIGINT)  # Ctrl-C
            await asyncio.wait_for(serve.wait(), 30)
            assert server.is_running()  # the worker still uses it
            worker.send_signal(signal.SIGINT)
            assert await asyncio.wait_for(worker.wait(), 30) == 0
    await asyncio.to_thread(server.wait, 30)
    assert postmaster(tmp_path) is None


async def test_db_stop_stops_the_embedded_postgres_whoever_uses_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, jwt_secret="x" * 64, _env_file=None)  # type: ignore[call-arg]
    async with serve_process(settings, with_worker=False) as (_, base):
        stop = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "afterhours",
            "db",
            "stop",
            env=environment(settings),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await stop.communicate()
        assert (stop.returncode, out.strip()) == (0, b"stopped")
        assert postmaster(tmp_path) is None
        async with httpx.AsyncClient(base_url=base) as client:
            r = await client.get("/ready")
            assert r.status_code == 503 and "database" in r.json()["error"]
