"""Server→client events: the event log, the outbox that sends them, cross-process fan-out.
The Socket.IO server and its handlers are afterhours.sockets.

Every server→client event is written to `user_events` with the user's next `seq` inside the
transaction that caused it, and sent only after that transaction commits. A client that was
away asks for what it missed (`lastSeq` at connect, or `GET /api/after-hours/events`).
"""

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar, NamedTuple

import redis.asyncio
import socketio
from pydantic_core import to_json
from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    String,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from afterhours import metrics
from afterhours.db import (
    Base,
    after_commit,
    execute_bulk,
    raw_connection,
    stage_events,
)
from afterhours.pubsub import PostgresManager, RedisManager
from afterhours.schemas import WireModel
from afterhours.settings import Settings

log = logging.getLogger("afterhours.realtime")


class UserEvent(Base):
    __tablename__ = "user_events"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )


class ServerEvent(WireModel):
    """A server→client event; subclasses name the Socket.IO event they are sent as."""

    name: ClassVar[str]


def room(user_id: uuid.UUID | str) -> str:
    return f"user:{user_id}"


Staged = list[tuple[uuid.UUID, str, dict[str, Any]]]  # (user, event name, payload with seq)
ADMINS = "admins"  # the room every moderator's socket joins (the console's live queue)


class Broadcast(NamedTuple):
    """An event for a room rather than a user: neither numbered nor stored, so a client that
    was away reloads what it shows instead of replaying (the console's queue)."""

    room: str
    name: str
    data: dict[str, Any]


# Staged under this name, a user is turned away: their sockets on every process disconnected.
TURN_AWAY = "afterhours:turn_away"
# What reacts to a transaction's events inside it, just before it commits (push, for users
# away from every socket); wired in afterhours.wiring.
EventReaction = Callable[[AsyncSession, Staged], Awaitable[None]]


class Emitter:
    """The outbox of every transaction (db.Database): sends its recorded events through the
    process's Socket.IO client manager.

    On PostgreSQL fan-out the events ride the transaction itself: NOTIFY is transactional, so
    other processes hear of them exactly when (and only if) it commits, and this process
    delivers to its own sockets right after commit, with no round trip. Other managers
    (Redis) publish after commit.
    """

    def __init__(
        self, manager: Any, *, has_sockets: bool, reactions: Sequence[EventReaction] = ()
    ) -> None:
        self.manager = manager
        self.has_sockets = has_sockets
        self.reactions = reactions

    async def stage(self, db: AsyncSession, staged: list[Any]) -> None:
        broadcasts = [event for event in staged if isinstance(event, Broadcast)]
        turned_away = [event[0] for event in staged if event[1] == TURN_AWAY]
        if broadcasts or turned_away:
            staged = [e for e in staged if not isinstance(e, Broadcast) and e[1] != TURN_AWAY]
        for react in self.reactions:
            await react(db, staged)
        for name, count in Counter(name for _, name, _ in staged).items():
            metrics.count_on_commit(db, metrics.EVENTS_FANNED_OUT.labels(name), count)
        to_rooms = [(room(to), name, data) for to, name, data in staged] + broadcasts
        if isinstance(self.manager, PostgresManager):
            # Each event encoded once, for the NOTIFY and for this process's sockets alike.
            emits = [self.manager.encode_emit(name, data, to) for to, name, data in to_rooms]
            closed = [room(to) for to in turned_away]
            await self.manager.notify_within(db, emits, closed)
            if self.has_sockets:
                after_commit(db, lambda: self.manager.deliver_here(emits, closed))
        else:
            after_commit(db, lambda: self._publish(to_rooms, turned_away))

    async def _publish(
        self, to_rooms: list[tuple[str, str, dict[str, Any]]], turned_away: list[uuid.UUID]
    ) -> None:
        for to in turned_away:
            try:
                await self.manager.close_room(room(to), namespace="/")
            except Exception:  # the ban holds at the next connect and on every request
                log.exception("turn_away_failed user_id=%s", to)
        for to_room, name, data in to_rooms:
            try:
                await self.manager.emit(name, data, namespace="/", room=to_room)
            except Exception:  # the event is stored; the client catches up by seq
                log.exception("emit_failed event=%s room=%s", name, to_room)


def to_admins(db: AsyncSession, name: str, data: dict[str, Any]) -> None:
    """Send `name` to every connected moderator once `db` commits (not stored: see Broadcast)."""
    stage_events(db, [Broadcast(ADMINS, name, data)])


def turn_away(db: AsyncSession, user_id: uuid.UUID) -> None:
    """Disconnect every socket of the user, on every process, once `db` commits (a ban)."""
    stage_events(db, [(user_id, TURN_AWAY, {})])


async def emit(db: AsyncSession, user_id: uuid.UUID, event: ServerEvent) -> int | None:
    """Record `event` for `user_id`, sent once `db` commits; returns its seq (None: no user)."""
    return (await emit_many(db, [(user_id, event)]))[0]


async def emit_many(
    db: AsyncSession, events: list[tuple[uuid.UUID, ServerEvent]]
) -> list[int | None]:
    """Record each (recipient, event) with the recipient's next seqs, in two statements."""
    return await emit_payloads(
        db,
        [(user_id, e.name, e.model_dump(mode="json", by_alias=True)) for user_id, e in events],
    )


