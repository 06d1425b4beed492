"""The ``vtforge`` CLI of the foundation: events validate|load|tail and demo, on real files."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from tests.cli import invoke
from vtforge.fixtures.events import generate_events
from vtforge.schemas.jsonform import to_jsonable
from vtforge.transport.landing import landing_files


def _write_stream(path: Path) -> list[dict]:
    events = [to_jsonable(e) for e in generate_events(2, 0)]
    events[3]["sample_index"] = "three"
    del events[5]["envelope"]["producer"]
    lines = [json.dumps(e) for e in events]
    lines.insert(8, "{this is not json")
    path.write_text("\n".join(lines) + "\n")
    return events


def test_validate_names_file_line_and_field(workspace: Path) -> None:
    _write_stream(workspace / "stream.jsonl")
    result = invoke("events", "validate", "stream.jsonl")
    assert result.exit_code == 1
    errors = result.stderr.strip().splitlines()
    assert "stream.jsonl:4: rollout.v2: field sample_index must be int, got str 'three'" in errors[0]
    assert "stream.jsonl:6: rollout.v2: field envelope.producer is missing" in errors[1]
    assert "stream.jsonl:9: not valid JSON" in errors[2]
    assert len(errors) == 3


def test_load_lands_good_events_and_quarantines_bad_ones(workspace: Path) -> None:
    events = _write_stream(workspace / "stream.jsonl")
    result = invoke("events", "load", "stream.jsonl")
    assert result.exit_code == 1  # bad input is reported, but nothing good is lost
    landed = landing_files(workspace / ".forge" / "landing")
    listing = ", ".join(f"'{f}'" for f in landed)
    ids = {
        r[0]
        for r in duckdb.sql(
            f"SELECT envelope.event_id FROM read_parquet([{listing}], union_by_name=true)"
        ).fetchall()
    }
    good = {e["envelope"]["event_id"] for i, e in enumerate(events) if i not in (3, 5)}
    assert ids == good
    quarantined = pq.read_table(next((workspace / ".forge" / "quarantine").rglob("*.parquet"))).to_pylist()
    assert sorted(q["reason"] for q in quarantined) == ["not_json", "schema_violation", "schema_violation"]
    assert all(q["raw"] for q in quarantined)
    assert any("field envelope.producer is missing" in q["error"] for q in quarantined)


def test_validate_missing_file_is_one_line(workspace: Path) -> None:
    result = invoke("events", "validate", "nope.jsonl")
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error:") and "nope.jsonl: no such file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_tail_prints_the_latest_events(workspace: Path) -> None:
    invoke("events", "load", "/dev/null")
    (workspace / "s.jsonl").write_text("\n".join(json.dumps(to_jsonable(e)) for e in generate_events(2, 0)))
    assert invoke("events", "load", "s.jsonl").exit_code == 0
    result = invoke("events", "tail", "-n", "3")
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert len(lines) == 3
    stamps = [line["envelope"]["occurred_at"] for line in lines]
    assert stamps == sorted(stamps)
    assert lines[-1]["envelope"]["event_type"] == "training_step"  # the stream ends with training


def test_quick_demo_lands_the_stream_and_fills_the_warehouse(workspace: Path) -> None:
    result = invoke("demo", "--quick", "--tasks", "5")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "landing zone" in result.stdout and "rollout" in result.stdout
    assert "patch outcomes" in result.stdout
    assert landing_files(workspace / ".forge" / "landing")
    tables = {
        r[0]
        for r in duckdb.connect(str(workspace / ".forge" / "warehouse.duckdb"), read_only=True)
        .execute("SELECT table_name FROM information_schema.tables")
        .fetchall()
    }
    assert {"events", "rollouts", "sft_examples", "rl_prompts", "curriculum_gates"} <= tables
