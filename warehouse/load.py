"""Raw layer: landing Parquet → ``events`` (every envelope) and one ``raw_<event_type>`` view per type.

The landing files *are* the raw layer: a ``raw_<event_type>`` view reads the ingested files of its
type where they lie, so ingest copies no payload (messages, diffs, test lists) — copying them into
DuckDB tables cost more than every model built on them. Ingest writes only what makes the views
exact and the models incremental:

- ``_ingested_files``: every file read (path, size, mtime), so a run reads only files that are new
  or were rewritten, and the views list exactly these files (never one still being written);
- ``events``: the envelope of every kept event, with its place (``_file``, ``_row``) and
  ``_ingested_at``: the dedup index, and what incremental builds find their new rows in;
- ``_duplicate_events``: every copy *not* kept (its place, and 64-bit hashes of its payload and of
  the kept copy's), which the views leave out and the ``unique_event_ids`` check reads to tell a
  harmless re-delivery (same payload) from two different events sharing an id (a conflict).

Idempotent: rows are deduplicated on ``event_id`` (the first copy by file and row wins, a copy of
an event already stored is dropped). The views take their columns from the *current* Avro schema of
their type (via its Arrow schema): files written under an older schema version read with
``union_by_name`` and get NULLs in the newer columns. The views name the files by absolute path, so
the warehouse reads its landing zone where it was ingested from; a landing file that disappears or
is rewritten with other events makes the next refresh rebuild every model from the files that remain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from vtforge import constants as C
from vtforge.schemas import default_catalog
from vtforge.schemas.catalog import SchemaCatalog
from vtforge.warehouse.compaction import record_writes
from vtforge.warehouse.connection import scalar, scratch

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
_APPENDED = ("events", "_ingested_files", "_duplicate_events")  # what a load with new files appends to
# envelope fields repeated as top-level columns of every raw view (the models filter and join on them)
PROMOTED = ("event_id", "task_id", "occurred_at", "stage", "synthetic")

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS _ingested_files (
    path VARCHAR PRIMARY KEY, event_type VARCHAR, size BIGINT, mtime_ns BIGINT,
    rows_read BIGINT, rows_new BIGINT, ingested_at TIMESTAMPTZ, columns VARCHAR[], schema_hash VARCHAR);
ALTER TABLE _ingested_files ADD COLUMN IF NOT EXISTS schema_hash VARCHAR;
CREATE TABLE IF NOT EXISTS _duplicate_events (
    event_id VARCHAR, event_type VARCHAR, payload_hash UBIGINT, kept_payload_hash UBIGINT,
    file VARCHAR, "row" BIGINT, seen_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS events (
    event_id VARCHAR, event_type VARCHAR, schema_version INTEGER,
    occurred_at TIMESTAMPTZ, producer VARCHAR, run_id VARCHAR, session_id VARCHAR, task_id VARCHAR,
    stage VARCHAR, trace_id VARCHAR, span_id VARCHAR, parent_span_id VARCHAR, synthetic BOOLEAN,
    attributes MAP(VARCHAR, VARCHAR), _file VARCHAR, _row BIGINT, _ingested_at TIMESTAMPTZ,
    _id_hash UBIGINT);
"""


def id_hash(of: str = "") -> str:
    """``events._id_hash``, what the dedup probe compares first: the hash of the type and id (of
    ``of``: a struct, or nothing for the columns themselves)."""
    return f"hash({of}event_type, {of}event_id)"


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
    """Bookkeeping tables, ``events`` and one raw view per event type (empty until files land).

    A warehouse from before the raw views (raw *tables* holding payload copies) is reset: its
    bookkeeping is dropped, so the next load reads every landing file again."""
    catalog = catalog or default_catalog()
    if _has_raw_tables(con):
        _reset_raw_layer(con)
    con.execute(_BOOKKEEPING)
    _add_id_hash(con)
    views = {
        row[0]
        for row in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE schema_name = 'main' AND NOT temporary"
        ).fetchall()
    }
    for event_type in catalog.event_types:
        if raw_table(event_type) not in views:
            _create_view(con, event_type, catalog)


