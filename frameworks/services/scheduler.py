"""The services framework's ``Scheduler``: Mesos events -> controller and launcher.

It talks to the master only through the public driver (``mesoslite.scheduler``), as
any third-party framework would: offers go to the launcher (placement, LAUNCH,
DECLINE), status updates and (re)subscriptions to the controller (reconciliation,
kills, deployments).  Acknowledgements are explicit and sent only after the update
they acknowledge is committed.
"""

from __future__ import annotations

import logging

from frameworks.services.controller import Controller
from frameworks.services.launcher import Launcher
from mesoslite.messages.mesos import MasterInfo, Offer, TaskStatus
from mesoslite.scheduler import Driver, Scheduler

log = logging.getLogger(__name__)


class ServicesScheduler(Scheduler):
    def __init__(self, controller: Controller, launcher: Launcher) -> None:
        self.controller = controller
        self.launcher = launcher
        self.errors: list[str] = []

    async def subscribed(self, driver: Driver, framework_id: str,
                         master_info: MasterInfo | None) -> None:
        log.info("subscribed as framework %s", framework_id)
        await self.controller.subscribed(driver, framework_id)

    async def disconnected(self, driver: Driver) -> None:
        log.warning("lost the master; re-subscribing")
        self.controller.disconnected()

    async def offers(self, driver: Driver, offers: list[Offer]) -> None:
        await self.launcher.offers(driver, offers)

    async def update(self, driver: Driver, status: TaskStatus) -> None:
        await self.controller.update(status)

    async def error(self, driver: Driver, message: str) -> None:
        log.error("the master reported an error: %s", message)
        self.errors.append(message)
