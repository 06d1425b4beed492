"""The warehouse file opens in the oldest DuckDB pyproject.toml allows (1.3), and says what each
table and each column of the data-contract tables is (``COMMENT ON TABLE/COLUMN``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.support import require_service
from tests.warehouse.conftest import config_here, emit, make_workspace
from tests.warehouse.streams import hand_stream
from vtforge.warehouse.models import MODELS_BY_NAME, column_docs
from vtforge.warehouse.refresh import refresh

READ = """
import json, sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print(json.dumps({
    "version": duckdb.__version__,
    "events": con.execute("SELECT count(*) FROM events").fetchone()[0],
    "rollouts": con.execute("SELECT count(*) FROM rollouts").fetchone()[0],
    "comment": con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'rollouts'").fetchone()[0],
    "column_comment": con.execute(
        "SELECT comment FROM duckdb_columns() "
        "WHERE table_name = 'rl_prompts' AND column_name = 'difficulty_bucket'"
    ).fetchone()[0],
    # every table and view reads, the views (raw layer, view models) included
    "rows": {
        name: con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() UNION ALL SELECT view_name FROM duckdb_views() "
            "WHERE NOT internal"
        ).fetchall()
    },
}))
"""


def read_with_oldest_duckdb(path: Path) -> subprocess.CompletedProcess[str]:
    folder = os.environ.get("OLDEST_DUCKDB_DIR", "")
    require_service(bool(folder) and (Path(folder) / "duckdb").is_dir(), "DuckDB 1.3 (make test installs it)")
    env = {**os.environ, "PYTHONPATH": folder}
    return subprocess.run([sys.executable, "-c", READ, str(path)], env=env, capture_output=True, text=True)


def test_duckdb_1_3_reads_the_warehouse(workspace: Path) -> None:
    make_workspace(workspace)
    config = config_here()
    emit(config, hand_stream())
    refresh(config, exports=False)
    done = read_with_oldest_duckdb(config.duckdb_path)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["version"].startswith("1.3.")
    assert (seen["events"], seen["rollouts"]) == (34, 10)
    assert seen["rows"]["raw_rollout"] == 10 and seen["rows"]["chat_transcripts"] == 10
    assert set(MODELS_BY_NAME) <= set(seen["rows"])
    assert seen["comment"] == MODELS_BY_NAME["rollouts"].description
    assert seen["column_comment"] == column_docs()["rl_prompts"]["difficulty_bucket"]

    # every column of a documented table has its comment, and no comment names a missing column
    con = duckdb.connect(str(config.duckdb_path), read_only=True)
    try:
        for table, docs in column_docs().items():
            rows = con.execute(
                "SELECT column_name, comment FROM duckdb_columns() WHERE table_name = ?", [table]
            ).fetchall()
            assert rows, table
            assert {name: comment for name, comment in rows} == docs, table
    finally:
        con.close()


def test_the_latest_storage_version_is_what_duckdb_1_refuses(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_workspace(workspace)
    monkeypatch.setenv("VTFORGE_WAREHOUSE__STORAGE_VERSION", "latest")
    config = config_here()
    assert config.forge.warehouse.storage_version == "latest"
    emit(config, hand_stream())
    refresh(config, exports=False)
    done = read_with_oldest_duckdb(config.duckdb_path)
    assert done.returncode != 0 and "we can only read version" in done.stderr
