"""An open chat between a matched pair, sending over its socket, and its rows in the database."""

from collections.abc import Awaitable, Callable
from typing import Any

from tests.support.clients import Recorder
from tests.support.matching import Pair

Chat = Pair
MakeChat = Callable[..., Awaitable[Chat]]
Sql = Callable[..., Awaitable[list[Any]]]


async def send(recorder: Recorder, match_id: str, content: str, **extra: Any) -> dict[str, Any]:
    """after_hours:send_message over the socket; returns the ack."""
    ack: dict[str, Any] = await recorder.client.call(
        "after_hours:send_message", {"matchId": match_id, "content": content, **extra}, timeout=10
    )
    return ack


async def chat_rows(sql: Sql, match_id: str) -> tuple[int, int, int]:
    """(match rows, participant rows, message rows) of one match."""
    [(matches, people, messages)] = await sql(
        "SELECT (SELECT count(*) FROM after_hours_matches WHERE id = %(m)s),"
        " (SELECT count(*) FROM after_hours_match_participants WHERE match_id = %(m)s),"
        " (SELECT count(*) FROM after_hours_messages WHERE match_id = %(m)s)",
        {"m": match_id},
    )
    return matches, people, messages
