"""Presence: the table says who has a live socket on which serving process, within moments of
a connect or a disconnect, and a process that stops takes its users' rows with it."""

import asyncio
from collections.abc import Callable
from pathlib import Path

from afterhours.settings import Settings
from tests.support.chat import Sql
from tests.support.clients import User, socket_of
from tests.support.processes import serve_process
from tests.support.waiting import until


async def sockets_of(sql: Sql, user: User) -> list[int]:
    rows = await sql("SELECT sockets FROM socket_presence WHERE user_id = %s", user.id)
    return [count for (count,) in rows]


async def counted(sql: Sql, user: User, expected: list[int]) -> None:
    async def done() -> bool:
        return await sockets_of(sql, user) == expected

    await until(done, within=5)


async def test_sockets_are_counted_per_user_and_the_last_disconnect_clears_the_row(
    base_url: str, make_user: Callable[..., User], sql: Sql
) -> None:
    user = make_user()
    first = await socket_of(base_url, user)
    await counted(sql, user, [1])
    second = await socket_of(base_url, user)
    await counted(sql, user, [2])
    await first.client.disconnect()
    await counted(sql, user, [1])
    await second.client.disconnect()
    await counted(sql, user, [])


async def test_a_process_that_stops_takes_its_users_rows_away(
    base_settings: Settings, make_user: Callable[..., User], sql: Sql, tmp_path: Path
) -> None:
    user = make_user()
    settings = base_settings.model_copy(update={"data_dir": tmp_path})
    async with serve_process(settings, with_worker=False) as (proc, base):
        phone = await socket_of(base, user)
        await counted(sql, user, [1])
        proc.terminate()  # a clean stop (uvicorn then ends by its own SIGTERM: -15)
        await asyncio.wait_for(proc.wait(), 30)
    await counted(sql, user, [])
    await phone.client.disconnect()