async def emit_payloads(
    db: AsyncSession, events: list[tuple[uuid.UUID, str, dict[str, Any]]]
) -> list[int | None]:
    """emit_many for payloads already in wire form (a sweep's thousands of match cards, a chat
    batch's messages, built without a model each; tests hold them to their event model).

    Chat runs this for every message, so it is written for its cost per event: users are keyed
    by their UUID's integer (UUID's hash and comparisons are Python code), and a payload sent to
    several users (a message, to both sides) is encoded once."""
    if not events:
        return []
    keys = [user_id.int for user_id, _, _ in events]
    counts = Counter(keys)
    users = dict(zip(keys, [user_id for user_id, _, _ in events], strict=True))
    order = list(users)
    # Recipients are locked in one order (the CTE), so concurrent emitters queue, not deadlock;
    # the row lock also keeps each user's seq in commit order.
    bumped = await execute_bulk(
        db,
        "WITH locked AS (SELECT id FROM users WHERE id = ANY(%(ids)b) ORDER BY id FOR UPDATE)"
        " UPDATE users SET event_seq = users.event_seq + t.n"
        " FROM locked, unnest(%(ids)b::uuid[], %(counts)b::bigint[]) WITH ORDINALITY AS t(id, n, i)"
        " WHERE users.id = locked.id AND users.id = t.id"
        " RETURNING t.i, users.event_seq",
        {"ids": [users[k] for k in order], "counts": [counts[k] for k in order]},
    )
    next_seq = {order[i - 1]: last - counts[order[i - 1]] + 1 for i, last in bumped}
    encoded: dict[int, str] = {}  # id(payload) → its JSON
    rows: list[tuple[uuid.UUID, int, str, str]] = []
    seqs: list[int | None] = []
    staged: Staged = []
    for key, (user_id, name, data) in zip(keys, events, strict=True):
        seq = next_seq.get(key)
        seqs.append(seq)
        if seq is None:
            continue  # the user is gone
        next_seq[key] = seq + 1
        body = encoded.get(id(data))
        if body is None:
            body = encoded[id(data)] = to_json(data).decode()
        rows.append((user_id, seq, name, body))
        staged.append((user_id, name, {**data, "seq": seq}))
    await _store(db, rows)
    stage_events(db, staged)
    return seqs


COPY_FROM = 64  # rows; below this one INSERT beats COPY's extra round trips


async def _store(db: AsyncSession, rows: list[tuple[uuid.UUID, int, str, str]]) -> None:
    if not rows:
        return
    if len(rows) < COPY_FROM:
        users, seqs, names, payloads = (list(column) for column in zip(*rows, strict=True))
        await execute_bulk(
            db,
            "INSERT INTO user_events (user_id, seq, event, data) SELECT * FROM unnest(%(users)b"
            "::uuid[], %(seqs)b::bigint[], %(names)b::text[], %(payloads)b::text[]::jsonb[])",
            {"users": users, "seqs": seqs, "names": names, "payloads": payloads},
        )
        return
    # COPY on our own transaction's connection: a sweep writes thousands of events at once.
    # Text format: tab-separated, and a backslash in the JSON must be doubled.
    lines = "".join(
        f"{user_id}\t{seq}\t{name}\t{payload.replace(chr(92), chr(92) * 2)}\n"
        for user_id, seq, name, payload in rows
    )
    connection = await raw_connection(db)
    async with connection.cursor().copy(
        "COPY user_events (user_id, seq, event, data) FROM STDIN"
    ) as copy:
        await copy.write(lines)


async def events_after(
    db: AsyncSession, *, user_id: uuid.UUID, after: int, limit: int
) -> list[UserEvent]:
    rows = await db.scalars(
        select(UserEvent)
        .where(UserEvent.user_id == user_id, UserEvent.seq > after)
        .order_by(UserEvent.seq)
        .limit(limit)
    )
    return list(rows)


# --- cross-process fan-out -----------------------------------------------------------------


def client_manager(settings: Settings, url: str, *, write_only: bool = False) -> Any:
    if settings.redis_url:
        # Its own logger: a lost Redis is logged as such ("Cannot publish to redis... giving
        # up"), never quietened like malformed client traffic.
        return RedisManager(
            settings.redis_url, write_only=write_only, logger=logging.getLogger("afterhours.fanout")
        )
    return PostgresManager(url, write_only=write_only)


async def fan_out_problem(settings: Settings) -> str | None:
    """Why events may not reach sockets on other processes live, if they may not. NOTIFY rides
    the database (checked on its own); Redis is pinged."""
    if not settings.redis_url:
        return None
    client = redis.asyncio.Redis.from_url(
        settings.redis_url, socket_timeout=1, socket_connect_timeout=1
    )
    try:
        await client.ping()
    except Exception as exc:  # any failure means no live fan-out, reported as such
        log.warning("redis_unreachable error=%s", type(exc).__name__)
        return "redis unreachable: events reach sockets on other processes only on resume"
    finally:
        await client.aclose()
    return None


async def stop_listening(sio: socketio.AsyncServer) -> None:
    """Stop the client manager's fan-out listener (it would otherwise outlive the app)."""
    listener = getattr(sio.manager, "thread", None)
    if isinstance(listener, asyncio.Task):
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener


def external_emitter(settings: Settings, reactions: Sequence[EventReaction] = ()) -> Emitter:
    """For a process without sockets (a standalone worker): publish only."""
    assert settings.database_url
    manager = client_manager(settings, settings.database_url, write_only=True)
    return Emitter(manager, has_sockets=False, reactions=reactions)