def _add_id_hash(con: duckdb.DuckDBPyConnection) -> None:
    """``events`` of a warehouse from before ``_id_hash`` gets the column, filled."""
    if not con.execute(
        "SELECT 1 FROM duckdb_columns() WHERE database_name = current_database() AND schema_name = 'main' "
        "AND table_name = 'events' AND column_name = '_id_hash'"
    ).fetchall():
        con.execute("ALTER TABLE events ADD COLUMN _id_hash UBIGINT")
        con.execute(f"UPDATE events SET _id_hash = {id_hash()}")


def raw_columns(event_type: str, catalog: SchemaCatalog | None = None) -> list[tuple[str, str]]:
    """The columns (name, DuckDB type) of ``raw_<event_type>``, from its current Arrow schema.

    Every type of the catalog is described at the first miss, in one cursor of the process's
    scratch connection: a new process (a Dagster run) would otherwise open one per type, ~20 ms
    each."""
    catalog = catalog or default_catalog()
    current = catalog.current(event_type)
    key = (event_type, current.version, current.fingerprint)
    if key not in _COLUMNS:
        promoted = ", ".join(f"envelope.{c} AS {c}" for c in PROMOTED)
        with scratch().cursor() as con:
            for name in dict.fromkeys([*catalog.event_types, event_type]):
                schema = catalog.current(name)
                con.register("empty", pa.Table.from_batches([], schema=schema.arrow_schema))
                _COLUMNS[(schema.event_type, schema.version, schema.fingerprint)] = con.execute(
                    f"SELECT column_name, column_type FROM (DESCRIBE SELECT {promoted}, * FROM empty)"
                ).fetchall()
                con.unregister("empty")
    return _COLUMNS[key]


_COLUMNS: dict[tuple[str, int, object], list[tuple[str, str]]] = {}


def raw_select(
    con: duckdb.DuckDBPyConnection,
    event_type: str,
    files: list[str],
    catalog: SchemaCatalog | None = None,
    present: set[str] | None = None,
    *,
    uniform: bool = False,
) -> str:
    """A ``SELECT`` of every row of ``files`` with the raw view's columns and types, plus each row's
    place (``_file``, ``_row``); duplicates included (callers leave them out or pick them).

    ``present``: the columns found in any of the files (read from their footers when not given).
    ``uniform``: every file has the same Parquet schema, so DuckDB need not read every footer to
    unify them by name when the ``SELECT`` is bound (``file_schemas``)."""
    wanted = raw_columns(event_type, catalog)
    place = [("_file", "VARCHAR"), ("_row", "BIGINT")]
    if not files:
        columns = ", ".join(f'NULL::{dtype} AS "{name}"' for name, dtype in [*wanted, *place])
        return f"SELECT {columns} WHERE false"
    source = _parquet_source(files, by_name=not uniform)
    have = _columns_of(con, source) if present is None else present
    columns = []
    for name, dtype in wanted:  # a cast to the type a column already has is no cast at all
        if name in PROMOTED:
            expr = f"CAST(r.envelope.{name} AS {dtype})"
        elif name not in have:
            expr = f"NULL::{dtype}"  # a column newer than every file: NULL, as in an older event
        else:
            expr = f'CAST(r."{name}" AS {dtype})'
        columns.append(f'{expr} AS "{name}"')
    columns += ["r.filename AS _file", "r.file_row_number AS _row"]
    return f"SELECT {', '.join(columns)} FROM {source} r"


def _columns_of(con: duckdb.DuckDBPyConnection, source: str) -> set[str]:
    return {
        row[0] for row in con.execute(f"SELECT column_name FROM (DESCRIBE SELECT * FROM {source})").fetchall()
    }


def _parquet_source(files: list[str], *, by_name: bool = True) -> str:
    """The landing files as DuckDB reads them here: by column name (``by_name``: files of several
    schema versions; binding it reads every file's footer), with each row's place."""
    return (
        f"read_parquet({_sql_list(files)}, union_by_name = {str(by_name).lower()}, "
        "hive_partitioning = false, filename = true, file_row_number = true)"
    )


