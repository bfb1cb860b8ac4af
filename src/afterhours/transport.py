"""What an idle Socket.IO connection keeps in memory, made smaller: the libraries' own classes
(python-engineio, python-socketio, uvicorn's websockets-sansio protocol), each with the
per-connection state they hold for the connection's whole life trimmed. Nothing here changes
what goes over the wire.

Measured with 10,000 idle websocket clients (docs/bench.md, "Where an idle socket's memory
goes"): the libraries as they are cost 43 KiB a connection, most of it Python objects made per
connection and kept until it closes. The biggest avoidable shares, and what replaces them here:

- an asyncio.Queue keeps four `collections.deque` (760 bytes each, empty) from birth, three of
  its own and its Event's, an asyncio.Event one; every socket has two queues (uvicorn's receive
  queue, Engine.IO's send queue) and three events. `Mailbox` and `Flag` keep lists instead.
- engineio's ASGI driver defines a class per request (`AwaitablePayload`, 2.5 KiB) and keeps
  it, through the handshake's environ, for the connection's life; `translate_request` here
  defines it once.
- uvicorn keeps the handshake's request and response (websockets `Headers`, a second and third
  copy of the headers) after the handshake; `WebSocketProtocol` lets them go.
- uvicorn's protocol sets more attributes than CPython shares an instance dict's keys for, so
  each connection had a dict of its own (1.6 KiB); a few of them live in slots instead.

Where a library's function is replaced rather than configured, tests/test_transport.py pins the
library version and the shape this module relies on, so an upgrade is looked at, not trusted.
"""

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import engineio
import socketio
from engineio.async_drivers import asgi as engineio_asgi
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

_Waiters = list["asyncio.Future[None]"]


def _wake_first(waiters: _Waiters | None) -> None:
    while waiters:
        waiter = waiters.pop(0)
        if not waiter.done():
            waiter.set_result(None)
            return


class Mailbox:
    """The part of asyncio.Queue (unbounded) that engineio and uvicorn use, with its semantics
    (FIFO getters, a cancelled getter passing its wake-up on, task_done/join) on a list, and a
    list of waiters once someone has waited: an asyncio.Queue holds four deques (3 KiB)."""

    __slots__ = ("_items", "_getters", "_unfinished", "_joiners")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._getters: _Waiters | None = None
        self._unfinished = 0
        self._joiners: _Waiters | None = None

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return False

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        self._unfinished += 1
        _wake_first(self._getters)

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.pop(0)

    async def get(self) -> Any:
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()  # in case it is not done yet
                if getter in self._getters:
                    self._getters.remove(getter)
                if self._items and not getter.cancelled():
                    _wake_first(self._getters)  # the wake-up this getter will not use
                raise
        return self.get_nowait()

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0 and self._joiners:
            joiners, self._joiners = self._joiners, None
            for joiner in joiners:
                if not joiner.done():
                    joiner.set_result(None)

    async def join(self) -> None:
        if self._unfinished > 0:
            joiner = asyncio.get_running_loop().create_future()
            if self._joiners is None:
                self._joiners = []
            self._joiners.append(joiner)
            await joiner


class Flag:
    """asyncio.Event without its deque: a list of waiters once someone has waited."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: _Waiters | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if not self._set:
            self._set = True
            for waiter in self._waiters or ():
                if not waiter.done():
                    waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
            return True
        finally:
            self._waiters.remove(waiter)


Receive = Callable[[], Awaitable[dict[str, Any]]]


class _RequestBody:
    """engineio's `AwaitablePayload` (environ['wsgi.input']), defined once."""

    __slots__ = ("event", "payload", "receive")

    def __init__(self, event: dict[str, Any], receive: Receive) -> None:
        self.event = event
        self.payload: bytes | None = None
        self.receive = receive

    async def read(self, length: int | None = None) -> bytes | None:
        if self.payload is None and self.event["type"] == "http.request":
            self.payload = self.event.get("body") or b""
            while self.event.get("more_body"):
                self.event = await self.receive()
                if self.event["type"] == "http.request" and (
                    length is None or len(self.payload) < length
                ):
                    self.payload += self.event.get("body") or b""
        result = self.payload
        if length is None:
            self.payload = b""
            return result
        if result is None:  # engineio's fails the same way: no body on a websocket handshake
            raise TypeError("read(length) of a request without a body")
        result, self.payload = result[:length], result[length:]
        return result


