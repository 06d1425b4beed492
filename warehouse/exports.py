"""Parquet exports of the datasets in the layouts the trainers read.

``<data>/exports/trl/``: ``sft_messages.parquet`` (``messages``), ``sft_prompt_completion.parquet``
(``prompt``, ``completion``) and ``rl_prompts.parquet`` (``prompt`` as chat messages plus the task's
columns, which TRL hands to reward functions). ``<data>/exports/verl/``: ``rl_train.parquet`` and
``rl_eval.parquet`` with verl's columns ``data_source``, ``prompt``, ``ability``, ``reward_model``
(``style = 'rule'``, ``ground_truth`` = the tests as JSON) and ``extra_info`` (what the sandbox needs
to judge a completion: ``vtforge.trainers.verl_reward.compute_score`` reads it). SFT exports hold
the train split only: eval tasks never reach a trainer. ``trl/sft_vtcode.parquet`` holds the same
examples in VT Code's tool format (``messages`` with ``apply_patch``/``exec_command`` calls and a
``tools`` column), rendered by ``vtforge.vtcode.render``, the renderer the Stage 1 corpus uses
(``vtforge.warehouse.sft_vtcode``). Beside each folder, ``<folder>.manifest.json`` records the
files' provenance (``vtforge.warehouse.export_manifest``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb

from vtforge.vtcode.render import RENDER_FORMAT
from vtforge.warehouse.connection import scalar
from vtforge.warehouse.export_manifest import describe_file, levers, manifest_path, write_manifest
from vtforge.warehouse.incremental import STATE_TABLE
from vtforge.warehouse.sft_vtcode import SFT_VTCODE, write_sft_vtcode

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


# what each file's rows come from, for the manifest's per-source/stage counts (same selection)
_SFT_ORIGIN = "SELECT source, stage, role FROM sft_examples WHERE split = 'train'"
_RL_ORIGIN = (
    "SELECT coalesce(source, 'vtforge') AS source, difficulty_bucket FROM rl_prompts WHERE split = '{split}'"
)
ORIGINS = {
    "trl/sft_messages.parquet": _SFT_ORIGIN,
    "trl/sft_prompt_completion.parquet": _SFT_ORIGIN,
    "trl/rl_prompts.parquet": _RL_ORIGIN.format(split="train"),
    "verl/rl_train.parquet": _RL_ORIGIN.format(split="train"),
    "verl/rl_eval.parquet": _RL_ORIGIN.format(split="eval"),
}
FILES = (*EXPORTS, SFT_VTCODE)
GROUPS = tuple(sorted({relative.split("/", 1)[0] for relative in FILES}))
SOURCES = ("sft_examples", "rl_prompts")
STAMP = ".datasets-version.json"  # the datasets' change counters (and renderer) the files were written from


def export_datasets(con: duckdb.DuckDBPyConnection, folder: Path, *, vtcode: bool = True) -> dict[str, int]:
    """Write every export atomically (temp file, then rename) and its folder's manifest; returns
    rows per file.

    Files are rewritten only when a dataset (or the renderer's format) changed since they were
    written: a refresh that added no example leaves them, their manifests and their readers alone.
    ``vtcode`` (``forge.datasets.sft_vtcode``): also write ``trl/sft_vtcode.parquet``, the one export
    rendered in Python (7–8 s per rewrite at 1M events, docs/TRAINING.md)."""
    files = FILES if vtcode else tuple(EXPORTS)
    datasets = _datasets_version(con)
    version = {**datasets, "render": RENDER_FORMAT if vtcode else None} if datasets is not None else None
    stamp = folder / STAMP
    current = version is not None and stamp.exists() and json.loads(stamp.read_text()) == version
    if (
        current
        and all((folder / r).exists() for r in files)
        and all(manifest_path(folder, g).exists() for g in GROUPS)
    ):
        return _recorded_rows(folder, files)
    stamp.unlink(missing_ok=True)
    if not vtcode:
        (folder / SFT_VTCODE).unlink(missing_ok=True)  # not in the manifest any more
    written: dict[str, int] = {}
    entries: dict[str, dict[str, dict]] = {group: {} for group in GROUPS}
    for relative, query in EXPORTS.items():
        sql = query.replace("{verl}", _VERL)
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        con.execute(f"COPY ({sql}) TO {_quote(tmp)} (FORMAT parquet, COMPRESSION zstd)")
        os.replace(tmp, target)
        group, name = relative.split("/", 1)
        entries[group][name] = describe_file(target, _breakdown(con, ORIGINS[relative]), {})
        written[relative] = entries[group][name]["rows"]
    if vtcode:
        rendered = write_sft_vtcode(con, folder / SFT_VTCODE)
        group, name = SFT_VTCODE.split("/", 1)
        entries[group][name] = describe_file(folder / SFT_VTCODE, rendered.breakdown, rendered.dropped)
        written[SFT_VTCODE] = rendered.rows
    lever_values = levers(con)
    for group in GROUPS:
        write_manifest(folder, group, entries[group], datasets_version=version, lever_values=lever_values)
    if version is not None:
        stamp.write_text(json.dumps(version))
    return written


def _breakdown(con: duckdb.DuckDBPyConnection, origin: str) -> dict[str, dict[str, int]]:
    """Rows per value of each column of ``origin``."""
    columns = [d[0] for d in con.execute(f"SELECT * FROM ({origin}) LIMIT 0").description]
    return {
        column: dict(con.execute(f"SELECT {column}::VARCHAR, count(*) FROM ({origin}) GROUP BY 1").fetchall())
        for column in columns
    }


def _recorded_rows(folder: Path, files: tuple[str, ...]) -> dict[str, int]:
    rows: dict[str, int] = {}
    for group in GROUPS:
        manifest = json.loads(manifest_path(folder, group).read_text())
        rows.update({f"{group}/{name}": entry["rows"] for name, entry in manifest["files"].items()})
    return {relative: rows[relative] for relative in files}


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
