"""The location-privacy arithmetic of geo.py: pure functions, no server (see docs/privacy.md)."""

import math
import random
import uuid

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from afterhours import geo
from afterhours.geo import (
    CELL_KM,
    HALF_DIAGONAL_KM,
    MAX_ERROR_KM,
    PRIVACY_FLOOR_KM,
    RING_INNER_KM,
    RING_OUTER_KM,
    Grid,
    Point,
)

SECRET = b"k" * 64
EPSILON_KM = 1e-9  # floating-point slack only (a micrometre)

# Anywhere on the globe, and (separately, so they are not left to chance) the few kilometres
# around each pole, where columns are widest in degrees, and either side of the antimeridian.
latitudes = st.floats(-90, 90)
longitudes = st.floats(-180, 180)
near_pole_latitudes = st.one_of(
    st.floats(89, 90), st.floats(89.97, 90), st.floats(-90, -89), st.floats(-90, -89.97)
)
near_antimeridian_longitudes = st.one_of(st.floats(179.9, 180), st.floats(-180, -179.9))
points = st.one_of(
    st.builds(Point, latitudes, longitudes),
    st.builds(Point, near_pole_latitudes, longitudes),
    st.builds(Point, latitudes, near_antimeridian_longitudes),
    st.builds(Point, near_pole_latitudes, near_antimeridian_longitudes),
)
user_ids = st.uuids()
secrets = st.binary(min_size=1, max_size=64)
# Any user's grid: shifted by anything from nothing to just under a cell, each way.
grids = st.builds(
    Grid,
    st.floats(0, CELL_KM, exclude_max=True),
    st.floats(0, CELL_KM, exclude_max=True),
)


def fuzz(point: Point, user_id: uuid.UUID, secret: bytes = SECRET) -> Point:
    return geo.fuzz(point, user_id=user_id, secret=secret)


# --- the fuzzed point is a function of (secret, user, cell) -----------------------------------


def test_fuzz_is_deterministic_per_user_and_spot() -> None:
    user = uuid.uuid4()
    spot = Point(48.8566, 2.3522)
    first = fuzz(spot, user)
    assert all(fuzz(spot, user) == first for _ in range(10))


def test_fuzz_differs_between_users_at_one_spot() -> None:
    spot = Point(48.8566, 2.3522)
    fuzzed = {fuzz(spot, uuid.uuid4()) for _ in range(200)}
    assert len(fuzzed) == 200


def test_fuzz_depends_on_the_secret() -> None:
    user, spot = uuid.uuid4(), Point(-33.8688, 151.2093)
    assert fuzz(spot, user, b"one secret") != fuzz(spot, user, b"another secret")


@given(points, user_ids, st.floats(0, 0.02), st.floats(0, 2 * math.pi))
def test_two_points_in_one_cell_give_one_fuzzed_point(
    point: Point, user: uuid.UUID, distance_km: float, bearing: float
) -> None:
    other = geo.offset(
        point, north_km=distance_km * math.cos(bearing), east_km=distance_km * math.sin(bearing)
    )
    grid = Grid.of_user(user, secret=SECRET)
    assume(grid.cell_of(other) == grid.cell_of(point))
    assert fuzz(other, user) == fuzz(point, user)


def test_points_in_different_cells_get_independent_fuzz() -> None:
    user = uuid.uuid4()
    here = Point(52.52, 13.405)
    there = geo.offset(here, north_km=5, east_km=0)
    grid = Grid.of_user(user, secret=SECRET)
    assert grid.cell_of(here) != grid.cell_of(there)
    assert fuzz(here, user) != fuzz(there, user)


# --- each user's grid is their own ------------------------------------------------------------


def test_a_users_grid_is_the_same_every_time_and_depends_on_the_secret() -> None:
    user = uuid.uuid4()
    assert Grid.of_user(user, secret=SECRET) == Grid.of_user(user, secret=SECRET)
    assert Grid.of_user(user, secret=SECRET) != Grid.of_user(user, secret=b"another secret")


def test_grid_shifts_spread_over_a_whole_cell() -> None:
    """Uniform in [0, CELL_KM) each way: where one user's cell ends says nothing of another's."""
    rng = random.Random(11)
    grids = [Grid.of_user(uuid.UUID(int=rng.getrandbits(128)), secret=SECRET) for _ in range(4000)]
    for shifts in ([g.north_km for g in grids], [g.east_km for g in grids]):
        assert all(0 <= s < CELL_KM for s in shifts)
        for q in (0.25, 0.5, 0.75):
            share = sum(s < q * CELL_KM for s in shifts) / len(shifts)
            assert share == pytest.approx(q, abs=0.03)