async def translate_request(scope: dict[str, Any], receive: Receive, send: Any) -> dict[str, Any]:
    """engineio.async_drivers.asgi.translate_request (python-engineio 4.15.1), the same environ,
    but its body reader an instance of a class defined once instead of a class defined per
    request: that class (2.5 KiB) lived as long as the environ, which Engine.IO and Socket.IO
    keep for the connection's life. Replaced, not wrapped: the class is made inside it."""
    event = await receive()
    if event["type"] not in ("http.request", "websocket.connect"):
        return {}
    raw_uri = scope["path"]
    query_string = ""
    if scope.get("query_string"):
        try:
            query_string = scope["query_string"].decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            raw_uri += "?" + query_string
    environ: dict[str, Any] = {
        "wsgi.input": _RequestBody(event, receive),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.async": True,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "SERVER_SOFTWARE": "asgi",
        "REQUEST_METHOD": scope.get("method", "GET"),
        "PATH_INFO": scope["path"],
        "QUERY_STRING": query_string,
        "RAW_URI": raw_uri,
        "SCRIPT_NAME": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "0",
        "SERVER_NAME": "asgi",
        "SERVER_PORT": "0",
        "asgi.receive": receive,
        "asgi.send": send,
        "asgi.scope": scope,
    }
    for raw_name, raw_value in scope["headers"]:
        try:
            name = raw_name.upper().decode("utf-8")
            value = raw_value.decode("utf-8")
        except UnicodeDecodeError:
            continue  # as engineio: a header that cannot be decoded is skipped
        if name == "CONTENT-TYPE":
            environ["CONTENT_TYPE"] = value
            continue
        if name == "CONTENT-LENGTH":
            environ["CONTENT_LENGTH"] = value
            continue
        key = "HTTP_" + name.replace("-", "_")
        if key in environ:
            value = f"{environ[key]},{value}"
        environ[key] = value
    environ["wsgi.url_scheme"] = environ.get("HTTP_X_FORWARDED_PROTO", "http")
    return environ


class EngineServer(engineio.AsyncServer):  # type: ignore[misc]
    """engineio's server with the lean queue and the translate_request above. engineio picks its
    driver's functions from `self._async` (a dict shared by every server of the mode: copied,
    never changed in place) and makes each socket's queue with `create_queue`."""

    _async: dict[str, Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._async is engineio_asgi._async:
            self._async = {**self._async, "translate_request": translate_request}

    def create_queue(self, *args: Any, **kwargs: Any) -> Mailbox:
        if args or kwargs:  # a bounded queue: nothing in engineio asks for one
            return asyncio.Queue(*args, **kwargs)  # type: ignore[return-value]
        return Mailbox()


class SocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server on EngineServer."""

    def _engineio_server_class(self) -> type[EngineServer]:
        return EngineServer


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, holding less for an open connection: the lean
    receive queue and writable flag, and no handshake request/response once it is answered
    (websockets' parser generator keeps the request object itself: its headers are emptied).

    The slots: uvicorn's protocol sets 37 attributes, and CPython (3.11 to 3.13) shares an
    instance dict's keys with its class only up to 30; past that, each instance gets a dict of
    its own, 1.6 KiB instead of 0.3. Those set last (or after __init__) live in slots instead."""

    __slots__ = (
        "ping_timer",
        "pong_timer",
        "pending_ping_payload",
        "ping_sent_at",
        "last_ping_rtt",
        "frames",
        "curr_msg_data_type",
        "request",
        "response",
        "scope",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Mailbox()  # type: ignore[assignment]
        self.writable = Flag()  # type: ignore[assignment]
        self.writable.set()

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete and hasattr(self, "response"):
            # Past the handshake uvicorn reads neither; the ASGI scope has the headers.
            self.request.headers.clear()
            del self.request, self.response
