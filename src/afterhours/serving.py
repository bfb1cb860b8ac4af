"""How `afterhours serve` speaks HTTP: uvicorn with httptools, headers bounded, malformed socket
traffic logged briefly, and a shutdown that lets requests in flight finish and tells every socket
to reconnect elsewhere."""

import json
import logging
import sys
import time
from typing import Any

import socketio
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from afterhours import transport

# Request line plus headers. httptools takes any size (an 8 MB header was served, and held in
# memory); browsers and phones send a few KB at most, and nginx's default allows 32 KB.
MAX_HEADER_BYTES = 32 * 1024
_TOO_LARGE_BODY = json.dumps(
    {"success": False, "error": "Request headers are over 32 KiB", "code": "PAYLOAD_TOO_LARGE"}
).encode()
HEADERS_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
    + f"content-length: {len(_TOO_LARGE_BODY)}\r\nconnection: close\r\n\r\n".encode()
    + _TOO_LARGE_BODY
)


# How uvicorn speaks WebSocket. No permessage-deflate: Socket.IO frames here are a few hundred
# bytes (socket.io itself compresses nothing under 1 KB), yet each negotiated connection keeps
# a zlib compressor and decompressor, which doubled an idle socket's memory (81 → 44 KiB with
# Node's socket.io-client, which offers it). No WebSocket-level ping: Engine.IO's heartbeat
# (`socket_ping_interval_seconds`) already finds dead peers, and a second timer per socket
# only costs memory and wake-ups. uvicorn's websockets-sansio protocol (its default with
# websockets installed), holding less per connection (afterhours.transport).
WEBSOCKET_OPTIONS: dict[str, Any] = {
    "ws": transport.WebSocketProtocol,
    "ws_per_message_deflate": False,
    "ws_ping_interval": None,
}


class _TooLarge(Exception):
    pass


class BoundedHeaders(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering 431 and closing the connection once a request's
    line and headers pass MAX_HEADER_BYTES."""

    _header_bytes = 0
    _refused = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value))
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > MAX_HEADER_BYTES:
            if not self._refused:
                self._refused = True
                self.logger.info("headers_too_large client=%s", self.client)
                self.transport.write(HEADERS_TOO_LARGE)
                self.transport.close()
            raise _TooLarge  # stops the parser; it reaches send_400_response below

    def send_400_response(self, msg: str) -> None:
        if not self._refused:
            super().send_400_response(msg)

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)


def graceful_server(config: uvicorn.Config, engine: Any) -> uvicorn.Server:
    """A uvicorn server that, on SIGTERM/Ctrl-C, stops listening, drops every Engine.IO
    transport, then lets uvicorn finish the requests in flight (up to
    `timeout_graceful_shutdown`).

    A dropped transport is what clients reconnect after (to another process behind the balancer),
    and it ends long-polls at once. Engine.IO's own close packet would not do: clients take it as
    "the server sent me away" and stay disconnected."""

    class GracefulServer(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            for listener in self.servers:
                listener.close()
            for socket in list(engine.sockets.values()):
                # As engineio itself drops a transport: end its poll / websocket writer.
                await socket.queue.put(None)
                await socket.close(wait=False, abort=True)
            await super().shutdown(sockets)

    return GracefulServer(config)


class ProtocolLog:
    """The logger python-engineio and python-socketio write to. Malformed frames from a client
    (no auth needed) make them log a traceback each, about 1 KB of log per 2-byte frame; here
    each such error is one short line, at most one a second (the rest are counted in the next)."""

    def __init__(self, name: str, every: float = 1.0) -> None:
        self._log = logging.getLogger(name)
        self._every = every
        self._last = -every
        self._skipped = 0

    def exception(self, message: str, *args: Any, **_: Any) -> None:
        self.error(message, *args)

    def error(self, message: str, *args: Any, **_: Any) -> None:
        now = time.monotonic()
        if now - self._last < self._every:
            self._skipped += 1
            return
        error = sys.exc_info()[1]
        self._log.warning(
            "malformed_socket_traffic what=%r error=%s skipped=%d",
            (message % args if args else message)[:80],
            type(error).__name__ if error else "-",
            self._skipped,
        )
        self._last, self._skipped = now, 0

    warning = error

    def info(self, *_: Any, **__: Any) -> None:
        pass  # per-connection chatter

    debug = info


class SocketApp(socketio.ASGIApp):  # type: ignore[misc]
    """Socket.IO's ASGI app. An empty websocket frame's ValueError escapes engineio and would be
    uvicorn's traceback; it is one ProtocolLog line instead."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        except ValueError:
            if scope["type"] != "websocket":
                raise
            self.engineio_server.eio.logger.error("websocket frame")
