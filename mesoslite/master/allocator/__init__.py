"""The master's allocator: hierarchical weighted DRF turning free resources into offers.

``Allocator`` is pure (no I/O, no clock): the master calls it on events and every
allocation interval and turns the returned ``Allocation`` values into offers.  See
``docs/allocator.md`` for the algorithm and data layout.
"""

from mesoslite.master.allocator.allocator import Allocator
from mesoslite.master.allocator.filters import (
    DEFAULT_REFUSE_SECONDS,
    MAX_REFUSE_SECONDS,
    refuse_duration,
)
from mesoslite.master.allocator.quota import Quota, check_quota
from mesoslite.master.allocator.records import Allocation, check_role
from mesoslite.master.allocator.reports import (
    AGENT_FULL,
    AGENT_INACTIVE,
    AGENT_UNKNOWN,
    FILTERED,
    FRAMEWORK_INACTIVE,
    FRAMEWORK_UNKNOWN,
    ROLE_NOT_SUBSCRIBED,
    ROLE_SUPPRESSED,
)
from mesoslite.master.allocator.sorter import DRFSorter, dominant_share

__all__ = [
    "AGENT_FULL",
    "AGENT_INACTIVE",
    "AGENT_UNKNOWN",
    "DEFAULT_REFUSE_SECONDS",
    "FILTERED",
    "FRAMEWORK_INACTIVE",
    "FRAMEWORK_UNKNOWN",
    "MAX_REFUSE_SECONDS",
    "ROLE_NOT_SUBSCRIBED",
    "ROLE_SUPPRESSED",
    "Allocation",
    "Allocator",
    "DRFSorter",
    "Quota",
    "check_quota",
    "check_role",
    "dominant_share",
    "refuse_duration",
]
