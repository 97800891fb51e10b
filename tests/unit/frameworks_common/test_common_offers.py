"""Offers -> placement agents, fixed ports, port assignment; task builders."""

from __future__ import annotations

import pytest

from frameworks.common.taskinfo import CheckSpec, DockerSpec, TaskSpec, build_task
from mesoslite.framework.offers import (
    assign_ports,
    fixed_port_resource,
    group_offers,
    placement_agents,
)
from mesoslite.messages.mesos import (
    ID,
    URL,
    Attribute,
    HealthCheckType,
    Offer,
    Text,
    ValueType,
    from_resources,
)
from mesoslite.placement import Problem, Task, place
from mesoslite.resources import Resources


def offer(oid: str, agent: str, text: str, rack: str | None = None) -> Offer:
    attrs = [Attribute(name="rack", type=ValueType.TEXT, text=Text(value=rack))] if rack else []
    return Offer(id=ID(oid), framework_id=ID("f"), agent_id=ID(agent), hostname=f"host-{agent}",
                 resources=from_resources(Resources.parse(text)), attributes=attrs,
                 url=URL(scheme="http", address={"ip": "10.0.0.1", "port": 5051}))


def test_offers_of_one_agent_are_summed() -> None:
    groups = group_offers([offer("o1", "a1", "cpus:1;mem:100;ports:[31000-31001]", "r1"),
                           offer("o2", "a1", "cpus:2;mem:50;ports:[31005-31005]"),
                           offer("o3", "a2", "cpus:1;mem:10")])
    a1 = groups["a1"]
    assert a1.offer_ids == ["o1", "o2"]
    assert a1.resources.scalar("cpus") == 3 and a1.resources.port_list() == [31000, 31001, 31005]
    assert a1.attributes == {"rack": "r1", "hostname": "host-a1"} and a1.address == "10.0.0.1"


def test_fixed_ports_become_scalars_and_leave_the_dynamic_pool() -> None:
    groups = group_offers([offer("o1", "a1", "cpus:4;mem:100;ports:[31000-31002]"),
                           offer("o2", "a2", "cpus:4;mem:100;ports:[32000-32002]")])
    [a1, a2] = placement_agents(groups.values(), fixed_ports=[31001])
    assert a1.resources[fixed_port_resource(31001)] == 1.0 and a1.ports == ((31000, 31000),
                                                                             (31002, 31002))
    assert fixed_port_resource(31001) not in a2.resources
    tasks = [Task("fixed", {"cpus": 1, fixed_port_resource(31001): 1}, ports=1),
             Task("any", {"cpus": 1}, ports=2, group="g")]
    answer = place(Problem([a1, a2], tasks, time_limit_s=0.2))
    assert answer.assignments["fixed"] == "a1"
    assert 31001 not in answer.ports["any"]


def test_assign_ports_keeps_request_order() -> None:
    assert assign_ports([0, 8080, 0], [31000, 31001]) == [31000, 8080, 31001]
    with pytest.raises(ValueError):
        assign_ports([0, 0], [31000])
    with pytest.raises(ValueError):
        assign_ports([0], [31000, 31001])


def test_build_task_for_docker_with_a_check_and_grace() -> None:
    spec = TaskSpec(name="web", argv=["--port", "8080"], cpus=0.5, mem=64, env={"A": "1"},
                    docker=DockerSpec("img:1", "BRIDGE", [(31000, 8080, "tcp")]),
                    check=CheckSpec("HTTP", port=31000, path="/health"), kill_grace_s=2.5,
                    discovery_name="web", port_names=["http"])
    info = build_task(spec, "t1", "a1", [31000])
    assert info.command.arguments == ["--port", "8080"] and info.command.value is None
    assert info.container.docker.port_mappings[0].container_port == 8080
    assert info.health_check.type == HealthCheckType.HTTP and info.health_check.http.port == 31000
    assert info.kill_policy.grace_period.nanoseconds == 2_500_000_000
    assert info.discovery.ports.ports[0].name == "http"
    assert [v.name for v in info.command.environment.variables] == ["A"]


def test_check_specs_need_what_their_kind_needs() -> None:
    with pytest.raises(ValueError):
        CheckSpec("HTTP").to_mesos()
    with pytest.raises(ValueError):
        CheckSpec("COMMAND").to_mesos()
    assert CheckSpec("TCP", port=1).to_mesos().tcp.port == 1
    assert CheckSpec("HTTPS", port=1).to_mesos().http.scheme == "https"
    assert CheckSpec("COMMAND", command="true").to_mesos().command.value == "true"
