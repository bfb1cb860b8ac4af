"""afterhours.transport: the libraries' per-connection state made smaller, and nothing else.
Socket.IO keeps working over every transport through `afterhours serve` (auth, acks, room emits,
heartbeats, a silent peer dropped); the lean queue behaves as asyncio.Queue; and the library
shapes the module relies on are the ones it was written against."""

import asyncio
import importlib.metadata
import inspect
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import engineio
import httpx
import pytest
import socketio
import uvicorn
import websockets
from engineio.async_drivers import asgi as engineio_asgi
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from afterhours import transport
from afterhours.auth import TokenVerifier
from afterhours.settings import Settings
from afterhours.sockets import create_server
from tests.support.clients import Recorder, User
from tests.support.processes import serve_process
from tests.support.server import free_port, fresh_database, settings_for
from tests.support.sessions import set_up, start
from tests.support.waiting import until

# --- the libraries this module was written against ------------------------------------------

PINNED = {
    "python-engineio": "4.15.1",
    "python-socketio": "5.18.1",
    "uvicorn": "0.54.0",
    "websockets": "17.4",
}


@pytest.mark.parametrize("package", sorted(PINNED))
def test_the_libraries_are_the_versions_transport_was_written_against(package: str) -> None:
    # A new version may change what afterhours.transport replaces or relies on (engineio's
    # translate_request and create_queue, uvicorn's protocol attributes): read it again, then
    # move the pin here and in pyproject.toml.
    assert importlib.metadata.version(package) == PINNED[package]


def test_engineio_makes_each_sockets_queue_with_create_queue() -> None:
    assert "self.server.create_queue()" in inspect.getsource(engineio.base_socket.BaseSocket)
    assert "_engineio_server_class()" in inspect.getsource(socketio.base_server.BaseServer)


def server() -> socketio.AsyncServer:
    settings = Settings(jwt_secret="x" * 64, _env_file=None)  # type: ignore[call-arg]
    return create_server(settings, "postgresql://unused")


def test_the_servers_sockets_get_lean_queues() -> None:
    assert isinstance(server().eio.create_queue(), transport.Mailbox)


def protocol() -> transport.WebSocketProtocol:
    config = uvicorn.Config(app=lambda *_: None, ws=transport.WebSocketProtocol)
    config.load()
    return transport.WebSocketProtocol(config=config, server_state=ServerState(), app_state={})


async def test_the_websocket_protocol_has_the_lean_queue_and_flag() -> None:
    made = protocol()
    assert isinstance(made.queue, transport.Mailbox)
    assert isinstance(made.writable, transport.Flag) and made.writable.is_set()
    source = inspect.getsource(WebSocketsSansIOProtocol)
    assert "self.queue.put_nowait(" in source and "self.writable.wait()" in source


# --- the lean queue and flag behave as asyncio's ----------------------------------------------

QUEUES = [asyncio.Queue, transport.Mailbox]


@pytest.mark.parametrize("make", QUEUES)
async def test_getters_are_served_in_order_and_items_in_order(make: Callable[[], Any]) -> None:
    queue = make()
    got: list[tuple[int, Any]] = []

    async def getter(n: int) -> None:
        got.append((n, await queue.get()))

    tasks = [asyncio.create_task(getter(n)) for n in range(3)]
    await asyncio.sleep(0)
    for item in "abc":
        await queue.put(item)
    await asyncio.gather(*tasks)
    assert got == [(0, "a"), (1, "b"), (2, "c")]
    assert queue.empty() and queue.qsize() == 0
    queue.put_nowait(1)
    queue.put_nowait(2)
    assert (queue.qsize(), queue.get_nowait(), queue.get_nowait()) == (2, 1, 2)
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()


@pytest.mark.parametrize("make", QUEUES)
async def test_a_getter_that_times_out_takes_nothing_and_leaves_no_waiter(
    make: Callable[[], Any],
) -> None:
    queue = make()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(queue.get(), 0.01)
    await queue.put("after")
    assert await asyncio.wait_for(queue.get(), 1) == "after"


@pytest.mark.parametrize("make", QUEUES)
async def test_a_woken_getter_cancelled_passes_its_item_on(make: Callable[[], Any]) -> None:
    queue = make()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("item")  # wakes `first`, which is cancelled before it runs
    first.cancel()
    assert await asyncio.wait_for(second, 1) == "item"
    assert first.cancelled()


