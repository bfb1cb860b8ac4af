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
from afterhours.profiles.service import GENDERS

GENDER_BITS = {gender: 1 << bit for bit, gender in enumerate(GENDERS)}
NEIGHBOURS = 16  # the first look: each searcher's nearest people of a suitable class
# The widest look: in a crowd, a searcher weighs at most this many of the nearest people of each
# suitable class in one sweep; farther ones wait for the next sweep (bounds a sweep's work).
MAX_NEIGHBOURS = 256


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
            gender=np.asarray([GENDER_BITS[g] for g in columns[2]], dtype=np.int64),
            seeking=np.asarray(
                [sum(GENDER_BITS[g] for g in gs) for gs in columns[3]],
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
    suits: NDArray[np.bool_] = (
        ((w.seeking[i] & w.gender[j]) != 0)
        & ((w.seeking[j] & w.gender[i]) != 0)
        & (w.min_age[i] <= w.age[j])
        & (w.age[j] <= w.max_age[i])
        & (w.min_age[j] <= w.age[i])
        & (w.age[i] <= w.max_age[j])
        & (km <= w.max_km[i])
        & (km <= w.max_km[j])
    )
    return suits


def suitors(w: Waiting, i: int) -> NDArray[np.int64]:
    """Everyone who suits user `i`, and whom `i` suits (compatible, both ways), `i` left out."""
    others = np.delete(np.arange(len(w), dtype=np.int64), i)
    xyz = unit_vectors(w.lat, w.lon)
    km = chord_to_km(np.linalg.norm(xyz[others] - xyz[i], axis=1))
    suited: NDArray[np.int64] = others[compatible(w, np.full_like(others, i), others, km)]
    return suited


def pair(
    w: Waiting,
    excluded: set[tuple[int, int]],
    *,
    first: int | None = None,
    owned: NDArray[np.bool_] | None = None,
) -> list[tuple[int, int, float]]:
    """Greedy pairs (i, j, km): in waiting order (`first` before everyone), each free user takes
    the nearest free compatible partner. `excluded` holds index pairs (either order) that must
    not meet: blocks and recent declines. With `owned` (a shard's own people, the rest its
    halo), only pairs whose longer-waiting member is owned are made: the other shard makes the
    rest.

    Rounds: free users are put in one k-d tree per (gender, sought gender) class, so a user only
    ever looks at people of a gender they seek who seek theirs; each searcher gets its `k`
    nearest there; compatibility is vectorised; one linear walk pairs them. A searcher whose
    whole list was taken searches again next round, with a larger `k` once rounds pay off little.
    """
    n = len(w)
    rank = np.empty(n, dtype=np.int64)
    order = np.arange(n) if first is None else np.r_[first, np.delete(np.arange(n), first)]
    rank[order] = np.arange(n)
    xyz = unit_vectors(w.lat, w.lon)
    reach = km_to_chord(float(w.max_km.max())) if n else 0.0
    free = np.ones(n, dtype=bool)
    searching = np.ones(n, dtype=bool)
    pairs: list[tuple[int, int, float]] = []
    k = NEIGHBOURS
    while n >= 2:
        searchers = np.nonzero(free & searching)[0]
        if searchers.size == 0:
            break
        who, whom, dist, full = _candidates(w, xyz, reach, free, searchers, k)
        ok = compatible(w, who, whom, dist) & (who != whom)
        if owned is not None:
            ok &= owned[np.where(rank[who] < rank[whom], who, whom)]
        who, whom, dist = who[ok], whom[ok], dist[ok]
        walk = np.lexsort((dist, rank[who]))
        made = 0
        taken = free.tolist()
        done_with = -1
        for i, j, km in zip(
            who[walk].tolist(), whom[walk].tolist(), dist[walk].tolist(), strict=True
        ):
            if i == done_with or not taken[i] or not taken[j]:
                continue
            if (i, j) in excluded or (j, i) in excluded:
                continue
            taken[i] = taken[j] = False
            done_with = i
            pairs.append((i, j, km))
            made += 1
        free = np.asarray(taken, dtype=bool)
        # Whoever saw everyone in reach and found no one is done; the rest look again.
        searching &= full
        # Another round at this k pays off only while it still pairs many; else look wider,
        # and once at the widest, leave the stragglers to the next sweep.
        if made * 10 < searchers.size:
            if k >= min(n, MAX_NEIGHBOURS):
                break
            k *= 4
    return pairs


def _candidates(
    w: Waiting,
    xyz: NDArray[np.float64],
    reach: float,
    free: NDArray[np.bool_],
    searchers: NDArray[np.int64],
    k: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.bool_]]:
    """(searcher, candidate, km) triples from the class trees, and which searchers' lists
    were cut off at `k` (there may be more people in reach)."""
    n = len(w)
    who, whom, dist = [], [], []
    full = np.zeros(n, dtype=bool)
    for gender in GENDER_BITS.values():
        for sought in GENDER_BITS.values():
            members = np.nonzero(free & (w.gender == gender) & ((w.seeking & sought) != 0))[0]
            mine = searchers[
                ((w.seeking[searchers] & gender) != 0) & (w.gender[searchers] == sought)
            ]
            if members.size == 0 or mine.size == 0:
                continue
            kk = min(k + 1, members.size)  # +1: a searcher may be in its own class tree
            chords, idx = cKDTree(xyz[members]).query(xyz[mine], k=kk, distance_upper_bound=reach)
            chords, idx = chords.reshape(mine.size, kk), idx.reshape(mine.size, kk)
            found = idx < members.size
            full[mine] |= found.all(axis=1) & (kk < members.size)
            rows, cols = np.nonzero(found)
            who.append(mine[rows])
            whom.append(members[idx[rows, cols]])
            dist.append(chord_to_km(chords[rows, cols]))
    if not who:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0), full
    return np.concatenate(who), np.concatenate(whom), np.concatenate(dist), full
