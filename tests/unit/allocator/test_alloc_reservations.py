"""Reserved pools in the allocator: resources reserved for a role are offered to that
role only, come back to it when released (a decline filters them for that role
alone), and return to everyone on unreserve."""

from __future__ import annotations

from mesoslite.master.allocator import Allocator
from mesoslite.resources import Resources

R = Resources.of
AGENT = R(cpus=4, mem=1024)
HELD = R(cpus=1, mem=256)


def offers(allocator: Allocator, now: float = 0.0):
    return sorted((a.framework_id, a.role, a.agent_id, a.reservation, a.resources)
                  for a in allocator.allocate(now))


def setup() -> Allocator:
    allocator = Allocator()
    allocator.add_framework("db-fw", ["db"])
    allocator.add_agent("s0", AGENT)
    [(fw, role, agent, reservation, resources)] = offers(allocator)
    assert (fw, role, agent, reservation, resources) == ("db-fw", "db", "s0", None, AGENT)
    # db-fw accepts with RESERVE of part of the offer, and returns the rest
    allocator.reserve("db-fw", "db", "s0", HELD)
    allocator.recover("db-fw", "db", "s0", AGENT - HELD, 0.0)
    allocator.add_framework("web-fw", ["web"])
    return allocator


def test_reserved_resources_go_to_their_role_only() -> None:
    allocator = setup()
    assert allocator.reserved("s0") == {"db": HELD}
    # db-fw still holds the reserved part (its task runs); web-fw gets the rest
    assert offers(allocator) == [("web-fw", "web", "s0", None, AGENT - HELD)]
    # the task ends: the reserved part comes back, to role db only, even though
    # web-fw has the lower share
    allocator.recover("db-fw", "db", "s0", HELD, 0.0, reservation="db")
    assert offers(allocator) == [("db-fw", "db", "s0", "db", HELD)]
    allocator.recover("db-fw", "db", "s0", HELD, 0.0, refuse_seconds=60, reservation="db")
    assert offers(allocator, 1.0) == []  # declined by db-fw: web-fw never sees it


def test_unreserve_returns_them_to_the_pool() -> None:
    allocator = setup()
    allocator.recover("web-fw", "web", "s0", AGENT - HELD, 0.0)  # nothing outstanding
    allocator.unreserve("db-fw", "db", "s0", HELD)
    assert allocator.reserved("s0") == {}
    allocator.recover("db-fw", "db", "s0", HELD, 0.0, refuse_seconds=60)
    allocator.recover("web-fw", "web", "s0", AGENT - HELD, 0.0, refuse_seconds=60)
    assert offers(allocator, 61.0) in (
        [("db-fw", "db", "s0", None, AGENT)], [("web-fw", "web", "s0", None, AGENT)])
