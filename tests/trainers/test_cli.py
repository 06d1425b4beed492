"""``vtforge train sft|grpo`` and ``vtforge gates``: what the demo calls, with real exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from vtforge.config import load_config
from vtforge.fixtures.warehouse import build_warehouse, create_tables
from vtforge.trainers.gates import evaluate_gates


def _vtforge(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    from vtforge.cli import main

    monkeypatch.setattr(sys, "argv", ["vtforge", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0)


def _gates_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vtforge", "gates", *args], cwd=cwd, capture_output=True, text=True
    )


def test_train_sft_then_grpo_out_of_the_box(train_ws: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    cfg = load_config(cwd=train_ws)
    build_warehouse(cfg.duckdb_path, sft=8, rl={"medium": 2, "hard": 1})
    assert _vtforge(monkeypatch, "train", "sft", "--max-steps", "2") == 0
    out = capsys.readouterr().out
    assert "sft policy sft-" in out and "2 steps" in out and "step 2, loss" in out
    # the SFT policy has no promotion (tests/trainers/test_promotion.py): --force, recorded
    assert _vtforge(monkeypatch, "train", "grpo", "--max-steps", "1", "--reward", "bandit", "--force") == 0
    out = capsys.readouterr().out
    latest = json.loads((cfg.data_dir / "trainers" / "latest.json").read_text())
    assert f"(from {latest['sft']['final']})" in out  # GRPO starts from the SFT policy
    assert latest["last"] == latest["grpo"]["policy_version"]


def test_train_without_a_warehouse_is_one_clear_error(train_ws: Path, monkeypatch, capsys) -> None:
    assert _vtforge(monkeypatch, "train", "sft", "--max-steps", "1") == 1
    assert "warehouse not found" in capsys.readouterr().err


def _gate_rows(cfg, rows: list[tuple]) -> None:
    cfg.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(cfg.duckdb_path))
    create_tables(con)
    con.executemany("INSERT INTO curriculum_gates VALUES (?, ?, ?, ?, ?, ?)", rows)
    con.close()


def test_gates_exit_codes(train_ws: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    cfg = load_config(cwd=train_ws)
    assert _gates_cli(cwd=train_ws).returncode == 3  # no warehouse (a real process, real exit code)
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
    assert _vtforge(monkeypatch, "gates", "--policy-version", version) == 0
    out = capsys.readouterr().out
    assert "patch_acceptance" in out and "0.520" in out
    assert _vtforge(monkeypatch, "gates") == 0  # the newest version by its timestamp
    capsys.readouterr()
    failed = _gates_cli("--policy-version", "sft-20261128T000000Z-0000", cwd=train_ws)
    assert failed.returncode == 1
    assert "gates failed for policy sft-20261128T000000Z-0000" in failed.stderr
    assert "localization_accuracy" in failed.stderr  # no telemetry is a failure, not a pass
    assert _vtforge(monkeypatch, "gates", "--policy-version", version, "--json") == 0
    as_json = json.loads(capsys.readouterr().out)
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