def file_schemas(con: duckdb.DuckDBPyConnection, paths: list[str]) -> dict[str, tuple[list[str], str]]:
    """Per landing file: its top-level column names, and a hash of its whole Parquet schema (names,
    physical and logical types, nesting). Files of one type with one hash read without
    ``union_by_name``."""
    rows = con.execute(
        "SELECT file_name, name, num_children, type, repetition_type, converted_type, logical_type, "
        "duckdb_type FROM parquet_schema(?) ORDER BY file_name, column_id",
        [paths],
    ).fetchall()
    by_file: dict[str, list[tuple[object, ...]]] = {}
    for row in rows:
        by_file.setdefault(str(row[0]), []).append(row[1:])
    found: dict[str, tuple[list[str], str]] = {}
    for path, nodes in by_file.items():
        names, at = [], 1  # nodes[0] is the root; its children are the columns, each with a subtree
        while at < len(nodes):
            names.append(str(nodes[at][0]))
            at = _past_subtree(nodes, at)
        digest = hashlib.sha256(repr(nodes[1:]).encode()).hexdigest()[:16]
        found[path] = (names, digest)
    return found


def _past_subtree(nodes: list[tuple[object, ...]], at: int) -> int:
    """The index after node ``at`` and all its descendants (a schema is a depth-first list)."""
    pending = 1
    while pending:
        pending += int(nodes[at][1] or 0) - 1  # type: ignore[call-overload]
        at += 1
    return at


def _sql_list(items: list[str]) -> str:
    return "[" + ", ".join("'" + item.replace("'", "''") + "'" for item in items) + "]"


def _create_view(
    con: duckdb.DuckDBPyConnection,
    event_type: str,
    catalog: SchemaCatalog | None = None,
    known: dict[str, IngestedFile] | None = None,
) -> None:
    """(Re)define ``raw_<event_type>`` over exactly the ingested files of its type, less the copies
    that were dropped as duplicates. ``known``: ``ingested_files`` when the caller has read it."""
    known = ingested_files(con) if known is None else known
    mine = sorted((f for f in known.values() if f.event_type == event_type), key=lambda f: f.path)
    files = [f.path for f in mine]
    present, uniform = columns_of(mine)
    select = raw_select(con, event_type, files, catalog, present, uniform=uniform)
    if files:
        select = (
            f"SELECT * FROM ({select}) r ANTI JOIN "
            '(SELECT file, "row" FROM _duplicate_events WHERE event_type = '
            f"'{event_type}') d ON d.file = r._file AND d.\"row\" = r._row"
        )
    con.execute(f'CREATE OR REPLACE VIEW "{raw_table(event_type)}" AS {select}')


@dataclass(frozen=True)
class IngestedFile:
    """What the raw layer knows of one ingested file: its type, top-level columns and schema hash."""

    path: str
    event_type: str
    columns: tuple[str, ...]
    schema_hash: str | None  # NULL for files ingested before the hash was recorded
    ingested_at: datetime | None = None
    whole: bool = False  # every row of it is kept (none was dropped as a duplicate)


def ingested_files(con: duckdb.DuckDBPyConnection) -> dict[str, IngestedFile]:
    """Every ingested file by path: one small read, shared by every view and slice of a session."""
    rows = con.execute(
        "SELECT path, event_type, columns, schema_hash, ingested_at, rows_new = rows_read "
        "FROM _ingested_files"
    ).fetchall()
    return {
        path: IngestedFile(path, kind, tuple(cols or ()), digest, at, bool(whole))
        for path, kind, cols, digest, at, whole in rows
    }


def columns_of(files: Iterable[IngestedFile]) -> tuple[set[str], bool]:
    """The columns found in any of ``files``, and whether they all share one Parquet schema."""
    present: set[str] = set()
    hashes: set[str | None] = set()
    for file in files:
        present.update(file.columns)
        hashes.add(file.schema_hash)
    return present, len(hashes) == 1 and None not in hashes


def _has_raw_tables(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        scalar(
            con,
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND NOT temporary "
            "AND table_name LIKE 'raw\\_%' ESCAPE '\\'",
        )
    )


def _reset_raw_layer(con: duckdb.DuckDBPyConnection) -> None:
    """Drop a raw layer of tables (the layout before the views) and the bookkeeping that read it."""
    tables = [
        row[0]
        for row in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND NOT temporary "
            "AND (table_name LIKE 'raw\\_%' ESCAPE '\\' OR table_name IN "
            "('events', '_ingested_files', '_duplicate_events', '_model_state'))"
        ).fetchall()
    ]
    for table in tables:
        con.execute(f'DROP TABLE "{table}"')


