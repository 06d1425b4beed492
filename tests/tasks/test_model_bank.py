"""The task model's SWE-bench form, bank storage, idempotent upserts and task_registered events."""

from __future__ import annotations

import json

import duckdb
import pytest

from vtforge.tasks.bank import list_slices, load_slice, save_slice, slice_path, upsert
from vtforge.tasks.events import emit_registered
from vtforge.tasks.model import Task

PATCH = "diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"


def make_task(instance_id: str = "acme__widgets-7", **changes) -> Task:
    base = Task(
        instance_id=instance_id,
        repo="acme/widgets",
        base_commit="a" * 40,
        problem_statement="Widgets are off by one\n",
        patch=PATCH,
        test_patch="",
        fail_to_pass=["tests/test_m.py::test_x"],
        pass_to_pass=["tests/test_m.py::test_y"],
        provenance={"origin": "https://github.com/acme/widgets/pull/7", "created_at": "2024-05-01T12:00:00Z"},
    )
    return base.replace(**changes)


def test_swebench_form_uses_json_strings_and_round_trips() -> None:
    task = make_task()
    record = task.to_swebench()
    assert record["FAIL_TO_PASS"] == '["tests/test_m.py::test_x"]'
    assert json.loads(record["PASS_TO_PASS"]) == ["tests/test_m.py::test_y"]
    assert record["created_at"] == "2024-05-01T12:00:00Z"
    assert Task.from_swebench(record) == task


def test_from_swebench_accepts_lists_and_names_a_bad_field() -> None:
    record = make_task().to_swebench()
    record["FAIL_TO_PASS"] = ["a::b"]
    assert Task.from_swebench(record).fail_to_pass == ["a::b"]
    record["FAIL_TO_PASS"] = "[not json"
    with pytest.raises(ValueError, match="FAIL_TO_PASS"):
        Task.from_swebench(record)
    del record["base_commit"]
    with pytest.raises(ValueError, match="base_commit"):
        Task.from_swebench(record)


def test_content_hash_ignores_bookkeeping() -> None:
    task = make_task()
    assert task.content_hash() == task.replace(repo_dir="/elsewhere", split="eval").content_hash()
    assert task.content_hash() != task.replace(patch=PATCH.replace("x = 2", "x = 3")).content_hash()


def test_save_load_list(cfg) -> None:
    tasks = [make_task("b__b-2"), make_task("a__a-1")]
    path = save_slice(cfg, "mine", tasks)
    assert path == cfg.data_dir / "tasks" / "mine.jsonl"
    assert [t.instance_id for t in load_slice(cfg, "mine")] == ["a__a-1", "b__b-2"]
    assert list_slices(cfg) == ["mine"]
    assert load_slice(cfg, "missing") == []
    with pytest.raises(ValueError, match="appears twice"):
        save_slice(cfg, "dup", [make_task(), make_task()])
    with pytest.raises(ValueError, match="slice name"):
        slice_path(cfg, "../escape")


def test_upsert_is_idempotent(cfg) -> None:
    first = upsert(cfg, "s", [make_task("x-1"), make_task("x-2")])
    assert len(first.added) == 2
    before = first.path.read_bytes()
    again = upsert(cfg, "s", [make_task("x-1"), make_task("x-2")])
    assert (again.added, again.updated, again.unchanged) == ([], [], 2)
    assert first.path.read_bytes() == before
    changed = upsert(cfg, "s", [make_task("x-1", problem_statement="new text\n")])
    assert [t.instance_id for t in changed.updated] == ["x-1"]


def test_task_registered_events_land_with_stable_ids(cfg) -> None:
    tasks = [make_task("x-1"), make_task("x-2", split="eval", contamination_flags=["eval-repo:widgets"])]
    assert emit_registered(cfg, "s", tasks) == 2
    assert emit_registered(cfg, "s", tasks) == 2
    rows = (
        duckdb.connect()
        .execute(
            f"SELECT envelope.event_id AS id, instance_id, split, provenance.origin AS origin, "
            f"provenance.content_hash AS h, contamination_flags "
            f"FROM read_parquet('{cfg.landing_dir}/task_registered/**/*.parquet') ORDER BY instance_id"
        )
        .fetchall()
    )
    assert len(rows) == 4
    assert len({r[0] for r in rows}) == 2  # a re-emit is the same event
    assert rows[0][3] == "https://github.com/acme/widgets/pull/7"
    assert rows[0][4] == tasks[0].content_hash()
    assert rows[-1][5] == ["eval-repo:widgets"]
