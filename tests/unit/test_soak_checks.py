"""The soak's invariant checkers (``mesoslite/testing/soak/checks.py``) on hand-built
observations: each test shows what passes and what is reported.  Property tests tie
the checkers to the code they mirror: ``allowed_copies`` to the services framework's
``floor_and_ceiling``, ``check_cron`` to the batch framework's own ``cron.decide``
(driven through random outages), and the secret scan to values hidden at any offset,
raw or inside base64."""

from __future__ import annotations

import base64
import calendar
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frameworks.batch import cron
from frameworks.batch.model import ScheduleSpec
from frameworks.services.deployments import floor_and_ceiling
from frameworks.services.taskspec import new_task_id
from frameworks.services.views import AppView
from mesoslite.testing.soak.checks import (
    CopiesChecker,
    HttpRecord,
    allowed_copies,
    app_of,
    check_cron,
    check_exactly_once,
    check_http,
    check_output,
    lb_errors_by_fault,
    lb_figures,
    must_have_run,
    scan_for_secrets,
    secret_forms,
)
from mesoslite.testing.soak.workload import expected_output, output_job

WEB1, WEB2, WEB3 = (f"soak_web.{c * 32}" for c in "abc")

# ------------------------------------------------------------------ live copies


def test_task_ids_map_to_their_apps_and_other_ids_to_none():
    assert app_of(WEB1) == "/soak/web"
    assert app_of(new_task_id("/a/b.v2/c")) == "/a/b.v2/c"  # dots inside segments
    assert app_of(new_task_id("/web")) == "/web"
    assert app_of("soak-pipe-20261205120000-ab12cd.prep.0.1") is None  # a batch attempt
    assert app_of("soak_pod.instance-" + "a" * 32 + ".web") is None  # a pod's container
    assert app_of("Soak_web." + "a" * 32) is None  # no app id has capitals
    assert app_of("a" * 32) is None


@given(instances=st.integers(0, 40), before=st.none() | st.integers(0, 40),
       mhc=st.sampled_from([0.0, 0.25, 0.5, 0.9, 1.0]),
       moc=st.sampled_from([0.0, 0.1, 0.5, 1.0]), old=st.booleans())
@settings(max_examples=300, deadline=None)
def test_allowed_copies_is_the_frameworks_ceiling_during_deployments(
        instances, before, mhc, moc, old):
    view = AppView("/x", instances, "v", min_health_capacity=mhc, max_over_capacity=moc)
    _, ceiling = floor_and_ceiling(view, old)
    got = allowed_copies(before, instances, mhc, moc, deploying=True, old_tasks=old)
    assert got == max(ceiling, before or 0)
    assert allowed_copies(before, instances, mhc, moc, deploying=False) == instances


def test_allowed_copies_examples():
    assert allowed_copies(3, 3, 0.5, 0.5, deploying=False) == 3
    assert allowed_copies(3, 3, 0.5, 0.5, deploying=True) == 4  # floor(3 x 1.5)
    assert allowed_copies(3, 3, 1.0, 0.0, deploying=True) == 4  # floor == ceiling: +1
    assert allowed_copies(3, 3, 1.0, 0.0, deploying=True, old_tasks=False) == 3
    assert allowed_copies(6, 2, 0.5, 0.5, deploying=True) == 6  # scaling down from 6
    assert allowed_copies(None, 2, 0.5, 0.5, deploying=True) == 3


def test_copies_within_the_limit_pass_and_an_excess_is_one_violation_per_episode():
    checker = CopiesChecker(grace=30)
    limits = {"/soak/web": 2}
    assert checker.observe(0, {"a1": {WEB1}, "d1": {WEB2}}, limits, set(), {}) == []
    over = checker.observe(1, {"a1": {WEB1, WEB3}, "d1": {WEB2}}, limits, set(), {})
    assert [(v.invariant, v.details["live"], v.details["limit"]) for v in over] == [
        ("live-copies", 3, 2)]
    assert checker.observe(2, {"a1": {WEB1, WEB3}, "d1": {WEB2}}, limits, set(), {}) == []
    assert over[0].details["first_seen"] == 1 and over[0].details["last_seen"] == 2
    assert over[0].details["sightings"] == 2
    assert checker.observe(3, {"a1": {WEB1}, "d1": {WEB2}}, limits, set(), {}) == []
    assert over[0].details["ended"] == 3
    again = checker.observe(4, {"a1": {WEB1, WEB3}, "d1": {WEB2}}, limits, set(), {})
    assert len(again) == 1 and again[0] is not over[0]  # a new episode
    assert checker.finish(5) == []
    assert again[0].details["open_at_finish"] is True and "open_at_finish" not in over[0].details
    assert checker.violations == [over[0], again[0]]


