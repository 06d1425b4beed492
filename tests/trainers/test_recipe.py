"""``vtforge recipe run``: the three arms with the same budgets, each policy tagged with its arm;
the staged arm promotes (or not) between SFT and GRPO."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.trainers.conftest import write_levers
from tests.warehouse.conftest import emit
from tests.warehouse.streams import hand_stream
from vtforge.config import load_config
from vtforge.warehouse.refresh import refresh

BUDGETS = "\n[forge.recipe]\nsft_steps = 2\ngrpo_steps = 1\n"


def _vtforge(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    from vtforge.cli import main

    monkeypatch.setattr(sys, "argv", ["vtforge", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0)


@pytest.fixture
def recipe_ws(workspace: Path):
    """A warehouse built from events (the staged arm refreshes it between its stages)."""
    write_levers(workspace, BUDGETS)
    cfg = load_config(cwd=workspace)
    emit(cfg, hand_stream())
    refresh(cfg, exports=False)
    return cfg


def _run(cfg, version: str) -> dict:
    return json.loads((cfg.data_dir / "trainers" / version / "run.json").read_text())


def _decisions(cfg) -> list[tuple[str, str | None]]:
    files = sorted((cfg.landing_dir / "policy_promoted").rglob("*.parquet"))
    rows = [row for f in files for row in pq.read_table(f).to_pylist()]
    return [(r["decision"], r["forced_by"]) for r in sorted(rows, key=lambda r: r["envelope"]["occurred_at"])]


def test_the_staged_arm_promotes_before_grpo_and_force_is_recorded(
    recipe_ws, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    cfg = recipe_ws
    staged = ("recipe", "run", "--arm", "staged", "--reward", "bandit")
    assert _vtforge(monkeypatch, *staged) == 3  # the tiny SFT policy has no gate evidence: rejected
    err = " ".join(capsys.readouterr().err.split())
    assert "staged: GRPO not started: policy sft-" in err and "was not promoted" in err
    assert [d for d, _ in _decisions(cfg)] == ["rejected"]

    assert _vtforge(monkeypatch, *staged, "--force") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "gates: rejected" in out and "arm staged: sft-" in out
    latest = json.loads((cfg.data_dir / "trainers" / "latest.json").read_text())
    sft, grpo = latest["sft"]["policy_version"], latest["grpo"]["policy_version"]
    assert latest["arms"]["staged"] == {"policy_version": grpo, "trainer": "grpo"}
    assert _run(cfg, sft)["arm"] == "staged" and _run(cfg, sft)["steps"] == 2  # forge.recipe.sft_steps
    run = _run(cfg, grpo)
    assert run["arm"] == "staged" and run["steps"] == 1 and run["started_from"] == latest["sft"]["final"]
    assert run["promotion"]["decision"] == "forced" and run["promotion"]["policy_version"] == sft
    assert _decisions(cfg) == [("rejected", None), ("rejected", None), ("forced", grpo)]


def test_the_agentic_arm_is_grpo_from_the_base_and_agentless_is_sft_only(
    recipe_ws, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    cfg = recipe_ws
    assert _vtforge(monkeypatch, "recipe", "run", "--arm", "agentic", "--reward", "bandit") == 0
    assert _vtforge(monkeypatch, "recipe", "run", "--arm", "agentless") == 0
    latest = json.loads((cfg.data_dir / "trainers" / "latest.json").read_text())
    agentic = _run(cfg, latest["arms"]["agentic"]["policy_version"])
    agentless = _run(cfg, latest["arms"]["agentless"]["policy_version"])
    tags = (agentic["trainer"], agentic["arm"], agentic["promotion"]["decision"])
    assert tags == ("grpo", "agentic", "base")
    assert agentic["started_from"] == "tiny" and agentic["steps"] == 1
    assert (agentless["trainer"], agentless["arm"], agentless["steps"]) == ("sft", "agentless", 2)
    assert _decisions(cfg) == []  # neither arm passes through the gates
    assert _vtforge(monkeypatch, "recipe", "run", "--arm", "both") == 2
    assert "--arm must be one of agentless, agentic, staged" in capsys.readouterr().err
