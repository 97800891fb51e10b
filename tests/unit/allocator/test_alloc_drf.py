"""DRF through the allocator: whole agents go to the lowest weighted dominant share."""

from __future__ import annotations

from collections import Counter

import pytest

from mesoslite.master.allocator import Allocation, Allocator
from mesoslite.resources import Resources

R = Resources.of


def holders(allocations: list[Allocation]) -> Counter[str]:
    return Counter(a.framework_id for a in allocations)


def test_drf_paper_example_one_task_per_offer() -> None:
    # Ghodsi et al. 2011 through the allocator: one agent of 9 CPUs and 18 GB; each
    # offer's receiver launches one task if it fits (the task's resources stay
    # allocated) and returns the rest; a receiver whose task no longer fits declines
    # with a filter.  Progressive filling: A gets 3 tasks <1, 4>, B gets 2 <3, 1>.
    allocator = Allocator()
    allocator.add_framework("A", ["*"])
    allocator.add_framework("B", ["*"])
    allocator.add_agent("agent", R(cpus=9, mem=18))
    tasks = {"A": R(cpus=1, mem=4), "B": R(cpus=3, mem=1)}
    launched: Counter[str] = Counter()
    order = []
    now = 0.0
    while offers := allocator.allocate(now):
        (offer,) = offers
        task = tasks[offer.framework_id]
        if offer.resources.contains(task):
            launched[offer.framework_id] += 1
            order.append(offer.framework_id)
            allocator.recover(offer.framework_id, "*", "agent", offer.resources - task, now)
        else:
            allocator.recover(offer.framework_id, "*", "agent", offer.resources, now, 3600)
        now += 1
    assert launched == {"A": 3, "B": 2}
    # shares after each launch: A 4/18, B 3/9, A 8/18, B 6/9, A 12/18
    assert order == ["A", "B", "A", "B", "A"]
    shares = allocator.shares()["frameworks"]
    assert shares["A"]["share"] == pytest.approx(2 / 3)  # 12 of 18 GB
    assert shares["B"]["share"] == pytest.approx(2 / 3)  # 6 of 9 CPUs
    assert allocator.available("agent") == R(mem=4)


def test_equal_frameworks_alternate() -> None:
    allocator = Allocator()
    allocator.add_framework("b", ["*"])
    allocator.add_framework("a", ["*"])
    for i in range(6):
        allocator.add_agent(f"s{i}", R(cpus=1, mem=1024))
    offers = allocator.allocate(0)
    # ties at zero go by name; afterwards the lower share comes first
    assert [a.framework_id for a in offers] == ["a", "b", "a", "b", "a", "b"]
    assert [a.agent_id for a in offers] == [f"s{i}" for i in range(6)]


def test_each_agent_is_offered_once_per_round_and_whole() -> None:
    allocator = Allocator()
    allocator.add_framework("a", ["*"])
    allocator.add_agent("s0", R(cpus=4, mem=100, ports=[(31000, 31009)]))
    (offer,) = allocator.allocate(0)
    assert offer == Allocation("a", "*", "s0", R(cpus=4, mem=100, ports=[(31000, 31009)]))
    assert allocator.allocate(1) == []  # everything is out with the offer
    assert allocator.available("s0") == Resources()


def test_weighted_role_gets_about_twice_the_share() -> None:
    allocator = Allocator({"gold": 2.0})
    allocator.add_framework("g", ["gold"])
    allocator.add_framework("s", ["silver"])
    for i in range(30):
        allocator.add_agent(f"s{i}", R(cpus=2, mem=2048))
    assert holders(allocator.allocate(0)) == {"g": 20, "s": 10}
    roles = allocator.shares()["roles"]
    assert roles["gold"]["share"] == pytest.approx(2 * roles["silver"]["share"])
    assert roles["gold"]["weighted_share"] == pytest.approx(roles["silver"]["weighted_share"])
    assert roles["gold"]["weight"] == 2.0


