"""The agent's /metrics and the master's additions, read as Prometheus parses them."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from mesoslite.agent.server import Agent
from mesoslite.messages.mesos import TaskState
from mesoslite.scheduler import task_info
from mesoslite.testing.http import get_bytes
from mesoslite.testing.poll import wait_for


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = (await get_bytes(url + "/metrics")).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def agent_url(agent: Agent) -> str:
    return f"http://{agent.address}:{agent.config.port}"


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_agent_metrics_count_launches_failures_updates_and_latency(cluster, framework):
    offer = await framework.offer()
    agent = next(a for a in cluster.agents if a.agent_id == offer.agent_id.value)
    ok = task_info("m-ok", "m-ok", offer.agent_id, cmd="sleep 30", cpus=0.1, mem=16)
    # a program that does not exist: the containerizer's launch fails
    bad = task_info("m-bad", "m-bad", offer.agent_id, argv=["/no/such/program"], cpus=0.1,
                    mem=16)
    await framework.launch(offer, [ok, bad])
    await framework.wait_state("m-ok", TaskState.TASK_RUNNING)
    await framework.wait_state("m-bad", TaskState.TASK_FAILED)

    m = await scrape(agent_url(agent))
    assert value(m, "mesoslite_agent_tasks", state="TASK_RUNNING") == 1
    assert value(m, "mesoslite_agent_container_launches_total", containerizer="process") == 2
    assert value(m, "mesoslite_agent_container_launch_failures_total",
                 containerizer="process") == 1
    assert value(m, "mesoslite_agent_container_launch_seconds_count",
                 containerizer="process") == 2
    assert value(m, "mesoslite_agent_task_launch_seconds_count") == 1
    assert value(m, "mesoslite_agent_status_updates_total", state="TASK_RUNNING") == 1
    assert value(m, "mesoslite_agent_status_updates_total", state="TASK_FAILED") == 1
    assert value(m, "mesoslite_agent_status_updates_sent_total") >= 4
    assert value(m, "mesoslite_agent_registered") == 1
    assert ("mesoslite_agent_status_updates_pending", ()) in m
    await framework.driver.teardown()


async def test_agent_metrics_count_resends_while_updates_wait_for_acks(
        cluster, framework_factory):
    fw = await framework_factory(cluster.master_url, implicit_acks=False)
    offer = await fw.run_task("m-noack", "sleep 30")
    await fw.wait_state("m-noack", TaskState.TASK_STARTING)
    agent = next(a for a in cluster.agents if a.agent_id == offer.agent_id.value)

    async def resent() -> bool:
        m = await scrape(agent_url(agent))
        return (value(m, "mesoslite_agent_status_updates_retried_total") >= 1
                and value(m, "mesoslite_agent_status_updates_pending") >= 1)

    await wait_for(resent, timeout=10, message="a resent status update")
    await fw.driver.teardown()


async def test_master_metrics_follow_prometheus_conventions(cluster, framework):
    await framework.run_task("mm-1", "sleep 30")
    await framework.wait_state("mm-1", TaskState.TASK_RUNNING)
    m = await scrape(cluster.master_url)
    assert value(m, "mesoslite_master_tasks_launched_total") == 1
    assert value(m, "mesoslite_master_offers_sent_total") >= 1
    assert value(m, "mesoslite_master_task_state_transitions_total", state="TASK_RUNNING") == 1
    assert value(m, "mesoslite_master_events_total", type="TASK_ADDED") == 1
    assert value(m, "mesoslite_master_mem_bytes", kind="total") == 3 * 1024 * 1024 * 1024
    assert value(m, "mesoslite_master_mem_bytes", kind="used") == 32 * 1024 * 1024
    share = value(m, "mesoslite_master_framework_dominant_share", framework_id=framework.id,
                  framework_name="test")
    assert 0 < share <= 1
    assert value(m, "mesoslite_master_allocation_seconds_count") >= 1
    names = {name for name, _ in m}
    counters = {n for n in names if n.endswith("_total")}
    assert counters, names
    assert not any(n.endswith("_seconds_total") for n in names)
    await framework.driver.teardown()
