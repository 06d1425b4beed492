"""Gates that promote: `vtforge gates --promote` records the decision, and `vtforge train grpo`
starts only from a promoted policy (or with --force, recorded as a forced decision)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from vtforge.config import load_config
from vtforge.fixtures.warehouse import build_warehouse
from vtforge.trainers.gates import GateReport, GateResult
from vtforge.trainers.promotion import decide, shortfall
from vtforge.warehouse.load import load_landing
from vtforge.warehouse.models import build, prepare


def _vtforge(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    from vtforge.cli import main

    monkeypatch.setattr(sys, "argv", ["vtforge", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0)


def _set_gates(cfg, version: str, localization: float) -> None:
    con = duckdb.connect(str(cfg.duckdb_path))
    con.execute("DELETE FROM curriculum_gates")
    con.executemany(
        "INSERT INTO curriculum_gates VALUES (?, ?, ?, ?, ?, 'rl')",
        [
            ("localization_accuracy", 0.6, localization, localization >= 0.6, version),
            ("patch_acceptance", 0.5, 0.7, True, version),
            ("fail_before_fix_rate", 0.8, 0.9, True, version),
        ],
    )
    con.close()


def _materialize_promotions(cfg) -> list[tuple]:
    """Landing → raw tables → ``policy_promotions``, as the warehouse job does for this model."""
    con = duckdb.connect(str(cfg.duckdb_path))
    try:
        load_landing(con, cfg.landing_dir)
        prepare(con, cfg)
        build(con, "policy_promotions")
        return con.execute(
            "SELECT decision, current, forced_by FROM policy_promotions ORDER BY occurred_at"
        ).fetchall()
    finally:
        con.close()


def _landed(cfg) -> list[dict]:
    files = sorted((cfg.landing_dir / "policy_promoted").rglob("*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def test_grpo_starts_only_from_a_promoted_policy(
    train_ws: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    cfg = load_config(cwd=train_ws)
    build_warehouse(cfg.duckdb_path, sft=8, rl={"medium": 2, "hard": 1})
    assert _vtforge(monkeypatch, "train", "sft", "--max-steps", "1", "--no-events") == 0
    sft = json.loads((cfg.data_dir / "trainers" / "latest.json").read_text())["sft"]["policy_version"]
    grpo = ("train", "grpo", "--max-steps", "1", "--reward", "bandit", "--no-events")
    capsys.readouterr()

    # 1. no decision yet: refused, saying what to run
    assert _vtforge(monkeypatch, *grpo) == 3
    err = capsys.readouterr().err
    assert f"policy {sft} has no promotion decision" in err and "vtforge gates --promote" in err

    # 2. rejected: the reason names the failed gate and by how much
    _set_gates(cfg, sft, localization=0.42)
    assert _vtforge(monkeypatch, "gates", "--policy-version", sft, "--promote") == 1
    out = capsys.readouterr().out
    assert f"rejected: policy {sft}" in out
    assert "localization_accuracy[rl] 0.420" in " ".join(out.split())  # the stage, not eaten as markup
    assert _materialize_promotions(cfg) == [("rejected", True, None)]
    assert _vtforge(monkeypatch, *grpo) == 3
    err = " ".join(capsys.readouterr().err.split())
    assert "localization_accuracy[rl] 0.420, needs >= 0.600 (short by 0.180)" in err

    # 3. --force trains anyway and records the override, naming the GRPO run
    assert _vtforge(monkeypatch, *grpo[:-1], "--force") == 0
    out = capsys.readouterr().out
    assert f"forced: started from {sft}" in " ".join(out.split())
    forced_run = json.loads((cfg.data_dir / "trainers" / "latest.json").read_text())["grpo"]["policy_version"]
    events = _landed(cfg)
    assert [e["decision"] for e in events] == ["rejected", "forced"]
    forced = events[1]
    assert forced["forced_by"] == forced_run and forced["policy_version"] == sft
    assert forced["envelope"]["run_id"] == forced_run and forced["passed"] is False
    gates = {g["gate"]: (g["value"], g["passed"]) for g in forced["gates"]}
    assert gates["localization_accuracy"] == (0.42, False) and gates["patch_acceptance"] == (0.7, True)

    # 4. promoted once the gates pass: the newer decision is the current one, and GRPO starts
    _set_gates(cfg, sft, localization=0.75)
    assert _vtforge(monkeypatch, "gates", "--policy-version", sft, "--promote") == 0
    assert f"promoted: policy {sft} (every gate passed)" in " ".join(capsys.readouterr().out.split())
    assert _materialize_promotions(cfg) == [
        ("rejected", False, None),
        ("forced", False, forced_run),
        ("promoted", True, None),
    ]
    assert _vtforge(monkeypatch, *grpo) == 0
    assert f"started from promoted policy {sft}" in capsys.readouterr().out


def test_a_base_model_needs_no_promotion(train_ws: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    cfg = load_config(cwd=train_ws)
    build_warehouse(cfg.duckdb_path, sft=4, rl={"medium": 2})
    grpo = ("train", "grpo", "--max-steps", "1", "--reward", "bandit", "--no-events")
    assert _vtforge(monkeypatch, *grpo) == 0
    run = json.loads((cfg.data_dir / "trainers" / "latest.json").read_text())["grpo"]["policy_version"]
    summary = json.loads((cfg.data_dir / "trainers" / run / "run.json").read_text())
    assert summary["promotion"]["decision"] == "base"


def test_the_reason_says_which_gate_failed_and_by_how_much() -> None:
    report = GateReport(
        "p",
        [
            GateResult("localization_accuracy", 0.6, 0.6, True, "rl"),
            GateResult("fail_before_fix_rate", 0.8, 0.8, False, "rl", comparison=">"),
            GateResult("patch_acceptance", 0.5, None, False, note="no telemetry"),
        ],
    )
    assert decide(report) == (
        "rejected",
        "fail_before_fix_rate[rl] 0.800, needs > 0.800 (equal to the threshold; needs more); "
        "patch_acceptance: no telemetry (needs >= 0.500)",
    )
    assert shortfall(GateResult("patch_acceptance", 0.5, 0.25, False)) == (
        "patch_acceptance 0.250, needs >= 0.500 (short by 0.250)"
    )
    assert decide(GateReport("p")) == ("rejected", "no gates evaluated")
    assert decide(GateReport("p", [GateResult("patch_acceptance", 0.5, 0.5, True)])) == (
        "promoted",
        "every gate passed",
    )
