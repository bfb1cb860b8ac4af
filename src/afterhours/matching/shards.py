"""Geoshards: the waiting world cut into rectangles by load, each swept as a job of its own.

The planner counts matchable sessions on a grid of CELL_DEGREES cells (one GROUP BY in the
database) and cuts the world like a k-d tree: a rectangle holding more than
`match_shard_users` people is split at its weighted median, across its longer side, into two
rectangles of whole cells, until each holds few enough or is too narrow to split. Empty space
costs nothing (an ocean is part of whichever rectangle surrounds it); a busy region is cut
into several.

No rectangle is cut narrower than MIN_CELLS cells (≈ 2 × the 100 km reach): a shard sees
everyone within reach of its own people (its halo), so cutting inside the reach would make
each side load the other's people as halo and cost more than it saves. A single metropolis is
therefore one shard; what shards buy is that cities and regions are swept side by side, by as
many workers as there are, and that a slow city never delays a quiet one.

Who owns a pair across a border: the shard of whoever of the two has waited longer
(matching.sweep, engine.pair's `owned`). Each shard sweeps its own people plus its halo, and
keeps only the pairs it owns, so a pair is made by exactly one shard, in waiting order there.
"""

import math
from dataclasses import dataclass

from afterhours.geo import Box

CELL_DEGREES = 1
MIN_CELLS = 2


@dataclass(frozen=True)
class Shard:
    box: Box
    people: int  # when planned

    @property
    def key(self) -> str:
        """Names the shard's job lock: the same rectangle, planned again, is the same shard."""
        return str(self.box)


Cell = tuple[int, int, int]  # (row, column, people) on the CELL_DEGREES grid


def plan(cells: list[Cell], target: int) -> list[Shard]:
    """Rectangles of whole cells, each holding at most `target` people unless too narrow to
    cut; together they hold every counted person, each in exactly one."""
    shards: list[Shard] = []
    stack = [[cell for cell in cells if cell[2] > 0]]
    while stack:
        members = stack.pop()
        if not members:
            continue
        rows = [r for r, _, _ in members]
        cols = [c for _, c, _ in members]
        south, north, west, east = min(rows), max(rows) + 1, min(cols), max(cols) + 1
        people = sum(n for _, _, n in members)
        halves = _split(members, south, north, west, east) if people > target else None
        if halves is None:
            degrees = CELL_DEGREES
            box = Box(south * degrees, north * degrees, west * degrees, east * degrees)
            shards.append(Shard(_closed_at_the_edges(box), people))
        else:
            stack.extend(halves)
    return sorted(shards, key=lambda s: (s.box.south, s.box.west))


def _split(
    members: list[Cell], south: int, north: int, west: int, east: int
) -> tuple[list[Cell], list[Cell]] | None:
    """The two halves at the weighted median across the longer side (in km), or None."""
    middle = math.radians((south + north) / 2 * CELL_DEGREES)
    axes = [(north - south, 0), ((east - west) * math.cos(middle), 1)]
    for _, axis in sorted(axes, reverse=True):
        low, high = (south, north) if axis == 0 else (west, east)
        if high - low < 2 * MIN_CELLS:
            continue
        weights: dict[int, int] = {}
        for cell in members:
            weights[cell[axis]] = weights.get(cell[axis], 0) + cell[2]
        half, seen, cut = sum(weights.values()) / 2, 0, low + MIN_CELLS
        for line in sorted(weights):
            seen += weights[line]
            if seen >= half:
                cut = line + 1
                break
        cut = min(max(cut, low + MIN_CELLS), high - MIN_CELLS)
        return (
            [cell for cell in members if cell[axis] < cut],
            [cell for cell in members if cell[axis] >= cut],
        )
    return None


def _closed_at_the_edges(box: Box) -> Box:
    """The world's north pole and antimeridian east edge belong to the boxes that reach them."""
    north = 90.0001 if box.north >= 90 else box.north
    east = 180.0001 if box.east >= 180 else box.east
    return Box(box.south, north, box.west, east)
