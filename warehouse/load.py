"""Raw layer: landing Parquet → ``events`` (every envelope) and ``raw_<event_type>`` tables.

Incremental: ``_ingested_files`` remembers every file read (path, size, mtime), so a run reads only
files that are new or were rewritten. Idempotent: rows are deduplicated on ``event_id`` — a
re-delivered event (a producer retry, a Kafka replay) is dropped, and recorded in
``_duplicate_events`` with a 64-bit hash of its payload so the ``unique_event_ids`` check can tell a
harmless re-delivery (same payload) from two different events sharing an id (a conflict).

Raw tables take their columns from the *current* Avro schema of their type (via its Arrow
schema): files written under an older schema version read with ``union_by_name`` and get NULLs in
the newer columns; a new schema version adds its columns with ``ALTER TABLE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from vtforge.schemas import default_catalog
from vtforge.schemas.catalog import SchemaCatalog
from vtforge.warehouse.connection import scalar

ENVELOPE_COLUMNS = (
    "event_id",
    "event_type",
    "schema_version",
    "occurred_at",
    "producer",
    "run_id",
    "session_id",
    "task_id",
    "stage",
    "trace_id",
    "span_id",
    "parent_span_id",
    "synthetic",
    "attributes",
)

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS _ingested_files (
    path VARCHAR PRIMARY KEY, event_type VARCHAR, size BIGINT, mtime_ns BIGINT,
    rows_read BIGINT, rows_new BIGINT, ingested_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS _duplicate_events (
    event_id VARCHAR, event_type VARCHAR, payload_hash UBIGINT, kept_payload_hash UBIGINT,
    file VARCHAR, seen_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS events (
    event_id VARCHAR, event_type VARCHAR, schema_version INTEGER,
    occurred_at TIMESTAMPTZ, producer VARCHAR, run_id VARCHAR, session_id VARCHAR, task_id VARCHAR,
    stage VARCHAR, trace_id VARCHAR, span_id VARCHAR, parent_span_id VARCHAR, synthetic BOOLEAN,
    attributes MAP(VARCHAR, VARCHAR), _file VARCHAR, _ingested_at TIMESTAMPTZ);
"""


@dataclass(frozen=True)
class LoadStats:
    """What one ingest of one event type did."""

    event_type: str
    files: int
    rows_read: int
    rows_new: int
    duplicates: int


def raw_table(event_type: str) -> str:
    return f"raw_{event_type}"


def ensure_tables(con: duckdb.DuckDBPyConnection, catalog: SchemaCatalog | None = None) -> None:
    """Bookkeeping tables, ``events`` and one raw table per event type, with current columns."""
    catalog = catalog or default_catalog()
    con.execute(_BOOKKEEPING)
    for event_type in catalog.event_types:
        _ensure_raw_table(con, event_type, catalog.current(event_type).arrow_schema)


def _ensure_raw_table(con: duckdb.DuckDBPyConnection, event_type: str, schema: pa.Schema) -> None:
    empty = pa.Table.from_batches([], schema=schema)  # noqa: F841  (read by DuckDB's replacement scan)
    wanted = con.execute(
        "SELECT column_name, column_type FROM (DESCRIBE SELECT envelope.event_id AS event_id, "
        "envelope.task_id AS task_id, envelope.occurred_at AS occurred_at, envelope.stage AS stage, "
        "envelope.synthetic AS synthetic, * FROM empty)"
    ).fetchall()
    wanted += [
        ("_file", "VARCHAR"),
        ("_ingested_at", "TIMESTAMP WITH TIME ZONE"),
    ]
    table = raw_table(event_type)
    have = {
        row[0]
        for row in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = 'main'",
            [table],
        ).fetchall()
    }
    if not have:
        columns = ", ".join(f'"{name}" {dtype}' for name, dtype in wanted)
        con.execute(f'CREATE TABLE "{table}" ({columns})')
        return
    for name, dtype in wanted:
        if name not in have:
            con.execute(f'ALTER TABLE "{table}" ADD COLUMN "{name}" {dtype}')


def pending_files(
    con: duckdb.DuckDBPyConnection, landing: Path, event_type: str
) -> list[tuple[str, int, int]]:
    """Files of ``event_type`` not ingested yet (or rewritten since): (path, size, mtime_ns)."""
    folder = landing / event_type
    if not folder.exists():
        return []
    seen = {
        path: (size, mtime)
        for path, size, mtime in con.execute(
            "SELECT path, size, mtime_ns FROM _ingested_files WHERE event_type = ?", [event_type]
        ).fetchall()
    }
    out = []
    for path in sorted(folder.rglob("*.parquet")):
        if path.name.startswith("."):
            continue  # a writer's temporary file
        stat = path.stat()
        key = str(path)
        if seen.get(key) != (stat.st_size, stat.st_mtime_ns):
            out.append((key, stat.st_size, stat.st_mtime_ns))
    return out


