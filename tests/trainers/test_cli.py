"""``vtforge train sft|grpo`` and ``vtforge gates``: what the demo calls, with real exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb

from tests.cli import invoke
from vtforge.config import load_config
from vtforge.fixtures.warehouse import build_warehouse, create_tables
from vtforge.trainers.gates import evaluate_gates


def test_train_sft_then_grpo_out_of_the_box(train_ws: Path) -> None:
    cfg = load_config(cwd=train_ws)
    build_warehouse(cfg.duckdb_path, sft=8, rl={"medium": 2, "hard": 1})
    sft = invoke("train", "sft", "--max-steps", "2")
    assert sft.exit_code == 0, sft.stderr
    out = sft.stdout
    assert "sft policy sft-" in out and "2 steps" in out and "step 2, loss" in out
    # the SFT policy has no promotion (tests/trainers/test_promotion.py): --force, recorded
    grpo = invoke("train", "grpo", "--max-steps", "1", "--reward", "bandit", "--force")
    assert grpo.exit_code == 0, grpo.stderr
    out = grpo.stdout
    latest = json.loads((cfg.data_dir / "trainers" / "latest.json").read_text())
    assert f"(from {latest['sft']['final']})" in out  # GRPO starts from the SFT policy
    assert latest["last"] == latest["grpo"]["policy_version"]


def test_train_without_a_warehouse_is_one_clear_error(train_ws: Path) -> None:
    done = invoke("train", "sft", "--max-steps", "1")
    assert done.exit_code == 1
    assert "warehouse not found" in done.stderr


def _gate_rows(cfg, rows: list[tuple]) -> None:
    cfg.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(cfg.duckdb_path))
    create_tables(con)
    con.executemany("INSERT INTO curriculum_gates VALUES (?, ?, ?, ?, ?, ?)", rows)
    con.close()


def test_gates_exit_codes(train_ws: Path) -> None:
    cfg = load_config(cwd=train_ws)
    # A real process, once: `python -m vtforge` starts and its status reaches the shell as the exit
    # code (no warehouse: 3). Everything else here runs in-process (tests/cli.py).
    no_warehouse = subprocess.run(
        [sys.executable, "-m", "vtforge", "gates"], cwd=train_ws, capture_output=True, text=True
    )
    assert no_warehouse.returncode == 3, no_warehouse.stderr
    version = "grpo-20261128T010203Z-abcd"
    _gate_rows(
        cfg,
        [
            ("localization_accuracy", 0.6, 0.75, True, version, "rl"),
            ("patch_acceptance", 0.5, 0.52, True, version, "rl"),
            ("fail_before_fix_rate", 0.8, 0.85, True, version, "rl"),
            ("fail_before_fix_rate", 0.8, 0.10, False, "sft-20261128T000000Z-0000", "rl"),
        ],
    )
    passed = invoke("gates", "--policy-version", version)
    assert passed.exit_code == 0, passed.stderr
    assert "patch_acceptance" in passed.stdout and "0.520" in passed.stdout
    assert invoke("gates").exit_code == 0  # the newest version by its timestamp
    failed = invoke("gates", "--policy-version", "sft-20261128T000000Z-0000")
    assert failed.exit_code == 1
    assert "gates failed for policy sft-20261128T000000Z-0000" in failed.stderr
    assert "localization_accuracy" in failed.stderr  # no telemetry is a failure, not a pass
    report = invoke("gates", "--policy-version", version, "--json")
    assert report.exit_code == 0, report.stderr
    as_json = json.loads(report.stdout)
    assert as_json["passed"] is True and as_json["gates"]["patch_acceptance[rl]"]["value"] == 0.52


def test_thresholds_come_from_the_config(train_ws: Path) -> None:
    cfg = load_config(cwd=train_ws)
    _gate_rows(cfg, [("patch_acceptance", 0.5, 0.55, True, "v", "rl")])
    con = duckdb.connect(str(cfg.duckdb_path), read_only=True)
    strict = evaluate_gates(con, {"patch_acceptance": 0.6}, "v")
    lenient = evaluate_gates(con, {"patch_acceptance": 0.5}, "v")
    con.close()
    assert not strict.passed and lenient.passed
    assert strict.results[0].threshold == 0.6 and strict.results[0].value == 0.55


def test_newest_policy_follows_the_warehouse_version_index(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute(
        "CREATE TABLE curriculum_gates (gate VARCHAR, threshold DOUBLE, value DOUBLE, passed BOOLEAN, "
        "policy_version VARCHAR, stage VARCHAR, version_index INTEGER)"
    )
    con.executemany(
        "INSERT INTO curriculum_gates VALUES ('patch_acceptance', 0.5, ?, true, ?, 'rl', ?)",
        [(0.9, "zzz-old", 0), (0.1, "aaa-new", 1)],
    )
    report = evaluate_gates(con, {"patch_acceptance": 0.5})
    con.close()
    assert report.policy_version == "aaa-new" and not report.passed
