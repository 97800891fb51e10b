"""The framework kit: the offer cycle as a tested pure core, for every framework.

Write a ``Workload`` (what should run, and the tasks that run it); a
``FrameworkRunner`` connects it to the master and gives it, once and tested:
reconciliation, kill-unknown, offer holding and declining, revive/suppress that
follow demand, launch backoff, placement off the event loop, re-subscription with
backoff, group commit, and acknowledgements sent only after the write holding their
update is durable.  See ``docs/framework-api.md`` and
``examples/frameworks/hello.py``.
"""

from mesoslite.framework.backoff import BackoffPolicy, LaunchBackoff
from mesoslite.framework.core import FrameworkCore, KitSettings
from mesoslite.framework.journal import Acknowledge, Journal, Receipt
from mesoslite.framework.offers import AgentOffers, assign_ports, group_offers, placement_agents
from mesoslite.framework.runner import FrameworkRunner
from mesoslite.framework.store import DocumentStore
from mesoslite.framework.workload import (
    AgentLaunch,
    Outcome,
    Plan,
    Round,
    Workload,
    launched_task_ids,
)

__all__ = [
    "Acknowledge",
    "AgentLaunch",
    "AgentOffers",
    "BackoffPolicy",
    "DocumentStore",
    "FrameworkCore",
    "FrameworkRunner",
    "Journal",
    "KitSettings",
    "LaunchBackoff",
    "Outcome",
    "Plan",
    "Receipt",
    "Round",
    "Workload",
    "assign_ports",
    "group_offers",
    "launched_task_ids",
    "placement_agents",
]
