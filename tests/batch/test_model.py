"""Job specs: parsing, defaults, inheritance, round trips, the examples."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from frameworks.batch.model import MAIN_STEP, SpecError, parse_duration, parse_job

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "batch"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_are_valid(path):
    spec = parse_job(yaml.safe_load(path.read_text()))
    assert parse_job(spec.to_json()) == spec


def test_ci_example_is_lint_then_four_tests_then_package():
    spec = parse_job(yaml.safe_load((EXAMPLES / "ci-pipeline.yaml").read_text()))
    assert [(s.name, s.depends_on, s.completions, s.parallelism) for s in spec.steps] == [
        ("lint", (), 1, 1), ("test", ("lint",), 4, 4), ("package", ("test",), 1, 1)]
    assert {s.image for s in spec.steps} == {"mesoslite/busybox:latest"}


def test_single_step_job_and_defaults():
    spec = parse_job({"id": "one", "command": "echo"}, default_user="ann")
    [step] = spec.steps
    assert step.name == MAIN_STEP and spec.user == "ann" and not spec.is_pipeline
    assert (step.cpus, step.mem, step.completions, step.parallelism, step.retries) == (
        0.1, 32.0, 1, 1, 0)
    assert step.backoff.delay(1) == 1.0 and step.backoff.delay(3) == 4.0


def test_steps_inherit_top_level_fields_and_may_override():
    spec = parse_job({"id": "p", "image": "img", "cpus": 2, "retries": 1, "steps": [
        {"name": "a", "command": "x"}, {"name": "b", "command": "y", "cpus": 0.5,
                                        "completions": 3, "depends_on": "a"}]})
    a, b = spec.steps
    assert (a.image, a.cpus, a.retries) == ("img", 2.0, 1)
    assert (b.cpus, b.parallelism, b.depends_on) == (0.5, 3, ("a",))


def test_docker_steps_use_the_bridge_network_unless_they_ask_for_the_host():
    """Bridge is what a plain agent allows; host networking is opt-in, per job or step."""
    from frameworks.batch.placing import task_info_for
    from frameworks.batch.records import Run
    from mesoslite.messages.mesos import DockerNetwork

    spec = parse_job({"id": "p", "image": "img", "steps": [
        {"name": "a", "command": "x"}, {"name": "b", "command": "y", "network": "HOST"}]})
    run = Run(id="r1", job_id="p", spec=spec, created_at=0.0)
    networks = [task_info_for(run, step, 0, 1, "agent-1").container.docker.network
                for step in spec.steps]
    assert networks == [DockerNetwork.BRIDGE, DockerNetwork.HOST]
    assert parse_job(spec.to_json()) == spec


def test_durations():
    assert [parse_duration(v) for v in (5, "90s", "10m", "1.5h", "2d", "250ms")] == [
        5.0, 90.0, 600.0, 5400.0, 172800.0, 0.25]
    assert parse_duration("soon") is None
    assert parse_job({"id": "t", "command": "x", "timeout": "2m"}).steps[0].timeout == 120


@pytest.mark.parametrize("doc, path", [
    ({"command": "x"}, "id"),
    ({"id": "a", "command": "x", "gang": True, "completions": 3, "parallelism": 2},
     "parallelism"),
    ({"id": "a", "command": "x", "args": ["y"]}, "args"),
    ({"id": "a"}, ""),
    ({"id": "a", "command": "x", "steps": []}, "steps"),
    ({"id": "a", "command": "x", "steps": [{"command": "y"}]}, "steps[0].name"),
    ({"id": "a", "command": "x", "steps": [{"name": "A B"}]}, "steps[0].name"),
    ({"id": "a", "command": "x", "depends_on": ["b"], "steps": [{"name": "b"}]}, "depends_on"),
    ({"id": "a", "command": "x", "schedule": {"cron": "@daily", "timezone": "Nowhere"}},
     "schedule.timezone"),
    ({"id": "a", "command": "x", "schedules": [{"cron": "@daily"}, {"cron": "@hourly",
                                                                     "id": "default"}]},
     "schedules[1]"),
    ({"id": "a", "command": "x", "constraints": [["rack", "MAX_PER", "x"]]},
     "constraints[0][2]"),
    ({"id": "a", "command": "x", "backoff": {"factor": 0.5}}, "backoff.factor"),
    ({"id": "a", "command": True}, "command"),
    ({"id": "a", "command": "x", "artifacts": ["ftp://h/a.tgz"]}, "artifacts[0].uri"),
    ({"id": "a", "command": "x", "artifacts": [{"uri": "/a", "output_file": "../b"}]},
     "artifacts[0].output_file"),
    ({"id": "a", "command": "x", "artifacts": [{"uri": "/a", "cache": "yes"}]},
     "artifacts[0].cache"),
    ({"id": "a", "command": "x", "artifacts": [{"url": "/a"}]}, "artifacts[0].url"),
    ({"id": "a", "command": "x", "artifacts": "http://h/a"}, "artifacts"),
    ({"id": "a", "image": "i", "network": "overlay"}, "network"),
    ({"id": "m", "run": {"cmd": "x", "artifacts": [{"uri": "s3://b/k"}]}},
     "run.artifacts[0].uri"),
])
def test_errors_name_the_field(doc, path):
    with pytest.raises(SpecError) as err:
        parse_job(doc)
    assert err.value.details[0][0] == path, err.value.details


def test_artifacts_are_inherited_and_round_trip():
    spec = parse_job({"id": "a", "command": "x", "artifacts": [
        "http://h/tool.tgz", {"uri": "/srv/run.sh", "executable": True, "cache": True,
                              "output_file": "bin/run"}],
        "steps": [{"name": "one"}, {"name": "two", "artifacts": []}]})
    one, two = spec.steps
    assert [a.to_json() for a in one.artifacts] == [
        {"uri": "http://h/tool.tgz", "executable": False, "extract": True, "cache": False},
        {"uri": "/srv/run.sh", "executable": True, "extract": True, "cache": True,
         "output_file": "bin/run"}]
    assert two.artifacts == ()
    assert parse_job(spec.to_json()) == spec


def test_metronome_artifacts_map_to_artifacts():
    spec = parse_job({"id": "m", "run": {"cmd": "x", "artifacts": [
        {"uri": "http://h/a.zip", "executable": False, "extract": False, "cache": True}]}})
    [artifact] = spec.steps[0].artifacts
    assert (artifact.uri, artifact.extract, artifact.cache) == ("http://h/a.zip", False, True)


names = st.from_regex(r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)


@given(names, st.integers(1, 20), st.integers(0, 5), st.floats(0.01, 8),
       st.booleans(), st.one_of(st.none(), st.floats(1, 1e5)))
def test_round_trip(job_id, completions, retries, cpus, gang, timeout):
    doc = {"id": job_id, "command": "x", "completions": completions, "retries": retries,
           "cpus": cpus, "gang": gang, "timeout": timeout}
    spec = parse_job({k: v for k, v in doc.items() if v is not None})
    assert parse_job(spec.to_json()) == spec


metronome_runs = st.fixed_dictionaries({
    "cmd": st.sampled_from(["true", "echo $A"]), "cpus": st.floats(0.01, 8),
    "mem": st.floats(1, 4096)}, optional={
    "env": st.dictionaries(st.sampled_from(["A", "B"]), st.sampled_from(["x", "1"])),
    "restart": st.fixed_dictionaries({"policy": st.sampled_from(["NEVER", "ON_FAILURE"])},
                                     optional={"activeDeadlineSeconds": st.integers(1, 9999)}),
    "volumes": st.lists(st.fixed_dictionaries({
        "containerPath": st.sampled_from(["data", "/in"]),
        "hostPath": st.sampled_from(["/srv/a", "rel"]), "mode": st.sampled_from(["RO", "RW"])}),
        max_size=2),
    "artifacts": st.lists(st.fixed_dictionaries({"uri": st.just("http://h/a.tgz")}, optional={
        "extract": st.booleans(), "executable": st.booleans(), "cache": st.booleans()}),
        max_size=2),
    "maxLaunchDelay": st.integers(1, 3600), "user": st.sampled_from(["root", "alice"]),
    "taskKillGracePeriodSeconds": st.integers(0, 60),
    "placement": st.just({"constraints": [{"attribute": "rack", "operator": "IS",
                                           "value": "r1"}]})})


@given(metronome_runs)
def test_a_metronome_job_read_back_in_its_shape_parses_to_the_same_spec(run):
    from frameworks.batch.metronome_views import job_doc

    spec = parse_job({"id": "m", "labels": {"team": "t"}, "run": run})
    shown = job_doc(spec)
    assert parse_job(shown) == spec
    assert job_doc(parse_job(shown)) == shown