@pytest.mark.parametrize("make", QUEUES)
async def test_join_waits_until_every_item_is_done(make: Callable[[], Any]) -> None:
    queue = make()
    await queue.join()  # nothing unfinished
    queue.put_nowait("a")
    queue.put_nowait("b")
    joined = asyncio.create_task(queue.join())
    queue.get_nowait()
    queue.task_done()
    await asyncio.sleep(0.01)
    assert not joined.done()
    queue.get_nowait()
    queue.task_done()
    await asyncio.wait_for(joined, 1)
    with pytest.raises(ValueError):
        queue.task_done()


@pytest.mark.parametrize("make", [asyncio.Event, transport.Flag])
async def test_the_flag_wakes_every_waiter_when_set(make: Callable[[], Any]) -> None:
    flag = make()
    assert not flag.is_set()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0.01)
    assert not any(w.done() for w in waiters)
    flag.set()
    assert await asyncio.wait_for(asyncio.gather(*waiters), 1) == [True, True, True]
    flag.clear()
    waiting = asyncio.create_task(flag.wait())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    waiting.cancel()
    flag.set()
    assert await flag.wait() is True


# --- engineio's environ, its body reader defined once ----------------------------------------


def test_engineio_takes_translate_request_from_its_driver_dict() -> None:
    assert engineio_asgi._async["translate_request"] is engineio_asgi.translate_request
    handle = inspect.getsource(engineio.AsyncServer.handle_request)
    assert "self._async['translate_request']" in handle


def test_the_server_uses_its_own_translate_request_and_leaves_engineios_alone() -> None:
    assert server().eio._async["translate_request"] is transport.translate_request
    assert engineio_asgi._async["translate_request"] is engineio_asgi.translate_request


def scope_of(kind: str) -> dict[str, Any]:
    headers = [
        (b"host", b"example.test"),
        (b"origin", b"https://app.example.test"),
        (b"x-forwarded-proto", b"https"),
        (b"x-multi", b"a"),
        (b"x-multi", b"b"),
        (b"content-type", b"text/plain"),
        (b"content-length", b"7"),
        (b"x-bad", b"\xff"),
    ]
    scope = {"type": kind, "path": "/socket.io/", "query_string": b"EIO=4&t=x", "headers": headers}
    if kind == "http":
        scope["method"] = "POST"
    return scope


def receiver(events: list[dict[str, Any]]) -> Callable[[], Any]:
    queue = list(events)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return receive


@pytest.mark.parametrize(
    "kind, events",
    [
        ("websocket", [{"type": "websocket.connect"}]),
        ("http", [{"type": "http.request", "body": b"4hello", "more_body": False}]),
        (
            "http",
            [
                {"type": "http.request", "body": b"4he", "more_body": True},
                {"type": "http.request", "body": b"llo", "more_body": False},
            ],
        ),
        ("http", [{"type": "http.disconnect"}]),
    ],
)
async def test_translate_request_makes_engineios_environ(
    kind: str, events: list[dict[str, Any]]
) -> None:
    async def send(message: Any) -> None:
        pass

    theirs = await engineio_asgi.translate_request(scope_of(kind), receiver(events), send)
    ours = await transport.translate_request(scope_of(kind), receiver(events), send)
    body = (theirs.pop("wsgi.input", None), ours.pop("wsgi.input", None))
    for environ in (theirs, ours):
        for key in ("asgi.receive", "asgi.scope"):
            environ.pop(key, None)
    assert ours == theirs
    if kind == "http" and body[0] is not None:
        assert await body[1].read(3) == await body[0].read(3)
        assert await body[1].read() == await body[0].read()


# --- uvicorn's handshake request and response, let go --------------------------------------


async def test_an_open_websocket_keeps_no_handshake_request_or_response() -> None:
    async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message["text"]})

    port = free_port()
    config = uvicorn.Config(
        echo, port=port, ws=transport.WebSocketProtocol, lifespan="off", log_level="warning"
    )
    served = uvicorn.Server(config)
    task = asyncio.create_task(served.serve())

    async def started() -> bool:
        return served.started

    try:
        await until(started, within=10)
        async with websockets.connect(f"ws://127.0.0.1:{port}/", ping_interval=None) as ws:
            await ws.send("before")
            assert await ws.recv() == "before"
            (open_socket,) = served.server_state.connections
            assert isinstance(open_socket, transport.WebSocketProtocol)
            assert not hasattr(open_socket, "request") and not hasattr(open_socket, "response")
            assert open_socket.scope["headers"]  # the ASGI scope keeps them
            await ws.send("after")
            assert await ws.recv() == "after"
    finally:
        served.should_exit = True
        await task