def test_a_task_live_on_two_agents_is_reported_unless_one_is_cut_off():
    checker = CopiesChecker(grace=30)
    limits = {"/soak/web": 5}
    assert checker.observe(0, {"a1": {WEB1}, "a2": {WEB1}}, limits, {"a2"}, {}) == []
    twice = checker.observe(1, {"a1": {WEB1}, "a2": {WEB1}}, limits, set(), {"a2": 0.5})
    assert len(twice) == 1 and twice[0].details["agents"] == ["a1", "a2"]
    # ids are never reused, batch attempts included
    attempt = "pipe-1.work.0.1"
    assert checker.observe(2, {"a1": {attempt}, "d1": {attempt}}, {}, set(), {})


def test_copies_on_a_cut_or_just_healed_agent_count_only_once_the_grace_is_over():
    checker = CopiesChecker(grace=30)
    limits = {"/soak/web": 1}
    copies = {"a1": {WEB1}, "a2": {WEB2}}
    assert checker.observe(10, copies, limits, {"a1"}, {}) == []
    assert checker.observe(20, copies, limits, set(), {"a1": 15}) == []  # healed 5 s ago
    late = checker.observe(50, copies, limits, set(), {"a1": 15})  # 35 s after the heal
    assert len(late) == 1 and late[0].details["live"] == 2


def test_an_app_without_a_limit_allows_no_copy_and_batch_tasks_belong_to_no_app():
    checker = CopiesChecker()
    assert checker.observe(0, {"a1": {"pipe-1.work.0.1"}}, {}, set(), {}) == []
    found = checker.observe(1, {"a1": {WEB1}}, {}, set(), {})
    assert [v.details["limit"] for v in found] == [0]


# ------------------------------------------------------------------ batch


def att(aid: str, state: str, **more) -> dict:
    run, step, index, number = aid.rsplit(".", 3)
    return {"id": aid, "run_id": run, "step": step, "index": int(index),
            "number": int(number), "state": state, "created_at": 100.0,
            "started_at": None, "finished_at": None, "message": "", "kill_reason": None,
            **more}


def run_doc(rid: str, steps: list[dict], state: str = "SUCCEEDED",
            records: dict | None = None) -> dict:
    records = records or {}
    return {"id": rid, "state": state, "finished_at": 200.0,
            "spec": {"steps": steps},
            "steps": [{"name": s["name"], "state": records.get(s["name"], "SUCCEEDED"),
                       "reused": False} for s in steps]}


def messages(found) -> list[str]:
    return [v.message for v in found]


def test_every_attempt_once_and_known_passes():
    attempts = [att("r.s.0.1", "FINISHED", message="Command exited with status 0"),
                att("r.s.1.1", "LOST"), att("r.s.1.2", "FINISHED"),
                att("r.s.2.1", "FAILED", message="Command exited with status 3"),
                att("r.s.2.2", "RUNNING", started_at=99.0)]
    side = ["r.s.0.1", "r.s.1.2", "r.s.2.1", "r.s.2.2"]
    assert check_exactly_once(side, attempts) == []
    assert check_exactly_once([*side, "r.s.1.1"], attempts) == []  # a LOST one may have run


def test_an_attempt_written_twice_or_unknown_to_the_store_is_reported():
    attempts = [att("r.s.0.1", "FINISHED")]
    assert "ran 2 times" in messages(check_exactly_once(["r.s.0.1", "r.s.0.1"], attempts))[0]
    unknown = check_exactly_once(["r.s.0.1", "x.y.0.1"], attempts)
    assert messages(unknown) == ["attempt x.y.0.1 ran but the store does not know it"]
    # written after the store was read: its attempt may be newer than the snapshot
    assert check_exactly_once(["r.s.0.1", "x.y.0.1"], attempts,
                              side_ids_before=["r.s.0.1"]) == []
    assert check_exactly_once(["r.s.0.1", "x.y.0.1"], attempts,
                              side_ids_before=["r.s.0.1", "x.y.0.1"])


