"""CLI text: bars, plain lines for CI logs, tables."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from frameworks.batch.render import BAR_WIDTH, bar, outcome_line, progress_lines, step_line

RUN = {"id": "ci-1", "state": "FAILED", "created_at": 100.0, "finished_at": 172.5,
       "message": "step test failed: task 2 failed after 2 attempts",
       "steps": [{"name": "lint", "state": "SUCCEEDED",
                  "counts": {"pending": 0, "running": 0, "done": 1, "failed": 0}},
                 {"name": "test", "state": "FAILED",
                  "counts": {"pending": 1, "running": 0, "done": 2, "failed": 1}}]}


def test_plain_output_has_no_escape_codes():
    lines = progress_lines(RUN) + [step_line(s) for s in RUN["steps"]] + [outcome_line(RUN)]
    assert not any("\x1b" in line for line in lines)
    assert step_line(RUN["steps"][1]) == "test: FAILED (1 pending, 0 running, 2 done, 1 failed)"
    assert outcome_line(RUN) == ("run ci-1 FAILED in 1m12s: step test failed: task 2 failed "
                                 "after 2 attempts")


def test_colour_output_is_coloured():
    assert "\x1b[32m" in bar({"done": 1, "pending": 1}, color=True)
    assert "\x1b[31m" in outcome_line(RUN, color=True)


counts = st.fixed_dictionaries({k: st.integers(0, 10_000)
                                for k in ("pending", "running", "done", "failed")})


@example({"pending": 0, "running": 1, "done": 10_000, "failed": 1})
@given(counts)
def test_bar_has_a_fixed_width_and_shows_every_nonempty_class(c):
    text = bar(c)
    assert len(text) == BAR_WIDTH + 2
    for key, glyph in (("done", "#"), ("running", "="), ("failed", "x")):
        assert (glyph in text) == (c[key] > 0)
