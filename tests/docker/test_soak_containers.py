"""The soak's clean-up of containers a killed run left behind: the containers of soak
tasks go (running or not), every other container stays.  Without it a second run's
Docker agents offered ports such a container still held, and /soak/box never
converged (found by the soak's first runs)."""

from __future__ import annotations

import docker

from mesoslite.agent.containerizers.docker_spec import LABEL_TASK_ID
from mesoslite.testing.soak.cluster import remove_soak_containers

IMAGE = "mesoslite/busybox:latest"


def test_left_behind_soak_containers_are_removed_and_others_kept(docker_engine):
    client: docker.DockerClient = docker_engine
    made = []
    try:
        for task, run in (("soak_box.1234", True), ("soak_web.5678", False),
                          ("other_app.9abc", True)):
            container = client.containers.create(IMAGE, ["sleep", "600"],
                                                 labels={LABEL_TASK_ID: task})
            made.append(container)
            if run:
                container.start()
        assert remove_soak_containers() >= 2  # and any a killed soak left
        left = {c.labels.get(LABEL_TASK_ID)
                for c in client.containers.list(all=True, filters={"label": LABEL_TASK_ID})}
        assert "other_app.9abc" in left
        assert not {"soak_box.1234", "soak_web.5678"} & left
    finally:
        for container in made:
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