@pytest.mark.parametrize(("attempt", "required"), [
    (att("r.s.0.1", "FINISHED"), True),
    (att("r.s.0.1", "FAILED", message="Command exited with status 1"), True),
    (att("r.s.0.1", "FAILED", message="Command exited with status 137"), False),  # signal
    (att("r.s.0.1", "FAILED", message="Command exited with status 127"), False),
    (att("r.s.0.1", "FAILED", message="Command terminated with signal SIGKILL"), False),
    (att("r.s.0.1", "FAILED", message="The agent cannot prepare the task's sandbox: "
                                      "No space left on device"), False),
    (att("r.s.0.1", "KILLED", started_at=1.0, message="Killed during launch"), False),
    (att("r.s.0.1", "STARTING"), False),  # queued before the container is launched
    (att("r.s.0.1", "LOST", started_at=1.0), False),
    (att("r.s.0.1", "ERROR"), False),
    (att("r.s.0.1", "RUNNING", started_at=90.0), True),  # 10 s before "now"
    (att("r.s.0.1", "RUNNING", started_at=99.5), False),  # maybe not at its first line
    (att("r.s.0.1", "RUNNING", started_at=90.0, kill_reason="cancelled"), False),
])
def test_which_attempts_must_have_written_their_line(attempt, required):
    assert must_have_run(attempt, now=100.0) is required
    found = check_exactly_once([], [attempt], now=100.0)
    assert bool(found) is required
    assert check_exactly_once([attempt["id"]], [attempt], now=100.0) == []


def test_a_task_finished_twice_is_reported_except_across_broken_gang_rounds():
    twice = [att("r.s.0.1", "FINISHED"), att("r.s.0.2", "FINISHED")]
    side = [a["id"] for a in twice]
    plain = [run_doc("r", [{"name": "s", "completions": 1, "gang": False}])]
    assert "finished 2 times" in messages(check_exactly_once(side, twice, runs=plain))[0]
    assert check_exactly_once(side, twice)  # no other member: no broken round either
    # a gang of two: member 1 was LOST in round 1, so every member ran again
    rounds = [*twice, att("r.s.1.1", "LOST"), att("r.s.1.2", "FINISHED")]
    side = [a["id"] for a in rounds if a["state"] == "FINISHED"]
    gang = [run_doc("r", [{"name": "s", "completions": 2, "gang": True}])]
    assert check_exactly_once(side, rounds, runs=gang) == []
    assert check_exactly_once(side, rounds) == []  # without runs: taken for a gang
    plain2 = [run_doc("r", [{"name": "s", "completions": 2, "gang": False}])]
    assert check_exactly_once(side, rounds, runs=plain2)
    # a gang round that completed is never run again
    whole = [att(f"r.s.{i}.{n}", "FINISHED") for i in (0, 1) for n in (1, 2)]
    assert check_exactly_once([a["id"] for a in whole], whole, runs=gang)


def test_a_succeeded_run_needs_a_finished_attempt_for_every_task():
    steps = [{"name": "s", "completions": 2}, {"name": "t", "completions": 1}]
    attempts = [att("r.s.0.1", "FINISHED"), att("r.s.1.1", "FINISHED"),
                att("r.t.0.1", "FINISHED")]
    side = [a["id"] for a in attempts]
    assert check_exactly_once(side, attempts, runs=[run_doc("r", steps)]) == []
    short = check_exactly_once(side[:2], attempts[:2], runs=[run_doc("r", steps)])
    assert messages(short) == ["run r SUCCEEDED but task 0 of step t never FINISHED"]
    reused = run_doc("r", steps)
    reused["steps"][1]["reused"] = True  # taken over from an earlier run by a rerun
    assert check_exactly_once(side[:2], attempts[:2], runs=[reused]) == []
    assert check_exactly_once(side[:2], attempts[:2],
                              runs=[run_doc("r", steps, state="FAILED")]) == []


# ------------------------------------------------------------------ output


def finished(aid: str) -> dict:
    return {"id": aid, "state": "FINISHED", "finished_at": 5.0}


def written(aid: str, out=lambda lines: lines, err=lambda lines: lines) -> tuple[bytes, bytes]:
    """What output task ``aid`` wrote, its stdout and stderr lines passed through
    ``out`` and ``err`` (to damage them)."""
    o, e = (text.splitlines(keepends=True) for text in expected_output(aid))
    return b"".join(out(o)), b"".join(err(e))


