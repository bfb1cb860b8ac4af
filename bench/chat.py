"""Chat round trip: 1,000 sockets, 500 active chats, one serving process.

Ours: `afterhours serve` (its worker in-process) on a scratch database; every message is
validated, stored and written to both participants' event logs before it is acknowledged.
Baseline: a bare Node.js socket.io relay (bench/node_relay) taking the same traffic and storing
nothing. The same Python Socket.IO clients drive both, in two phases:

- paced: each chat sends one message every PACE seconds (starts spread over the first PACE),
  PACED_PER_CHAT in all: 500 chats at 100 messages/s. We time send→ack and send→the other
  participant's `after_hours:message` (p50, p99).
- burst: in every chat the other side sends BURST_PER_CHAT messages back to back, all chats at
  once: messages per second the server sustains.
"""

import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from typing import Any

import psycopg
import socketio

from afterhours.auth import TokenVerifier
from afterhours.cli import tune_gc
from afterhours.settings import Settings
from bench.common import ROOT, Report, afterhours_serve, free_port, scratch_database, wait_http

USERS = 1_000
CHATS = USERS // 2
PACE = 5.0
PACED_PER_CHAT = 4
BURST_PER_CHAT = 10
SECRET = "bench-" + "s" * 64
RELAY = ROOT / "bench" / "node_relay"


def populate(url: str) -> list[tuple[str, str, str]]:
    """USERS users, each in a session, in CHATS active matches; returns (match id, sender,
    receiver)."""
    chats = [(str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())) for _ in range(CHATS)]
    with psycopg.connect(url) as conn:
        users = [(u,) for _, a, b in chats for u in (a, b)]
        conn.cursor().executemany("INSERT INTO users (id) VALUES (%s)", users)
        # A chat is open only while both sessions last: these outlast the run.
        conn.cursor().executemany(
            "INSERT INTO after_hours_sessions (id, user_id, started_at, expires_at,"
            " duration_minutes, exact_lat, exact_lon, fuzzed_lat, fuzzed_lon)"
            " VALUES (%s, %s, now(), now() + interval '1 hour', 60, 0, 0, 0, 0)",
            [(u, u) for (u,) in users],  # each session's id is its user's, for the join below
        )
        conn.cursor().executemany(
            "INSERT INTO after_hours_matches (id, status, created_at, auto_decline_at, distance_km)"
            " VALUES (%s, 'active', now(), now(), 1)",
            [(m,) for m, _, _ in chats],
        )
        conn.cursor().executemany(
            "INSERT INTO after_hours_match_participants (match_id, user_id, session_id,"
            " is_open, accepted_at) VALUES (%s, %s, %s, true, now())",
            [(m, u, u) for m, a, b in chats for u in (a, b)],
        )
    return chats


