"""The agent's host facts: the kernel's ephemeral port range and offered ports inside
it (tasks given such ports can fail to listen), and every test suite's agent port
range kept below it (the cause of health-check tests failing on a loaded CI run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesoslite.agent.host import DEFAULT_PORTS, ephemeral_overlap, local_port_range
from mesoslite.resources import Resources

LINUX_DEFAULT = (32768, 60999)


def ports(text: str) -> Resources:
    return Resources.parse(f"ports:[{text}]")


def test_reads_the_kernel_range_and_tolerates_its_absence(tmp_path: Path) -> None:
    path = tmp_path / "ip_local_port_range"
    path.write_text("32768\t60999\n")
    assert local_port_range(path) == LINUX_DEFAULT
    path.write_text("garbage\n")
    assert local_port_range(path) is None
    assert local_port_range(tmp_path / "absent") is None


@pytest.mark.parametrize(("given", "overlap"), [
    ("31000-32000", []),
    ("31000-32768", [(32768, 32768)]),
    ("33000-33899", [(33000, 33899)]),
    ("20000-20010,60000-61010", [(60000, 60999)]),
    ("61000-62000", []),
])
def test_overlap_names_the_offending_ports(given: str, overlap: list) -> None:
    assert ephemeral_overlap(ports(given), LINUX_DEFAULT) == overlap


def test_no_range_known_means_no_overlap() -> None:
    assert ephemeral_overlap(ports("33000-33899"), None) == []


def test_the_default_ports_are_below_the_linux_default_range() -> None:
    assert ephemeral_overlap(Resources(ranges={"ports": [DEFAULT_PORTS]}), LINUX_DEFAULT) == []


def suite_port_ranges() -> dict[str, Resources]:
    from tests.autoscale import conftest as autoscale
    from tests.batch import conftest as batch
    from tests.discovery import conftest as discovery
    from tests.docker import conftest as docker
    from tests.faults import test_agent_faults, test_agent_kill_loop, test_partitions
    from tests.integration import conftest as integration
    from tests.secrets import conftest as secrets
    from tests.services import conftest as services

    return {
        "autoscale": autoscale.RESOURCES,
        "batch": batch.AGENT_RESOURCES,
        "discovery process": discovery.PROCESS_RESOURCES,
        "discovery docker": discovery.DOCKER_RESOURCES,
        "docker": docker.DOCKER_RESOURCES,
        "docker (text)": Resources.parse(docker.DOCKER_RESOURCES_TEXT),
        "agent faults": Resources.parse(test_agent_faults.RESOURCES),
        "agent kill loop": Resources.parse(test_agent_kill_loop.RESOURCES),
        "partitions": Resources.parse(test_partitions.RESOURCES),
        "integration": integration.AGENT_RESOURCES,
        "secrets": secrets.RESOURCES,
        "services": services.AGENT_RESOURCES,
        "services docker": services.DOCKER_AGENT_RESOURCES,
    }


def test_every_suite_offers_ports_below_this_kernels_ephemeral_range() -> None:
    kernel = local_port_range() or LINUX_DEFAULT
    inside = {name: overlap for name, res in suite_port_ranges().items()
              if (overlap := ephemeral_overlap(res, kernel))}
    assert inside == {}
