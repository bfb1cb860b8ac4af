"""Socket sends share transactions: one commit for every message that arrived meanwhile.

A message's own work in the database is small; the transaction around it (pool checkout, a
round trip per statement, the commit's flush to disk) is most of its cost. So sends that
arrive while the writers are busy wait, and go together in the next transaction: a message to a
quiet server goes at once, alone, and under load up to MAX_BATCH share one commit. Each still
succeeds or fails on its own (service.store_messages), and nothing is acknowledged before the
transaction holding it commits.
"""

import asyncio
import contextvars
import logging
from collections import deque

from afterhours.chat import service
from afterhours.chat.schemas import MessageWire
from afterhours.chat.screening import Screen
from afterhours.db import Database
from afterhours.limits import Limiter

log = logging.getLogger("afterhours.chat")

# Two transactions in flight: one being built while the other waits on the database.
WRITERS = 2
MAX_BATCH = 200

Waiting = tuple[service.Send, asyncio.Future[MessageWire | Exception]]


class MessageWriter:
    def __init__(
        self,
        database: Database,
        *,
        limiter: Limiter,
        screen: Screen,
        writers: int = WRITERS,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.database = database
        self.limiter = limiter
        self.screen = screen
        self.writers = writers
        self.max_batch = max_batch
        self.waiting: deque[Waiting] = deque()
        self.busy = 0  # writers at work; counted by hand, as a finished task's callback lags
        self.tasks: set[asyncio.Task[None]] = set()

    async def send(self, send: service.Send) -> MessageWire:
        """Screen, store and send one message; raises its AppError (or the database's error,
        should its transaction fail alone)."""
        send = await service.screened(send, self.screen)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[MessageWire | Exception] = loop.create_future()
        self.waiting.append((send, future))
        if self.busy < self.writers:
            self.busy += 1
            # A fresh context: the batch is every waiting sender's, not this event's (its id).
            task = loop.create_task(self._write(), context=contextvars.Context())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        # A sender that goes away mid-write cancels only its own wait (its future), never the
        # others' transaction, which runs in the writer's task; _write skips a cancelled future.
        result = await future
        if isinstance(result, Exception):
            raise result
        return result

    async def _write(self) -> None:
        try:
            while self.waiting:
                size = min(len(self.waiting), self.max_batch)
                batch = [self.waiting.popleft() for _ in range(size)]
                results = await self._store([send for send, _ in batch])
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():  # done: its sender went away (cancelled)
                        future.set_result(result)
        finally:
            self.busy -= 1

    async def _store(self, sends: list[service.Send]) -> list[MessageWire | Exception]:
        try:
            async with self.database.transaction() as db:
                return list(await service.store_messages(db, sends, limiter=self.limiter))
        except Exception as exc:
            if len(sends) == 1:
                return [exc]
            # Not one message's fault (each one's own errors are returned, not raised): the
            # database failed this transaction. Try each alone, so a failure stays with its own.
            log.exception("message_batch_failed size=%d", len(sends))
            return [(await self._store([send]))[0] for send in sends]