def test_cell_boundaries_differ_between_users() -> None:
    """Two spots 200 m apart straddle a cell boundary for some users and not for others, in the
    proportion the shift implies (200 m of a 1 km cell, north-south: one in five)."""
    here = Point(48.8566, 2.3522)
    there = geo.offset(here, north_km=0.2, east_km=0)
    rng = random.Random(12)
    users = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(4000)]
    split = [
        Grid.of_user(u, secret=SECRET).cell_of(here)
        != Grid.of_user(u, secret=SECRET).cell_of(there)
        for u in users
    ]
    assert sum(split) / len(split) == pytest.approx(0.2, abs=0.03)


@pytest.mark.parametrize("sessions", [2, 10, 100])
def test_averaging_sessions_from_one_spot_gains_nothing(sessions: int) -> None:
    rng = random.Random(sessions)
    for _ in range(50):
        spot = Point(rng.uniform(-80, 80), rng.uniform(-180, 180))
        user = uuid.UUID(int=rng.getrandbits(128))
        seen = [fuzz(spot, user) for _ in range(sessions)]
        mean = Point(
            sum(p.lat for p in seen) / sessions,
            sum(p.lon for p in seen) / sessions,
        )
        single = geo.haversine_km(spot, seen[0])
        # Every session shows the very same point, so their mean is that point again.
        assert len(set(seen)) == 1
        assert geo.haversine_km(spot, mean) >= single - EPSILON_KM


# --- how far the fuzzed point is from the truth --------------------------------------------


@settings(max_examples=2000)
@given(points, user_ids, secrets)
@example(Point(89.986, 0), uuid.UUID(int=13361), SECRET)  # offset pointing away from the pole
@example(Point(90, 0), uuid.UUID(int=1), SECRET)
@example(Point(-90, 0), uuid.UUID(int=2), SECRET)
@example(Point(89.99, 180), uuid.UUID(int=3), SECRET)
@example(Point(-89.995, -180), uuid.UUID(int=4), SECRET)
@example(Point(0, 180), uuid.UUID(int=5), SECRET)
@example(Point(0, -180), uuid.UUID(int=6), SECRET)
@example(Point(0, 0), uuid.UUID(int=7), SECRET)
def test_fuzzed_point_is_between_the_privacy_floor_and_the_max_error(
    point: Point, user: uuid.UUID, secret: bytes
) -> None:
    fuzzed = fuzz(point, user, secret)
    assert -90 <= fuzzed.lat <= 90
    assert -180 <= fuzzed.lon <= 180
    km = geo.haversine_km(point, fuzzed)
    assert PRIVACY_FLOOR_KM - EPSILON_KM <= km <= MAX_ERROR_KM + EPSILON_KM


@settings(max_examples=3000)
@given(points, grids)
@example(Point(90, 123), Grid())
@example(Point(-90, -45), Grid())
@example(Point(89.995, 179.999), Grid())
@example(Point(89.995, 0), Grid(north_km=0.999))  # the polar row cut short by the pole
@example(Point(90, 0), Grid(north_km=0.5))
@example(Point(-89.999, 17), Grid(north_km=0.01, east_km=0.7))
@example(Point(0.001, 179.9999), Grid(north_km=0.3, east_km=0.3))  # equator and antimeridian
@example(Point(-0.001, -180), Grid(north_km=0.3, east_km=0.9))
def test_exact_point_is_within_half_diagonal_of_its_cell_centre(point: Point, grid: Grid) -> None:
    centre = grid.centre(*grid.cell_of(point))
    assert -90 <= centre.lat <= 90
    assert geo.haversine_km(point, centre) <= HALF_DIAGONAL_KM + EPSILON_KM


@settings(max_examples=2000)
@given(points, user_ids, secrets)
def test_fuzzed_point_is_on_the_ring_around_the_cell_centre(
    point: Point, user: uuid.UUID, secret: bytes
) -> None:
    grid = Grid.of_user(user, secret=secret)
    centre = grid.centre(*grid.cell_of(point))
    km = geo.haversine_km(centre, fuzz(point, user, secret))
    assert RING_INNER_KM - EPSILON_KM <= km <= RING_OUTER_KM + EPSILON_KM


