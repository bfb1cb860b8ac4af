"""Socket.IO fan-out between processes on PostgreSQL LISTEN/NOTIFY (no Redis needed)."""

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, NamedTuple

import psycopg
import socketio
from engineio import packet as eio_packet
from pydantic_core import from_json, to_json
from socketio.async_pubsub_manager import AsyncPubSubManager
from sqlalchemy.ext.asyncio import AsyncSession

from afterhours.db import execute_bulk, psycopg_conninfo

log = logging.getLogger("afterhours.realtime")

NOTIFY_CHANNEL = "afterhours_socketio"
NOTIFY_LIMIT_BYTES = 7900  # PostgreSQL refuses NOTIFY payloads of 8000 bytes and more


class Emit(NamedTuple):
    """One emit, encoded (PostgresManager.encode_emit)."""

    room: str
    message: bytes  # for the other processes, by NOTIFY
    packet: eio_packet.Packet  # for this process's sockets in `room`


class CompactJson:
    """The JSON of Socket.IO packets and pub/sub messages: compact UTF-8 (a 1,000-character
    message stays under NOTIFY's limit, where \\u escapes would not), encoded in Rust by
    pydantic-core, several times faster than the standard library on the hot path of chat."""

    @staticmethod
    def dumps(data: Any, **_options: Any) -> str:  # stdlib options: the output is compact
        return to_json(data).decode()

    @staticmethod
    def loads(data: str | bytes) -> Any:
        return from_json(data)


class ClosingRoomDisconnects:
    """Closing a room disconnects its sockets, on every process: how a ban reaches a user's
    sockets wherever they are. Socket.IO's messages between processes can disconnect one socket
    by its sid, which only its own process knows, or close a room, which by itself only empties
    it; the service closes rooms for nothing else."""

    async def _handle_close_room(self, message: dict[str, Any]) -> None:
        server = getattr(self, "server", None)  # a write-only manager has no sockets
        namespace = message.get("namespace") or "/"
        if server is not None:
            for sid, _ in list(self.get_participants(namespace, message.get("room"))):  # type: ignore[attr-defined]
                await server.disconnect(sid, namespace=namespace, ignore_queue=True)
        await super()._handle_close_room(message)  # type: ignore[misc]


class RedisManager(ClosingRoomDisconnects, socketio.AsyncRedisManager):  # type: ignore[misc]
    pass


class PostgresManager(ClosingRoomDisconnects, AsyncPubSubManager):  # type: ignore[misc]
    """A Socket.IO client manager that fans out through PostgreSQL LISTEN/NOTIFY."""

    name = "postgres"

    def __init__(self, url: str, *, channel: str = NOTIFY_CHANNEL, write_only: bool = False):
        super().__init__(channel=channel, write_only=write_only, json=CompactJson)
        self.conninfo = psycopg_conninfo(url)
        self._host_json = to_json(self.host_id)
        self._publisher: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()

    def encode_emit(self, event: str, data: dict[str, Any], room: str) -> "Emit":
        """An emit to `room`, encoded once: its pub/sub message (AsyncPubSubManager.emit's form)
        and the Socket.IO packet this process's sockets get. The payload's JSON is made once
        and spliced into both."""
        name, body = self._name_json(event), to_json(data)
        message = (
            b'{"method":"emit","event":%s,"data":[%s],"binary":false,"namespace":"/",'
            b'"room":%s,"skip_sid":null,"callback":null,"host_id":%s}'
        ) % (name, body, to_json(room), self._host_json)
        # A Socket.IO EVENT packet on the default namespace: "2" and its JSON arguments.
        packet_text = b"2[%s,%s]" % (name, body)
        return Emit(room, message, eio_packet.Packet(eio_packet.MESSAGE, packet_text.decode()))

    @staticmethod
    @functools.cache
    def _name_json(event: str) -> bytes:
        return to_json(event)

    def close_message(self, room: str) -> dict[str, Any]:
        """The pub/sub form of close_room."""
        return {"method": "close_room", "room": room, "namespace": "/", "host_id": self.host_id}

    async def notify_within(
        self, db: AsyncSession, emits: list["Emit"], closed_rooms: Sequence[str] = ()
    ) -> None:
        """NOTIFY every emit and room closing inside `db`'s transaction: packed as JSON arrays
        of up to NOTIFY's size limit, in one statement (a sweep sends thousands). A pack starts
        with this host's id, so its own listener skips it unread (deliver_here has sent it)."""
        messages = [emit.message for emit in emits]
        messages += [to_json(self.close_message(room)) for room in closed_rooms]
        chunks: list[str] = []
        batch: list[bytes] = []
        head = len(self.host_id) + 3  # "<host id> [" … "]"
        size = head
        for encoded in messages:
            length = len(encoded) + 1
            if length + head > NOTIFY_LIMIT_BYTES:
                # Too big for NOTIFY: other processes' sockets learn of it by seq on replay.
                log.error("notify_payload_too_large bytes=%d", len(encoded))
                continue
            if size + length > NOTIFY_LIMIT_BYTES:
                chunks.append(self._pack(batch))
                batch, size = [], head
            batch.append(encoded)
            size += length
        if batch:
            chunks.append(self._pack(batch))
        if chunks:
            await execute_bulk(
                db,
                "SELECT pg_notify(%(channel)s, p) FROM unnest(%(chunks)b::text[]) AS p",
                {"channel": self.channel, "chunks": chunks},
            )

    def _pack(self, messages: list[bytes]) -> str:
        return f"{self.host_id} [{b','.join(messages).decode()}]"

    async def deliver_here(self, emits: list["Emit"], closed_rooms: Sequence[str] = ()) -> None:
        """Deliver to this process's own sockets (its listener skips its own NOTIFYs).

        Each packet, encoded once, is queued on each recipient socket in turn: the same as
        AsyncManager.emit minus its encoding and its task per recipient, which chat pays on
        every message."""
        for emit in emits:
            try:
                for _, eio_sid in self.get_participants("/", emit.room):
                    await self.server.eio.send_packet(eio_sid, emit.packet)
            except Exception:  # the event is stored; the client catches up by seq
                log.exception("emit_failed room=%s", emit.room)
        for room in closed_rooms:
            await self._handle_close_room(self.close_message(room))

    async def _publish(self, data: Any) -> None:
        payload = self.json.dumps(data)
        if len(payload.encode()) > NOTIFY_LIMIT_BYTES:
            log.error("notify_payload_too_large bytes=%d", len(payload.encode()))
            return
        async with self._lock:
            for attempt in range(2):
                try:
                    if self._publisher is None or self._publisher.closed:
                        self._publisher = await psycopg.AsyncConnection.connect(
                            self.conninfo, autocommit=True
                        )
                    await self._publisher.execute(
                        "SELECT pg_notify(%s, %s)", (self.channel, payload)
                    )
                    return
                except psycopg.OperationalError:
                    self._publisher = None
                    if attempt:
                        raise

    async def _listen(self) -> AsyncIterator[str | dict[str, Any]]:
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.conninfo, autocommit=True
                ) as conn:
                    await conn.execute(f'LISTEN "{self.channel}"')
                    delay = 0.5
                    async for notify in conn.notifies():
                        if notify.payload.startswith("{"):  # one message (_publish)
                            yield notify.payload
                            continue
                        # A transaction's events, packed by notify_within
                        sender, _, pack = notify.payload.partition(" ")
                        if sender != self.host_id:
                            for message in self.json.loads(pack):
                                yield message
            except psycopg.OperationalError:
                log.warning("notify_listener_reconnecting delay=%.1f", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
