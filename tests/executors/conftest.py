"""Fixtures for the executor tests: the in-process clusters of tests/integration."""

from tests.integration.conftest import (  # noqa: F401 - fixtures
    cluster,
    cluster_factory,
    framework,
    framework_factory,
)