def test_set_role_weight_changes_later_rounds() -> None:
    allocator = Allocator()
    allocator.add_framework("g", ["gold"])
    allocator.add_framework("s", ["silver"])
    for i in range(12):
        allocator.add_agent(f"s{i}", R(cpus=1))
    allocator.set_role_weight("silver", 3.0)
    assert holders(allocator.allocate(0)) == {"g": 3, "s": 9}


def test_hierarchical_roles_share_level_by_level() -> None:
    allocator = Allocator()
    allocator.add_framework("web", ["eng/web"])
    allocator.add_framework("batch", ["eng/batch"])
    allocator.add_framework("ops", ["ops"])
    for i in range(12):
        allocator.add_agent(f"s{i}", R(cpus=1, mem=10))
    # eng and ops split the cluster; inside eng, web and batch split eng's half
    assert holders(allocator.allocate(0)) == {"ops": 6, "web": 3, "batch": 3}
    roles = allocator.shares()["roles"]
    assert roles["eng"]["allocated"] == R(cpus=6, mem=60)
    assert roles["eng/web"]["share"] == pytest.approx(0.25)


def test_parent_role_frameworks_compete_with_its_subroles() -> None:
    allocator = Allocator()
    allocator.add_framework("own", ["eng"])
    allocator.add_framework("web", ["eng/web"])
    allocator.add_framework("ops", ["ops"])
    for i in range(8):
        allocator.add_agent(f"s{i}", R(cpus=1))
    assert holders(allocator.allocate(0)) == {"ops": 4, "own": 2, "web": 2}


def test_multi_role_framework_is_one_client_per_role() -> None:
    allocator = Allocator()
    allocator.add_framework("multi", ["a", "b"])
    allocator.add_framework("single", ["a"])
    for i in range(8):
        allocator.add_agent(f"s{i}", R(cpus=1))
    offers = allocator.allocate(0)
    by_role = Counter((a.framework_id, a.role) for a in offers)
    # roles a and b get 4 agents each; inside a, the two frameworks split evenly
    assert by_role == {("multi", "b"): 4, ("multi", "a"): 2, ("single", "a"): 2}
    shares = allocator.shares()["frameworks"]["multi"]
    assert shares["allocated"] == R(cpus=6)
    assert shares["roles"]["a"]["allocated"] == R(cpus=2)


def test_framework_weight_within_role() -> None:
    allocator = Allocator()
    allocator.add_framework("big", ["r"], weight=3.0)
    allocator.add_framework("small", ["r"])
    for i in range(8):
        allocator.add_agent(f"s{i}", R(cpus=1))
    assert holders(allocator.allocate(0)) == {"big": 6, "small": 2}


def test_dominant_resource_decides_not_the_first_one() -> None:
    allocator = Allocator()
    allocator.add_framework("cpu_heavy", ["*"])
    allocator.add_framework("mem_heavy", ["*"])
    allocator.add_agent("big", R(cpus=10, mem=100))
    allocator.add_agent("x", R(cpus=1, mem=1))
    # existing usage: cpu_heavy holds 40% of all cpus, mem_heavy 50% of all memory; by
    # its first resource (cpus) mem_heavy would look smaller, by dominant share it is not
    allocator.allocate_used("cpu_heavy", "*", "big", R(cpus=4.4, mem=1))
    allocator.allocate_used("mem_heavy", "*", "big", R(cpus=1, mem=50.5))
    first, second = allocator.allocate(0)
    assert first == Allocation("cpu_heavy", "*", "big", R(cpus=4.6, mem=48.5))
    assert second == Allocation("mem_heavy", "*", "x", R(cpus=1, mem=1))


def test_allocation_counts_at_once_within_a_round() -> None:
    allocator = Allocator()
    allocator.add_framework("a", ["*"])
    allocator.add_framework("b", ["*"])
    allocator.add_agent("huge", R(cpus=100))
    allocator.add_agent("s1", R(cpus=1))
    allocator.add_agent("s2", R(cpus=1))
    offers = allocator.allocate(0)
    # "a" took the huge agent first, so both small ones go to "b"
    assert [(o.framework_id, o.agent_id) for o in offers] == [
        ("a", "huge"), ("b", "s1"), ("b", "s2")]
