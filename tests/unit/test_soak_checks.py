"""The soak's invariant checkers on hand-built observations: each passes what is
allowed and reports what is not."""

from __future__ import annotations

import base64
import calendar
import os
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from mesoslite.testing.poll import wait_until
from mesoslite.testing.soak import observe
from mesoslite.testing.soak.checks import (
    CopiesChecker,
    HttpRecord,
    allowed_copies,
    app_of,
    check_cron,
    check_exactly_once,
    check_http,
    lb_figures,
    scan_for_secrets,
)

WEB1, WEB2, WEB3 = (f"soak_web.{c * 32}" for c in "abc")


def test_task_ids_map_to_their_apps_and_batch_attempts_to_none():
    assert app_of(WEB1) == "/soak/web"
    assert app_of("soak-pipe-1796.prep.0.1") is None


def test_allowed_copies_follow_the_upgrade_strategy():
    assert allowed_copies(3, 3, 0.5, 0.5, deploying=False) == 3
    assert allowed_copies(3, 3, 0.5, 0.5, deploying=True) == 4  # floor(3 * 1.5)
    assert allowed_copies(3, 3, 1.0, 0.0, deploying=True) == 4  # floor == ceiling: +1
    assert allowed_copies(4, 2, 0.5, 0.5, deploying=True) == 4  # scaling down from 4


def test_copies_above_the_limit_or_twice_are_reported_once_per_episode():
    checker = CopiesChecker(grace=30)
    limits = {"/soak/web": 2}
    assert checker.observe(0, {"a1": {WEB1}, "d1": {WEB2}}, limits, set(), {}) == []
    over = checker.observe(1, {"a1": {WEB1, WEB3}, "d1": {WEB2}}, limits, set(), {})
    assert [v.invariant for v in over] == ["live-copies"] and "(3)" in over[0].message
    assert checker.observe(2, {"a1": {WEB1, WEB3}, "d1": {WEB2}}, limits, set(), {}) == []
    twice = checker.observe(3, {"a1": {WEB1}, "d1": {WEB1}}, limits, set(), {})
    assert any("several agents" in v.message for v in twice)


def test_copies_on_a_cut_or_just_healed_agent_do_not_count_until_the_grace_ends():
    checker = CopiesChecker(grace=30)
    limits = {"/soak/web": 1}
    copies = {"a1": {WEB1}, "a2": {WEB2}}
    assert checker.observe(10, copies, limits, {"a1"}, {}) == []
    assert checker.observe(20, copies, limits, set(), {"a1": 15}) == []  # healed 5 s ago
    late = checker.observe(50, copies, limits, set(), {"a1": 15})  # 35 s after the heal
    assert len(late) == 1 and late[0].details["live"] == 2


def test_exactly_once():
    attempts = [{"id": "r.s.0.1", "run_id": "r", "step": "s", "index": 0, "state": "FINISHED"},
                {"id": "r.s.1.1", "run_id": "r", "step": "s", "index": 1, "state": "LOST"},
                {"id": "r.s.1.2", "run_id": "r", "step": "s", "index": 1, "state": "RUNNING"}]
    assert check_exactly_once(["r.s.0.1", "r.s.1.1"], attempts) == []
    assert check_exactly_once(["r.s.0.1"], attempts) == []  # a LOST one may not have run
    messages = [v.message for v in check_exactly_once(["r.s.0.1", "r.s.0.1", "x.y.0.1"],
                                                      attempts)]
    assert any("ran 2 times" in m for m in messages)
    assert any("does not know" in m for m in messages)
    assert any("without having run" in v.message for v in check_exactly_once([], attempts))
    twice = [*attempts, {"id": "r.s.0.2", "run_id": "r", "step": "s", "index": 0,
                         "state": "FINISHED"}]
    assert any("finished 2 times" in v.message
               for v in check_exactly_once(["r.s.0.1", "r.s.0.2"], twice))


T0 = calendar.timegm((2026, 12, 5, 12, 0, 30))  # 12:00:30 UTC; ticks at 12:01, 12:02 ...


def _run(minute: int) -> dict:
    return {"trigger": "schedule:default", "scheduled_for": T0 + 30 + 60 * (minute - 1)}


def test_cron_ticks_must_be_run_or_recorded_missed():
    until = T0 + 30 + 60 * 4  # ticks 1..5
    runs = [_run(m) for m in (1, 2, 5)]
    collapsed = {"schedule": "default", "fire_time": T0 + 30 + 60 * 3,
                 "reason": "missed: 2 earlier fire times collapsed into the latest"}
    ok = check_cron("* * * * *", "UTC", T0, until, runs, [collapsed], "default")
    assert ok.violations == [] and ok.ticks == 5
    one = {**collapsed, "reason": "missed: 1 earlier fire time collapsed into the latest"}
    missing = check_cron("* * * * *", "UTC", T0, until, runs, [one], "default")
    assert len(missing.violations) == 1  # tick 3 is neither run nor covered
    assert check_cron("* * * * *", "UTC", T0, until, [_run(1)], [], "default").violations


