"""Chat round trip: USERS sockets in CHATS active chats, one serving process and two.

Ours: `afterhours serve` (its worker in-process) on a scratch database; every message is
validated, screened, stored and written to both participants' event logs before it is
acknowledged. Baseline: a bare Node.js socket.io relay (bench/node_relay/relay.js) taking the
same traffic and storing nothing. Both are driven by the same load generator,
GENERATORS Node socket.io-client processes (bench/node_relay/loadgen.js, each holding half of
the chats), so the clients are not what limits either side; every row says which process ran at
a full core. Two phases:

- paced: each chat sends one message every PACE seconds (starts spread over the first PACE),
  PACED_PER_CHAT in all: CHATS / PACE messages a second. We time send→ack and send→the other
  participant's `after_hours:message` (p50, p99).
- burst: in every chat the other side sends BURST_PER_CHAT messages back to back (each after
  the previous one's ack), all chats at once: messages per second, first send to last delivery.

A second baseline, the framework's floor: the same relay in Python (`python -m bench.chat
relay`), on the parts `afterhours serve` runs on (python-socketio's server as
`transport.SocketServer` builds it, with our JSON, uvicorn and uvloop with our WebSocket
settings, our collector tuning), storing nothing. What
ours spends above it is ours; what it spends above the Node relay is the framework's.

Two serving processes: the same traffic with each chat's two people on different processes
(so every message crosses between them), fanned out through Redis (`REDIS_URL`, a scratch
`redis-server`) and through PostgreSQL NOTIFY (the default); the baseline is one process.

Messages are rate-limited per user (10 per 10 s by default); the bench servers run with
`AFTERHOURS_LIMIT_MESSAGES=1000/10` so the burst measures the server, not the limit.
"""

import asyncio
import gc
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from afterhours.auth import TokenVerifier
from afterhours.settings import Settings
from bench import common
from bench.common import (
    Cpu,
    Report,
    afterhours_serve,
    free_port,
    generators,
    percentile,
    progress,
    relay,
    scratch_database,
    spawn,
    stop,
)

PACE = 5.0
GENERATORS = 2
SECRET = "bench-" + "s" * 64
LIMITS = {"limit_messages": "1000/10"}
P99_TARGET_MS = 50.0
BURST_TARGET = 0.5  # of the relay's


@dataclass
class Sizes:
    users: int
    paced_per_chat: int
    burst_per_chat: int

    @property
    def chats(self) -> int:
        return self.users // 2


def sizes() -> Sizes:
    return Sizes(200, 2, 10) if common.QUICK else Sizes(1_000, 4, 20)


Chat = tuple[str, str, str]  # (match id, first side, second side)


def populate(url: str, n_chats: int) -> list[Chat]:
    """Two users per chat, each in a session, in an active match; returns the chats."""
    chats = [(str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())) for _ in range(n_chats)]
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


@dataclass
class Run:
    acks: list[float]
    deliveries: list[float]
    rate: float
    paced_cpu: Cpu
    burst_cpu: Cpu


def drive(
    chats: list[Chat],
    url_of: dict[str, str],
    auth_of: dict[str, dict[str, str]],
    servers: dict[str, int],
) -> Run:
    """Run both phases through GENERATORS load generators against `url_of` each user; CPU of
    `servers` {name: pid} and of the generators is sampled per phase."""
    size = sizes()

    def side(user: str) -> dict[str, Any]:
        return {"url": url_of[user], "auth": auth_of[user], "id": user}

    specs = [
        {
            "mode": "chat",
            # Each run's own message ids: a resent clientMessageId is (rightly) not sent again.
            "tag": uuid.uuid4().hex[:8],
            "chats": [{"match": m, "a": side(a), "b": side(b)} for m, a, b in part],
            "pace": PACE,
            "paced": size.paced_per_chat,
            "burst": size.burst_per_chat,
        }
        for part in (chats[k::GENERATORS] for k in range(GENERATORS))
    ]
    with generators(specs) as gens:
        for g in gens:
            g.read("ready")
        pids = {**servers, **{f"generator{k + 1}": g.proc.pid for k, g in enumerate(gens)}}
        progress(f"  {len(chats) * 2:,} sockets connected; paced phase …")
        with Cpu(**pids) as paced_cpu:
            for g in gens:
                g.command("paced")
            paced = [g.read("paced") for g in gens]
        progress("  burst phase …")
        with Cpu(**pids) as burst_cpu:
            for g in gens:
                g.command("burst")
            burst = [g.read("burst") for g in gens]
    for phase in (*paced, *burst):
        if phase["failures"] or not phase["complete"]:
            brief = {k: v for k, v in phase.items() if k not in ("acks", "deliveries")}
            raise RuntimeError(f"chat: sends failed or were lost: {brief}")
    sent = sum(b["sent"] for b in burst)
    span = (max(b["end"] for b in burst) - min(b["start"] for b in burst)) / 1000
    return Run(
        acks=[x for p in paced for x in p["acks"]],
        deliveries=[x for p in paced for x in p["deliveries"]],
        rate=sent / span,
        paced_cpu=paced_cpu,
        burst_cpu=burst_cpu,
    )


