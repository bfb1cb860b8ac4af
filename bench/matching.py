"""The matching sweep, shard by shard, against the seeds' way (one candidate query per user).

City mix: waiting users spread over five cities (≈11 km standard deviation around each
centre), with the gender mix, preferences and ages of a dating app. World: a million users,
half in 40 cities of Zipf-like sizes, half in 4,000 small towns.

Ours: the periodic sweep's plan (matching.shards), then each shard swept as its job does
(`matching.sweep.sweep(shard=...)`: loads, pairs with the k-d tree, inserts matches and their
events), each in a transaction that is rolled back so every run starts from the same state;
with 1 worker in turn, with 2 worker processes at once. Baseline: for each waiting user in
waiting order, one SQL query for the nearest compatible free candidate (as the seeds'
findMatchCandidate did), recording pairs in a temporary table. That is also the exact greedy
the share of users matched is held against.
"""

import asyncio
import multiprocessing
import random
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import psycopg
from sqlalchemy import text

from afterhours.cli import tune_gc
from afterhours.db import Database
from afterhours.geo import Box
from afterhours.matching import shards, sweep
from afterhours.sessions import service as sessions
from afterhours.settings import Settings
from afterhours.storage import LocalStorage
from bench.common import ROOT, Report, progress, scratch_database

CITIES = [(52.52, 13.40), (48.86, 2.35), (40.42, -3.70), (51.51, -0.13), (41.90, 12.50)]
BASELINE_SAMPLE = 500  # above 10,000 users the baseline runs for this many; time is extrapolated
WORLD = 1_000_000
WORLD_CITIES = 40
WORLD_TOWNS = 4_000


def populate(url: str, n: int) -> None:
    """`n` users spread evenly over CITIES."""
    share, extra = divmod(n, len(CITIES))
    populate_places(
        url,
        [
            (lat, lon, 0.2, 0.3, share + (1 if k < extra else 0))
            for k, (lat, lon) in enumerate(CITIES)
        ],
    )


def populate_world(url: str, n: int) -> None:
    """`n` users the way a world's users live: half in WORLD_CITIES dense cities (a few big,
    most smaller: a Zipf-like share), half in WORLD_TOWNS small towns scattered over the
    inhabited latitudes."""
    rng = random.Random(7)
    weights = [1 / (k + 1) ** 0.8 for k in range(WORLD_CITIES)]
    city_people = [int(n / 2 * w / sum(weights)) for w in weights]
    places = [
        (rng.uniform(-40, 60), rng.uniform(-179, 179), 0.2, 0.3, people) for people in city_people
    ]
    town_people, extra = divmod(n - sum(city_people), WORLD_TOWNS)
    places += [
        (rng.uniform(-45, 62), rng.uniform(-180, 180), 0.03, 0.04, town_people + (k < extra))
        for k in range(WORLD_TOWNS)
    ]
    populate_places(url, places)


