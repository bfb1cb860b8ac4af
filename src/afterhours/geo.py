"""Distances and the location-privacy scheme (see docs/privacy.md for the numbers and why).

The exact point is snapped to a cell of the user's own grid (~1 km cells, shifted by a secret
amount per user); the public ("fuzzed") point is that cell's centre moved to a ring between
RING_INNER_KM and RING_OUTER_KM away, in a direction and at a radius derived from a server secret,
the user and the cell. So:
- the public point is never within PRIVACY_FLOOR_KM of the truth: no point of a cell is farther
  than HALF_DIAGONAL_KM from its centre, and the ring starts that much beyond the floor;
- one user in one cell always shows the same public point: sessions repeated from one spot give
  an observer the same point again, never a fresh sample to average towards the truth;
- cell boundaries differ per user and are secret: walking an account across them, or knowing
  another user's, tells nothing about where a user's cell ends.
"""

import hashlib
import hmac
import math
import uuid
from dataclasses import dataclass

EARTH_RADIUS_KM = 6371.0088
CELL_KM = 1.0
KM_PER_DEGREE_LAT = math.pi * EARTH_RADIUS_KM / 180
# The farthest a point of a cell lies from the cell's centre (it holds up to the poles: see
# _row_km_per_degree_lon).
HALF_DIAGONAL_KM = math.hypot(CELL_KM / 2, CELL_KM / 2)
# Nobody's public point is nearer their exact point than this, whoever they are and wherever.
PRIVACY_FLOOR_KM = 0.3
RING_INNER_KM = PRIVACY_FLOOR_KM + HALF_DIAGONAL_KM  # ≈ 1.007 km from the cell's centre
RING_OUTER_KM = 1.5
# The farthest a public point lies from the exact one: what a matched user's distance is off by,
# at most, on each side.
MAX_ERROR_KM = RING_OUTER_KM + HALF_DIAGONAL_KM  # ≈ 2.21 km


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


@dataclass(frozen=True)
class Grid:
    """A grid of cells: rows of CELL_KM in latitude, columns of at most CELL_KM in longitude,
    moved `north_km` and `east_km` (each in [0, CELL_KM)) from the one anchored at 0°, 0°."""

    north_km: float = 0.0
    east_km: float = 0.0

    @classmethod
    def of_user(cls, user_id: uuid.UUID, *, secret: bytes) -> "Grid":
        """The user's own grid: a secret shift of their own, the same for every session."""
        u1, u2 = _uniforms(secret, f"grid:{user_id}")
        return cls(north_km=CELL_KM * u1, east_km=CELL_KM * u2)

    def cell_of(self, point: Point) -> tuple[int, int]:
        row = math.floor((point.lat * KM_PER_DEGREE_LAT + self.north_km) / CELL_KM)
        col = math.floor((point.lon * self._km_per_degree_lon(row) + self.east_km) / CELL_KM)
        return row, col

    def centre(self, row: int, col: int) -> Point:
        """The middle of the cell: of its row's latitudes (cut at the pole) and its column."""
        south, north = self._row_lats(row)
        lon = ((col + 0.5) * CELL_KM - self.east_km) / self._km_per_degree_lon(row)
        return Point(lat=(south + north) / 2, lon=_wrap_lon(lon))

    def _row_lats(self, row: int) -> tuple[float, float]:
        south = (row * CELL_KM - self.north_km) / KM_PER_DEGREE_LAT
        north = ((row + 1) * CELL_KM - self.north_km) / KM_PER_DEGREE_LAT
        return _clamp(south, -90, 90), _clamp(north, -90, 90)

    def _km_per_degree_lon(self, row: int) -> float:
        # Measured on the row's edge nearer the equator, where a degree is longest: a column is
        # then CELL_KM wide there and narrower towards the pole, so no point of a cell is farther
        # than the half-diagonal from its centre (measured mid-row, a cell is wider than CELL_KM
        # on that edge, which matters within a few km of a pole).
        south, north = self._row_lats(row)
        edge_lat = 0.0 if south <= 0 <= north else min(abs(south), abs(north))
        return max(KM_PER_DEGREE_LAT * math.cos(math.radians(edge_lat)), 1e-6)