def load_event_type(
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    event_type: str,
    catalog: SchemaCatalog | None = None,
    *,
    batch_files: int = 256,
) -> LoadStats:
    """Read the new landing files of one event type into its raw table and ``events``."""
    catalog = catalog or default_catalog()
    schema = catalog.current(event_type).arrow_schema
    payload = [f.name for f in schema if f.name != "envelope"]
    files = pending_files(con, landing, event_type)
    table = raw_table(event_type)
    totals = [0, 0, 0]
    for start in range(0, len(files), batch_files):
        batch = files[start : start + batch_files]
        read, new, dup = _ingest_batch(con, table, event_type, payload, batch)
        totals[0] += read
        totals[1] += new
        totals[2] += dup
    return LoadStats(event_type, len(files), *totals)


def _ingest_batch(
    con: duckdb.DuckDBPyConnection,
    table: str,
    event_type: str,
    payload: list[str],
    files: list[tuple[str, int, int]],
) -> tuple[int, int, int]:
    """One batch of files (inside the caller's transaction).

    A narrow pass reads only the envelopes and each row's place (file, row number) and decides
    which rows are new: the first copy of an event id not already stored. The wide pass reads the
    files again and inserts just those rows, so the payload (messages, diffs, test lists) is never
    sorted or copied through a temporary table. Duplicates, rare by design, are the only rows whose
    payload is hashed: each is compared with the stored copy (both with the raw table's types)."""
    now = datetime.now(UTC)
    source = (
        "read_parquet($paths, union_by_name = true, hive_partitioning = false, "
        "filename = true, file_row_number = true)"
    )
    params = {"paths": [f[0] for f in files], "now": now}
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _keys AS
        WITH scanned AS (
            SELECT envelope, envelope.event_id AS event_id, filename AS _file, file_row_number AS _row,
                   row_number() OVER (
                       PARTITION BY envelope.event_id ORDER BY filename, file_row_number) AS _dup_rank
            FROM {source}
        )
        SELECT s.*, s._dup_rank = 1 AND k.event_id IS NULL AS _keep
        FROM scanned s
        LEFT JOIN (SELECT event_id FROM "{table}") k ON k.event_id = s.event_id
        """,
        {"paths": params["paths"]},
    )
    rows_read = scalar(con, "SELECT count(*) FROM _keys")
    rows = f"""
        SELECT envelope.event_id AS event_id, envelope.task_id AS task_id,
               envelope.occurred_at AS occurred_at, envelope.stage AS stage,
               envelope.synthetic AS synthetic, r.* EXCLUDE (filename, file_row_number),
               k._file AS _file, $now::TIMESTAMPTZ AS _ingested_at
        FROM {source} r
        JOIN (SELECT _file, _row FROM _keys WHERE {{which}}) k
          ON k._file = r.filename AND k._row = r.file_row_number"""
    rows_new = scalar(con, f'INSERT INTO "{table}" BY NAME {rows.format(which="_keep")}', params)
    duplicates = rows_read - rows_new
    envelope_cols = ", ".join(f'envelope."{c}" AS "{c}"' for c in ENVELOPE_COLUMNS)
    con.execute(
        f"INSERT INTO events BY NAME SELECT {envelope_cols}, _file, "
        "$now::TIMESTAMPTZ AS _ingested_at FROM _keys WHERE _keep",
        {"now": now},
    )
    if duplicates:
        _record_duplicates(con, table, event_type, payload, rows.format(which="NOT _keep"), params)
    counts = {
        path: (read, new)
        for path, read, new in con.execute(
            "SELECT _file, count(*), count(*) FILTER (WHERE _keep) FROM _keys GROUP BY _file"
        ).fetchall()
    }
    con.executemany(
        "INSERT OR REPLACE INTO _ingested_files VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(path, event_type, size, mtime, *counts.get(path, (0, 0)), now) for path, size, mtime in files],
    )
    con.execute("DROP TABLE _keys")
    return rows_read, rows_new, duplicates


def _record_duplicates(
    con: duckdb.DuckDBPyConnection,
    table: str,
    event_type: str,
    payload: list[str],
    duplicate_rows: str,
    params: dict[str, object],
) -> None:
    """Every copy not kept → ``_duplicate_events``, with its payload hash and the stored copy's."""
    con.execute(f'CREATE OR REPLACE TEMP TABLE _dups AS SELECT * FROM "{table}" LIMIT 0')
    con.execute(f"INSERT INTO _dups BY NAME {duplicate_rows}", params)
    digest = "hash(struct_pack({}))".format(", ".join(f'"{c}" := {{t}}."{c}"' for c in payload))
    con.execute(
        f"""
        INSERT INTO _duplicate_events
        SELECT d.event_id, $type, {digest.format(t="d")}, {digest.format(t="s")}, d._file, $now
        FROM _dups d JOIN "{table}" s ON s.event_id = d.event_id
        """,
        {"type": event_type, "now": params["now"]},
    )
    con.execute("DROP TABLE _dups")


def load_landing(
    con: duckdb.DuckDBPyConnection, landing: Path, catalog: SchemaCatalog | None = None
) -> list[LoadStats]:
    """Load every event type of the catalog (types with no landing folder are a no-op), in one
    transaction: readers see all of the new files or none, and the load pays one commit."""
    catalog = catalog or default_catalog()
    ensure_tables(con, catalog)
    con.execute("BEGIN")
    try:
        stats = [load_event_type(con, landing, t, catalog) for t in catalog.event_types]
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return stats