async def drive(
    url: str, auth_of: dict[str, dict[str, str]], chats: list[tuple[str, str, str]]
) -> dict[str, Any]:
    """Connect everyone, run both phases, return latencies (ms) and burst throughput."""
    clients: dict[str, socketio.AsyncClient] = {}
    sent_at: dict[str, float] = {}
    delivered: dict[str, float] = {}

    def make(me: str) -> socketio.AsyncClient:
        client = socketio.AsyncClient(reconnection=False)

        @client.on("after_hours:message")
        async def on_message(message: dict[str, Any]) -> None:
            key = message.get("clientMessageId")
            if key in sent_at and key not in delivered and message["senderId"] != me:
                delivered[key] = time.perf_counter()

        return client

    users = list(auth_of)
    for start in range(0, len(users), 100):
        batch = users[start : start + 100]
        for user in batch:
            clients[user] = make(user)
        await asyncio.gather(
            *(
                clients[u].connect(url, auth=auth_of[u], transports=["websocket"], wait_timeout=30)
                for u in batch
            )
        )

    acks: list[float] = []
    failures: list[Any] = []

    async def send(match_id: str, sender: str, key: str) -> None:
        sent_at[key] = t0 = time.perf_counter()
        ack = await clients[sender].call(
            "after_hours:send_message",
            {"matchId": match_id, "content": f"hello {key}", "clientMessageId": key},
            timeout=120,
        )
        acks.append((time.perf_counter() - t0) * 1000)
        if not ack.get("ok"):
            failures.append(ack)

    async def paced(match_id: str, sender: str, offset: float) -> None:
        await asyncio.sleep(offset)
        for n in range(PACED_PER_CHAT):
            started = time.perf_counter()
            await send(match_id, sender, f"{match_id}:paced:{n}")
            await asyncio.sleep(max(0.0, PACE - (time.perf_counter() - started)))

    async def burst(match_id: str, sender: str) -> None:
        for n in range(BURST_PER_CHAT):
            await send(match_id, sender, f"{match_id}:burst:{n}")

    async def arrived(keys: set[str]) -> None:
        while not keys <= delivered.keys():  # noqa: ASYNC110 (socket callbacks fill it)
            await asyncio.sleep(0.05)

    rng = random.Random(7)
    await asyncio.gather(*(paced(m, a, rng.uniform(0, PACE)) for m, a, _ in chats))
    paced_keys = {k for k in sent_at if ":paced:" in k}
    await asyncio.wait_for(arrived(paced_keys), 60)
    paced_acks = list(acks)
    paced_deliveries = [(delivered[k] - sent_at[k]) * 1000 for k in paced_keys]

    start = time.perf_counter()
    await asyncio.gather(*(burst(m, b) for m, _, b in chats))
    burst_keys = {k for k in sent_at if ":burst:" in k}
    await asyncio.wait_for(arrived(burst_keys), 120)
    elapsed = time.perf_counter() - start
    await asyncio.gather(*(c.disconnect() for c in clients.values()))
    if failures:
        raise RuntimeError(f"{len(failures)} sends failed, first: {failures[0]}")
    return {
        "acks": paced_acks,
        "deliveries": paced_deliveries,
        "rate": len(burst_keys) / elapsed,
    }


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def run_ours(url: str, chats: list[tuple[str, str, str]]) -> dict[str, Any]:
    verifier = TokenVerifier(Settings(jwt_secret=SECRET, _env_file=None))  # type: ignore[call-arg]
    users = [u for _, a, b in chats for u in (a, b)]
    auth = {u: {"token": verifier.issue(uuid.UUID(u), premium=True)} for u in users}
    with afterhours_serve(url, SECRET, "/health") as base:
        return asyncio.run(drive(base, auth, chats))


def run_relay(chats: list[tuple[str, str, str]]) -> dict[str, Any] | None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        print("  node/npm not found: no baseline", flush=True)
        return None
    if not (RELAY / "node_modules" / "socket.io").exists():
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent"], cwd=RELAY, check=True
        )
    port = free_port()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({m: [a, b] for m, a, b in chats}, f)
    proc = subprocess.Popen(
        [node, "relay.js", str(port), f.name], cwd=RELAY, stdout=subprocess.DEVNULL
    )
    users = [u for _, a, b in chats for u in (a, b)]
    try:
        base = f"http://127.0.0.1:{port}"
        asyncio.run(wait_http(base, "/socket.io/?EIO=4&transport=polling", proc))
        return asyncio.run(drive(base, {u: {"userId": u} for u in users}, chats))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        os.unlink(f.name)


def run(report: Report) -> None:
    # The 1,000 clients live in this process: without this, collector pauses here (not in the
    # server) show up as latency; `afterhours serve` runs with the same tuning.
    tune_gc()
    with scratch_database("chat") as url:
        chats = populate(url)
        ours = run_ours(url, chats)
    base = run_relay(chats)
    case = f"{USERS:,} sockets, {CHATS} chats"
    for label, key in (("send→ack", "acks"), ("send→receive", "deliveries")):
        for q in (50, 99):
            report.add(
                "chat",
                case,
                f"{label} p{q} at {CHATS / PACE:.0f} msg/s",
                p(ours[key], q),
                p(base[key], q) if base else None,
                "ms",
            )
    report.add(
        "chat",
        case,
        "burst throughput",
        ours["rate"],
        base["rate"] if base else None,
        "msg/s",
        "ours/baseline: " + (f"{ours['rate'] / base['rate']:.2f}" if base else "n/a"),
    )
