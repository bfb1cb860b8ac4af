"""A push gateway of the test's own: a real HTTP server that records each call and answers
from a script (a status, or "hang" to answer only after the caller's timeout)."""

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.support.server import serving

SECRET = "gateway-secret-" + "s" * 40


@dataclass
class Call:
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.raw)
        return parsed

    def signed_correctly(self, secret: str = SECRET) -> bool:
        """The check docs/events.md asks of a gateway: HMAC of `<timestamp>.<body>`."""
        timestamp = self.headers["x-afterhours-timestamp"]
        expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + self.raw, hashlib.sha256)
        given = self.headers["x-afterhours-signature"]
        return hmac.compare_digest(given, "sha256=" + expected.hexdigest())


@dataclass
class Gateway:
    url: str = ""
    script: list[int | str] = field(default_factory=list)  # then 200 for ever
    calls: list[Call] = field(default_factory=list)
    hang_seconds: float = 5.0
    # Run as the first call arrives, before it is answered (a fault test stops the database).
    on_first_call: Callable[[], Awaitable[None]] | None = None
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def for_user(self, user_id: Any) -> list[Call]:
        return [call for call in self.calls if call.body["userId"] == str(user_id)]

    async def wait_for(self, user_id: Any, count: int = 1, within: float = 20) -> list[Call]:
        """Until `count` calls for `user_id` have arrived; returns them all."""
        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(lambda: len(self.for_user(user_id)) >= count)
        return self.for_user(user_id)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        raw = b""
        more = True
        while more:
            message = await receive()
            raw += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        answer = self.script.pop(0) if self.script else 200
        async with self._arrived:
            self.calls.append(Call(headers, raw))
            self._arrived.notify_all()
        if len(self.calls) == 1 and self.on_first_call is not None:
            await self.on_first_call()
        if answer == "hang":
            await asyncio.sleep(self.hang_seconds)
            answer = 200
        assert isinstance(answer, int)
        await send({"type": "http.response.start", "status": answer, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@asynccontextmanager
async def push_gateway() -> AsyncIterator[Gateway]:
    gateway = Gateway()
    async with serving(gateway) as base:
        gateway.url = f"{base}/push"
        yield gateway
