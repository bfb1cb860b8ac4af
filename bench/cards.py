"""Session start → cards. First, two people starting together at one place: from sending
both starts to both cards, less the start delay (the wait matching takes on purpose), with no
sweep in between. Then cards after an unrelated decline: how long two people who just started a
session wait for their match cards while, elsewhere, a pair has just declined (its follow-up
attempts are due `AFTERHOURS_MATCH_DELAY_DECLINE_SECONDS`, 30 s, later).

Ours: `afterhours serve` (worker in-process) with a 1 s start delay and a 1 s sweep; the time from
the second session start to both cards. Baseline: the target, start delay + one sweep (2 s). With
one procrastinate lock for all matching jobs (before) this was up to the whole decline delay.
"""

import asyncio
import random
import statistics
import time
import uuid
from typing import Any

import httpx
import socketio

from afterhours.auth import TokenVerifier
from afterhours.settings import Settings
from bench import common
from bench.common import Cpu, Report, afterhours_serve, progress, scratch_database

SECRET = "bench-" + "c" * 64
START_DELAY = 1.0
SWEEP = 1.0
REPEATS = 5


def repeats() -> int:
    return 2 if common.QUICK else REPEATS


PHONES: list[socketio.AsyncClient] = []


async def person(
    client: httpx.AsyncClient, base: str, verifier: TokenVerifier
) -> tuple[dict[str, str], asyncio.Queue[Any]]:
    user = uuid.uuid4()
    headers = {"Authorization": f"Bearer {verifier.issue(user, premium=True)}"}
    profile = {"name": "B", "birthDate": "1990-01-01", "gender": "nonbinary"}
    (await client.put("/api/profile", json=profile, headers=headers)).raise_for_status()
    about = {"description": ""}
    (await client.put("/api/after-hours/profile", json=about, headers=headers)).raise_for_status()
    cards: asyncio.Queue[Any] = asyncio.Queue()
    phone = socketio.AsyncClient()
    phone.on("after_hours:match", cards.put_nowait)
    token = headers["Authorization"].removeprefix("Bearer ")
    await phone.connect(base, auth={"token": token}, transports=["websocket"])
    PHONES.append(phone)
    return headers, cards


async def start(
    client: httpx.AsyncClient, headers: dict[str, str], place: tuple[float, float]
) -> None:
    body = {"duration": 60, "latitude": place[0], "longitude": place[1]}
    r = await client.post("/api/after-hours/session/start", json=body, headers=headers)
    r.raise_for_status()


async def one_round(client: httpx.AsyncClient, base: str, verifier: TokenVerifier) -> float:
    here = (random.uniform(-50, 50), random.uniform(-150, 150))
    elsewhere = (-here[0], here[1] + 20 if here[1] < 150 else here[1] - 20)
    (a, a_cards), (b, b_cards) = [await person(client, base, verifier) for _ in range(2)]
    await start(client, a, here)
    await start(client, b, here)
    card = await asyncio.wait_for(a_cards.get(), 30)
    await asyncio.wait_for(b_cards.get(), 30)
    r = await client.post(f"/api/after-hours/matches/{card['id']}/decline", headers=a)
    r.raise_for_status()
    (c, c_cards), (d, d_cards) = [await person(client, base, verifier) for _ in range(2)]
    await start(client, c, elsewhere)
    t0 = time.perf_counter()
    await start(client, d, elsewhere)
    await asyncio.wait_for(c_cards.get(), 60)
    await asyncio.wait_for(d_cards.get(), 60)
    return time.perf_counter() - t0


async def plain_round(client: httpx.AsyncClient, base: str, verifier: TokenVerifier) -> float:
    """Two people start at once at the same place: from sending both starts to both cards,
    less the start delay (matching waits that long on purpose)."""
    here = (random.uniform(-50, 50), random.uniform(-150, 150))
    (a, a_cards), (b, b_cards) = [await person(client, base, verifier) for _ in range(2)]
    t0 = time.perf_counter()
    await asyncio.gather(start(client, a, here), start(client, b, here))
    await asyncio.wait_for(a_cards.get(), 30)
    await asyncio.wait_for(b_cards.get(), 30)
    return time.perf_counter() - t0 - START_DELAY


async def drive(base: str, verifier: TokenVerifier, plain: bool) -> list[float]:
    one = plain_round if plain else one_round
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            return [await one(client, base, verifier) for _ in range(repeats())]
    finally:
        for phone in PHONES:
            await phone.disconnect()
        PHONES.clear()


def measure(plain: bool) -> tuple[list[float], Cpu]:
    """With `plain`, the sweep is put out of the way (every 300 s): the start's own attempt,
    START_DELAY after it, is what pairs them. Otherwise a 1 s sweep, as in the decline case."""
    verifier = TokenVerifier(Settings(jwt_secret=SECRET, _env_file=None))  # type: ignore[call-arg]
    with (
        scratch_database("cards") as url,
        afterhours_serve(
            url,
            SECRET,
            "/ready",
            match_delay_start_seconds=str(START_DELAY),
            match_sweep_seconds="300" if plain else str(SWEEP),
            worker_poll_seconds="0.1",
        ) as served,
        Cpu(ours=served.proc.pid) as cpu,
    ):
        return asyncio.run(drive(served.base, verifier, plain)), cpu


def run(report: Report) -> None:
    plain, cpu = measure(plain=True)
    times, decline_cpu = measure(plain=False)
    report.add(
        "matching",
        "session start → cards",
        f"start → both cards, less the {START_DELAY:.0f} s start delay (median of {len(plain)},"
        f" max {max(plain):.2f} s)",
        statistics.median(plain),
        None,
        "s",
        f"two people starting together, no sweep in between; worker poll 0.1 s; {cpu.summary()}",
        cpu.saturated(),
    )
    report.add(
        "matching",
        "cards after an unrelated decline",
        f"start → both cards (median of {len(times)}, max {max(times):.2f} s)",
        statistics.median(times),
        START_DELAY + SWEEP,
        "s",
        "baseline: the target, start delay + one sweep; decline delay 30 s",
        decline_cpu.saturated(),
    )
    progress(f"  start → cards less the delay: {', '.join(f'{t:.2f}' for t in plain)} s")
    progress(f"  cards after an unrelated decline: {', '.join(f'{t:.2f}' for t in times)} s")
