"""A framework written with mesoshttp, a third-party Mesos v1 HTTP API client
(https://pypi.org/project/mesoshttp/), used unchanged against mesoslite.

Launches one task into the first offer, declines the others, prints every update
and exits 0 once the task finished.  Run: python mesoshttp_framework.py MASTER_URL
"""

import sys

from mesoshttp.client import MesosClient


class Framework:
    def __init__(self, url):
        self.client = MesosClient(mesos_urls=[url], frameworkName="mesoshttp-compat",
                                  frameworkUser="root")
        self.client.on(MesosClient.SUBSCRIBED, self.subscribed)
        self.client.on(MesosClient.OFFERS, self.offers)
        self.client.on(MesosClient.UPDATE, self.update)
        self.launched = False
        self.final = None

    def subscribed(self, driver):
        print("subscribed", driver.frameworkId, flush=True)

    def offers(self, offers):
        for offer in offers:
            mesos_offer = offer.get_offer()
            if self.launched:
                offer.decline()
                continue
            self.launched = True
            offer.accept([{
                "name": "compat", "task_id": {"value": "compat-1"},
                "agent_id": {"value": mesos_offer["agent_id"]["value"]},
                "resources": [
                    {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                    {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
                ],
                "command": {"value": "echo compat"},
            }])

    def update(self, update):
        status = update["status"]
        print("update", status["task_id"]["value"], status["state"], flush=True)
        if status["state"] in ("TASK_FINISHED", "TASK_FAILED", "TASK_ERROR", "TASK_LOST"):
            self.final = status["state"]
            self.client.stop = True


framework = Framework(sys.argv[1])
framework.client.register()
sys.exit(0 if framework.final == "TASK_FINISHED" else 1)