@given(split=st.lists(st.booleans(), min_size=1, max_size=30))
@settings(max_examples=100, deadline=None)
def test_any_split_of_ticks_into_runs_and_collapsed_misses_passes(split):
    until = T0 + 30 + 60 * (len(split) - 1)
    runs = [_run(i + 1) for i, ran in enumerate(split) if ran]
    skips, pending = [], 0
    for i, ran in enumerate(split):
        if ran and pending:  # the misses before a run are recorded when it starts
            skips.append({"schedule": "default", "fire_time": T0 + 30 + 60 * (i - 1),
                          "reason": f"missed: {pending} earlier fire time"
                                    f"{'s' if pending > 1 else ''} collapsed into the latest"})
            pending = 0
        elif not ran:
            pending += 1
    if pending:
        last = T0 + 30 + 60 * (len(split) - 1)
        skips.append({"schedule": "default", "fire_time": last,
                      "reason": f"missed: {pending} earlier fire time"
                                f"{'s' if pending > 1 else ''} collapsed into the latest"})
    assert check_cron("* * * * *", "UTC", T0, until, runs, skips, "default",
                      kept=10**6).violations == []


def test_5xx_is_a_violation_unless_a_master_answers_503_during_its_own_fault():
    records = [HttpRecord(100, "master", "GET", "/master/state", 503),
               HttpRecord(100, "services", "POST", "/v2/apps", 503),
               HttpRecord(500, "master", "GET", "/master/state", 503),
               HttpRecord(100, "batch", "GET", "/x", 404)]
    found = check_http(records, [(90, 110, "master")])
    assert [(v.details["status"], v.at) for v in found] == [(503, 100), (503, 500)]
    assert "services" in found[0].message


@given(value=st.text(min_size=8, max_size=40), prefix=st.binary(max_size=200),
       suffix=st.binary(max_size=200), form=st.sampled_from(["raw", "b64", "url", "bare"]))
@settings(max_examples=200, deadline=None)
def test_a_secret_is_found_raw_or_in_base64_at_any_offset(value, prefix, suffix, form):
    raw = value.encode()
    encoded = {"raw": raw, "b64": base64.b64encode(raw),
               "url": base64.urlsafe_b64encode(raw),
               "bare": base64.b64encode(raw).rstrip(b"=")}[form]
    found = scan_for_secrets([("file", prefix + encoded + suffix)], ["decoy-" + "x" * 30, value])
    assert len(found) == 1 and found[0].details["values"] == [1]
    assert value not in found[0].message
    assert scan_for_secrets([("file", b"nothing here")], [value]) == []


def test_lb_figures_tell_errors_and_recoveries():
    samples = [(0, True, False, False), (1, False, False, True), (2, False, False, True),
               (4, True, False, False), (5, True, True, False), (6, False, True, False)]
    figures = lb_figures(samples)
    assert figures["errors"].startswith("50.00%")
    assert figures["errors during upgrades without faults"].startswith("50.00% of 2")
    assert figures["recovery p50/p99/max"].startswith("3.0/3.0/3.0 s over 1")


def test_live_process_tasks_are_found_by_their_sandbox(tmp_path):
    sandbox = tmp_path / "a1" / "sandboxes" / "fw-1" / WEB1
    sandbox.mkdir(parents=True)
    (tmp_path / "d1").mkdir()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             cwd=sandbox)
    try:
        wait_until(lambda: os.path.exists(f"/proc/{child.pid}/cwd")
                   and os.readlink(f"/proc/{child.pid}/cwd") == str(sandbox), 10,
                   message="the child in its sandbox")
        found = observe.live_process_tasks({"a1": tmp_path / "a1", "d1": tmp_path / "d1"})
        assert found == {"a1": {WEB1}, "d1": set()}
    finally:
        child.kill()
        child.wait()
    assert observe.live_process_tasks({"a1": tmp_path / "a1"}) == {"a1": set()}


def test_side_file_and_file_chunks(tmp_path):
    assert observe.read_side_file(tmp_path / "none") == []
    (tmp_path / "attempts.log").write_text("a.s.0.1\n\na.s.1.1\n")
    assert observe.read_side_file(tmp_path / "attempts.log") == ["a.s.0.1", "a.s.1.1"]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f").write_bytes(b"x")
    assert dict(observe.file_chunks([tmp_path])) == {
        str(tmp_path / "attempts.log"): b"a.s.0.1\n\na.s.1.1\n", str(tmp_path / "sub" / "f"): b"x"}
