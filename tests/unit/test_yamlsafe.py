"""YAML input limits: billion-laughs documents and deep nesting are refused."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from mesoslite import yamlsafe
from mesoslite.cli.main import cli

LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n"
    for i in range(12))


def test_ordinary_documents_load_as_with_safe_load():
    assert yamlsafe.load("x: &d {a: 1}\ny: *d\n") == {"x": {"a": 1}, "y": {"a": 1}}
    assert yamlsafe.load_all("a: 1\n---\nb: 2\n") == [{"a": 1}, {"b": 2}]


def test_alias_bombs_and_deep_nesting_are_refused():
    with pytest.raises(yamlsafe.YamlLimitError, match="aliases"):
        yamlsafe.load(LAUGHS)
    with pytest.raises(yamlsafe.YamlLimitError, match="deeper"):
        yamlsafe.load("[" * 200 + "]" * 200)


def test_unsafe_tags_are_refused():
    with pytest.raises(Exception, match="could not determine a constructor"):
        yamlsafe.load("!!python/object/apply:os.system ['true']")


@pytest.mark.parametrize("args", [["apply", "-f"], ["batch", "submit"]])
def test_the_cli_reports_a_bomb_in_one_line(tmp_path, args):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(LAUGHS)
    result = CliRunner().invoke(cli, [*args, str(bomb), "--server", "http://127.0.0.1:9"])
    assert result.exit_code != 0
    assert "aliases" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