# --- uvicorn's protocol attributes in a shared dict ------------------------------------------


async def test_the_websocket_protocol_keeps_its_attributes_in_a_shared_dict() -> None:
    # uvicorn sets its attributes in __init__ and the handshake; CPython gives an instance a
    # dict of its own (1.6 KiB instead of 0.3) once its class has seen 30 attribute names.
    assert len(vars(protocol())) < 30, sorted(vars(protocol()))
    assigned = inspect.getsource(WebSocketsSansIOProtocol)
    for name in transport.WebSocketProtocol.__slots__:
        assert f"self.{name}" in assigned, name  # a slot uvicorn still uses


# --- Socket.IO through `afterhours serve` ---------------------------------------------------

PING = 1.0  # seconds; Engine.IO announces it in whole milliseconds of whole seconds
TRANSPORTS = {
    "polling": ["polling"],
    "websocket": ["websocket"],
    "upgrade": ["polling", "websocket"],
}


@pytest.fixture(scope="module")
def own_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with fresh_database("afterhours_transport") as url:
        settings = settings_for(url, tmp_path_factory.mktemp("transport"))
        yield settings.model_copy(
            update={"socket_ping_interval_seconds": PING, "socket_ping_timeout_seconds": PING}
        )


@pytest.fixture(scope="module")
async def base(own_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Any:
    log = tmp_path_factory.mktemp("transport-log") / "serve.log"
    async with serve_process(own_settings, log=log) as (_, url):
        yield url


@pytest.fixture
async def user(own_settings: Settings, base: str) -> AsyncIterator[User]:
    user = User(TokenVerifier(own_settings), premium=True)
    async with httpx.AsyncClient(base_url=base) as client:
        await set_up(client, user)
    yield user


@pytest.mark.parametrize("way", sorted(TRANSPORTS))
async def test_every_transport_connects_answers_acks_and_hears_its_room(
    base: str, user: User, way: str
) -> None:
    phone = Recorder()
    await phone.client.connect(
        base, auth={"token": user.token}, transports=TRANSPORTS[way], wait_timeout=5
    )
    try:
        if way == "upgrade":

            async def upgraded() -> bool:
                return bool(phone.client.transport() == "websocket")

            await until(upgraded, within=10)
        ack = await phone.client.call("after_hours:typing", {"matchId": "nope"}, timeout=5)
        assert ack["ok"] is False and ack["error"]["code"] == "VALIDATION_ERROR", ack
        async with httpx.AsyncClient(base_url=base) as client:
            r = await start(client, user)  # 15 session-minutes: 6 s, warned 0.8 s before
            assert r.status_code == 201, r.text
        # Heard through the user's room, some heartbeats later, on the same connection.
        warning = await phone.wait_for("after_hours:session_expiring", within=20)
        assert warning["sessionId"] == r.json()["session"]["id"]
        assert phone.client.connected and phone.client.transport() == TRANSPORTS[way][-1]
    finally:
        await phone.client.disconnect()


@pytest.mark.parametrize("way", sorted(TRANSPORTS))
async def test_every_transport_refuses_a_bad_token(base: str, way: str) -> None:
    phone = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await phone.connect(base, auth={"token": "bad"}, transports=TRANSPORTS[way], wait_timeout=5)
    await phone.disconnect()


async def test_a_peer_that_stops_answering_pings_is_dropped(base: str, user: User) -> None:
    url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with websockets.connect(url, ping_interval=None) as ws:
        opened = json.loads(str(await ws.recv())[1:])
        assert opened["pingInterval"] == PING * 1000
        await ws.send("40" + json.dumps({"token": user.token}))
        assert str(await ws.recv()).startswith("40{")
        connected = time.monotonic()
        heard: list[str] = []
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(30):
                while True:  # never answers the server's pings ("2")
                    heard.append(str(await ws.recv()))
        dropped = time.monotonic() - connected
    assert "2" in heard  # it was pinged
    # Not before its ping interval; about interval + timeout (2 s), with room for a busy machine.
    assert PING <= dropped < 2 * PING + 5, dropped
