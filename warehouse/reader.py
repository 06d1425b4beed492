"""A read-only view of everything: the warehouse snapshot plus the landing zone.

``open_reader(config)`` returns an in-memory DuckDB connection where

* the warehouse (a snapshot, see ``vtforge.warehouse.connection``) is attached read-only as ``warehouse``
  and each of its tables and raw views has a view of the same name, so ``SELECT * FROM sft_examples``
  just works;
* schema ``landing`` has one view per event type over
  ``<landing>/<event_type>/**/*.parquet`` (Hive partitioning, so ``date`` is a column) and
  ``landing.events``, every envelope — readable before anything was materialised;
* when the warehouse has no table of that name, the landing views are also reachable unqualified
  (``events``, ``rollout``, …).

Nothing here takes the writer's lock for longer than a file copy.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from vtforge.schemas import default_catalog
from vtforge.warehouse.connection import snapshot

if TYPE_CHECKING:
    from vtforge.config import Config
    from vtforge.schemas.catalog import EventSchema
    from vtforge.transport.export import EventSource


def _quote(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def landing_event_types(landing: Path) -> list[str]:
    """Event types that have at least one visible landing file."""
    if not landing.exists():
        return []
    known = set(default_catalog().event_types)
    return sorted(
        p.name
        for p in landing.iterdir()
        if p.is_dir()
        and p.name in known
        and any(f for f in p.rglob("*.parquet") if not f.name.startswith("."))
    )


def create_landing_views(con: duckdb.DuckDBPyConnection, landing: Path, schema: str = "landing") -> list[str]:
    """One view per event type with files, and ``<schema>.events``; returns the event types."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    types = landing_event_types(landing)
    for event_type in types:
        glob = _quote(landing / event_type / "**" / "*.parquet")
        con.execute(
            f'CREATE OR REPLACE VIEW {schema}."{event_type}" AS SELECT * FROM read_parquet({glob}, '
            "hive_partitioning = true, union_by_name = true)"
        )
    if types:
        union = " UNION ALL BY NAME ".join(f'SELECT envelope.*, date FROM {schema}."{t}"' for t in types)
        con.execute(f"CREATE OR REPLACE VIEW {schema}.events AS {union}")
    return types


def open_reader(config: Config, *, timeout_s: float = 120.0) -> duckdb.DuckDBPyConnection:
    """An in-memory connection over the warehouse snapshot and the landing views (see module doc)."""
    con = duckdb.connect(":memory:")
    snap = snapshot(config.duckdb_path, timeout_s=timeout_s)
    types = create_landing_views(con, config.landing_dir)
    in_warehouse: set[str] = set()
    if snap is not None:
        con.execute(f"ATTACH {_quote(snap)} AS warehouse (READ_ONLY)")
        in_warehouse = {  # its tables and the raw views (over the landing files)
            r[0]
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'warehouse' "
                "AND schema_name = 'main' AND NOT starts_with(table_name, '_') UNION "
                "SELECT view_name FROM duckdb_views() WHERE database_name = 'warehouse' "
                "AND schema_name = 'main' AND NOT internal"
            ).fetchall()
        }
    # unqualified names: the warehouse's tables, then the landing views it does not have (yet);
    # views in the in-memory database keep it the place where a session's own objects go
    for name in sorted(in_warehouse):
        con.execute(f'CREATE VIEW main."{name}" AS SELECT * FROM warehouse.main."{name}"')
    for name in [*types, "events"] if types else []:
        if name not in in_warehouse:
            con.execute(f'CREATE OR REPLACE VIEW main."{name}" AS SELECT * FROM landing."{name}"')
    return con


def warehouse_events(con: duckdb.DuckDBPyConnection) -> tuple[EventSource, list[str]]:
    """The events as the warehouse holds them (a reader from ``open_reader``): every event of the
    ingested landing files once, as deduplicated on ingest. For ``vtforge events export --from
    warehouse``: (a source of one type's rows with its current columns, the types it has)."""
    attached = con.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name = 'warehouse'")
    if not attached.fetchone()[0]:  # pyright: ignore[reportOptionalSubscript]
        return _no_events, []
    have = [
        row[0]
        for row in con.execute(
            "SELECT DISTINCT event_type FROM warehouse.main.events WHERE event_type IS NOT NULL ORDER BY 1"
        ).fetchall()
    ]

    def read(schema: EventSchema, since: datetime | None) -> pa.Table:
        columns = ", ".join(f'"{field.name}"' for field in schema.arrow_schema)
        cursor = con.execute(
            f'SELECT {columns} FROM "raw_{schema.event_type}" '
            "WHERE $since::TIMESTAMPTZ IS NULL OR occurred_at >= $since ORDER BY occurred_at, event_id",
            {"since": since},
        )
        fetch = getattr(cursor, "to_arrow_table", None) or cursor.fetch_arrow_table  # pyright: ignore[reportAttributeAccessIssue]  (DuckDB 1.x)
        return fetch().cast(schema.arrow_schema)

    return read, have


def _no_events(schema: EventSchema, since: datetime | None) -> pa.Table:
    return pa.Table.from_batches([], schema=schema.arrow_schema)
