"""Parquet exports of the datasets in the layouts the trainers read.

``<data>/exports/trl/``: ``sft_messages.parquet`` (``messages``), ``sft_prompt_completion.parquet``
(``prompt``, ``completion``) and ``rl_prompts.parquet`` (``prompt`` as chat messages plus the task's
columns, which TRL hands to reward functions). ``<data>/exports/verl/``: ``rl_train.parquet`` and
``rl_eval.parquet`` with verl's columns ``data_source``, ``prompt``, ``ability``, ``reward_model``
(``style = 'rule'``, ``ground_truth`` = the tests as JSON) and ``extra_info``. SFT exports hold the
train split only: eval tasks never reach a trainer.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

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
         'repo': repo, 'base_commit': base_commit, 'difficulty_bucket': difficulty_bucket} AS extra_info,
        task_id
    FROM rl_prompts"""


def export_datasets(con: duckdb.DuckDBPyConnection, folder: Path) -> dict[str, int]:
    """Write every export atomically (temp file, then rename); returns rows per file."""
    written: dict[str, int] = {}
    for relative, query in EXPORTS.items():
        sql = query.replace("{verl}", _VERL)
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        con.execute(f"COPY ({sql}) TO {_quote(tmp)} (FORMAT parquet, COMPRESSION zstd)")
        os.replace(tmp, target)
        written[relative] = con.execute("SELECT count(*) FROM read_parquet(?)", [str(target)]).fetchone()[0]
    return written


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"
