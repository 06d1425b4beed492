"""The ``quarantine`` table: every rejected record from ``<data>/quarantine/<source>/date=…/*.parquet``.

Quarantine files are few and small, so the table is rebuilt whole on each run.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from vtforge.transport.quarantine import QUARANTINE_SCHEMA


def quarantine_files(root: Path) -> list[str]:
    if not root.exists():
        return []
    return sorted(str(p) for p in root.glob("*/date=*/*.parquet") if not p.name.startswith("."))


def build_quarantine(con: duckdb.DuckDBPyConnection, root: Path) -> int:
    """Rebuild ``quarantine`` (columns of ``QUARANTINE_SCHEMA`` plus ``_file``); returns its rows."""
    files = quarantine_files(root)
    con.execute("BEGIN")
    try:
        if files:
            con.execute(
                "CREATE OR REPLACE TABLE quarantine AS SELECT * EXCLUDE (filename), filename AS _file "
                "FROM read_parquet(?, union_by_name = true, hive_partitioning = false, filename = true)",
                [files],
            )
        else:
            empty = pa.Table.from_batches([], schema=QUARANTINE_SCHEMA)  # noqa: F841 (DuckDB scans it)
            con.execute("CREATE OR REPLACE TABLE quarantine AS SELECT *, NULL::VARCHAR AS _file FROM empty")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
