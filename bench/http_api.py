"""HTTP latency at a fixed request rate: `POST /api/after-hours/session/start`, then
`GET /api/after-hours/match`, each RATE requests a second for SECONDS (open loop: a request
leaves on schedule whether or not the earlier ones have been answered), p50 and p99.

Ours: `afterhours serve` (its worker in-process, so every start's matching job runs there
too) on a scratch database; each request is a different premium user who has a base profile,
an After Hours profile and preferences, starting at a different place on earth (so the
per-user session-start limit, 8 an hour, never applies and no two are matched). Baseline:
bench/bare_api.py, a bare FastAPI route doing one indexed query on the same database, on the
same uvicorn. Both are driven by the Node load generator (bench/node_relay/loadgen.js, fetch).
"""

import asyncio
import random
import sys
import uuid
from typing import Any

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
    free_port,
    percentile,
    progress,
    scratch_database,
    spawn,
    stop,
    wait_http,
)

SECRET = "bench-" + "h" * 64
TARGET_MS = 50.0
WARM = 100  # requests that go first at the same rate, unmeasured: code loaded, pools filled


def load() -> tuple[int, float]:
    """(requests a second, seconds)"""
    return (50, 4.0) if common.QUICK else (100, 10.0)


def populate(url: str, users: list[uuid.UUID]) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO users (id) SELECT unnest(%s::uuid[])", [users])
        conn.execute(
            "INSERT INTO profiles (user_id, name, birth_date, gender)"
            " SELECT unnest(%s::uuid[]), 'B', date '1990-01-01', 'woman'",
            [users],
        )
        conn.execute(
            "INSERT INTO after_hours_profiles (user_id, description) SELECT unnest(%s::uuid[]), ''",
            [users],
        )
        conn.execute(
            "INSERT INTO after_hours_preferences"
            " (user_id, seeking_genders, min_age, max_age, max_distance_km)"
            " SELECT unnest(%s::uuid[]), ARRAY['man'], 18, 99, 25",
            [users],
        )


def fire(
    base: str, requests: list[dict[str, Any]], rate: int, pids: dict[str, int], *, warm: int = 0
) -> Any:
    """`requests` at `rate` a second from one generator; the first `warm` go unmeasured."""
    spec = {"mode": "http", "base": base, "rate": rate, "requests": requests, "warm": warm}
    gen = Generator(spec)
    try:
        with Cpu(**pids, generator=gen.proc.pid) as cpu:
            result = gen.read("http")
    finally:
        gen.close()
    return result, cpu


def measure(
    served: Served, label: str, users: list[uuid.UUID], headers: dict[uuid.UUID, Any]
) -> dict[str, Any]:
    rate, seconds = load()
    rng = random.Random(11)
    starts = [
        {
            "method": "POST",
            "path": "/api/after-hours/session/start",
            "headers": headers[u],
            # Places at least ~100 km apart: nobody is anybody's match.
            "body": {
                "duration": 60,
                "latitude": rng.uniform(-60, 60),
                "longitude": -179 + (k % 358) + rng.uniform(0, 0.5),
            },
        }
        for k, u in enumerate(users)
    ]
    matches = [
        {"method": "GET", "path": "/api/after-hours/match", "headers": headers[u]} for u in users
    ]
    out: dict[str, Any] = {}
    for name, requests, ok in (("start", starts, "201"), ("match", matches, "200")):
        progress(f"  {label}: {len(requests) - WARM:,} × {name} at {rate}/s …")
        # The warm-up goes from the measuring generator itself: a fresh Node process's first
        # requests (its fetch loaded, its connections opened, the server's pools grown to the
        # rate) are no latency of the server's at that rate.
        result, cpu = fire(served.base, requests, rate, {label: served.proc.pid}, warm=WARM)
        if set(result["statuses"]) != {ok}:
            raise RuntimeError(f"{label} {name}: answers {result['statuses']}")
        out[name] = (result["latencies"], cpu)
    return out


def run(report: Report) -> None:
    if common.node() is None:
        progress("  node/npm not found: http benchmark skipped")
        return
    rate, seconds = load()
    n = int(rate * seconds)
    users = [uuid.uuid4() for _ in range(WARM + n)]
    verifier = TokenVerifier(Settings(jwt_secret=SECRET, _env_file=None))  # type: ignore[call-arg]
    ours_headers = {
        u: {"authorization": f"Bearer {verifier.issue(u, premium=True)}"} for u in users
    }
    bare_headers = {u: {"x-user-id": str(u)} for u in users}
    with scratch_database("http") as url:
        populate(url, users)
        with afterhours_serve(url, SECRET, "/ready") as served:
            ours = measure(served, "ours", users, ours_headers)
        port = free_port()
        proc = spawn([sys.executable, "-m", "bench.bare_api", str(port), url])
        try:
            bare = Served(f"http://127.0.0.1:{port}", proc)
            asyncio.run(wait_http(bare.base, "/health", proc))
            base = measure(bare, "bare", users, bare_headers)
        finally:
            stop(proc)
    case = f"{n:,} users, {rate} requests/s"
    for name, metric in (("start", "POST session/start"), ("match", "GET /match")):
        ours_ms, ours_cpu = ours[name]
        base_ms, base_cpu = base[name]
        saturated, cpu = common.merge_cpu(("ours", ours_cpu), ("bare", base_cpu))
        for q in (50, 99):
            report.add(
                "http",
                case,
                f"{metric} p{q}",
                percentile(ours_ms, q),
                percentile(base_ms, q),
                "ms",
                f"baseline: bare FastAPI, one indexed query; {cpu}" if q == 50 else "",
                saturated,
            )
            if (name, q) == ("start", 99):
                report.check(f"≤ {TARGET_MS:.0f}", percentile(ours_ms, q) <= TARGET_MS)
