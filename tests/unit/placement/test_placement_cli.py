"""``mesoslite pack``: through click's runner and as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mesoslite.cli.pack import pack
from mesoslite.placement import problem_from_json

from .validator import validate

ROOT = Path(__file__).resolve().parents[3]

INSTANCE = {
    "agents": [
        {"id": f"a{i}", "resources": {"cpus": 16, "mem": 65536, "disk": 100000,
                                      "ports": [[31000, 31099]]},
         "attributes": {"hostname": f"a{i}", "rack": f"r{i % 2}"}}
        for i in range(1, 5)
    ],
    "tasks": [
        {"id": f"t{i}", "group": "web", "resources": {"cpus": 0.5, "mem": 512, "ports": 1},
         "constraints": [["hostname", "UNIQUE"], ["rack", "MAX_PER", "2"]]}
        for i in range(1, 6)
    ] + [
        {"id": f"t{i}", "group": "batch", "resources": {"cpus": 6, "mem": 8192}}
        for i in range(6, 9)
    ],
    "running": [{"group": "web", "agent": "a3"}],
    "gangs": [["t6", "t7", "t8"]],
    "objective": "binpack",
    "time_limit_s": 0.5,
}


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    path = tmp_path / "instance.json"
    path.write_text(json.dumps(INSTANCE))
    return path


def check_answer(out: dict) -> None:
    assert set(out) >= {"assignments", "ports", "unplaced", "agents_used", "lower_bound",
                        "greedy_agents_used", "solve_ms", "status"}
    from mesoslite.placement import Placement

    answer = Placement(out["assignments"], out["ports"], out["unplaced"], out["agents_used"],
                       out["lower_bound"], out["greedy_agents_used"], out["solve_ms"],
                       out["status"], out["greedy_placed"], out["all_placeable"])
    assert validate(problem_from_json(INSTANCE), answer) == []
    # UNIQUE hostname with a3 taken and MAX_PER 2 on two racks: three web tasks fit.
    assert len([t for t in out["assignments"] if int(t[1:]) <= 5]) == 3
    assert {"t6", "t7", "t8"} <= set(out["assignments"])


def test_pack_prints_the_answer(instance: Path) -> None:
    result = CliRunner().invoke(pack, [str(instance)])
    assert result.exit_code == 0, result.output
    check_answer(json.loads(result.output))


def test_pack_explains_with_reasons_flag(instance: Path) -> None:
    result = CliRunner().invoke(pack, [str(instance), "--reasons", "--time-limit", "0.2"])
    out = json.loads(result.output)
    assert set(out["reasons"]) == set(out["unplaced"])
    for why in out["reasons"].values():
        assert {r["reason"] for r in why} <= {"UNIQUE", "MAX_PER"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not JSON"),
        ("[]", "instance: must be a JSON object"),
        (json.dumps({**INSTANCE, "objective": "fast"}), "objective: must be one of"),
        (json.dumps({**INSTANCE, "tasks": [{"id": "t", "resources": {"mem": -1}}]}),
         "tasks[0].resources.mem: must be a finite number >= 0"),
    ],
)
def test_invalid_instances_print_one_line_and_exit_2(tmp_path: Path, content: str,
                                                      message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = CliRunner().invoke(pack, [str(path)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(pack, [str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mesoslite.cli.main", "pack", *args],
                          check=False, cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_real_process(instance: Path, tmp_path: Path) -> None:
    done = run(str(instance))
    assert done.returncode == 0, done.stderr
    check_answer(json.loads(done.stdout))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**INSTANCE, "gangs": [["t6", "t99"]]}))
    failed = run(str(bad))
    assert failed.returncode == 2
    assert failed.stdout == ""
    assert failed.stderr.strip() == "error: gangs[0][1]: unknown task 't99'"
