"""Cron, pure: time zones, concurrency policies, deadlines, missed runs collapsed."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frameworks.batch.cron import CronError, decide, fire_times, next_fire, validate_cron
from frameworks.batch.model import ScheduleSpec

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC).timestamp()  # a Wednesday, 12:00 UTC


def sched(cron="*/5 * * * *", policy="ALLOW", deadline=None, tz="UTC", enabled=True):
    return ScheduleSpec("s", cron, tz, policy, deadline, enabled)


def test_time_zone_is_honoured_across_daylight_saving():
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    start = dt.datetime(2024, 3, 29, 12, tzinfo=berlin).timestamp()
    times = fire_times("0 9 * * *", "Europe/Berlin", start, start + 3 * 86400)
    local = [dt.datetime.fromtimestamp(t, berlin) for t in times]
    assert [t.hour for t in local] == [9, 9, 9]  # 09:00 local on both sides of the change
    assert times[1] - times[0] == 23 * 3600  # the night the clocks go forward


def test_nothing_due_before_the_first_fire_time():
    d = decide(sched(), T0, T0 + 299, active_runs=0)
    assert d.start is None and d.cursor == T0 and d.next_fire == T0 + 300


def test_due_fire_time_starts_one_run():
    d = decide(sched(), T0, T0 + 301, active_runs=0)
    assert d.start == T0 + 300 and not d.replace and d.cursor == T0 + 300 and not d.skipped


def test_missed_fire_times_while_down_start_one_run_not_a_burst():
    d = decide(sched(), T0, T0 + 10 * 300 + 1, active_runs=0)
    assert d.start == T0 + 3000  # only the latest
    assert len(d.skipped) == 1 and "9 earlier fire times" in d.skipped[0][1]
    again = decide(sched(), d.cursor, T0 + 10 * 300 + 2, active_runs=1)
    assert again.start is None and not again.skipped  # nothing new is due


def test_starting_deadline_drops_a_late_run():
    d = decide(sched(deadline=60), T0, T0 + 300 + 61, active_runs=0)
    assert d.start is None and d.cursor == T0 + 300
    assert "starting deadline" in d.skipped[-1][1]
    ok = decide(sched(deadline=60), T0, T0 + 300 + 59, active_runs=0)
    assert ok.start == T0 + 300


def test_forbid_skips_while_a_run_is_active():
    d = decide(sched(policy="FORBID"), T0, T0 + 301, active_runs=1)
    assert d.start is None and d.cursor == T0 + 300
    assert d.skipped[-1][1].startswith("FORBID")
    assert decide(sched(policy="FORBID"), T0, T0 + 301, active_runs=0).start == T0 + 300


def test_replace_cancels_the_active_run_and_starts():
    d = decide(sched(policy="REPLACE"), T0, T0 + 301, active_runs=2)
    assert d.start == T0 + 300 and d.replace
    assert not decide(sched(policy="REPLACE"), T0, T0 + 301, active_runs=0).replace


def test_allow_runs_concurrently():
    d = decide(sched(policy="ALLOW"), T0, T0 + 301, active_runs=3)
    assert d.start == T0 + 300 and not d.replace


def test_disabled_schedule_never_starts_and_moves_its_cursor():
    d = decide(sched(enabled=False), T0, T0 + 3000, active_runs=0)
    assert d.start is None and d.cursor == T0 + 3000


@pytest.mark.parametrize("expr", ["* * *", "61 * * * *", "@often", "0 0 30 2 *", "a b c d e"])
def test_invalid_expressions(expr):
    with pytest.raises(CronError):
        validate_cron(expr)


@pytest.mark.parametrize("expr", ["*/5 * * * *", "0 9 * * MON-FRI", "@daily", "@hourly"])
def test_valid_expressions(expr):
    validate_cron(expr)


exprs = st.sampled_from(["*/5 * * * *", "0 * * * *", "17 3 * * *", "0 9 * * 1-5", "@daily"])
zones = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
policies = st.sampled_from(["ALLOW", "FORBID", "REPLACE"])


@given(exprs, zones, policies, st.floats(0, 3 * 86400), st.floats(0, 7 * 86400),
       st.integers(0, 3), st.one_of(st.none(), st.floats(1, 7200)))
def test_decisions_never_burst_and_never_go_back(expr, tz, policy, offset, gap, active,
                                                 deadline):
    s = ScheduleSpec("s", expr, tz, policy, deadline)
    cursor, now = T0 + offset, T0 + offset + gap
    d = decide(s, cursor, now, active)
    assert d.cursor >= cursor  # the cursor never moves back
    assert d.next_fire > now
    if d.start is not None:
        assert cursor < d.start <= now
        assert d.cursor == d.start  # at most one run per decision: the latest due
        assert fire_times(expr, tz, d.start, now) == []
        if policy == "FORBID":
            assert active == 0
        if deadline is not None:
            assert now - d.start <= deadline
    else:
        assert not d.replace
    # Deciding again at the same moment starts nothing new.
    assert decide(s, d.cursor, now, active + (1 if d.start else 0)).start is None


@given(exprs, zones, st.floats(0, 86400))
def test_next_fire_is_the_first_of_fire_times(expr, tz, offset):
    t = T0 + offset
    assert fire_times(expr, tz, t, t + 8 * 86400)[0] == next_fire(expr, tz, t)