def populate_places(url: str, places: list[tuple[float, float, float, float, int]]) -> None:
    """Waiting users around each (lat, lon), spread by (lat, lon) degrees, `count` of them, with
    the gender mix, preferences and ages of a dating app."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT setseed(0.42)")
        conn.execute(
            "CREATE TEMP TABLE places (k int, lat float8, lon float8, dlat float8, dlon float8,"
            " people int)"
        )
        with conn.cursor().copy("COPY places FROM STDIN") as copy:
            for k, place in enumerate(places):
                copy.write_row((k, *place))
        conn.execute(
            """
            CREATE TEMP TABLE pop AS
            SELECT gen_random_uuid() AS id, row_number() OVER () AS n,
                   CASE WHEN r < 0.48 THEN 'man' WHEN r < 0.96 THEN 'woman' ELSE 'nonbinary' END
                       AS gender,
                   random() AS r2,
                   least(89.9, greatest(-89.9,
                       p.lat + (random() + random() + random() - 1.5) * p.dlat)) AS lat,
                   p.lon + (random() + random() + random() - 1.5) * p.dlon AS lon
            FROM places p, LATERAL (
                SELECT random() AS r FROM generate_series(1, p.people)
            ) g;
            UPDATE pop SET lon = lon - 360 WHERE lon >= 180;
            UPDATE pop SET lon = lon + 360 WHERE lon < -180;
            INSERT INTO users (id) SELECT id FROM pop;
            INSERT INTO profiles (user_id, name, birth_date, gender)
            SELECT id, 'U' || n, date '2007-01-01' - (random() * 40 * 365)::int, gender FROM pop;
            INSERT INTO after_hours_profiles (user_id, description) SELECT id, '' FROM pop;
            INSERT INTO after_hours_preferences
                (user_id, seeking_genders, min_age, max_age, max_distance_km)
            SELECT id,
                   CASE WHEN r2 < 0.1 THEN ARRAY['man', 'woman', 'nonbinary']
                        WHEN gender = 'man' THEN ARRAY['woman']
                        WHEN gender = 'woman' THEN ARRAY['man']
                        ELSE ARRAY['man', 'woman', 'nonbinary'] END,
                   a, LEAST(99, a + 8 + (random() * 25)::int), 5 + (random() * 45)::int
            FROM (SELECT *, 18 + (random() * 15)::int AS a FROM pop) p;
            INSERT INTO after_hours_sessions
                (user_id, started_at, expires_at, duration_minutes,
                 exact_lat, exact_lon, fuzzed_lat, fuzzed_lon)
            SELECT id, now() - (random() * interval '20 minutes'), now() + interval '40 minutes',
                   60, lat, lon, lat, lon
            FROM pop;
            ANALYZE;
            """
        )


def settings_for(url: str) -> Settings:
    return Settings(
        database_url=url,
        data_dir=ROOT / "var" / "bench-data",
        jwt_secret="b" * 64,
        _env_file=None,  # type: ignore[call-arg]
    )


async def plan(url: str) -> tuple[list[shards.Shard], float]:
    """The periodic sweep's plan (matching.tasks.periodic_sweep): the shards and its time."""
    settings = settings_for(url)
    db = Database(url)
    try:
        async with db.sessionmaker() as session:
            t0 = time.perf_counter()
            cells = await sessions.matchable_by_cell(
                session, settings=settings, degrees=shards.CELL_DEGREES
            )
            planned = shards.plan(cells, settings.match_shard_users)
            return planned, time.perf_counter() - t0
    finally:
        await db.dispose()


@dataclass
class Swept:
    key: str
    seconds: float
    pairs: int
    waiting: int


async def sweep_shards(url: str, boxes: list[Box], start_at: float = 0.0) -> list[Swept]:
    """Sweep each shard as its job would (matching.tasks.sweep_shard), one after the other, each
    in a transaction that is rolled back so every run starts from the same state."""
    tune_gc()  # as `afterhours serve` and `afterhours worker` run
    settings = settings_for(url)
    db = Database(url)
    storage = LocalStorage(settings)
    done = []
    try:
        async with db.sessionmaker() as session:  # connect before the clock starts
            await session.execute(text("SELECT 1"))
        await asyncio.sleep(max(0.0, start_at - time.time()))
        for box in boxes:
            async with db.sessionmaker() as session:
                t0 = time.perf_counter()
                result = await sweep.sweep(session, settings=settings, storage=storage, shard=box)
                seconds = time.perf_counter() - t0
                await session.rollback()
            key = shards.Shard(box, 0).key
            done.append(Swept(key, seconds, result.pairs, result.waiting))
    finally:
        await db.dispose()
    return done


def sweep_in_process(url: str, boxes: list[Box], start_at: float) -> list[Swept]:
    return asyncio.run(sweep_shards(url, boxes, start_at))


def share_out(planned: list[shards.Shard], workers: int) -> list[list[Box]]:
    """Shards handed to workers biggest first, each to the least loaded (as free workers take
    the next job from the queue)."""
    loads = [0] * workers
    lists: list[list[Box]] = [[] for _ in range(workers)]
    for shard in sorted(planned, key=lambda s: -s.people):
        least = loads.index(min(loads))
        lists[least].append(shard.box)
        loads[least] += shard.people
    return lists


def with_workers(url: str, planned: list[shards.Shard], workers: int) -> tuple[float, list[Swept]]:
    """Wall time of sweeping every shard with `workers` processes at once, and each shard."""
    vacuum(url)
    if workers == 1:
        t0 = time.perf_counter()
        swept = asyncio.run(sweep_shards(url, [s.box for s in planned]))
        return time.perf_counter() - t0, swept
    start_at = time.time() + 5  # every process imported and connected before the clock starts
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        runs = [
            pool.submit(sweep_in_process, url, boxes, start_at)
            for boxes in share_out(planned, workers)
        ]
        results = [run.result() for run in runs]
    # Each process ran its list back to back from `start_at`; the last to finish is the wall.
    swept = [s for result in results for s in result]
    return max(sum(s.seconds for s in result) for result in results), swept


