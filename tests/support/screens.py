"""Screens as an operator would plug one in (AFTERHOURS_MESSAGE_SCREEN=module:function)."""

import asyncio


def shouting(content: str) -> str | None:
    letters = [c for c in content if c.isalpha()]
    return "shouting" if len(letters) > 10 and all(c.isupper() for c in letters) else None


async def slow_and_careful(content: str) -> str | None:
    await asyncio.sleep(0.01)  # a classifier's round trip
    return None
