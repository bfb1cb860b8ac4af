"""What an idle Socket.IO connection keeps in memory, made smaller: the libraries' own classes
(python-engineio, python-socketio, uvicorn's websockets-sansio protocol), each with the
per-connection state they hold for the connection's whole life trimmed. Nothing here changes
what goes over the wire.

Measured with 10,000 idle websocket clients (docs/bench.md, "Where an idle socket's memory
goes"): the libraries as they are cost 43 KiB a connection, most of it Python objects made per
connection and kept until it closes. The biggest avoidable shares, and what replaces them here:

- asyncio.Queue and asyncio.Event keep three and one `collections.deque` (760 bytes each,
  empty) from birth; every socket has two queues (uvicorn's receive queue, Engine.IO's send
  queue) and three events. `Mailbox` and `Flag` keep a list only while someone waits.

Where a library's function is replaced rather than configured, tests/test_transport.py pins the
library version and the shape this module relies on, so an upgrade is looked at, not trusted.
"""

import asyncio
from typing import Any

import engineio
import socketio
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


class EngineServer(engineio.AsyncServer):  # type: ignore[misc]
    """engineio's server with the lean queue: engineio makes each socket's queue with
    `create_queue`."""

    def create_queue(self, *args: Any, **kwargs: Any) -> Mailbox:
        if args or kwargs:  # a bounded queue: nothing in engineio asks for one
            return asyncio.Queue(*args, **kwargs)  # type: ignore[return-value]
        return Mailbox()


class SocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server on EngineServer."""

    def _engineio_server_class(self) -> type[EngineServer]:
        return EngineServer


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, with the lean receive queue and writable flag."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Mailbox()  # type: ignore[assignment]
        self.writable = Flag()  # type: ignore[assignment]
        self.writable.set()
