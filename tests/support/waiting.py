"""Waiting for a state the service reaches in its own time (a job, a heartbeat), with a bound."""

import asyncio
from collections.abc import Awaitable, Callable


async def until(
    check: Callable[[], Awaitable[bool]], *, within: float, every: float = 0.05
) -> None:
    """Until `check()` is true; TimeoutError after `within` seconds."""
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(every)
