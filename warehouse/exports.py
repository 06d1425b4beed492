"""Parquet exports of the datasets in the layouts the trainers read.

``<data>/exports/trl/``: ``sft_messages.parquet`` (``messages``), ``sft_prompt_completion.parquet``
(``prompt``, ``completion``) and ``rl_prompts.parquet`` (``prompt`` as chat messages plus the task's
columns, which TRL hands to reward functions). ``<data>/exports/verl/``: ``rl_train.parquet`` and
``rl_eval.parquet`` with verl's columns ``data_source``, ``prompt``, ``ability``, ``reward_model``
(``style = 'rule'``, ``ground_truth`` = the tests as JSON) and ``extra_info`` (what the sandbox needs
to judge a completion: ``vtforge.trainers.verl_reward.compute_score`` reads it). SFT exports hold
the train split only: eval tasks never reach a trainer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb

from vtforge.warehouse.connection import scalar
from vtforge.warehouse.incremental import STATE_TABLE

EXPORTS = {
    "trl/sft_messages.parquet": """
        SELECT example_id, task_id, role, messages FROM sft_examples WHERE split = 'train'
        ORDER BY example_id""",
    "trl/sft_prompt_completion.parquet": """
        SELECT example_id, task_id, role, prompt, completion FROM sft_examples WHERE split = 'train'
        ORDER BY example_id""",
    "trl/rl_prompts.parquet": """
        SELECT prompt, task_id, repo, base_commit, fail_to_pass, pass_to_pass, localized_files,
               difficulty_bucket, baseline_success_rate
        FROM rl_prompts WHERE split = 'train' ORDER BY task_id""",
    "verl/rl_train.parquet": "{verl} WHERE split = 'train' ORDER BY task_id",
    "verl/rl_eval.parquet": "{verl} WHERE split = 'eval' ORDER BY task_id",
}

_VERL = """
    SELECT
        coalesce(source, 'vtforge') AS data_source,
        prompt,
        'swe_bugfix' AS ability,
        {'style': 'rule',
         'ground_truth': to_json({'fail_to_pass': fail_to_pass, 'pass_to_pass': pass_to_pass})::VARCHAR
        } AS reward_model,
        {'split': split, 'index': (row_number() OVER (ORDER BY task_id) - 1)::BIGINT, 'task_id': task_id,
         'repo': repo, 'base_commit': base_commit, 'difficulty_bucket': difficulty_bucket,
         'repo_dir': repo_dir, 'test_patch': test_patch} AS extra_info,
        task_id
    FROM rl_prompts"""


SOURCES = ("sft_examples", "rl_prompts")
STAMP = ".datasets-version.json"  # the datasets' change counters the files were written from


def export_datasets(con: duckdb.DuckDBPyConnection, folder: Path) -> dict[str, int]:
    """Write every export atomically (temp file, then rename); returns rows per file.

    Files are rewritten only when a dataset changed since they were written (its change counter in
    the model state): a refresh that added no example leaves them, and their readers, alone."""
    version = _datasets_version(con)
    stamp = folder / STAMP
    current = version is not None and stamp.exists() and json.loads(stamp.read_text()) == version
    if current and all((folder / relative).exists() for relative in EXPORTS):
        return {
            relative: scalar(con, "SELECT count(*) FROM read_parquet(?)", [str(folder / relative)])
            for relative in EXPORTS
        }
    stamp.unlink(missing_ok=True)
    written: dict[str, int] = {}
    for relative, query in EXPORTS.items():
        sql = query.replace("{verl}", _VERL)
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        con.execute(f"COPY ({sql}) TO {_quote(tmp)} (FORMAT parquet, COMPRESSION zstd)")
        os.replace(tmp, target)
        written[relative] = scalar(con, "SELECT count(*) FROM read_parquet(?)", [str(target)])
    if version is not None:
        stamp.write_text(json.dumps(version))
    return written


def _datasets_version(con: duckdb.DuckDBPyConnection) -> dict[str, int | str] | None:
    """Each source dataset's last-change counter, and the warehouse's first ingest (counters start
    again in a rebuilt file); None when a dataset has no recorded build."""
    known = scalar(
        con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND NOT temporary", [STATE_TABLE]
    )
    if not known:
        return None
    rows = dict(
        con.execute(
            f"SELECT model, changed_seq FROM {STATE_TABLE} WHERE model IN (SELECT unnest($names))",
            {"names": list(SOURCES)},
        ).fetchall()
    )
    if set(rows) != set(SOURCES):
        return None
    first = scalar(con, "SELECT min(ingested_at)::VARCHAR FROM _ingested_files")
    return {**rows, "warehouse": first or ""}


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"
