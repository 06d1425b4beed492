"""The SQL models: which tables exist, what each reads, and how one is (re)built.

Each model is one ``SELECT`` in ``warehouse/sql/<name>.sql`` (its columns described in
``warehouse/columns.toml``); building it is
``CREATE OR REPLACE TABLE <name> AS <select>`` in one transaction, so a reader never sees half a
table. The levers the SQL needs (upsample factor, curriculum thresholds, gates …) come from the
config as DuckDB variables (``getvariable('…')``); the same levers, the same tables.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

import duckdb

from vtforge.warehouse.connection import scratch

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
    """A table built from one SQL file.

    ``partition`` is the column that splits it into independent slices (``task_id``: a task's rows
    depend only on rows of the same task, so new events rebuild only their tasks' slices); ``None``
    for a table over everything (an aggregate, a global order), which is rebuilt whole.

    ``materialized`` is ``table`` (stored) or ``view`` (dbt's word for the same choice): a view is
    for a model that only reshapes stored rows into more of them (``sft_examples`` repeats each
    synthetic chat ``synthetic_upsample`` times), where storing the copies costs more than reading
    them computed. A view's SQL must not call the connection's macros; its levers are written
    into it as constants, so any DuckDB client reads it the same.
    """

    name: str
    group: str
    description: str
    partition: str | None = "task_id"
    materialized: str = "table"

    @property
    def sql(self) -> str:
        return sql_text(self.name)

    @property
    def deps(self) -> tuple[str, ...]:
        """The tables its SQL reads, from DuckDB's own parse tree (never declared by hand)."""
        return _model_references()[self.name]


@functools.cache
def sql_text(name: str) -> str:
    """A model's SQL (package data: read once per process)."""
    return resources.files("vtforge.warehouse").joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")


def table_references(sql: str) -> tuple[str, ...]:
    """Tables a ``SELECT`` reads: every base table in its parse tree that is not one of its CTEs."""
    return _references((sql,))[0]


@functools.cache
def _model_references() -> dict[str, tuple[str, ...]]:
    """Every model's tables, parsed in one statement (a new process pays it once)."""
    return dict(zip((m.name for m in MODELS), _references(tuple(m.sql for m in MODELS)), strict=True))


@functools.cache
def _references(sqls: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    with scratch().cursor() as cur:  # parsed only: nothing is bound, no table needs to exist
        trees = [
            row[0]
            for row in cur.execute(
                "SELECT json_serialize_sql(s) FROM unnest(?::VARCHAR[]) WITH ORDINALITY t(s, i) ORDER BY i",
                [list(sqls)],
            ).fetchall()
        ]
    return tuple(_tables_in(tree) for tree in trees)


def _tables_in(serialized: str) -> tuple[str, ...]:
    tables: set[str] = set()
    ctes: set[str] = set()

    def visit(node: dict[str, object]) -> dict[str, object]:  # called for every object, innermost first
        if node.get("type") == "BASE_TABLE":
            tables.add(str(node["table_name"]))
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            ctes.update(entry["key"] for entry in cte_map.get("map", []))
        return node

    tree = json.loads(serialized, object_hook=visit)
    if tree.get("error"):
        raise ModelError(f"cannot parse SQL: {tree.get('error_message')}")
    return tuple(sorted(tables - ctes))


@functools.cache
def column_docs() -> dict[str, dict[str, str]]:
    """``warehouse/columns.toml``: per model table, what each column means."""
    text = resources.files("vtforge.warehouse").joinpath("columns.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"  # COMMENT ON takes no parameters


def _m(
    name: str, group: str, description: str, partition: str | None = "task_id", materialized: str = "table"
) -> Model:
    return Model(name, group, description, partition, materialized)


MODELS: tuple[Model, ...] = (
    _m("tasks", CURATED, "One row per task, with the files its gold patch touches."),
    _m("rollouts", CURATED, "One row per model sample (localizer, BugFixer, TestWriter, …)."),
    _m("training_steps", CURATED, "One row per optimiser step.", None),
    _m(
        "policy_versions_by_task",
        CURATED,
        "policy_versions' first sighting per task: the partial minimum a refresh rebuilds by task.",
    ),
    _m("policy_versions", CURATED, "Policy versions in order of appearance.", None),
    _m("localizations", CURATED, "Predicted files per rollout."),
    _m("patches", CURATED, "One row per proposed patch."),
    _m("tests", CURATED, "One row per generated test."),
    _m("executions", CURATED, "One row per sandboxed run."),
    _m("rewards", CURATED, "One row per reward."),
    _m("selections", CURATED, "One row per execution-based selection."),
    _m("agent_steps", CURATED, "One row per step of a live vtcode session."),
    _m("evaluations", CURATED, "One row per graded prediction."),
    _m("test_outcomes", CURATED, "Per generated test: fails before the fix? passes after? flaky?"),
    _m("rollout_outcomes", CURATED, "Per rollout: its reward in [0, 1] and whether it succeeded."),
    _m("chat_transcripts", CURATED, "Every rollout as chat messages with <think> reasoning."),
    _m(
        "sft_examples",
        DATASETS,
        "Chat-format SFT examples from successful and gold rollouts; synthetic ones upsampled.",
        materialized="view",
    ),
    _m(
        "rl_prompts_excluded",
        DATASETS,
        "Tasks the execution-outcome reward cannot run on (no repo_dir, …), with the reason.",
    ),
    _m(
        "rl_prompts",
        DATASETS,
        "One BugFixer RL prompt per runnable task, with its localization and difficulty bucket.",
    ),
    _m(
        "replay_candidates",
        DATASETS,
        "Each task's top-k successful BugFixer trajectories in the replay window (replay_buffer caps them).",
    ),
    _m(
        "replay_buffer",
        DATASETS,
        "Top-k successful BugFixer trajectories per task from the latest policy versions.",
        None,
    ),
    _m(
        "false_positives",
        DATASETS,
        "Patches that pass generated tests but fail the task's own tests, with the counterexample.",
    ),
    _m(
        "telemetry_localization_by_task",
        TELEMETRY,
        "telemetry_localization's sums per task and group: the partial sums a refresh rebuilds by task.",
    ),
    _m(
        "telemetry_localization",
        TELEMETRY,
        "Localization recall@k per stage, policy version and file kind (source | test).",
        None,
    ),
    _m(
        "telemetry_patches_by_task",
        TELEMETRY,
        "telemetry_patches' counts per task and group: the partial sums a refresh rebuilds by task.",
    ),
    _m(
        "telemetry_patches",
        TELEMETRY,
        "Patch acceptance per BugFixer sample (with its failure reasons), apply and resolve rates.",
        None,
    ),
    _m(
        "telemetry_tests_by_task",
        TELEMETRY,
        "telemetry_tests' counts per task and group: the partial sums a refresh rebuilds by task.",
    ),
    _m(
        "telemetry_tests",
        TELEMETRY,
        "Generated-test quality, per-task fail-before-fix rate and flake rate per stage and version.",
        None,
    ),
    _m(
        "telemetry_rewards_by_task",
        TELEMETRY,
        "telemetry_rewards' count, sum and variance per group (a task's rollouts of one role and version).",
    ),
    _m(
        "telemetry_rewards",
        TELEMETRY,
        "Reward mean/std and solved-all/none/some group shares per stage, version and role.",
        None,
    ),
    _m("skill_evaluations", TELEMETRY, "One row per metric of a skill evaluation.", None),
    _m("curriculum_gates", TELEMETRY, "Each promotion gate: threshold, comparison, value, passed.", None),
    _m(
        "leaderboard",
        TELEMETRY,
        "The newest skill evaluation of each arm (or policy): metric, value, n and a 95% Wilson interval.",
        None,
    ),
    _m(
        "policy_promotions",
        TELEMETRY,
        "Every promotion decision on a policy (promoted | rejected | forced) with its gate values.",
        None,
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


Levers = list[tuple[str, object, str]]  # (name, value, DuckDB type) of each lever variable


def levers_of(con: duckdb.DuckDBPyConnection) -> Levers:
    """The lever variables set on ``con`` (by ``prepare``), typed."""
    return con.execute("SELECT name, value, type FROM duckdb_variables()").fetchall()


def carry(cur: duckdb.DuckDBPyConnection, levers: Levers) -> None:
    """Give another cursor what ``prepare`` gave its connection: variables and macros are per
    cursor, and a model's SQL reads both."""
    for name, value, kind in levers:
        cur.execute(f"SET VARIABLE {name} = CAST(? AS {kind})", [value])
    cur.execute(sql_text("_macros"))


def build(con: duckdb.DuckDBPyConnection, name: str) -> int:
    """Rebuild one model's table atomically (its own transaction); returns its row count."""
    with transaction(con, name):
        replace_table(con, name)
    return con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]


def replace_table(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """``CREATE OR REPLACE`` one model's table (or view) from its SQL, with its descriptions as
    comments."""
    model = MODELS_BY_NAME[name]
    kind = "VIEW" if model.materialized == "view" else "TABLE"
    catalog = "duckdb_tables()" if kind == "VIEW" else "duckdb_views()"
    other = "table_name" if kind == "VIEW" else "view_name"
    if con.execute(
        f"SELECT 1 FROM {catalog} WHERE {other} = ? AND schema_name = 'main' AND NOT temporary "
        "AND database_name = current_database()",
        [name],
    ).fetchall():  # its materialisation changed
        con.execute(f'DROP {"TABLE" if kind == "VIEW" else "VIEW"} main."{name}"')
    if kind == "VIEW":
        con.execute(f'CREATE OR REPLACE VIEW "{name}" AS {inline_levers(con, model.sql)}')
    else:
        con.execute(f'CREATE OR REPLACE TABLE "{name}" AS {model.sql}')
    con.execute(f'COMMENT ON {kind} "{name}" IS {_literal(model.description)}')
    for column, doc in column_docs().get(name, {}).items():
        con.execute(f'COMMENT ON COLUMN "{name}"."{column}" IS {_literal(doc)}')


_GETVARIABLE = re.compile(r"getvariable\(\s*'(\w+)'\s*\)", re.IGNORECASE)


def inline_levers(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """``sql`` with each ``getvariable('lever')`` replaced by the connection's value, typed: a view
    read by another connection (which has no lever variables) computes the same rows."""
    values = {
        name: (value, kind)
        for name, value, kind in con.execute(
            "SELECT name, value::VARCHAR, type FROM duckdb_variables()"
        ).fetchall()
    }

    def constant(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise ModelError(f"lever variable {match.group(1)!r} is not set on this connection")
        value, kind = values[match.group(1)]
        return "NULL" if value is None else f"CAST({_literal(value)} AS {kind})"

    return _GETVARIABLE.sub(constant, sql)


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection, name: str) -> Iterator[None]:
    """One transaction for one model's build; a SQL error names the model and its file."""
    con.execute("BEGIN")
    try:
        yield
        con.execute("COMMIT")
    except duckdb.Error as exc:
        con.execute("ROLLBACK")
        raise ModelError(f"model {name} (warehouse/sql/{name}.sql): {exc}") from exc
    except BaseException:
        con.execute("ROLLBACK")
        raise


def build_order(names: list[str] | None = None) -> list[Model]:
    """Models in dependency order (the registry is written in one), optionally a subset."""
    wanted = set(names) if names is not None else None
    return [m for m in MODELS if wanted is None or m.name in wanted]