def pending_files(
    con: duckdb.DuckDBPyConnection, landing: Path, event_type: str
) -> list[tuple[str, int, int]]:
    """Files of ``event_type`` not ingested yet (or rewritten since): (path, size, mtime_ns)."""
    return _scan(landing, event_type, _seen_files(con, event_type).get(event_type, {}))[0]


def _seen_files(
    con: duckdb.DuckDBPyConnection, event_type: str | None = None
) -> dict[str, dict[str, tuple[int, int]]]:
    """Ingested files by type (of one type, or of all in one read): path → (size, mtime_ns)."""
    where, params = ("WHERE event_type = ?", [event_type]) if event_type else ("", None)
    seen: dict[str, dict[str, tuple[int, int]]] = {}
    for kind, path, size, mtime in con.execute(
        f"SELECT event_type, path, size, mtime_ns FROM _ingested_files {where}", params
    ).fetchall():
        seen.setdefault(kind, {})[path] = (size, mtime)
    return seen


def _scan(
    landing: Path, event_type: str, seen: dict[str, tuple[int, int]]
) -> tuple[list[tuple[str, int, int]], list[str], list[str]]:
    """(pending files, ingested files rewritten since, ingested files that are gone), given the
    type's ingested files ``seen``."""
    folder = landing / event_type
    pending, rewritten, present = [], [], set()
    for path in sorted(folder.rglob("*.parquet")) if folder.exists() else []:
        if path.name.startswith("."):
            continue  # a writer's temporary file
        stat = path.stat()
        key = str(path)
        present.add(key)
        if seen.get(key) != (stat.st_size, stat.st_mtime_ns):
            pending.append((key, stat.st_size, stat.st_mtime_ns))
            if key in seen:
                rewritten.append(key)
    return pending, rewritten, sorted(set(seen) - present)


def _reset_models(con: duckdb.DuckDBPyConnection) -> None:
    """Every model rebuilds whole at its next build (their build state is forgotten)."""
    if scalar(
        con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = '_model_state' AND NOT temporary"
    ):
        con.execute("DELETE FROM _model_state")


def _forget_files(con: duckdb.DuckDBPyConnection, paths: dict[str, list[str]]) -> None:
    """Drop what ingest recorded of ``paths`` (per event type: rewritten or gone), keeping their
    event ids aside (``temp._forgotten``) to tell whether the rewritten files still hold every one."""
    con.execute("CREATE OR REPLACE TEMP TABLE _forgotten (event_type VARCHAR, event_id VARCHAR)")
    for event_type, forgotten in paths.items():
        if not forgotten:
            continue
        params = {"paths": forgotten, "type": event_type}
        con.execute(
            "INSERT INTO _forgotten SELECT $type, event_id FROM events "
            "WHERE event_type = $type AND list_contains($paths, _file)",
            params,
        )
        con.execute("DELETE FROM events WHERE event_type = $type AND list_contains($paths, _file)", params)
        con.execute(
            "DELETE FROM _duplicate_events WHERE event_type = $type AND list_contains($paths, file)", params
        )
        con.execute("DELETE FROM _ingested_files WHERE list_contains($paths, path)", {"paths": forgotten})


def _lost_events(con: duckdb.DuckDBPyConnection) -> bool:
    """Did an event of a rewritten file leave the raw layer (no copy of it is kept any more)?"""
    return bool(
        scalar(
            con,
            "SELECT count(*) FROM temp._forgotten f "
            "ANTI JOIN (SELECT event_type, event_id FROM events) e USING (event_type, event_id)",
        )
    )


