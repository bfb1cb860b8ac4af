"""Who has a live socket, on any serving process: the question push asks before waking a phone.

Each serving process has a row in `serving_processes`, refreshed every
`presence_heartbeat_seconds`, and one `socket_presence` row per user with at least one socket on
it. A process that dies (SIGKILL, a lost machine) stops refreshing its row; after three
heartbeats its users count as away, and the next live process's heartbeat deletes it, its users'
rows with it. A user is therefore never "online for ever": at worst, for three heartbeats.

The sockets are counted in memory, where connects and disconnects happen; one writer task per
process brings the table in line with that count, so rows are written in order, in batches, and
again after a database outage (a lost write is redone, not drifted from).
"""

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from afterhours import metrics
from afterhours.db import DATABASE_OUTAGE, Base, Database, execute_bulk

log = logging.getLogger("afterhours.presence")

MISSED_HEARTBEATS = 3  # a process silent for this many heartbeats is gone


class ServingProcess(Base):
    __tablename__ = "serving_processes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SocketPresence(Base):
    __tablename__ = "socket_presence"

    process_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("serving_processes.id", ondelete="CASCADE"), primary_key=True
    )
    # No foreign key: a socket may connect before the user's first REST call creates the row.
    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, index=True)
    sockets: Mapped[int] = mapped_column(Integer)


async def online(db: AsyncSession, user_ids: list[uuid.UUID], heartbeat: float) -> set[uuid.UUID]:
    """Those of `user_ids` with a live socket on a serving process that is itself alive."""
    if not user_ids:
        return set()
    rows = await execute_bulk(
        db,
        "SELECT DISTINCT p.user_id FROM socket_presence p"
        " JOIN serving_processes s ON s.id = p.process_id"
        " WHERE p.user_id = ANY(%(ids)b) AND s.seen_at > now() - make_interval(secs => %(age)s)",
        {"ids": list(set(user_ids)), "age": heartbeat * MISSED_HEARTBEATS},
    )
    return {user_id for (user_id,) in rows}


class Presence:
    """This serving process's sockets, per user, and the task that publishes them."""

    def __init__(self, database: Database, heartbeat: float) -> None:
        self.database = database
        self.heartbeat = heartbeat
        self.process_id = uuid.uuid4()
        self.sockets: Counter[uuid.UUID] = Counter()
        self._changed: set[uuid.UUID] = set()
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    def connected(self, user_id: uuid.UUID) -> None:
        self.sockets[user_id] += 1
        metrics.SOCKETS.inc()
        self._note(user_id)

    def disconnected(self, user_id: uuid.UUID) -> None:
        metrics.SOCKETS.dec()
        self.sockets[user_id] -= 1
        if self.sockets[user_id] <= 0:
            del self.sockets[user_id]
        self._note(user_id)

    def _note(self, user_id: uuid.UUID) -> None:
        self._changed.add(user_id)
        self._wake.set()

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_forever())

    async def stop(self) -> None:
        """Stop writing and take this process's rows away: its users are away at once."""
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        with contextlib.suppress(*DATABASE_OUTAGE):
            async with self.database.transaction() as db:
                await execute_bulk(
                    db, "DELETE FROM serving_processes WHERE id = %(id)s", {"id": self.process_id}
                )

    async def _write_forever(self) -> None:
        registered = False
        next_beat = 0.0
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_beat - loop.time()))
            self._wake.clear()
            try:
                if loop.time() >= next_beat or not registered:
                    registered = await self._beat(registered)
                    next_beat = loop.time() + self.heartbeat
                await self._write_changes()
            except Exception as exc:  # the writer must outlive any failure: it is retried
                if isinstance(exc, DATABASE_OUTAGE):
                    log.warning("presence_write_failed error=%s", type(exc).__name__)
                else:
                    log.exception("presence_write_failed")
                registered = False
                await asyncio.sleep(min(self.heartbeat, 1.0))

    async def _beat(self, registered: bool) -> bool:
        """Refresh this process's row (re-created, with every user, if it was taken for
        dead during an outage) and take away the processes that stopped beating."""
        async with self.database.transaction() as db:
            rows = await execute_bulk(
                db,
                "UPDATE serving_processes SET seen_at = now() WHERE id = %(id)s RETURNING id",
                {"id": self.process_id},
            )
            if not rows:
                if registered:
                    log.warning("presence_reregistered process=%s", self.process_id)
                await execute_bulk(
                    db,
                    "INSERT INTO serving_processes (id) VALUES (%(id)s)",
                    {"id": self.process_id},
                )
                self._changed |= set(self.sockets)
            gone = await execute_bulk(
                db,
                "DELETE FROM serving_processes"
                " WHERE seen_at < now() - make_interval(secs => %(age)s) RETURNING id",
                {"age": self.heartbeat * MISSED_HEARTBEATS},
            )
            for (process_id,) in gone:
                log.info("presence_process_gone process=%s", process_id)
        return True

    async def _write_changes(self) -> None:
        changed, self._changed = self._changed, set()
        if not changed:
            return
        here = [user for user in changed if user in self.sockets]
        away = [user for user in changed if user not in self.sockets]
        try:
            async with self.database.transaction() as db:
                if here:
                    await execute_bulk(
                        db,
                        "INSERT INTO socket_presence (process_id, user_id, sockets)"
                        " SELECT %(process)s, u, n FROM unnest(%(users)b::uuid[],"
                        " %(counts)b::int[]) AS t(u, n)"
                        " ON CONFLICT (process_id, user_id)"
                        " DO UPDATE SET sockets = EXCLUDED.sockets",
                        {
                            "process": self.process_id,
                            "users": here,
                            "counts": [self.sockets[user] for user in here],
                        },
                    )
                if away:
                    await execute_bulk(
                        db,
                        "DELETE FROM socket_presence"
                        " WHERE process_id = %(process)s AND user_id = ANY(%(users)b)",
                        {"process": self.process_id, "users": away},
                    )
        except BaseException:
            self._changed |= changed  # written next time round
            raise
