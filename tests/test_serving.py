"""`afterhours serve` as operators and attackers meet it: headers bounded, malformed socket frames
cost one short log line at most, and SIGTERM lets requests in flight finish while every socket
is told to reconnect (to the next process, here one started on the same port)."""

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import socketio
import websockets

from afterhours.auth import TokenVerifier
from afterhours.settings import Settings
from tests.support.clients import User
from tests.support.processes import serve_process
from tests.support.server import free_port, fresh_database, settings_for


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