def vacuum(url: str) -> None:
    """Clear the dead rows rolled-back sweeps leave, as a real sweep (which commits) would."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


BASELINE_QUERY = """
SELECT c.user_id, c.d FROM (
    SELECT s.user_id,
           2 * 6371.0088 * asin(sqrt(
               power(sin(radians(s.fuzzed_lat - %(lat)s) / 2), 2)
               + cos(radians(%(lat)s)) * cos(radians(s.fuzzed_lat))
               * power(sin(radians(s.fuzzed_lon - %(lon)s) / 2), 2))) AS d,
           coalesce(pr.max_distance_km, 25) AS their_km
    FROM after_hours_sessions s
    JOIN profiles p ON p.user_id = s.user_id
    JOIN after_hours_profiles ap ON ap.user_id = s.user_id
    LEFT JOIN after_hours_preferences pr ON pr.user_id = s.user_id
    WHERE s.ended_at IS NULL AND s.expires_at > now() + interval '2 minutes'
      AND s.fuzzed_lat BETWEEN %(lat)s - %(dlat)s AND %(lat)s + %(dlat)s
      AND s.fuzzed_lon BETWEEN %(lon)s - %(dlon)s AND %(lon)s + %(dlon)s
      AND s.user_id <> %(me)s
      AND p.gender = ANY(%(seeking)s)
      AND %(gender)s = ANY(coalesce(pr.seeking_genders, ARRAY['man', 'woman', 'nonbinary']))
      AND date_part('year', age(p.birth_date)) BETWEEN %(min_age)s AND %(max_age)s
      AND %(age)s BETWEEN coalesce(pr.min_age, 18) AND coalesce(pr.max_age, 99)
      AND NOT EXISTS (SELECT 1 FROM taken t WHERE t.user_id = s.user_id)
      AND NOT EXISTS (SELECT 1 FROM after_hours_match_participants mp
                      WHERE mp.user_id = s.user_id AND mp.is_open)
      AND NOT EXISTS (SELECT 1 FROM after_hours_blocks b
                      WHERE (b.blocker_id = %(me)s AND b.blocked_id = s.user_id)
                         OR (b.blocker_id = s.user_id AND b.blocked_id = %(me)s))
      AND NOT EXISTS (SELECT 1 FROM after_hours_declines x
                      WHERE (x.user_id = %(me)s AND x.declined_user_id = s.user_id)
                         OR (x.user_id = s.user_id AND x.declined_user_id = %(me)s))
) c
WHERE c.d <= least(%(max_km)s, c.their_km)
ORDER BY c.d LIMIT 1
"""


def baseline(url: str, sample: int) -> tuple[float, int, int]:
    """Seconds for `sample` users (in waiting order), pairs made, and total waiting users."""
    with psycopg.connect(url) as conn:
        users = conn.execute(
            """
            SELECT s.user_id, s.fuzzed_lat, s.fuzzed_lon, p.gender,
                   date_part('year', age(p.birth_date))::int, pr.seeking_genders,
                   pr.min_age, pr.max_age, pr.max_distance_km
            FROM after_hours_sessions s JOIN profiles p USING (user_id)
            JOIN after_hours_preferences pr USING (user_id)
            WHERE s.ended_at IS NULL ORDER BY s.started_at
            """
        ).fetchall()
        conn.execute("CREATE TEMP TABLE taken (user_id uuid PRIMARY KEY)")
        pairs = 0
        t0 = time.perf_counter()
        for me, lat, lon, gender, age, seeking, min_age, max_age, max_km in users[:sample]:
            if conn.execute("SELECT 1 FROM taken WHERE user_id = %s", (me,)).fetchone():
                continue
            found = conn.execute(
                BASELINE_QUERY,
                {
                    "me": me,
                    "lat": lat,
                    "lon": lon,
                    "dlat": max_km / 111.2,
                    "dlon": max_km / 60.0,
                    "seeking": seeking,
                    "gender": gender,
                    "age": age,
                    "min_age": min_age,
                    "max_age": max_age,
                    "max_km": max_km,
                },
            ).fetchone()
            if found:
                conn.execute("INSERT INTO taken VALUES (%s), (%s)", (me, found[0]))
                pairs += 1
        elapsed = time.perf_counter() - t0
        conn.rollback()
    return elapsed, pairs, len(users)


def run(report: Report, sizes: tuple[int, ...] = (10_000, 100_000)) -> None:
    for n in sizes:
        with scratch_database(f"matching_{n}") as url:
            t0 = time.perf_counter()
            populate(url, n)
            progress(f"  populated {n:,} waiting users in {time.perf_counter() - t0:.1f} s")
            city_mix(report, url, n)


def run_world(report: Report) -> None:
    """The million-user world (several minutes: `python -m bench world`, not in `make bench`)."""
    with scratch_database("matching_world") as url:
        t0 = time.perf_counter()
        populate_world(url, WORLD)
        progress(f"  populated {WORLD:,} users worldwide in {time.perf_counter() - t0:.1f} s")
        world(report, url)


def city_mix(report: Report, url: str, n: int) -> None:
    case = f"{n:,} waiting, 5 cities"
    planned, _ = asyncio.run(plan(url))
    walls = {}
    for workers in (1, 2):
        wall, swept = with_workers(url, planned, workers)
        walls[workers] = wall
        pairs = sum(s.pairs for s in swept)
        progress(f"  {n:,}, {workers} worker(s): {wall:.2f} s, {pairs:,} pairs")
    sample = min(n, BASELINE_SAMPLE if n > 10_000 else n)
    base_s, base_pairs, total = baseline(url, sample)
    base_full = base_s * total / sample
    largest = max(s.people for s in planned)
    shape = f"{len(planned)} shards, largest {largest:,}"
    if sample != total:
        shape += f"; baseline extrapolated from {sample:,} users"
    report.add("matching", case, "sweep time, 1 worker", walls[1], base_full, "s", shape)
    report.add(
        "matching",
        case,
        "sweep time, 2 workers",
        walls[2],
        base_full,
        "s",
        "2 processes and PostgreSQL share 2 cores: CPU-bound",
    )
    matched = 2 * pairs / total
    per_k = walls[1] / total * 1000
    report.add("matching", case, "time per 1,000 people in a shard", per_k, None, "s", "1 worker")
    if sample == total:
        exact = 2 * base_pairs / total
        report.add(
            "matching",
            case,
            "share of waiting users matched",
            matched,
            exact,
            "share",
            "baseline: exact greedy, nearest free compatible partner in waiting order",
        )
    else:
        report.add(
            "matching",
            case,
            "share of waiting users matched",
            matched,
            None,
            "share",
            "the exact greedy is too slow to run to the end here (see 10,000)",
        )
    progress(f"  {n:,}: seeds' way {base_full:.1f} s, exact greedy {base_pairs:,} pairs")


def world(report: Report, url: str) -> None:
    planned, planning = asyncio.run(plan(url))
    case = f"{WORLD:,} waiting, world"
    wall, swept = with_workers(url, planned, 1)
    times = sorted(s.seconds for s in swept)
    people = {shards.Shard(s.box, 0).key: s.people for s in planned}
    biggest = max(swept, key=lambda s: people[s.key])
    per_k = [s.seconds / people[s.key] * 1000 for s in swept if people[s.key] >= 1000]
    needed = next(
        n for n in range(1, len(swept) + 1) if makespan([s.seconds for s in swept], n) <= 30
    )
    report.add(
        "matching", case, "planning the shards", planning, None, "s", f"{len(planned)} shards"
    )
    report.add(
        "matching",
        case,
        "time per shard, median",
        statistics.median(times),
        None,
        "s",
        f"largest shard {people[biggest.key]:,} people: {biggest.seconds:.1f} s",
    )
    report.add(
        "matching",
        case,
        "time per 1,000 people in a shard",
        statistics.median(per_k),
        None,
        "s",
        "median over shards of 1,000+; compare the city mix's shards",
    )
    report.add("matching", case, "sweep time, 1 worker", wall, None, "s", "every shard in turn")
    report.add(
        "matching",
        case,
        f"projected sweep time, {needed} workers",
        makespan([s.seconds for s in swept], needed),
        None,
        "s",
        f"{needed} workers sweep the world within the 30 s interval",
    )
    progress(f"  world: {len(planned)} shards, 1 worker {wall:.1f} s, {needed} workers needed")


def makespan(seconds: list[float], workers: int) -> float:
    """When the last of `workers` finishes, each taking the next shard (biggest first)."""
    loads = [0.0] * workers
    for s in sorted(seconds, reverse=True):
        loads[loads.index(min(loads))] += s
    return max(loads)
