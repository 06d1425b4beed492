"""SWE-bench instances from JSONL, JSON or Parquet, with the data set's own column names.

``FAIL_TO_PASS``/``PASS_TO_PASS`` may be JSON-encoded strings (the HF data set) or lists (its
derivatives); ``created_at`` a string or a timestamp. The default split is ``eval``: SWE-bench is
what we evaluate on, so importing it must keep it out of training unless told otherwise.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from vtforge.config import Config
from vtforge.tasks.importers.common import ImportOptions, ParsedBatch, find_local_repo, importer, input_sha256
from vtforge.tasks.model import IMPORTER_VERSION, Task

_INSTANCE = re.compile(r"^(?P<owner>[\w.-]+)__(?P<name>[\w.-]+)-(?P<number>\d+)$")


def read_records(path: Path) -> list[tuple[str, Any, bytes | None]]:
    """``[(location, record_or_error, raw)]``; a line that is not JSON yields its error string."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
        return [(f"{path.name}:row {i}", row, None) for i, row in enumerate(rows)]
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            return [(path.name, f"not valid JSON: {exc}", text.encode()[:65536])]
        data = data if isinstance(data, list) else [data]
        return [(f"{path.name}:[{i}]", rec, None) for i, rec in enumerate(data)]
    out: list[tuple[str, Any, bytes | None]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append((f"{path.name}:{number}", json.loads(line), line.encode()))
        except ValueError as exc:
            out.append((f"{path.name}:{number}", f"not valid JSON: {exc}", line.encode()))
    return out


def looks_like_diff(text: str) -> bool:
    return "diff --git " in text or ("\n--- " in "\n" + text and "\n+++ " in text and "@@" in text)


def origin_of(repo: str, instance_id: str) -> str:
    match = _INSTANCE.match(instance_id)
    if match:
        return f"https://github.com/{repo}/pull/{match.group('number')}"
    return f"https://github.com/{repo}"


def check_record(record: Any) -> str | None:
    """Why ``record`` cannot be a task, or None."""
    if not isinstance(record, dict):
        return f"a record must be an object, got {type(record).__name__}"
    for name in ("instance_id", "repo", "base_commit", "patch", "problem_statement"):
        if not isinstance(record.get(name), str) or not record[name].strip():
            return f"{name} is missing or empty"
    if not re.fullmatch(r"[0-9a-f]{7,40}", record["base_commit"].strip()):
        return f"base_commit is not a commit id: {record['base_commit'][:60]!r}"
    if not looks_like_diff(record["patch"]):
        return "patch is not a unified diff"
    if record.get("test_patch") and not looks_like_diff(record["test_patch"]):
        return "test_patch is not a unified diff"
    return None


@importer("swe-bench")
def parse(cfg: Config, path: Path, options: ImportOptions) -> ParsedBatch:
    batch = ParsedBatch()
    digest = input_sha256(path)
    seen: dict[str, str] = {}
    for location, record, raw in read_records(path):
        if isinstance(record, str):
            batch.reject(location, "invalid_json", record, raw)
            continue
        problem = check_record(record)
        if problem is None:
            try:
                task = Task.from_swebench(_plain(record))
            except ValueError as exc:
                problem = str(exc)
        if problem is not None:
            batch.reject(location, "invalid_record", problem, raw if raw is not None else record)
            continue
        if task.instance_id in seen:
            batch.reject(
                location,
                "duplicate_instance_id",
                f"{task.instance_id} already read at {seen[task.instance_id]}",
                raw or record,
            )
            continue
        seen[task.instance_id] = location
        local = find_local_repo(options.repos, task.repo, task.base_commit)
        provenance = {
            "dataset_slice": options.slice_name,
            "origin": origin_of(task.repo, task.instance_id),
            "license": record.get("license"),
            "commit": task.base_commit,
            "created_at": task.provenance.get("created_at"),
            "importer_version": IMPORTER_VERSION,
            "input_file": path.name,
            "input_sha256": digest,
            "validated": False,
            "repo_available": local is not None,
        }
        batch.tasks.append(
            task.replace(
                source="swe-bench",
                split=options.split,
                provenance=provenance,
                repo_dir=str(local) if local else "",
            )
        )
        batch.notes["tasks"] += 1
    return batch


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """Parquet gives numpy-free Python values already; timestamps become ISO strings."""
    out = dict(record)
    created = out.get("created_at")
    if created is not None and not isinstance(created, str):
        out["created_at"] = created.isoformat() if hasattr(created, "isoformat") else str(created)
    for key in (
        "provenance",
        "split",
        "source",
        "repo_dir",
        "contamination_flags",
        "difficulty_bucket",
        "baseline_success_rate",
    ):
        out.pop(key, None)  # an instance from outside never sets our bookkeeping
    return out
