"""The shard planner: load-sized rectangles that hold every waiting person exactly once."""

from afterhours.geo import Box
from afterhours.matching.shards import MIN_CELLS, Shard, plan


def holder(shards: list[Shard], row: int, col: int) -> list[Shard]:
    return [s for s in shards if s.box.contains(row + 0.5, col + 0.5)]


def test_no_one_waiting_is_no_shard() -> None:
    assert plan([], 100) == []
    assert plan([(5, 5, 0)], 100) == []


def test_a_quiet_world_is_one_shard_around_its_people() -> None:
    [shard] = plan([(51, 0, 30), (-34, 151, 20)], 1000)
    assert shard.people == 50
    assert shard.box.contains(51.5, 0.5) and shard.box.contains(-33.5, 151.5)


def test_busy_regions_are_cut_and_every_cell_has_one_shard() -> None:
    cities = [(52, 13, 9000), (48, 2, 8000), (40, -4, 7000), (51, 0, 9500), (41, 12, 6000)]
    towns = [(row, col, 3) for row in range(-40, 60, 7) for col in range(-120, 150, 11)]
    cells = cities + towns
    shards = plan(cells, 10_000)
    assert sum(s.people for s in shards) == sum(n for _, _, n in cells)
    for row, col, _ in cells:
        assert len(holder(shards, row, col)) == 1
    for row, col, _ in cities:  # each city ends up in a shard of its own size, not the world's
        [own] = holder(shards, row, col)
        assert own.people <= 10_000 + 3 * 50


def test_a_city_denser_than_the_target_is_never_cut_inside_its_reach() -> None:
    [shard] = plan([(52, 13, 60_000), (53, 13, 40_000)], 10_000)
    assert shard.people == 100_000
    assert shard.box.north - shard.box.south < 2 * MIN_CELLS


def test_the_world_edges_belong_to_the_shards_that_reach_them() -> None:
    shards = plan([(89, 179, 5), (-90, -180, 5)], 1000)
    assert len(holder(shards, 89, 179)) == 1
    assert any(s.box.contains(90.0, 180.0) for s in shards)


def test_reach_wraps_round_the_antimeridian() -> None:
    boxes = Box(-17.0, -16.0, 179.0, 180.0001).reach(100)
    assert len(boxes) == 2
    assert any(b.contains(-16.5, -179.5) for b in boxes)  # Fiji, across the date line
    assert not any(b.contains(-16.5, -178.0) for b in boxes)
    [polar] = Box(89.5, 90.0001, 0.0, 1.0).reach(100)
    assert polar.west == -180.0  # at the pole every longitude is within reach
