"""Idle Socket.IO connections held by one process: SOCKETS websocket clients (one Node
socket.io-client generator, bench/node_relay/loadgen.js) connect and stay; we read the serving
process's resident memory (RSS) before the first and after the last has connected and the
process has settled.

Ours: `afterhours serve` (its worker in-process), each socket authenticated by a JWT and its
bans checked, joined to its user's room. Baseline: the bare Node socket.io relay
(bench/node_relay/relay.js) holding the same sockets. The per-connection figure is the RSS
growth divided by the sockets held; KB here are KiB.
"""

import time
import uuid

import psutil
import psycopg

from afterhours.auth import TokenVerifier
from afterhours.settings import Settings
from bench import common
from bench.common import (
    Cpu,
    Generator,
    Report,
    Served,
    afterhours_serve,
    progress,
    relay,
    scratch_database,
)

SECRET = "bench-" + "i" * 64
TARGET_KB = 30.0
SETTLE = 5.0  # seconds idle after the last connect, before RSS is read


def sockets() -> int:
    return 1_000 if common.QUICK else 10_000


def rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


def hold(served: Served, auths: list[dict[str, str]], label: str) -> dict[str, float]:
    """Connect every auth to `served`, hold, and measure; returns RSS figures and connect CPU."""
    warm = Generator({"mode": "idle", "url": served.base, "auths": auths[:20]})
    try:  # the first connects load code and fill caches: not per-connection memory
        warm.read("connected")
        warm.command("stop")
        warm.read("stopped")
    finally:
        warm.close()
    time.sleep(1.0)
    before = rss(served.proc.pid)
    progress(f"  {label}: RSS {before / 2**20:.0f} MiB; connecting {len(auths):,} sockets …")
    gen = Generator({"mode": "idle", "url": served.base, "auths": auths, "width": 100})
    try:
        with Cpu(**{label: served.proc.pid, "generator": gen.proc.pid}) as cpu:
            connected = gen.read("connected")
        if connected["failed"]:
            raise RuntimeError(f"{label}: {connected['failed']} connects failed: {connected}")
        time.sleep(SETTLE)
        after = rss(served.proc.pid)
        gen.command("count")
        still = gen.read("count")
        gen.command("stop")
        gen.read("stopped")
    finally:
        gen.close()
    held = int(still["open"])
    progress(
        f"  {label}: {held:,} held, RSS {after / 2**20:.0f} MiB,"
        f" connects took {connected['seconds']:.1f} s; {cpu.summary()}"
    )
    return {
        "before": before / 2**20,
        "after": after / 2**20,
        "per": (after - before) / max(held, 1) / 1024,
        "held": held,
        "seconds": float(connected["seconds"]),
        "cpu": cpu,  # type: ignore[dict-item]
    }


def run(report: Report) -> None:
    n = sockets()
    if common.node() is None:
        progress("  node/npm not found: sockets benchmark skipped")
        return
    common.raise_file_limit()
    users = [uuid.uuid4() for _ in range(n)]
    verifier = TokenVerifier(Settings(jwt_secret=SECRET, _env_file=None))  # type: ignore[call-arg]
    with scratch_database("sockets") as url:
        with psycopg.connect(url) as conn:
            conn.execute("INSERT INTO users (id) SELECT unnest(%s::uuid[])", [users])
        auths = [{"token": verifier.issue(u, premium=True)} for u in users]
        with afterhours_serve(url, SECRET, "/health") as served:
            ours = hold(served, auths, "ours")
    with relay({}) as served:
        base = hold(served, [{"userId": str(u)} for u in users], "relay")
    case = f"{n:,} idle websocket clients, one process"
    saturated, cpu = common.merge_cpu(("ours", ours["cpu"]), ("relay", base["cpu"]))  # type: ignore[arg-type]
    connects = f"connects: ours {ours['seconds']:.1f} s, relay {base['seconds']:.1f} s"
    report.add(
        "sockets",
        case,
        "memory per connection",
        ours["per"],
        base["per"],
        "KB",
        f"RSS growth / sockets held; {connects}; connecting: {cpu}",
        saturated,
    )
    report.check(f"≤ {TARGET_KB:.0f}", ours["per"] <= TARGET_KB)
    report.add(
        "sockets",
        case,
        f"RSS with {min(ours['held'], base['held']):,.0f} held",
        ours["after"],
        base["after"],
        "MB",
        f"before connecting: ours {ours['before']:.0f} MiB, relay {base['before']:.0f} MiB (MiB)",
        saturated,
    )
