"""The SQL models: which tables exist, what each reads, and how one is (re)built.

Each model is one ``SELECT`` in ``warehouse/sql/<name>.sql`` (its columns described in
``warehouse/columns.toml``); building it is
``CREATE OR REPLACE TABLE <name> AS <select>`` in one transaction, so a reader never sees half a
table. The levers the SQL needs (upsample factor, curriculum thresholds, gates …) come from the
config as DuckDB variables (``getvariable('…')``); the same levers, the same tables.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from vtforge.config import Config

RAW = "raw"
CURATED = "curated"
DATASETS = "datasets"
TELEMETRY = "telemetry"


class ModelError(RuntimeError):
    """A model's SQL failed; the message names the model and its file."""


@dataclass(frozen=True)
class Model:
    """A table built from one SQL file; ``deps`` are the tables its SQL reads."""

    name: str
    group: str
    deps: tuple[str, ...]
    description: str

    @property
    def sql(self) -> str:
        return sql_text(self.name)


def sql_text(name: str) -> str:
    return resources.files("vtforge.warehouse").joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")


@functools.cache
def column_docs() -> dict[str, dict[str, str]]:
    """``warehouse/columns.toml``: per model table, what each column means."""
    text = resources.files("vtforge.warehouse").joinpath("columns.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"  # COMMENT ON takes no parameters


def _m(name: str, group: str, deps: str, description: str) -> Model:
    return Model(name, group, tuple(deps.split()), description)


MODELS: tuple[Model, ...] = (
    _m("tasks", CURATED, "raw_task_registered", "One row per task, with the files its gold patch touches."),
    _m("rollouts", CURATED, "raw_rollout", "One row per model sample (localizer, BugFixer, TestWriter, …)."),
    _m("training_steps", CURATED, "raw_training_step", "One row per optimiser step."),
    _m("policy_versions", CURATED, "rollouts training_steps", "Policy versions in order of appearance."),
    _m("localizations", CURATED, "raw_localization_predicted rollouts tasks", "Predicted files per rollout."),
    _m("patches", CURATED, "raw_patch_proposed rollouts", "One row per proposed patch."),
    _m("tests", CURATED, "raw_test_proposed rollouts", "One row per generated test."),
    _m("executions", CURATED, "raw_execution_result patches tests", "One row per sandboxed run."),
    _m("rewards", CURATED, "raw_reward_assigned rollouts patches tests", "One row per reward."),
    _m("selections", CURATED, "raw_selection_decided", "One row per execution-based selection."),
    _m("agent_steps", CURATED, "raw_agent_step rollouts", "One row per step of a live vtcode session."),
    _m("evaluations", CURATED, "raw_evaluation_result tasks", "One row per graded prediction."),
    _m(
        "test_outcomes",
        CURATED,
        "executions tests patches rewards tasks",
        "Per generated test: fails before the fix? passes after? flaky?",
    ),
    _m(
        "rollout_outcomes",
        CURATED,
        "rollouts raw_patch_proposed raw_test_proposed rewards test_outcomes localizations",
        "Per rollout: its reward in [0, 1] and whether it succeeded.",
    ),
    _m("chat_transcripts", CURATED, "rollouts", "Every rollout as chat messages with <think> reasoning."),
    _m(
        "sft_examples",
        DATASETS,
        "rollouts chat_transcripts rollout_outcomes tasks",
        "Chat-format SFT examples from successful and gold rollouts; synthetic ones upsampled.",
    ),
    _m(
        "rl_prompts_excluded",
        DATASETS,
        "tasks",
        "Tasks the execution-outcome reward cannot run on (no repo_dir, …), with the reason.",
    ),
    _m(
        "rl_prompts",
        DATASETS,
        "tasks rollouts policy_versions rollout_outcomes localizations chat_transcripts "
        "raw_localization_predicted rl_prompts_excluded",
        "One BugFixer RL prompt per runnable task, with its localization and difficulty bucket.",
    ),
    _m(
        "replay_buffer",
        DATASETS,
        "rollouts rollout_outcomes policy_versions chat_transcripts rl_prompts_excluded",
        "Top-k successful BugFixer trajectories per task from the latest policy versions.",
    ),
    _m(
        "false_positives",
        DATASETS,
        "executions tests tasks patches",
        "Patches that pass generated tests but fail the task's own tests, with the counterexample.",
    ),
    _m(
        "telemetry_localization",
        TELEMETRY,
        "localizations policy_versions",
        "Localization recall@k per stage, policy version and file kind (source | test).",
    ),
    _m(
        "telemetry_patches",
        TELEMETRY,
        "raw_patch_proposed rollouts rewards policy_versions",
        "Patch acceptance per BugFixer sample (with its failure reasons), apply and resolve rates.",
    ),
    _m(
        "telemetry_tests",
        TELEMETRY,
        "test_outcomes rollouts policy_versions",
        "Generated-test quality, per-task fail-before-fix rate and flake rate per stage and version.",
    ),
    _m(
        "telemetry_rewards",
        TELEMETRY,
        "rollout_outcomes policy_versions",
        "Reward mean/std and solved-all/none/some group shares per stage, version and role.",
    ),
    _m("skill_evaluations", TELEMETRY, "raw_skill_evaluation", "One row per metric of a skill evaluation."),
    _m(
        "curriculum_gates",
        TELEMETRY,
        "telemetry_localization telemetry_patches telemetry_tests skill_evaluations policy_versions",
        "Each promotion gate: threshold, comparison, value, passed.",
    ),
    _m(
        "leaderboard",
        TELEMETRY,
        "skill_evaluations",
        "The newest skill evaluation of each arm (or policy): metric, value, n and a 95% Wilson interval.",
    ),
    _m(
        "policy_promotions",
        TELEMETRY,
        "raw_policy_promoted",
        "Every promotion decision on a policy (promoted | rejected | forced) with its gate values.",
    ),
)

MODELS_BY_NAME = {m.name: m for m in MODELS}


def variables(config: Config) -> dict[str, float | int | str]:
    """The config levers the SQL reads with ``getvariable``."""
    forge = config.forge
    gates = forge.curriculum.gates
    return {
        "synthetic_upsample": forge.datasets.synthetic_upsample,
        "easy_min_success": forge.curriculum.easy_min_success,
        "medium_min_success": forge.curriculum.medium_min_success,
        "replay_window_versions": forge.curriculum.replay_window_versions,
        "replay_top_k_per_task": forge.curriculum.replay_top_k_per_task,
        "replay_max_rows": forge.curriculum.replay_max_rows,
        "max_localized_files": forge.selfplay.max_localized_files,
        "gate_localization_accuracy": gates.localization_accuracy,
        "gate_patch_acceptance": gates.patch_acceptance,
        "gate_fail_before_fix_rate": gates.fail_before_fix_rate,
        "frozen_localization_policy": forge.train.frozen_localization_policy or "",
    }


def prepare(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    """Set the lever variables and the helper macros on a connection."""
    for name, value in variables(config).items():
        if isinstance(value, str):
            con.execute(f"SET VARIABLE {name} = ?", [value])
            continue
        literal = repr(float(value)) if isinstance(value, float) else str(int(value))
        con.execute(f"SET VARIABLE {name} = {literal}")
    con.execute(sql_text("_macros"))


def build(con: duckdb.DuckDBPyConnection, name: str) -> int:
    """Rebuild one model's table atomically; returns its row count."""
    model = MODELS_BY_NAME[name]
    con.execute("BEGIN")
    try:
        con.execute(f'CREATE OR REPLACE TABLE "{name}" AS {model.sql}')
        con.execute(f'COMMENT ON TABLE "{name}" IS {_literal(model.description)}')
        for column, doc in column_docs().get(name, {}).items():
            con.execute(f'COMMENT ON COLUMN "{name}"."{column}" IS {_literal(doc)}')
        con.execute("COMMIT")
    except duckdb.Error as exc:
        con.execute("ROLLBACK")
        raise ModelError(f"model {name} (warehouse/sql/{name}.sql): {exc}") from exc
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]


def build_order(names: list[str] | None = None) -> list[Model]:
    """Models in dependency order (the registry is written in one), optionally a subset."""
    wanted = set(names) if names is not None else None
    return [m for m in MODELS if wanted is None or m.name in wanted]