def _ingest_batch(
    con: duckdb.DuckDBPyConnection,
    files: list[tuple[str, str, int, int]],
    catalog: SchemaCatalog,
    totals: dict[str, list[int]],
) -> None:
    """One batch of files, of any types (inside the caller's transaction): one pass over the
    envelopes only, added to ``totals`` (per type: rows read, new, duplicates).

    One ``INSERT`` for the whole batch: DuckDB writes a large insert straight into the database
    file, compressed, where one insert per type would go through the write-ahead log (a quarter of
    a gigabyte per million events, written again by the checkpoint). Then the copies of an event id
    that came twice (in this batch, or already stored) are taken out again, all but the first
    (stored before, else the first by file and row). Duplicates are rare by design, so this costs
    one narrow lookup of the batch's ids; the payloads stay in the files, and only a duplicate's is
    read (hashed next to the kept copy's). The batch's ids are probed by their hash first (one
    integer column); only when one matches are the stored ids themselves read, and only when one
    matches or two of the batch's share a hash are copies looked for at all."""
    now = datetime.now(UTC)
    paths = [f[1] for f in files]
    stored_before = scalar(con, "SELECT count(*) FROM events") > 0
    envelope_cols = ", ".join(f'envelope."{c}" AS "{c}"' for c in ENVELOPE_COLUMNS)
    con.execute(
        f"INSERT INTO events BY NAME SELECT {envelope_cols}, filename AS _file, file_row_number AS _row, "
        f"$now::TIMESTAMPTZ AS _ingested_at, {id_hash('envelope.')} AS _id_hash "
        f"FROM {_parquet_source(paths)}",
        {"now": now},
    )
    fresh = "SELECT event_type, event_id, _file, _row FROM events WHERE _ingested_at = $now"
    hash_matched = False
    copies = True  # whether any id may have come twice (in the batch, or stored before)
    if stored_before:  # the batch's ids, counted: the joins hash them, not the stored ids
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _fresh AS SELECT *, {id_hash()} AS h FROM ({fresh})", {"now": now}
        )
        fresh = "SELECT * EXCLUDE (h) FROM temp._fresh"
        probe = (  # one integer column read, not a million ids: no match, no stored copy
            "SELECT count(*) FROM events e SEMI JOIN temp._fresh f ON f.h = e._id_hash "
            "WHERE e._ingested_at <> $now"
        )
        hash_matched = bool(scalar(con, probe, {"now": now}))
        # no id came twice in the batch (distinct hashes; a collision only takes the long way)
        once = scalar(con, "SELECT count(*) = count(DISTINCT h) FROM temp._fresh")
        if once and not hash_matched:  # nothing to drop: no copies to rank
            copies = False
    if copies:
        stored = (  # copies stored before of the batch's ids, when a hash says there may be one
            "SELECT e.event_type, e.event_id, e._file, e._row FROM events e "
            "SEMI JOIN fresh f ON f.event_type = e.event_type AND f.event_id = e.event_id "
            "WHERE e._ingested_at <> $now"
            if hash_matched
            else f"SELECT * FROM ({fresh}) WHERE false"
        )
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _copies AS
            WITH fresh AS ({fresh}),
            stored AS ({stored}),
            twice AS (
                SELECT event_type, event_id FROM fresh GROUP BY ALL HAVING count(*) > 1
                UNION
                SELECT event_type, event_id FROM stored
            ),
            held AS (SELECT *, true AS new FROM fresh UNION ALL SELECT *, false AS new FROM stored)
            SELECT *, row_number() OVER (PARTITION BY event_type, event_id ORDER BY new, _file, _row) AS rank
            FROM held SEMI JOIN twice USING (event_type, event_id)
            """,
            {"now": now} if "$now" in fresh + stored else None,
        )
    read = dict(
        con.execute(
            "SELECT _file, count(*) FROM events WHERE _ingested_at = $now GROUP BY 1", {"now": now}
        ).fetchall()
    )
    dropped = (
        dict(con.execute("SELECT _file, count(*) FROM _copies WHERE rank > 1 GROUP BY ALL").fetchall())
        if copies
        else {}
    )
    if dropped:
        twice = con.execute("SELECT DISTINCT event_type FROM _copies WHERE rank > 1 ORDER BY 1").fetchall()
        for (event_type,) in twice:
            _record_duplicates(con, event_type, catalog, now)
        con.execute(
            "DELETE FROM events e USING (SELECT _file, _row FROM _copies WHERE rank > 1) d "
            "WHERE e._file = d._file AND e._row = d._row AND e._ingested_at = $now",
            {"now": now},
        )
    schemas = file_schemas(con, paths)  # the footers are cached: the insert read them
    con.execute(  # one statement (executemany runs one per file)
        "INSERT OR REPLACE INTO _ingested_files SELECT unnest($paths), unnest($types), unnest($sizes), "
        "unnest($mtimes), unnest($read), unnest($new), $now, unnest($columns), unnest($hashes)",
        {
            "paths": paths,
            "types": [f[0] for f in files],
            "sizes": [f[2] for f in files],
            "mtimes": [f[3] for f in files],
            "read": [read.get(p, 0) for p in paths],
            "new": [read.get(p, 0) - dropped.get(p, 0) for p in paths],
            "now": now,
            "columns": [sorted(schemas[p][0]) for p in paths],
            "hashes": [schemas[p][1] for p in paths],
        },
    )
    con.execute("DROP TABLE IF EXISTS temp._copies")
    con.execute("DROP TABLE IF EXISTS temp._fresh")
    for event_type, path, *_ in files:
        count = totals.setdefault(event_type, [0, 0, 0])
        count[0] += read.get(path, 0)
        count[1] += read.get(path, 0) - dropped.get(path, 0)
        count[2] += dropped.get(path, 0)


def _record_duplicates(
    con: duckdb.DuckDBPyConnection, event_type: str, catalog: SchemaCatalog, now: datetime
) -> None:
    """Every copy of ``event_type`` not kept (``temp._copies``, rank > 1) → ``_duplicate_events``,
    with its payload hash and the kept copy's (both read with the raw view's types, from the files
    that hold them)."""
    files = [
        row[0]
        for row in con.execute(
            "SELECT DISTINCT _file FROM _copies WHERE event_type = ? AND event_id IN "
            "(SELECT event_id FROM _copies WHERE event_type = ? AND rank > 1) ORDER BY 1",
            [event_type, event_type],
        ).fetchall()
    ]
    payload = [name for name, _ in raw_columns(event_type, catalog) if name not in PROMOTED]
    payload.remove("envelope")
    rows = raw_select(con, event_type, files, catalog)
    digest = "hash(struct_pack({}))".format(", ".join(f'"{c}" := r."{c}"' for c in payload))
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _dup_hashes AS
        SELECT p.event_id, p.rank = 1 AS kept, p._file, p._row, {digest} AS h
        FROM ({rows}) r JOIN _copies p ON p._file = r._file AND p._row = r._row
        WHERE p.event_type = $type
        """,
        {"type": event_type},
    )
    con.execute(
        """
        INSERT INTO _duplicate_events
        SELECT d.event_id, $type, d.h, k.h, d._file, d._row, $now
        FROM _dup_hashes d LEFT JOIN _dup_hashes k ON k.event_id = d.event_id AND k.kept
        WHERE NOT d.kept
        """,
        {"type": event_type, "now": now},
    )
    con.execute("DROP TABLE _dup_hashes")


