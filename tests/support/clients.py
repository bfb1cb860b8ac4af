"""Who calls the app in a test: a user with a token, a recording socket, the error envelope."""

import asyncio
import uuid
from typing import Any

import httpx
import socketio

from afterhours.auth import TokenVerifier


class User:
    """A test user with a fresh id (or the one given) and the headers that authenticate them."""

    def __init__(
        self,
        verifier: TokenVerifier,
        *,
        premium: bool,
        admin: bool = False,
        user_id: uuid.UUID | None = None,
    ) -> None:
        self.id = user_id or uuid.uuid4()
        self.token = verifier.issue(self.id, premium=premium, admin=admin)
        self.headers = {"Authorization": f"Bearer {self.token}"}
        self.place: tuple[float, float] | None = None  # where their sessions start


class Recorder:
    """A real Socket.IO client that records every event it receives, in order."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self._arrived = asyncio.Condition()

        @self.client.on("*")
        async def any_event(event: str, data: Any) -> None:
            async with self._arrived:
                self.events.append((event, data))
                self._arrived.notify_all()

    def named(self, event: str) -> list[Any]:
        return [data for name, data in self.events if name == event]

    async def wait_for(self, event: str, *, within: float = 10.0, count: int = 1) -> Any:
        """The `count`-th payload of `event`, waiting up to `within` seconds for it."""
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.named(event)) >= count), within
            )
        return self.named(event)[count - 1]


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is False
    assert body["code"] == code
    assert isinstance(body["error"], str) and body["error"]
    return body


async def socket_of(base_url: str, user: User) -> Recorder:
    """A recording socket of `user`, connected to the server at `base_url` (disconnect it)."""
    recorder = Recorder()
    await recorder.client.connect(
        base_url, auth={"token": user.token}, transports=["websocket"], wait_timeout=5
    )
    return recorder