@given(points, st.floats(0, 2 * RING_OUTER_KM), st.floats(0, 2 * math.pi))
def test_destination_is_exactly_that_far_even_at_the_poles(
    point: Point, distance_km: float, bearing: float
) -> None:
    moved = geo.destination(point, distance_km=distance_km, bearing=bearing)
    assert geo.haversine_km(point, moved) == pytest.approx(distance_km, abs=EPSILON_KM)


def test_offsets_spread_uniformly_over_the_ring() -> None:
    """Uniform over the ring's area: the share within radius r is the share of its area."""
    spot = Point(40.4168, -3.7038)
    rng = random.Random(7)
    radii = []
    for _ in range(4000):
        user = uuid.UUID(int=rng.getrandbits(128))
        grid = Grid.of_user(user, secret=SECRET)
        radii.append(geo.haversine_km(grid.centre(*grid.cell_of(spot)), fuzz(spot, user)))
    inner, outer = RING_INNER_KM, RING_OUTER_KM
    for r in (1.1, 1.25, 1.4):
        share = sum(d <= r for d in radii) / len(radii)
        assert share == pytest.approx((r * r - inner * inner) / (outer**2 - inner**2), abs=0.03)
    assert min(radii) >= inner - EPSILON_KM
    assert max(radii) <= outer + EPSILON_KM


@given(points, user_ids)
def test_two_users_at_one_spot_are_shown_within_two_max_errors(
    point: Point, other_user: uuid.UUID
) -> None:
    user = uuid.UUID(int=42)
    assume(user != other_user)
    km = geo.haversine_km(fuzz(point, user), fuzz(point, other_user))
    assert 1 <= geo.display_km(km) <= math.ceil(2 * MAX_ERROR_KM)


# --- the grid -------------------------------------------------------------------------------


@given(st.floats(-89, 89), longitudes, grids)
def test_cells_are_one_km_rows_and_at_most_one_km_columns(
    lat: float, lon: float, grid: Grid
) -> None:
    row, col = grid.cell_of(Point(lat, lon))
    centre = grid.centre(row, col)
    north = grid.centre(row + 1, 0)
    east = grid.centre(row, col + 1)
    assert (north.lat - centre.lat) * geo.KM_PER_DEGREE_LAT == pytest.approx(CELL_KM)
    assert geo.haversine_km(centre, east) <= CELL_KM + EPSILON_KM
    assert geo.haversine_km(centre, east) >= 0.99 * CELL_KM


# --- what a card shows ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("km", "shown"),
    [(0, 1), (0.001, 1), (0.5, 1), (1, 1), (1.0001, 2), (1.9, 2), (2, 2), (24.01, 25), (100, 100)],
)
def test_display_km_rounds_up_with_a_minimum_of_one(km: float, shown: int) -> None:
    assert geo.display_km(km) == shown


@given(st.floats(0, 20_000))
def test_display_km_is_a_whole_number_never_below_the_distance(km: float) -> None:
    shown = geo.display_km(km)
    assert isinstance(shown, int)
    assert shown >= 1
    assert shown >= km
    assert shown < km + 1 or shown == 1


# --- haversine ------------------------------------------------------------------------------


def test_haversine_paris_london_is_about_344_km() -> None:
    paris, london = Point(48.8566, 2.3522), Point(51.5074, -0.1278)
    assert geo.haversine_km(paris, london) == pytest.approx(344, abs=2)
    assert geo.haversine_km(london, paris) == geo.haversine_km(paris, london)


def test_haversine_across_the_antimeridian_and_to_the_pole() -> None:
    assert geo.haversine_km(Point(0, 179.9), Point(0, -179.9)) == pytest.approx(22.24, abs=0.01)
    assert geo.haversine_km(Point(90, 0), Point(90, 137)) == pytest.approx(0, abs=1e-9)
    quarter = math.pi * geo.EARTH_RADIUS_KM / 2
    assert geo.haversine_km(Point(0, 0), Point(90, 0)) == pytest.approx(quarter)


@given(st.builds(Point, latitudes, longitudes), st.builds(Point, latitudes, longitudes))
def test_haversine_is_symmetric_and_bounded(a: Point, b: Point) -> None:
    d = geo.haversine_km(a, b)
    assert d == pytest.approx(geo.haversine_km(b, a), abs=1e-9)
    assert 0 <= d <= math.pi * geo.EARTH_RADIUS_KM + EPSILON_KM
    assert geo.haversine_km(a, a) == 0
