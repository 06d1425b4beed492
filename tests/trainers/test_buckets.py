"""One bucket rule: the warehouse macro and the Python function agree, and unmeasured tasks stay out."""

from __future__ import annotations

import duckdb
import pytest

from vtforge.config import CurriculumConfig, load_config
from vtforge.tasks.model import bucket_of
from vtforge.trainers.curriculum import Curriculum
from vtforge.trainers.curriculum import bucket_of as row_bucket
from vtforge.warehouse.models import prepare

GRID = [None, 0.0, 0.05, 0.1, 0.10000000000000002, 0.3, 0.5, 0.6999999999999999, 0.7, 0.95, 1.0]
EXPECTED = [
    "unmeasured",
    "hard",
    "hard",
    "hard",  # exactly 0.10 is not "more than 10%"
    "medium",
    "medium",
    "medium",
    "medium",
    "easy",  # exactly 0.70 is easy
    "easy",
    "easy",
]


def _sql_buckets(cfg, rates: list[float | None]) -> list[str]:
    con = duckdb.connect()
    prepare(con, cfg)
    out = [con.execute("SELECT bucket_of(?::DOUBLE)", [rate]).fetchone()[0] for rate in rates]
    con.close()
    return out


def test_sql_and_python_agree_on_the_grid(workspace) -> None:
    cfg = load_config()
    cur = cfg.forge.curriculum
    python = [bucket_of(rate, cur.easy_min_success, cur.medium_min_success) for rate in GRID]
    assert python == EXPECTED
    assert _sql_buckets(cfg, GRID) == EXPECTED


def test_sql_and_python_read_the_same_levers(workspace) -> None:
    (workspace / "vtcode.toml").write_text(
        '[forge.warehouse]\ndata_dir = ".forge"\n\n'
        "[forge.curriculum]\neasy_min_success = 0.5\nmedium_min_success = 0.3\n"
    )
    cfg = load_config()
    rates = [None, 0.3, 0.30000000000000004, 0.4999999999999999, 0.5]
    expected = ["unmeasured", "hard", "medium", "medium", "easy"]
    assert [bucket_of(r, 0.5, 0.3) for r in rates] == expected
    assert _sql_buckets(cfg, rates) == expected


def _cfg(**levers) -> CurriculumConfig:
    base = {"easy_keep_fraction": 0.0, "replay_mix_fraction": 0.0, "hard_return_stable_steps": 3}
    return CurriculumConfig(**{**base, **levers})


def _rows() -> list[dict]:
    rows = [
        {"task_id": f"m{i}", "prompt": "x", "difficulty_bucket": None, "baseline_success_rate": 0.5}
        for i in range(3)
    ]
    rows.append({"task_id": "u0", "prompt": "x", "difficulty_bucket": None, "baseline_success_rate": None})
    return rows


def test_a_row_without_a_baseline_is_unmeasured() -> None:
    assert [row_bucket(r, 0.7, 0.1) for r in _rows()] == ["medium", "medium", "medium", "unmeasured"]
    assert row_bucket({"difficulty_bucket": "unmeasured", "baseline_success_rate": None}, 0.7, 0.1) == (
        "unmeasured"
    )


def test_unmeasured_tasks_are_drawn_only_when_included() -> None:
    measured_only = Curriculum(_cfg(), _rows())
    drawn = {measured_only.draw(i)["task_id"] for i in range(200)}
    assert drawn == {"m0", "m1", "m2"}
    assert measured_only.active == ["medium"]
    assert measured_only.history[0] == {"step": 0, "event": "unmeasured_left_out", "tasks": 1}

    included = Curriculum(_cfg(), _rows(), include_unmeasured=True)
    assert included.active == ["medium", "unmeasured"]
    drawn = [included.draw(i)["task_id"] for i in range(200)]
    assert set(drawn) == {"m0", "m1", "m2", "u0"}


def test_only_unmeasured_tasks_is_an_error_that_says_what_to_do() -> None:
    rows = [r for r in _rows() if r["task_id"] == "u0"]
    with pytest.raises(ValueError, match=r"1 unmeasured .*vtforge tasks baseline.*--include-unmeasured"):
        Curriculum(_cfg(), rows)
    assert {Curriculum(_cfg(), rows, include_unmeasured=True).draw(i)["task_id"] for i in range(5)} == {"u0"}