def load_landing(
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    catalog: SchemaCatalog | None = None,
    *,
    batch_files: int = 1024,
    compact_every: int = C.WAREHOUSE_COMPACT_EVERY,
) -> list[LoadStats]:
    """Take the new landing files of every event type of the catalog into ``events`` and the raw
    views (types with no landing folder are a no-op), in one transaction: readers see all of the
    new files or none, and the load pays one commit. ``compact_every``: see ``compaction``."""
    catalog = catalog or default_catalog()
    ensure_tables(con, catalog)
    con.execute("BEGIN")
    try:
        stats = _load(con, landing, catalog, batch_files)
        if any(s.files for s in stats):
            record_writes(con, appended=_APPENDED, every=compact_every)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return stats


def _load(
    con: duckdb.DuckDBPyConnection, landing: Path, catalog: SchemaCatalog, batch_files: int
) -> list[LoadStats]:
    seen = _seen_files(con)
    scans = {t: _scan(landing, t, seen.get(t, {})) for t in catalog.event_types}
    _forget_files(con, {t: [*rewritten, *gone] for t, (_, rewritten, gone) in scans.items()})
    pending = [(t, *f) for t, (files, _, _) in scans.items() for f in files]
    totals: dict[str, list[int]] = {}
    for start in range(0, len(pending), batch_files):
        _ingest_batch(con, pending[start : start + batch_files], catalog, totals)
    gone = any(g for _, _, g in scans.values())
    rewritten = any(r for _, r, _ in scans.values())
    if gone or (rewritten and _lost_events(con)):
        _reset_models(con)  # rows left the raw layer: incremental slices cannot say which
    stats = []
    known = ingested_files(con) if any(new or lost for new, _, lost in scans.values()) else {}
    for event_type, (files, _, gone_files) in scans.items():
        if files or gone_files:
            _create_view(con, event_type, catalog, known)
        stats.append(LoadStats(event_type, len(files), *totals.get(event_type, [0, 0, 0])))
    return stats
