"""The WAITING / LAST FAILURE cell of the apps and batch listings (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mesoslite.cli.waiting import WIDTH, app_cell, clip, run_cell

NO_DOCKER = {"message": "The agent has no docker containerizer (it runs: process)",
             "state": "TASK_ERROR"}


def queued(**summary: str) -> dict:
    return {"app": {"id": "/a"}, "count": 1, "processedOffersSummary": summary}


def test_an_app_backing_off_after_failures_shows_the_failure():
    cell = app_cell(queued(waitingReason="launch backoff after task failures"), NO_DOCKER)
    assert cell == "retrying: The agent has no docker containerizer (it runs: process)"


def test_an_app_waiting_for_another_reason_shows_that_reason():
    cell = app_cell(queued(waitingReason="waiting for dependency /db to be healthy"),
                    NO_DOCKER)
    assert cell == "waiting for dependency /db to be healthy"
    assert app_cell(queued(unplacedReason="not enough cpus"), None) == "not enough cpus"
    assert app_cell(queued(), None) == "waiting for offers"


def test_a_running_app_shows_its_last_failure_or_nothing():
    assert app_cell(None, None) == "-"
    assert app_cell(None, {"state": "TASK_FAILED", "message": ""}) == \
        "last failure: TASK_FAILED"


def run(state: str, message: str = "") -> dict:
    return {"id": "r1", "state": state, "message": message}


def test_runs_show_their_queue_reason_or_how_they_ended():
    queue = [{"run": "r1", "step": "lint", "status": "dependencies", "why": "waits for x"},
             {"run": "r1", "step": "test", "status": "ready",
              "why": "no docker containerizer on 1 agent"}]
    assert run_cell(run("ACTIVE"), queue) == "test: no docker containerizer on 1 agent"
    assert run_cell(run("ACTIVE"), []) == "-"
    assert run_cell(run("SUCCEEDED"), queue) == "-"
    assert run_cell(run("FAILED", "step test failed"), []) == "step test failed"


def test_a_run_backing_off_shows_the_failure_it_retries():
    attempts = [{"step": "test", "index": 2, "state": "FAILED", "counts_as_failure": True,
                 "message": "Command exited with status 4"}]
    backoff = [{"run": "r1", "step": "test", "status": "backoff",
                "why": "attempt 2 backs off after a failure: starts in 1.0s"}]
    assert run_cell(run("ACTIVE"), backoff, attempts) == \
        "retrying: test[2]: Command exited with status 4"
    assert run_cell(run("ACTIVE"), [], attempts) == \
        "last failure: test[2]: Command exited with status 4"


@given(st.text())
def test_cells_are_one_bounded_line(text):
    cell = clip(text)
    assert "\n" not in cell and len(cell) <= WIDTH
    if len(" ".join(text.split())) <= WIDTH:
        assert cell == " ".join(text.split())