def test_whole_output_passes_and_each_kind_of_damage_is_told():
    outputs = {
        "r.print.0.1": written("r.print.0.1"),
        "r.print.1.1": written("r.print.1.1", out=lambda lines: lines[1:]),  # first lost
        "r.print.2.1": written("r.print.2.1", err=lambda lines: [*lines, lines[-1]]),  # twice
        "r.print.3.1": written("r.print.3.1",
                               out=lambda lines: [lines[1], lines[0], *lines[2:]]),  # swapped
    }
    found = check_output([finished(a) for a in [*outputs, "r.print.4.1"]], outputs,
                         expected_output)
    assert [(v.details["attempt"], v.details.get("stream")) for v in found] == [
        ("r.print.1.1", "stdout"), ("r.print.2.1", "stderr"), ("r.print.3.1", "stdout"),
        ("r.print.4.1", None)]
    assert "1 of 40 lines missing" in found[0].message
    assert "1 repeated" in found[1].message
    assert "out of order" in found[2].message
    assert "nowhere to be found" in found[3].message
    assert all(v.invariant == "output" for v in found)


def test_the_output_job_writes_what_the_check_expects():
    # The job's script and expected_output must agree, or every run is a violation.
    script = output_job("/x")["steps"][0]["command"]
    assert "o$i" in script and "e$i" in script and ">&2" in script
    out, err = expected_output("a")
    assert out.startswith(b"a o1\n") and err.endswith(b"a e40\n")


# ------------------------------------------------------------------ cron

T0 = calendar.timegm((2026, 12, 5, 12, 0, 30))  # 12:00:30 UTC: ticks at 12:01, 12:02 ...
MINUTE = 60.0


def tick(n: int) -> float:
    """The n-th fire time of "* * * * *" after T0 (n >= 1)."""
    return T0 + 30 + MINUTE * (n - 1)


def ran(n: int, sid: str = "default") -> dict:
    return {"trigger": f"schedule:{sid}", "scheduled_for": tick(n), "created_at": tick(n) + 1}


def missed(n: int, count: int, sid: str = "default") -> dict:
    plural = "s" if count > 1 else ""
    return {"schedule": sid, "fire_time": tick(n),
            "reason": f"missed: {count} earlier fire time{plural} collapsed into the latest"}


def cron_check(runs, skips, last=5, **kw):
    return check_cron("* * * * *", "UTC", T0, tick(last), runs, skips, "default", **kw)


def test_cron_ticks_run_or_recorded_pass():
    runs = [ran(1), ran(2), ran(5)]
    ok = cron_check(runs, [missed(4, 2)])
    assert ok.violations == [] and ok.ticks == 5 and ok.unverifiable == 0
    forbid = {"schedule": "default", "fire_time": tick(3),
              "reason": "FORBID: a run of this job is still active"}
    late = {"schedule": "default", "fire_time": tick(4),
            "reason": "missed its starting deadline (70s late, deadline 60s)"}
    assert cron_check(runs, [forbid, late]).violations == []
    # a run of an earlier job of the same id, and another schedule's, change nothing
    old = {**ran(3), "created_at": T0 - 1}
    other = ran(3, "other")
    assert len(cron_check([*runs, old, other], [missed(4, 1)]).violations) == 1


def test_cron_ticks_missing_or_dealt_with_twice_are_reported():
    runs = [ran(1), ran(2), ran(5)]
    assert [v.at for v in cron_check(runs, [missed(4, 1)]).violations] == [tick(3)]
    assert [v.at for v in cron_check(runs[:2], [missed(4, 2)]).violations] == [tick(5)]
    twice = cron_check([*runs, ran(2)], [missed(4, 2)]).violations
    assert ["run 2 times" in v.message for v in twice] == [True]
    both = cron_check([*runs, ran(4)], [missed(4, 2)]).violations
    assert ["both run and recorded" in v.message for v in both] == [True]
    stray = {**ran(2), "scheduled_for": tick(2) + 7}
    assert "no fire time" in cron_check([*runs, stray], [missed(4, 2)]).violations[0].message


def test_ticks_whose_skip_entry_may_have_been_dropped_are_counted_not_reported():
    # 25 ticks, none run: the framework kept only the last 20 entries
    skips = [{"schedule": "default", "fire_time": tick(n), "reason": "FORBID: x"}
             for n in range(6, 26)]
    full = cron_check([], skips, last=25)
    assert full.violations == [] and full.unverifiable == 5 and full.ticks == 25
    assert len(cron_check([], skips, last=25, kept=21).violations) == 5  # not full
    # a tick after what the oldest kept entry covers had its entry kept, if any
    gap = [s for s in skips if s["fire_time"] != tick(9)]
    assert [v.at for v in cron_check([], gap, last=25, kept=len(gap)).violations] == [tick(9)]


