"""The fast-usage Docker cluster of tests/autoscale (volumes' disk use is reported
with the tasks' usage)."""

from tests.autoscale.conftest import engine, services_factory, usage_cluster

__all__ = ["engine", "services_factory", "usage_cluster"]
