"""Where test users are: a spot of each test's own, and spots a known distance from it."""

import random

from afterhours.geo import KM_PER_DEGREE_LAT


def random_place() -> tuple[float, float]:
    """A spot far from every other test's (1 in ~10^5 chance of two within 100 km)."""
    return random.uniform(-60, 60), random.uniform(-179, 179)


def km_north(place: tuple[float, float], km: float) -> tuple[float, float]:
    return place[0] + km / KM_PER_DEGREE_LAT, place[1]
