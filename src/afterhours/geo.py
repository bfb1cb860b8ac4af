"""Distances and the location-privacy scheme (see docs/privacy.md for the numbers and why).

The exact point is snapped to a grid of ~1 km cells; the public ("fuzzed") point is the cell's
centre moved by an offset of up to FUZZ_RADIUS_KM that is derived from a server secret, the user
and the cell. So one user in one cell always shows the same fuzzed point: repeating sessions from
one spot gives an observer the same point again, never a fresh sample to average towards the truth.
"""

import hashlib
import hmac
import math
import uuid
from dataclasses import dataclass

EARTH_RADIUS_KM = 6371.0088
CELL_KM = 1.0
FUZZ_RADIUS_KM = 1.0
KM_PER_DEGREE_LAT = math.pi * EARTH_RADIUS_KM / 180


@dataclass(frozen=True)
class Point:
    lat: float
    lon: float


def haversine_km(a: Point, b: Point) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def display_km(distance_km: float) -> int:
    """What a card shows: whole kilometres rounded up, at least 1."""
    return max(1, math.ceil(distance_km))


def cell_of(point: Point) -> tuple[int, int]:
    """The grid cell: rows of CELL_KM in latitude, columns of ~CELL_KM in longitude per row."""
    row = math.floor(point.lat * KM_PER_DEGREE_LAT / CELL_KM)
    row_lat = (row + 0.5) * CELL_KM / KM_PER_DEGREE_LAT
    km_per_degree_lon = max(KM_PER_DEGREE_LAT * math.cos(math.radians(row_lat)), 1e-6)
    col = math.floor(point.lon * km_per_degree_lon / CELL_KM)
    return row, col


def cell_centre(row: int, col: int) -> Point:
    lat = (row + 0.5) * CELL_KM / KM_PER_DEGREE_LAT
    km_per_degree_lon = max(KM_PER_DEGREE_LAT * math.cos(math.radians(lat)), 1e-6)
    lon = (col + 0.5) * CELL_KM / km_per_degree_lon
    return Point(lat=_clamp(lat, -90, 90), lon=_wrap_lon(lon))


def fuzz(point: Point, *, user_id: uuid.UUID, secret: bytes) -> Point:
    """The public point for `user_id` at `point`: stable per (user, cell), unguessable offset."""
    row, col = cell_of(point)
    centre = cell_centre(row, col)
    digest = hmac.new(secret, f"{user_id}:{row}:{col}".encode(), hashlib.sha256).digest()
    u1 = int.from_bytes(digest[:8], "big") / 2**64
    u2 = int.from_bytes(digest[8:16], "big") / 2**64
    # Uniform over the disc: radius ~ sqrt(u), so offsets do not cluster at the centre.
    radius_km = FUZZ_RADIUS_KM * math.sqrt(u1)
    bearing = 2 * math.pi * u2
    return offset(
        centre, north_km=radius_km * math.cos(bearing), east_km=radius_km * math.sin(bearing)
    )


def offset(point: Point, *, north_km: float, east_km: float) -> Point:
    lat = point.lat + north_km / KM_PER_DEGREE_LAT
    km_per_degree_lon = max(KM_PER_DEGREE_LAT * math.cos(math.radians(point.lat)), 1e-6)
    lon = point.lon + east_km / km_per_degree_lon
    return Point(lat=_clamp(lat, -90, 90), lon=_wrap_lon(lon))


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


def _wrap_lon(lon: float) -> float:
    return (lon + 180) % 360 - 180
