"""Gates that promote: `vtforge gates --promote` records the decision, and `vtforge train grpo`
starts only from a promoted policy (or with --force, recorded as a forced decision)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from tests.cli import invoke
from vtforge.config import load_config
from vtforge.fixtures.warehouse import build_warehouse
from vtforge.trainers.gates import GateReport, GateResult
from vtforge.trainers.promotion import decide, shortfall
from vtforge.warehouse.incremental import materialize
from vtforge.warehouse.load import load_landing
from vtforge.warehouse.models import prepare


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
        materialize(con, "policy_promotions")
        return con.execute(
            "SELECT decision, current, forced_by FROM policy_promotions ORDER BY occurred_at"
        ).fetchall()
    finally:
        con.close()


def _landed(cfg) -> list[dict]:
    files = (cfg.landing_dir / "policy_promoted").rglob("*.parquet")
    rows = [row for f in files for row in pq.read_table(f).to_pylist()]
    return sorted(rows, key=lambda row: row["envelope"]["occurred_at"])  # file names need not sort by time


def test_grpo_starts_only_from_a_promoted_policy(train_ws: Path) -> None:
    cfg = load_config(cwd=train_ws)
    build_warehouse(cfg.duckdb_path, sft=8, rl={"medium": 2, "hard": 1})
    trained = invoke("train", "sft", "--max-steps", "1", "--no-events")
    assert trained.exit_code == 0, trained.stderr
    sft = json.loads((cfg.data_dir / "trainers" / "latest.json").read_text())["sft"]["policy_version"]
    grpo = ("train", "grpo", "--max-steps", "1", "--reward", "bandit", "--no-events")

    # 1. no decision yet: refused, saying what to run
    refused = invoke(*grpo)
    assert refused.exit_code == 3
    err = refused.stderr
    assert f"policy {sft} has no promotion decision" in err and "vtforge gates --promote" in err

    # 2. rejected: the reason names the failed gate and by how much
    _set_gates(cfg, sft, localization=0.42)
    rejected = invoke("gates", "--policy-version", sft, "--promote")
    assert rejected.exit_code == 1
    out = rejected.stdout
    assert f"rejected: policy {sft}" in out
    assert "localization_accuracy[rl] 0.420" in " ".join(out.split())  # the stage, not eaten as markup
    assert _materialize_promotions(cfg) == [("rejected", True, None)]
    refused = invoke(*grpo)
    assert refused.exit_code == 3
    err = " ".join(refused.stderr.split())
    assert "localization_accuracy[rl] 0.420, needs >= 0.600 (short by 0.180)" in err

    # 3. --force trains anyway and records the override, naming the GRPO run
    forced_grpo = invoke(*grpo[:-1], "--force")
    assert forced_grpo.exit_code == 0, forced_grpo.stderr
    assert f"forced: started from {sft}" in " ".join(forced_grpo.stdout.split())
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
    promoted = invoke("gates", "--policy-version", sft, "--promote")
    assert promoted.exit_code == 0, promoted.stderr
    assert f"promoted: policy {sft} (every gate passed)" in " ".join(promoted.stdout.split())
    assert _materialize_promotions(cfg) == [
        ("rejected", False, None),
        ("forced", False, forced_run),
        ("promoted", True, None),
    ]
    started = invoke(*grpo)
    assert started.exit_code == 0, started.stderr
    assert f"started from promoted policy {sft}" in started.stdout


def test_a_base_model_needs_no_promotion(train_ws: Path) -> None:
    cfg = load_config(cwd=train_ws)
    build_warehouse(cfg.duckdb_path, sft=4, rl={"medium": 2})
    done = invoke("train", "grpo", "--max-steps", "1", "--reward", "bandit", "--no-events")
    assert done.exit_code == 0, done.stderr
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
