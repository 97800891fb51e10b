"""Fair ordering: priority first, then the user's dominant share (DRF)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from frameworks.batch.fairshare import Waiting, dominant_share, fair_order

TOTAL = {"cpus": 10.0, "mem": 1000.0}


def units(user, n, cpus=1.0, mem=10.0, priority=0, start=0):
    return [Waiting(f"{user}-{i}", user, priority, {"cpus": cpus, "mem": mem}, (start + i,))
            for i in range(n)]


def test_small_job_is_not_starved_by_a_big_one():
    big = units("alice", 10_000)
    small = units("bob", 3, start=10_000)  # submitted later
    order = fair_order(big + small, {}, TOTAL)
    positions = [i for i, w in enumerate(order) if w.user == "bob"]
    assert positions == [1, 3, 5]  # alternating from the start, not after 10,000


def test_running_tasks_count_toward_the_share():
    order = fair_order(units("alice", 3) + units("bob", 3, start=3),
                       {"alice": {"cpus": 4.0}}, TOTAL)
    assert [w.user for w in order] == ["bob"] * 3 + ["alice"] * 3


def test_priority_wins_over_share():
    order = fair_order(units("alice", 2, priority=5) + units("bob", 2, start=2),
                       {"alice": {"cpus": 9.0}}, TOTAL)
    assert [w.user for w in order] == ["alice", "alice", "bob", "bob"]


def test_dominant_resource_is_the_scarcest():
    assert dominant_share({"cpus": 1.0, "mem": 500.0}, TOTAL) == 0.5
    assert dominant_share({"gpus": 1.0}, TOTAL) == 0.0  # the cluster has none


users = st.sampled_from(["a", "b", "c", "d"])
unit = st.tuples(users, st.integers(-1, 1), st.floats(0.1, 4.0), st.floats(1.0, 400.0))


@given(st.lists(unit, max_size=60), st.dictionaries(users, st.floats(0.0, 8.0)))
def test_order_is_a_permutation_respecting_priority_and_fifo(raw, running):
    waiting = [Waiting(f"u{i}", user, prio, {"cpus": cpus, "mem": mem}, (i,))
               for i, (user, prio, cpus, mem) in enumerate(raw)]
    usage = {u: {"cpus": c} for u, c in running.items()}
    order = fair_order(waiting, usage, TOTAL)
    assert sorted(w.key for w in order) == sorted(w.key for w in waiting)
    prios = [w.priority for w in order]
    assert prios == sorted(prios, reverse=True)
    for user in "abcd":
        for prio in (-1, 0, 1):
            seqs = [w.seq for w in order if w.user == user and w.priority == prio]
            assert seqs == sorted(seqs)  # a user's own units stay first-come first-served


@given(st.lists(unit, min_size=1, max_size=60))
def test_each_pick_goes_to_a_user_with_the_least_share(raw):
    """The DRF invariant: whenever a unit is picked within a priority level, no other
    user still waiting at that level had a smaller dominant share."""
    waiting = [Waiting(f"u{i}", user, 0, {"cpus": cpus, "mem": mem}, (i,))
               for i, (user, _, cpus, mem) in enumerate(raw)]
    order = fair_order(waiting, {}, TOTAL)
    held: dict[str, dict[str, float]] = {}
    remaining = {w.key for w in waiting}
    for w in order:
        mine = dominant_share(held.get(w.user, {}), TOTAL)
        for other in {x.user for x in waiting if x.key in remaining}:
            assert mine <= dominant_share(held.get(other, {}), TOTAL) + 1e-9
        remaining.discard(w.key)
        slot = held.setdefault(w.user, {})
        for k, v in w.demand.items():
            slot[k] = slot.get(k, 0.0) + v