def fuzz(point: Point, *, user_id: uuid.UUID, secret: bytes) -> Point:
    """The public point for `user_id` at `point`: stable per (user, cell), unguessable offset,
    between PRIVACY_FLOOR_KM and MAX_ERROR_KM from `point`."""
    grid = Grid.of_user(user_id, secret=secret)
    row, col = grid.cell_of(point)
    u1, u2 = _uniforms(secret, f"{user_id}:{row}:{col}")
    # Uniform over the ring's area (not its radius), so offsets do not crowd its inner edge.
    radius_km = math.sqrt(RING_INNER_KM**2 + u1 * (RING_OUTER_KM**2 - RING_INNER_KM**2))
    return destination(grid.centre(row, col), distance_km=radius_km, bearing=2 * math.pi * u2)


def _uniforms(secret: bytes, message: str) -> tuple[float, float]:
    """Two numbers in [0, 1) from HMAC-SHA256(secret, message): unguessable without the secret."""
    digest = hmac.new(secret, message.encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / 2**64, int.from_bytes(digest[8:16], "big") / 2**64


def destination(point: Point, *, distance_km: float, bearing: float) -> Point:
    """The point `distance_km` away along the great circle leaving `point` at `bearing`
    (radians clockwise from north): exactly that far by haversine_km, poles included."""
    lat, lon = math.radians(point.lat), math.radians(point.lon)
    angle = distance_km / EARTH_RADIUS_KM
    # On unit vectors (not asin of a sine, which loses millimetres within metres of a pole):
    # start, plus the step along the local north/east directions turned by `bearing`.
    start = (math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat))
    north = (-math.sin(lat) * math.cos(lon), -math.sin(lat) * math.sin(lon), math.cos(lat))
    east = (-math.sin(lon), math.cos(lon), 0.0)
    x, y, z = (
        s * math.cos(angle) + (n * math.cos(bearing) + e * math.sin(bearing)) * math.sin(angle)
        for s, n, e in zip(start, north, east, strict=True)
    )
    lat2 = math.degrees(math.atan2(z, math.hypot(x, y)))
    return Point(lat=_clamp(lat2, -90, 90), lon=_wrap_lon(math.degrees(math.atan2(y, x))))


def offset(point: Point, *, north_km: float, east_km: float) -> Point:
    """The point `north_km` north and `east_km` east of `point` (one great-circle step)."""
    return destination(
        point, distance_km=math.hypot(north_km, east_km), bearing=math.atan2(east_km, north_km)
    )


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


def _wrap_lon(lon: float) -> float:
    return (lon + 180) % 360 - 180


@dataclass(frozen=True)
class Box:
    """A latitude/longitude rectangle, in degrees, half-open: south <= lat < north and
    west <= lon < east (so boxes that share an edge never share a point)."""

    south: float
    north: float
    west: float
    east: float

    def __str__(self) -> str:
        return f"{self.south:g}:{self.north:g}:{self.west:g}:{self.east:g}"

    def contains(self, lat: float, lon: float) -> bool:
        return self.south <= lat < self.north and self.west <= lon < self.east

    def reach(self, km: float) -> list["Box"]:
        """Boxes covering every point within `km` of this one: itself widened, and split in two
        where the widening crosses the antimeridian."""
        dlat = km / KM_PER_DEGREE_LAT
        south, north = max(-90.0, self.south - dlat), min(90.0001, self.north + dlat)
        widest = max(abs(south), abs(min(north, 90.0)))  # the parallel nearest a pole
        km_per_lon = KM_PER_DEGREE_LAT * math.cos(math.radians(widest))
        dlon = km / km_per_lon if km_per_lon > km / 180 else 360.0
        west, east = self.west - dlon, self.east + dlon
        if east - west >= 360:
            return [Box(south, north, -180.0, 180.0001)]
        boxes = [Box(south, north, max(west, -180.0), min(east, 180.0001))]
        if west < -180:
            boxes.append(Box(south, north, west + 360, 180.0001))
        if east > 180:
            boxes.append(Box(south, north, -180.0, east - 360))
        return boxes


def around(point: Point, km: float) -> list[Box]:
    """Boxes covering every point within `km` of `point`."""
    return Box(point.lat, point.lat, point.lon, point.lon).reach(km)
