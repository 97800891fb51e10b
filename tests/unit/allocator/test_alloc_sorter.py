"""The DRF sorter on its own: progressive filling, weights, the role tree, ties, and the
incremental order staying equal to a full re-sort."""

from __future__ import annotations

import random

import pytest

from mesoslite.master.allocator import DRFSorter
from mesoslite.resources import Resources


def fill(sorter: DRFSorter, demands: dict[int, dict[str, float]], capacity: dict[str, float]
         ) -> dict[int, int]:
    """Progressive filling (the DRF paper's algorithm): repeatedly launch one task of the
    first client in DRF order whose task still fits; stop when none fits."""
    left = dict(capacity)
    tasks = dict.fromkeys(demands, 0)
    while True:
        for slot in sorter.order():
            demand = demands[slot]
            if all(left[k] >= v for k, v in demand.items()):
                sorter.allocated(slot, demand)
                for k, v in demand.items():
                    left[k] -= v
                tasks[slot] += 1
                break
        else:
            return tasks


def test_drf_paper_example() -> None:
    # Ghodsi et al. 2011: 9 CPUs, 18 GB; A's tasks <1 CPU, 4 GB>, B's <3 CPUs, 1 GB>.
    sorter = DRFSorter()
    sorter.add_client(0, "*", "A")
    sorter.add_client(1, "*", "B")
    capacity = {"cpus": 9, "mem": 18}
    sorter.add_total(capacity)
    tasks = fill(sorter, {0: {"cpus": 1, "mem": 4}, 1: {"cpus": 3, "mem": 1}}, capacity)
    assert tasks == {0: 3, 1: 2}
    # Both end with a dominant share of 2/3: A's is memory, B's is CPU.
    assert sorter.client_share(0) == pytest.approx(2 / 3)
    assert sorter.client_share(1) == pytest.approx(2 / 3)
    assert sorter.client_allocation(0) == {"cpus": 3, "mem": 12}
    assert sorter.client_allocation(1) == {"cpus": 6, "mem": 2}


def test_drf_paper_example_as_roles() -> None:
    # The same users as roles of one framework each: the role level does the DRF.
    sorter = DRFSorter()
    sorter.add_client(0, "a", "fw")
    sorter.add_client(1, "b", "fw")
    capacity = {"cpus": 9, "mem": 18}
    sorter.add_total(capacity)
    tasks = fill(sorter, {0: {"cpus": 1, "mem": 4}, 1: {"cpus": 3, "mem": 1}}, capacity)
    assert tasks == {0: 3, 1: 2}
    assert sorter.role_share("a") == pytest.approx(2 / 3)


def test_weighted_role_gets_twice_the_share() -> None:
    sorter = DRFSorter({"gold": 2.0})
    sorter.add_client(0, "gold", "g")
    sorter.add_client(1, "silver", "s")
    capacity = {"cpus": 30, "mem": 300}
    sorter.add_total(capacity)
    tasks = fill(sorter, {0: {"cpus": 1, "mem": 10}, 1: {"cpus": 1, "mem": 10}}, capacity)
    assert tasks == {0: 20, 1: 10}
    assert sorter.role_share("gold") == pytest.approx(2 * sorter.role_share("silver"))


def test_framework_weight_within_a_role() -> None:
    sorter = DRFSorter()
    sorter.add_client(0, "r", "heavy", weight=3.0)
    sorter.add_client(1, "r", "light")
    capacity = {"cpus": 40}
    sorter.add_total(capacity)
    tasks = fill(sorter, {0: {"cpus": 1}, 1: {"cpus": 1}}, capacity)
    assert tasks == {0: 30, 1: 10}


def test_role_tree_orders_subtrees_by_their_total_share() -> None:
    sorter = DRFSorter()
    sorter.add_client(0, "eng/web", "w")
    sorter.add_client(1, "eng/batch", "b")
    sorter.add_client(2, "ops", "o")
    sorter.add_total({"cpus": 100})
    sorter.allocated(0, {"cpus": 15})
    sorter.allocated(1, {"cpus": 5})
    sorter.allocated(2, {"cpus": 30})
    # eng (20) before ops (30); inside eng, batch (5) before web (15)
    assert sorter.order() == [1, 0, 2]
    assert sorter.role_allocation("eng") == {"cpus": 20}
    sorter.allocated(1, {"cpus": 20})  # eng now holds 40 > ops' 30
    assert sorter.order() == [2, 0, 1]
    assert sorter.roles() == ["eng", "eng/batch", "eng/web", "ops"]


