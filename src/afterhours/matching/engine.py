"""The pairing of one sweep, in memory: nearest compatible partner first, longest wait first.

Waiting users are points on the unit sphere in a k-d tree (scipy), so each user's nearest
neighbours come from one vectorised query for everyone; compatibility (both ways: gender,
age range, distance) is computed for all neighbour pairs at once with numpy. Only the greedy
walk is Python, and it touches each user's short neighbour list once.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from afterhours.geo import EARTH_RADIUS_KM

GENDER_BITS = {"man": 1, "woman": 2, "nonbinary": 4}
NEIGHBOURS = 32  # first look; users whose 32 nearest are all unusable get a full radius search


@dataclass
class Waiting:
    """Every waiting user of one sweep, column-wise. Row order is the waiting order."""

    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    gender: NDArray[np.int64]  # one GENDER_BITS bit
    seeking: NDArray[np.int64]  # GENDER_BITS mask
    age: NDArray[np.int64]
    min_age: NDArray[np.int64]
    max_age: NDArray[np.int64]
    max_km: NDArray[np.float64]

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[object]]) -> "Waiting":
        """Rows of (lat, lon, gender, seeking genders, age, min age, max age, max km)."""
        columns = list(zip(*rows, strict=True)) if rows else [()] * 8
        return cls(
            lat=np.asarray(columns[0], dtype=np.float64),
            lon=np.asarray(columns[1], dtype=np.float64),
            gender=np.asarray([GENDER_BITS[g] for g in columns[2]], dtype=np.int64),  # type: ignore[index]
            seeking=np.asarray(
                [sum(GENDER_BITS[g] for g in gs) for gs in columns[3]],  # type: ignore[attr-defined]
                dtype=np.int64,
            ),
            age=np.asarray(columns[4], dtype=np.int64),
            min_age=np.asarray(columns[5], dtype=np.int64),
            max_age=np.asarray(columns[6], dtype=np.int64),
            max_km=np.asarray(columns[7], dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self.lat)


def unit_vectors(lat: NDArray[np.float64], lon: NDArray[np.float64]) -> NDArray[np.float64]:
    phi, lam = np.radians(lat), np.radians(lon)
    return np.column_stack((np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)))


def chord_to_km(chord: NDArray[np.float64]) -> NDArray[np.float64]:
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2, 0, 1))


def km_to_chord(km: float) -> float:
    return 2 * math.sin(km / (2 * EARTH_RADIUS_KM))


def compatible(
    w: Waiting, i: NDArray[np.int64], j: NDArray[np.int64], km: NDArray[np.float64]
) -> NDArray[np.bool_]:
    """Whether each (i, j) pair suits both sides: gender, age and distance, each way."""
    return (
        ((w.seeking[i] & w.gender[j]) != 0)
        & ((w.seeking[j] & w.gender[i]) != 0)
        & (w.min_age[i] <= w.age[j])
        & (w.age[j] <= w.max_age[i])
        & (w.min_age[j] <= w.age[i])
        & (w.age[i] <= w.max_age[j])
        & (km <= w.max_km[i])
        & (km <= w.max_km[j])
    )


def pair(
    w: Waiting, excluded: set[tuple[int, int]], *, first: int | None = None
) -> list[tuple[int, int, float]]:
    """Greedy pairs (i, j, km) in waiting order (`first` goes before everyone).

    `excluded` holds index pairs (either order) that must not meet: blocks, recent declines.
    """
    n = len(w)
    if n < 2:
        return []
    xyz = unit_vectors(w.lat, w.lon)
    tree = cKDTree(xyz)
    k = min(NEIGHBOURS + 1, n)  # +1: each point is its own nearest
    reach = km_to_chord(float(w.max_km.max()))
    chords, idx = tree.query(xyz, k=k, distance_upper_bound=reach)
    found = idx < n
    rows = np.repeat(np.arange(n), k).reshape(n, k)
    safe_idx = np.where(found, idx, 0)
    km = chord_to_km(np.where(found, chords, 0.0))
    ok = found & (safe_idx != rows) & compatible(w, rows, safe_idx, km)

    matched = np.zeros(n, dtype=bool)
    pairs: list[tuple[int, int, float]] = []
    order = range(n) if first is None else [first, *(i for i in range(n) if i != first)]
    for i in order:
        if matched[i]:
            continue
        partner = _nearest_free(i, idx[i][ok[i]], km[i][ok[i]], matched, excluded)
        if partner is None and found[i].all():
            # All 32 nearest were in the way: widen to everyone in reach (rare: dense crowds).
            partner = _search_radius(w, tree, xyz, i, matched, excluded)
        if partner is not None:
            j, distance = partner
            matched[i] = matched[j] = True
            pairs.append((i, j, distance))
    return pairs


def _nearest_free(
    i: int,
    candidates: NDArray[np.int64],
    km: NDArray[np.float64],
    matched: NDArray[np.bool_],
    excluded: set[tuple[int, int]],
) -> tuple[int, float] | None:
    for j, distance in zip(candidates.tolist(), km.tolist(), strict=True):
        if not matched[j] and (i, j) not in excluded and (j, i) not in excluded:
            return j, distance
    return None


def _search_radius(
    w: Waiting,
    tree: cKDTree,
    xyz: NDArray[np.float64],
    i: int,
    matched: NDArray[np.bool_],
    excluded: set[tuple[int, int]],
) -> tuple[int, float] | None:
    near = np.asarray(
        tree.query_ball_point(xyz[i], r=km_to_chord(float(w.max_km[i]))), dtype=np.int64
    )
    near = near[(near != i) & ~matched[near]]
    if near.size == 0:
        return None
    km = chord_to_km(np.linalg.norm(xyz[near] - xyz[i], axis=1))
    ok = compatible(w, np.full(near.size, i), near, km)
    near, km = near[ok], km[ok]
    order = np.argsort(km, kind="stable")
    return _nearest_free(i, near[order], km[order], matched, excluded)