def tokens(chats: list[Chat]) -> dict[str, dict[str, str]]:
    verifier = TokenVerifier(Settings(jwt_secret=SECRET, _env_file=None))  # type: ignore[call-arg]
    users = [u for _, a, b in chats for u in (a, b)]
    return {u: {"token": verifier.issue(uuid.UUID(u), premium=True)} for u in users}


def run_ours(url: str, chats: list[Chat]) -> Run:
    with afterhours_serve(url, SECRET, "/health", **LIMITS) as served:
        progress(f"  ours, one process: connecting {len(chats) * 2:,} sockets …")
        everyone = {u: served.base for _, a, b in chats for u in (a, b)}
        return drive(chats, everyone, tokens(chats), {"ours": served.proc.pid})


@contextmanager
def redis_server() -> Iterator[tuple[str, int]]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server")
    port = free_port()
    proc = spawn(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"]
    )
    try:
        for _ in range(100):
            done = subprocess.run(
                ["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True
            )
            if done.stdout.strip() == "PONG":
                break
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0", proc.pid
    finally:
        stop(proc)


def run_two(url: str, chats: list[Chat], fan_out: str) -> Run:
    """Two `afterhours serve` (one with the worker), each chat's sides on different ones."""
    with ExitStack() as stack:
        redis_url, pids = None, {}
        if fan_out == "redis":
            redis_url, pids["redis"] = stack.enter_context(redis_server())
        first = stack.enter_context(
            afterhours_serve(url, SECRET, "/health", redis_url=redis_url, **LIMITS)
        )
        second = stack.enter_context(
            afterhours_serve(url, SECRET, "/health", worker=False, redis_url=redis_url, **LIMITS)
        )
        progress(f"  ours, two processes ({fan_out}): connecting {len(chats) * 2:,} sockets …")
        # Every chat across both; which side sends the burst alternates, so each process
        # takes half the sends and half the deliveries.
        url_of: dict[str, str] = {}
        for k, (_, a, b) in enumerate(chats):
            here, there = (first, second) if k % 2 else (second, first)
            url_of |= {a: here.base, b: there.base}
        pids |= {"ours1": first.proc.pid, "ours2": second.proc.pid}
        return drive(chats, url_of, tokens(chats), pids)


def python_relay(port: int, chats_file: str) -> None:
    """`python -m bench.chat relay PORT CHATS_JSON`: relay.js's traffic on python-socketio."""
    import datetime

    import socketio
    import uvicorn

    from afterhours.pubsub import CompactJson
    from afterhours.serving import WEBSOCKET_OPTIONS, ProtocolLog
    from afterhours.transport import SocketServer

    with open(chats_file) as f:
        pairs: dict[str, list[str]] = json.load(f)
    sio = SocketServer(
        async_mode="asgi",
        json=CompactJson,
        logger=ProtocolLog("relay.socketio"),
        engineio_logger=ProtocolLog("relay.engineio"),
    )

    async def connect(sid: str, environ: dict[str, Any], auth: dict[str, str]) -> None:
        await sio.save_session(sid, {"user": auth["userId"]})
        await sio.enter_room(sid, f"user:{auth['userId']}")

    async def send_message(sid: str, payload: dict[str, Any]) -> dict[str, Any]:
        user = (await sio.get_session(sid))["user"]
        pair = pairs.get(payload.get("matchId", ""))
        if not pair or user not in pair:
            return {"ok": False, "error": {"code": "NOT_FOUND", "message": "Match not found"}}
        message = {
            "id": str(uuid.uuid4()),
            "matchId": payload["matchId"],
            "senderId": user,
            "content": payload["content"],
            "createdAt": datetime.datetime.now(datetime.UTC).isoformat(),
            "clientMessageId": payload.get("clientMessageId"),
        }
        await sio.emit("after_hours:message", message, to=[f"user:{u}" for u in pair])
        return {"ok": True, "message": message}

    sio.on("connect", connect)
    sio.on("after_hours:send_message", send_message)
    gc.freeze()  # as cli.tune_gc
    gc.set_threshold(50_000, 50, 100)
    uvicorn.run(
        socketio.ASGIApp(sio),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        loop="uvloop",
        **WEBSOCKET_OPTIONS,
    )


def run_python_relay(chats: list[Chat]) -> Run:
    port = free_port()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({m: [a, b] for m, a, b in chats}, f)
    proc = spawn([sys.executable, "-m", "bench.chat", "relay", str(port), f.name])
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(common.wait_http(base, "/socket.io/?EIO=4&transport=polling", proc))
        progress(f"  python relay: connecting {len(chats) * 2:,} sockets …")
        everyone = {u: base for _, a, b in chats for u in (a, b)}
        auth = {u: {"userId": u} for u in everyone}
        return drive(chats, everyone, auth, {"python relay": proc.pid})
    finally:
        stop(proc)
        Path(f.name).unlink()


def run_relay(chats: list[Chat]) -> Run:
    with relay({m: [a, b] for m, a, b in chats}) as served:
        progress(f"  relay: connecting {len(chats) * 2:,} sockets …")
        everyone = {u: served.base for _, a, b in chats for u in (a, b)}
        auth = {u: {"userId": u} for u in everyone}
        return drive(chats, everyone, auth, {"relay": served.proc.pid})


def run(report: Report) -> None:
    if common.node() is None:
        progress("  node/npm not found: chat benchmark skipped")
        return
    size = sizes()
    common.raise_file_limit()
    two: dict[str, Run | None] = {}
    with scratch_database("chat") as url:
        chats = populate(url, size.chats)
        ours = run_ours(url, chats)
        for fan_out in ("redis", "notify"):
            try:
                two[fan_out] = run_two(url, chats, fan_out)
            except FileNotFoundError:
                progress("  redis-server not found: no Redis row")
                two[fan_out] = None
    base = run_relay(chats)
    floor = run_python_relay(chats)
    case = f"{size.users:,} sockets, {size.chats} chats"
    rate = f"{size.chats / PACE:.0f} msg/s"
    saturated, cpu = common.merge_cpu(("ours", ours.paced_cpu), ("relay", base.paced_cpu))
    for label, ours_ms, base_ms in (
        ("send→ack", ours.acks, base.acks),
        ("send→receive", ours.deliveries, base.deliveries),
    ):
        for q in (50, 99):
            report.add(
                "chat",
                case,
                f"{label} p{q} at {rate}",
                percentile(ours_ms, q),
                percentile(base_ms, q),
                "ms",
                cpu if (label, q) == ("send→ack", 50) else "",
                saturated,
            )
            if (label, q) == ("send→receive", 99):
                report.check(f"≤ {P99_TARGET_MS:.0f}", percentile(ours_ms, q) <= P99_TARGET_MS)
    saturated, cpu = common.merge_cpu(("ours", ours.burst_cpu), ("relay", base.burst_cpu))
    report.add(
        "chat",
        case,
        "burst throughput, one process",
        ours.rate,
        base.rate,
        "msg/s",
        f"{size.burst_per_chat} back to back in every chat; {cpu}",
        saturated,
    )
    report.check(f"≥ {BURST_TARGET * base.rate:,.0f}", ours.rate >= BURST_TARGET * base.rate)
    saturated, cpu = common.merge_cpu(("ours", ours.burst_cpu), ("python relay", floor.burst_cpu))
    report.add(
        "chat",
        case,
        "burst throughput, one process, against the python-socketio relay",
        ours.rate,
        floor.rate,
        "msg/s",
        f"baseline: the framework alone, nothing stored (python -m bench.chat relay); {cpu}",
        saturated,
    )
    for fan_out, result in two.items():
        if result is None:
            continue
        saturated, cpu = common.merge_cpu((f"two, {fan_out}", result.burst_cpu))
        report.add(
            "chat",
            case,
            f"burst throughput, two processes ({fan_out})",
            result.rate,
            ours.rate,
            "msg/s",
            f"baseline: one process; every chat across both; {cpu}",
            saturated,
        )
        saturated, cpu = common.merge_cpu((f"two, {fan_out}", result.paced_cpu))
        report.add(
            "chat",
            case,
            f"send→receive p99 at {rate}, two processes ({fan_out})",
            percentile(result.deliveries, 99),
            percentile(ours.deliveries, 99),
            "ms",
            "baseline: one process",
            saturated,
        )
        report.check(f"≤ {P99_TARGET_MS:.0f}", percentile(result.deliveries, 99) <= P99_TARGET_MS)


if __name__ == "__main__":
    if sys.argv[1:2] != ["relay"] or len(sys.argv) != 4:
        sys.exit("usage: python -m bench.chat relay PORT CHATS_JSON")
    python_relay(int(sys.argv[2]), sys.argv[3])
