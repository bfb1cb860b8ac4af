"""The matching sweep at city scale, against the seeds' way (one candidate query per user).

Waiting users are spread over five cities (≈11 km standard deviation around each centre),
with the gender mix, preferences and ages of a dating app. Ours: one `matching.sweep.sweep`
(loads, pairs with the k-d tree, inserts matches and their events) in a transaction that is
rolled back so every repeat starts from the same state. Baseline: for each waiting user in
waiting order, one SQL query for the nearest compatible free candidate (as the seeds'
findMatchCandidate did), recording pairs in a temporary table.
"""

import asyncio
import statistics
import time

import psycopg

from afterhours.cli import tune_gc
from afterhours.db import Database
from afterhours.matching import sweep
from afterhours.settings import Settings
from afterhours.storage import LocalStorage
from bench.common import ROOT, Report, scratch_database

CITIES = [(52.52, 13.40), (48.86, 2.35), (40.42, -3.70), (51.51, -0.13), (41.90, 12.50)]
BASELINE_SAMPLE = 500  # above 10,000 users the baseline runs for this many; time is extrapolated


def populate(url: str, n: int) -> None:
    cities = ",".join(f"({lat},{lon})" for lat, lon in CITIES)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT setseed(0.42)")
        conn.execute(
            f"""
            CREATE TEMP TABLE pop AS
            SELECT gen_random_uuid() AS id, n,
                   CASE WHEN r < 0.48 THEN 'man' WHEN r < 0.96 THEN 'woman' ELSE 'nonbinary' END
                       AS gender,
                   random() AS r2
            FROM (SELECT n, random() AS r FROM generate_series(1, {n}) AS n) g;
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
            FROM (
                SELECT id, c.lat + (random() + random() + random() - 1.5) * 0.2 AS lat,
                       c.lon + (random() + random() + random() - 1.5) * 0.3 AS lon
                FROM pop JOIN (
                    SELECT v.*, row_number() OVER () AS k FROM (VALUES {cities}) AS v(lat, lon)
                ) c ON c.k = 1 + pop.n % {len(CITIES)}
            ) placed;
            ANALYZE;
            """
        )


async def our_sweep(url: str, settings: Settings, repeats: int) -> tuple[list[float], int, int]:
    tune_gc()  # as `afterhours serve` and `afterhours worker` run
    db = Database(url)
    storage = LocalStorage(settings)
    times, pairs, waiting = [], 0, 0
    try:
        for _ in range(repeats):
            async with db.sessionmaker() as session:
                t0 = time.perf_counter()
                result = await sweep.sweep(session, settings=settings, storage=storage)
                times.append(time.perf_counter() - t0)
                pairs, waiting = result.pairs, result.waiting
                await session.rollback()
            # A rolled-back sweep leaves thousands of dead rows; clear them so every repeat
            # starts from the same state, as a real sweep (which commits) would.
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                await conn.execute("VACUUM (ANALYZE)")
    finally:
        await db.dispose()
    return times, pairs, waiting


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
            print(
                f"  populated {n:,} waiting users in {time.perf_counter() - t0:.1f} s", flush=True
            )
            settings = Settings(
                database_url=url,
                data_dir=ROOT / "var" / "bench-data",
                jwt_secret="b" * 64,
                _env_file=None,  # type: ignore[call-arg]
            )
            times, pairs, waiting = asyncio.run(our_sweep(url, settings, repeats=3))
            sample = min(n, BASELINE_SAMPLE if n > 10_000 else n)
            base_s, base_pairs, total = baseline(url, sample)
            base_full = base_s * total / sample
            note = "" if sample == total else f"baseline extrapolated from {sample:,} users"
            ours = statistics.median(times)
            report.add(
                "matching", f"{n:,} waiting", "sweep time (median of 3)", ours, base_full, "s", note
            )
            report.add(
                "matching",
                f"{n:,} waiting",
                "pairs made",
                float(pairs),
                float(base_pairs) if sample == total else None,
                "pairs",
                "" if sample == total else f"baseline made {base_pairs:,} in its sample",
            )
            print(
                f"  {n:,}: ours {ours:.3f} s ({pairs:,} pairs), seeds' way {base_full:.1f} s",
                flush=True,
            )