def test_ticks_after_the_cursor_are_pending():
    result = cron_check([ran(1), ran(2)], [], last=5, cursor=tick(2))
    assert result.violations == [] and result.pending == 3 and result.ticks == 2


def test_a_collapsed_entry_after_until_still_covers_the_ticks_before_it():
    assert cron_check([ran(1)], [missed(4, 3)], last=3).violations == []


@st.composite
def outages(draw):
    """Times the batch framework looks at the clock: every few seconds, with gaps
    (it was down), and which of its looks find a run of the job still active."""
    looks, t = [], T0
    for _ in range(draw(st.integers(1, 25))):
        t += draw(st.sampled_from([5.0, 20.0, 61.0, 150.0, 400.0]))
        looks.append((t, draw(st.booleans())))
    policy = draw(st.sampled_from(["ALLOW", "FORBID", "REPLACE"]))
    deadline = draw(st.sampled_from([None, 30.0, 100.0]))
    return looks, ScheduleSpec("default", "* * * * *", "UTC", policy, deadline)


def simulate(looks, schedule):
    """What ``frameworks/batch/state.py::cron_tick`` records for these looks."""
    cursor, runs, skips = T0, [], []
    for now, active in looks:
        decision = cron.decide(schedule, cursor, now, int(active))
        skips += [{"schedule": "default", "fire_time": w, "reason": why}
                  for w, why in decision.skipped]
        if decision.start is not None:
            runs.append({"trigger": "schedule:default", "scheduled_for": decision.start,
                         "created_at": now})
        cursor = decision.cursor
    return cursor, runs, skips


@given(outages())
@settings(max_examples=200, deadline=None)
def test_what_the_framework_records_through_any_outages_passes(case):
    looks, schedule = case
    cursor, runs, skips = simulate(looks, schedule)
    until = looks[-1][0]
    result = check_cron("* * * * *", "UTC", T0, until, runs, skips, "default",
                        kept=10**6, cursor=cursor)
    assert result.violations == []
    assert result.ticks == len(cron.fire_times("* * * * *", "UTC", T0, cursor))


@given(outages(), st.data())
@settings(max_examples=200, deadline=None)
def test_losing_any_run_or_skip_entry_is_reported(case, data):
    looks, schedule = case
    cursor, runs, skips = simulate(looks, schedule)
    records = [("run", i) for i in range(len(runs))] + [("skip", i) for i in range(len(skips))]
    if not records:
        return
    kind, i = data.draw(st.sampled_from(records))
    if kind == "run":
        runs = runs[:i] + runs[i + 1:]
    else:
        skips = skips[:i] + skips[i + 1:]
    result = check_cron("* * * * *", "UTC", T0, looks[-1][0], runs, skips, "default",
                        kept=10**6, cursor=cursor)
    assert result.violations


# ------------------------------------------------------------------ HTTP


def test_a_5xx_is_a_violation_unless_a_master_says_503_during_its_own_fault():
    windows = [(90.0, 110.0, "master"), (200.0, 210.0, "postgres"), (300.0, 310.0, "lb")]
    excused = [HttpRecord(100, "master", "GET", "/master/state", 503),
               HttpRecord(124, "master", "GET", "/master/state", 503),  # within the slack
               HttpRecord(205, "master", "GET", "/master/state", 503),
               HttpRecord(100, "batch", "GET", "/x", 404),
               HttpRecord(100, "services", "PUT", "/v2/apps/x", 409)]
    assert check_http(excused, windows) == []
    reported = [HttpRecord(100, "services", "POST", "/v2/apps", 503),
                HttpRecord(100, "master", "GET", "/master/state", 500),
                HttpRecord(126, "master", "GET", "/master/state", 503),  # past the slack
                HttpRecord(305, "master", "GET", "/master/state", 503),  # an LB fault
                HttpRecord(50, "lb", "GET", "/status", 502)]
    found = check_http(excused + reported, windows)
    assert [(v.details["component"], v.details["status"], v.at) for v in found] == [
        (r.component, r.status, r.at) for r in reported]
    assert check_http([HttpRecord(124, "master", "GET", "/", 503)], windows, slack=5.0)


# ------------------------------------------------------------------ secrets


