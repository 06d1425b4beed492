"""Provenance manifests of the dataset exports, and a check that the files still match them.

Beside each export folder (``<exports>/trl.manifest.json``, ``<exports>/verl.manifest.json``): for
every file its rows, bytes, sha256, rows per source/stage (or difficulty), what the renderer left
out and why, and its task ids as a count and a hash; for the folder the warehouse datasets version
the files were written from, the levers the SQL read (``getvariable``), the renderer and the vtcode
tool schema version, and the vtforge version and git revision. The same idea as the corpus manifest
(``vtforge.corpus.manifest``), kept here because the warehouse sits below the corpus.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import subprocess
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

from vtforge.vtcode.render import RENDER_FORMAT, VTCODE_TOOLS_VERSION

SUFFIX = ".manifest.json"


def manifest_path(folder: Path, group: str) -> Path:
    return folder / f"{group}{SUFFIX}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tasks(path: Path) -> dict[str, Any]:
    """The file's distinct task ids as a count and the sha256 of their sorted, newline-joined list."""
    import duckdb

    with duckdb.connect() as con:  # reads the one column only (pyarrow took 1.6 s on a 600k-row chat file)
        rows = con.execute(
            "SELECT DISTINCT task_id::VARCHAR FROM read_parquet(?) WHERE task_id IS NOT NULL", [str(path)]
        ).fetchall()
    ids = sorted(row[0] for row in rows)
    return {"count": len(ids), "sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest()}


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def describe_file(
    path: Path, breakdown: Mapping[str, Mapping[str, int]], dropped: Mapping[str, int]
) -> dict[str, Any]:
    """One file's entry: what can be re-measured from the file, and what the export knew."""
    return {
        "rows": _rows(path),
        "bytes": path.stat().st_size,
        "sha256": file_sha256(path),
        "tasks": _tasks(path),
        "by": {
            name: dict(sorted((str(k), int(v)) for k, v in counts.items()))
            for name, counts in breakdown.items()
        },
        "dropped": dict(sorted((str(k), int(v)) for k, v in dropped.items())),
    }


@cache
def _vtforge_revision() -> dict[str, str | None]:
    try:
        version: str | None = importlib.metadata.version("vtforge")
    except importlib.metadata.PackageNotFoundError:
        version = None
    revision = None
    try:
        here = Path(__file__).resolve().parent
        done = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        revision = done.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"version": version, "git_revision": revision}


def levers(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The lever variables set on the connection (``vtforge.warehouse.models.variables``)."""
    rows = con.execute("SELECT name, value::VARCHAR FROM duckdb_variables() ORDER BY name").fetchall()
    return dict(rows)


def write_manifest(
    folder: Path,
    group: str,
    files: Mapping[str, dict[str, Any]],
    *,
    datasets_version: Mapping[str, Any] | None,
    lever_values: Mapping[str, Any],
) -> Path:
    """Write ``<folder>/<group>.manifest.json`` atomically; ``files`` maps names under the group's
    folder to ``describe_file`` entries."""
    manifest = {
        "export": group,
        "folder": group,
        "datasets_version": dict(datasets_version) if datasets_version is not None else None,
        "levers": dict(lever_values),
        "renderer": {
            "module": "vtforge.vtcode.render",
            "format": RENDER_FORMAT,
            "vtcode_tools_version": VTCODE_TOOLS_VERSION,
        },
        "vtforge": _vtforge_revision(),
        "files": dict(sorted(files.items())),
        "content_sha256": _content(files),
    }
    path = manifest_path(folder, group)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def _content(files: Mapping[str, Mapping[str, Any]]) -> str:
    return hashlib.sha256(
        "".join(f"{name}:{files[name]['sha256']}\n" for name in sorted(files)).encode()
    ).hexdigest()


def check_manifest(folder: Path, group: str) -> list[str]:
    """Problems found comparing ``<group>.manifest.json`` with the files: missing, changed (sha256,
    rows, task ids), unknown to the manifest. Empty when they match."""
    path = manifest_path(folder, group)
    if not path.is_file():
        return [f"{path.name} is missing"]
    manifest = json.loads(path.read_text())
    problems: list[str] = []
    root = folder / group
    for name, entry in manifest["files"].items():
        file = root / name
        if not file.is_file():
            problems.append(f"{group}/{name}: missing")
            continue
        if file_sha256(file) != entry["sha256"]:
            problems.append(f"{group}/{name}: sha256 differs from the manifest")
        try:
            rows, tasks = _rows(file), _tasks(file)
        except Exception as exc:  # a file that no longer parses is a finding, not a crash
            problems.append(f"{group}/{name}: unreadable ({exc})")
            continue
        if rows != entry["rows"]:
            problems.append(f"{group}/{name}: {rows} rows, manifest {entry['rows']}")
        if tasks != entry["tasks"]:
            problems.append(f"{group}/{name}: task ids differ from the manifest")
    known = set(manifest["files"])
    problems += [
        f"{group}/{p.name}: not in the manifest"
        for p in sorted(root.glob("*.parquet"))
        if p.name not in known
    ]
    if _content(manifest["files"]) != manifest["content_sha256"]:
        problems.append("content_sha256 does not match the file hashes")
    return problems