def test_role_with_frameworks_and_subroles_uses_a_virtual_child() -> None:
    sorter = DRFSorter()
    sorter.add_client(0, "eng", "own")
    sorter.add_client(1, "eng/web", "w")
    sorter.add_total({"cpus": 100})
    sorter.allocated(0, {"cpus": 10})
    assert sorter.order() == [1, 0]  # eng/web (0) before eng's own frameworks (10)
    sorter.allocated(1, {"cpus": 20})
    assert sorter.order() == [0, 1]
    assert sorter.role_allocation("eng") == {"cpus": 30}
    sorter.remove_client(1)
    assert sorter.order() == [0]
    assert sorter.roles() == ["eng"]


def test_subrole_weight_applies_inside_its_parent() -> None:
    sorter = DRFSorter({"eng/web": 4.0})
    sorter.add_client(0, "eng/web", "w")
    sorter.add_client(1, "eng/batch", "b")
    capacity = {"cpus": 50}
    sorter.add_total(capacity)
    assert fill(sorter, {0: {"cpus": 1}, 1: {"cpus": 1}}, capacity) == {0: 40, 1: 10}


def test_equal_shares_take_turns_then_go_by_name() -> None:
    sorter = DRFSorter()
    for slot, name in enumerate(["c", "a", "b"]):
        sorter.add_client(slot, "*", name)
    sorter.add_total({"cpus": 10})
    assert sorter.order() == [1, 2, 0]  # all zero: by name
    # allocations of nothing but ports leave shares equal: the count rotates them
    sorter.allocated(1, {})
    assert sorter.order() == [2, 0, 1]
    sorter.allocated(2, {})
    assert sorter.order() == [0, 1, 2]


def test_shares_ignore_kinds_the_cluster_lacks() -> None:
    sorter = DRFSorter()
    sorter.add_client(0, "*", "a")
    sorter.add_total({"cpus": 10})
    sorter.allocated(0, {"cpus": 1, "gpus": 1})
    assert sorter.client_share(0) == pytest.approx(0.1)


def test_unallocated_returns_only_what_was_held() -> None:
    sorter = DRFSorter()
    sorter.add_client(0, "r", "a")
    sorter.add_total({"cpus": 10, "mem": 10})
    sorter.allocated(0, {"cpus": 2})
    sorter.unallocated(0, {"cpus": 5, "mem": 1})
    assert sorter.client_allocation(0) == {}
    assert sorter.role_allocation("r") == {}


def _rank_order(sorter: DRFSorter, slots: list[int]) -> list[int]:
    ranks = sorter.ranks()
    return sorted(slots, key=lambda s: int(ranks[s]))


@pytest.mark.parametrize(
    "roles",
    [
        ["*"],  # one flat role: the benchmark's shape
        ["a", "b", "c"],
        ["a", "a/b", "a/b/c", "d"],  # nested roles with virtual children
        ["x/y/z/w/v"],  # deep: small label range, gaps run out, relabelling
        [f"r{i}/s{i}/t/u/v/w/q" for i in range(3)],  # deeper: tiny label range
        ["a/b/c/d/e/f/g/h"],  # too deep and wide for labels: depth-first positions
    ],
)
def test_incremental_order_equals_full_resort(roles: list[str]) -> None:
    rng = random.Random(7)
    sorter = DRFSorter({roles[0]: 2.0})
    slots = list(range(60))
    for slot in slots:
        sorter.add_client(slot, rng.choice(roles), f"fw{slot:02d}", rng.choice([1.0, 2.0]))
    sorter.add_total({"cpus": 1000, "mem": 1000})
    for _ in range(400):
        sorter.ranks()  # clean order: allocations below take the incremental path
        for _ in range(rng.randint(1, 30)):
            slot = _rank_order(sorter, slots)[rng.randint(0, 3)]
            kind = rng.choice(["cpus", "mem"])
            sorter.allocated(slot, {kind: rng.choice([0, 1, 2.5])})
        incremental = _rank_order(sorter, slots)
        sorter.add_total({})  # marks the order stale: the next call re-sorts from scratch
        assert incremental == sorter.order()
        if rng.random() < 0.3:
            sorter.unallocated(rng.choice(slots), {"cpus": 3})


def test_client_slots_are_reusable() -> None:
    sorter = DRFSorter()
    sorter.add_client(0, "*", "a")
    with pytest.raises(ValueError):
        sorter.add_client(0, "*", "b")
    sorter.remove_client(0)
    sorter.add_client(0, "*", "b")
    assert sorter.order() == [0]


def test_total_changes_reorder() -> None:
    sorter = DRFSorter()
    sorter.add_client(0, "*", "a")
    sorter.add_client(1, "*", "b")
    sorter.add_total(Resources.of(cpus=10, mem=100).scalars)
    sorter.allocated(0, {"cpus": 5})  # a: 0.5
    sorter.allocated(1, {"mem": 40})  # b: 0.4
    assert sorter.order() == [1, 0]
    sorter.add_total({"cpus": 10})  # a: 0.25 now
    assert sorter.order() == [0, 1]
    sorter.remove_total({"cpus": 10})
    assert sorter.order() == [1, 0]
