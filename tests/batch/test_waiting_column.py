"""``mesoslite batch list`` says why a run waits (the queue's reason) or how it failed."""

from __future__ import annotations

from mesoslite.testing.poll import wait_for
from tests.batch.conftest import submit, wait_run
from tests.batch.test_cli import cli


def waiting_cells(listing: str) -> dict[str, str]:
    """Run id -> its WAITING / LAST FAILURE cell, from the runs table of ``batch list``."""
    lines = listing.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("RUN "))
    start = lines[at].index("WAITING / LAST FAILURE")
    return {line.split()[0]: line[start:].strip() for line in lines[at + 1:] if line.strip()}


async def test_a_docker_step_on_agents_without_docker_says_why(batch_env):
    server = await batch_env.server(await batch_env.cluster(containerizers=("process",)))
    waiting = await submit(server, {"id": "needs-docker", "image": "mesoslite/busybox:latest",
                                    "command": "true", "kill_grace": 0})
    failed = await submit(server, {"id": "broken", "command": "exit 3", "kill_grace": 0})
    assert (await wait_run(server, failed["id"]))["state"] == "FAILED"

    async def listed() -> dict[str, str] | None:
        code, out, err = await cli(server.url, "list")
        assert code == 0, err
        cells = waiting_cells(out)
        return cells if "no docker containerizer" in cells.get(waiting["id"], "") else None

    cells = await wait_for(listed, 60, interval=0.2,
                           message="batch list to say the agents have no docker containerizer")
    # (the framework learns which agents lack Docker one refused launch at a time)
    assert cells[waiting["id"]].startswith("main: no docker containerizer on ")
    assert cells[failed["id"]].endswith("Command exited with status 3"), cells
