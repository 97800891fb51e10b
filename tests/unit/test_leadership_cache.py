"""Followers read the leader's URL from the store at most once per campaign interval,
however many refused requests ask at once (a failover's reconnect storm), and see a
new leader once that interval has passed."""

from __future__ import annotations

import asyncio
import threading

from mesoslite.master.leadership import PostgresLeadership


class CountingStore:
    """The one store method followers call; counts the reads and can fail."""

    url = "postgresql://unused"

    def __init__(self, leader: str | None) -> None:
        self.leader = leader
        self.reads = 0
        self.fail = False
        self._lock = threading.Lock()

    def leader_url(self) -> str | None:
        with self._lock:
            self.reads += 1
        if self.fail:
            raise OSError("database unreachable")
        return self.leader


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_storm_of_askers_costs_one_read_per_interval() -> None:
    store, clock = CountingStore("http://a:5050"), Clock()
    follower = PostgresLeadership(store, "http://b:5050", "b", interval=0.5,  # type: ignore[arg-type]
                                  monotonic=clock)
    answers = await asyncio.gather(*(follower.leader_url() for _ in range(200)))
    assert set(answers) == {"http://a:5050"} and store.reads == 1

    store.leader = "http://c:5050"  # a failover: c won
    clock.now += 0.4
    assert await follower.leader_url() == "http://a:5050"  # within the interval
    clock.now += 0.1
    assert await follower.leader_url() == "http://c:5050"
    assert store.reads == 2


async def test_an_unreachable_database_means_no_known_leader_and_is_retried() -> None:
    store, clock = CountingStore("http://a:5050"), Clock()
    follower = PostgresLeadership(store, "http://b:5050", "b", interval=0.5,  # type: ignore[arg-type]
                                  monotonic=clock)
    store.fail = True
    assert await follower.leader_url() is None
    store.fail = False
    clock.now += 0.5
    assert await follower.leader_url() == "http://a:5050"
    assert store.reads == 2
