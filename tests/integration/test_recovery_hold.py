"""A master that won the election but is still loading its state holds requests until
it leads (agents and frameworks reconnecting after a failover are answered, not sent
into their backoff by a 503), and answers 503 once the hold runs out."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable

import pytest

from mesoslite.master.server import MasterServer
from mesoslite.store.db import sqlite_url
from mesoslite.testing.http import request
from mesoslite.testing.poll import wait_for
from tests.integration.conftest import fast_config


@pytest.fixture
async def loading_master(tmp_path, monkeypatch: pytest.MonkeyPatch
                         ) -> AsyncIterator[Callable[..., object]]:
    """``make(hold)``: a started master whose state load waits for ``release``."""
    made: list[tuple[MasterServer, threading.Event]] = []

    async def make(hold: float) -> tuple[MasterServer, threading.Event]:
        config = fast_config(port=0)
        config.recovery_hold = hold
        master = MasterServer(config, sqlite_url(tmp_path / f"m{len(made)}.db"))
        release = threading.Event()
        load = master.store.load

        def slow_load():  # runs on the store's thread
            release.wait(30)
            return load()

        monkeypatch.setattr(master.store, "load", slow_load)
        await master.start(wait_elected=False)
        made.append((master, release))
        return master, release

    yield make
    for master, release in made:
        release.set()
        await master.stop()


async def test_requests_during_recovery_are_answered_once_it_leads(loading_master) -> None:
    master, release = await loading_master(hold=30)
    url = f"http://127.0.0.1:{master.port}/master/state"
    answers = [asyncio.create_task(request("GET", url)) for _ in range(3)]
    await wait_for(lambda: master.held_requests == 3, 10, message="3 requests held")
    assert not any(a.done() for a in answers)
    release.set()
    for status, _, body in await asyncio.gather(*answers):
        assert status == 200
        assert json.loads(body)["id"] == master.state.master_id
    assert master.held_requests == 0


async def test_past_the_hold_the_answer_is_503_retry_shortly(loading_master) -> None:
    master, _ = await loading_master(hold=0.2)
    status, _, body = await request("GET", f"http://127.0.0.1:{master.port}/master/state")
    assert status == 503
    assert json.loads(body)["message"] == "No leading master is elected yet; retry shortly"
    assert master.held_requests == 0