def embed_in_base64(value: bytes, prefix: bytes, suffix: bytes, urlsafe: bool) -> bytes:
    enc = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return enc(prefix + value + suffix)


@given(value=st.text(min_size=12, max_size=40).filter(lambda v: len(v.encode()) >= 12),
       prefix=st.binary(max_size=200), suffix=st.binary(max_size=200),
       form=st.sampled_from(["raw", "b64", "url", "bare", "url-bare", "json", "blob",
                             "url-blob"]))
@settings(max_examples=300, deadline=None)
def test_a_secret_is_found_raw_or_in_base64_at_any_offset(value, prefix, suffix, form):
    raw = value.encode()
    hidden = {"raw": raw, "b64": base64.b64encode(raw),
              "url": base64.urlsafe_b64encode(raw),
              "bare": base64.b64encode(raw).rstrip(b"="),
              "url-bare": base64.urlsafe_b64encode(raw).rstrip(b"="),
              "json": json.dumps({"v": value}).encode(),
              # inside a larger encoded blob, at any alignment
              "blob": embed_in_base64(raw, prefix, suffix, False),
              "url-blob": embed_in_base64(raw, prefix, suffix, True)}[form]
    decoy = "decoy-" + "q" * 30
    found = scan_for_secrets([("a/file", prefix + hidden + suffix)], [decoy, value])
    assert [(v.details["where"], v.details["values"]) for v in found] == [("a/file", [1])]
    assert value not in found[0].message and value not in json.dumps(found[0].details)


def test_a_clean_place_passes_and_a_place_named_after_a_value_is_redacted():
    value = "canary-" + "0123456789abcdef" * 2
    assert scan_for_secrets([("clean", b"nothing here " * 100)], [value]) == []
    found = scan_for_secrets([(f"GET /x?pw={value} -> 200", b"{}")], [value])
    assert len(found) == 1 and value not in found[0].message
    assert found[0].details["where"].startswith("<a place whose name holds secret #0")
    with pytest.raises(ValueError, match="at least"):
        secret_forms("short")
    # the shortest value: too short for the embedded forms, found in its own encodings
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        bare = encode(b"8bytes!?").rstrip(b"=")
        assert scan_for_secrets([("f", b"(" + bare + b")")], ["8bytes!?"])


# ------------------------------------------------------------------ load balancer


def test_lb_figures_tell_error_rates_and_recoveries():
    samples = [(0, False, False, False),  # before the first success: no recovery
               (1, True, False, False), (2, False, False, True), (3, False, False, True),
               (5, True, False, False), (6, True, True, False), (7, False, True, False),
               (8, True, True, False), (9, False, False, False)]
    figures = lb_figures(samples)
    assert figures["samples"] == 9 and figures["errors %"] == pytest.approx(100 * 5 / 9, abs=1e-3)
    assert figures["upgrade samples (no fault)"] == 3
    assert figures["errors % in upgrades (no fault)"] == pytest.approx(100 / 3, abs=1e-3)
    assert figures["errors % in faults"] == 100.0
    assert figures["recoveries"] == 2  # 2 -> 5 (3 s) and 7 -> 8 (1 s)
    assert (figures["recovery p50 s"], figures["recovery max s"]) == (2.0, 3.0)
    assert figures["unrecovered"] is True
    assert lb_figures([])["errors %"] is None


def test_lb_errors_are_told_apart_by_what_was_going_on():
    faults = [(10, 20, "kill-lb"), (30, 40, "kill-agent"), (35, 50, "partition")]
    samples = [(0, True), (5, False),  # no fault
               (12, False), (19, False),  # the load balancer down
               (25, False), (39, True),  # restarting: within 20 s of its heal, whatever else runs
               (41, True), (45, False),  # partition alone
               (60, True)]
    by = lb_errors_by_fault(samples, faults)
    assert list(by) == ["lb down", "lb restarting", "partition", "no fault"]
    assert by["lb down"] == (2, 100.0)
    assert by["lb restarting"] == (2, 50.0)
    assert by["partition"] == (2, 50.0)
    assert by["no fault"] == (3, pytest.approx(100 / 3, abs=1e-3))
    both = lb_errors_by_fault([(36, False)], [(30, 40, "kill-agent"), (35, 50, "partition")])
    assert both == {"kill-agent": (1, 100.0), "partition": (1, 100.0)}  # counted for each
    assert lb_errors_by_fault([], faults) == {}
