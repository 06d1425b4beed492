"""Incremental model builds: new events rebuild only the task slices they touch.

A model with a ``partition`` (``task_id``) is a union of independent slices, one per task. When
new raw rows arrive, only the tasks they belong to change, so a build deletes those tasks' rows and
inserts the model's ``SELECT`` evaluated over those tasks alone. A build session (a
:class:`Builder`: one refresh, or one Dagster asset) works on its own connection, in one
transaction: it finds the affected tasks once, cuts each input's rows of those tasks once into a
temporary ``_slice_<table>`` (a model's slice is the rows it just inserted) and reads them through
temporary views that shadow the tables' names. A session that knows its plan (a refresh: every
model) has the slices that need nothing it writes cut beside it, on cursors of their own
(``slice_lane``): those of the raw views, and of the models that read only those and each other.
The SQL files stay plain ``SELECT``s; the same SQL builds the whole table and a slice of it.

What a build needs to know is kept per model in ``_model_state``:

- ``watermark``: every raw row ingested at or before it has been seen (``_ingested_at``), through
  every partitioned input; a session's affected tasks are those of the raw rows after the oldest
  watermark of a partitioned model;
- ``built_seq`` / ``changed_seq`` / ``reset_seq``: a global build counter at the model's last
  build, at its last change, and at its last change outside the rebuilt slices (a full rebuild, or
  any change of a table without partition). A partitioned model rebuilds whole when an input was
  reset after it was built; a table without partition rebuilds when an input changed;
- ``inputs_hash``: its SQL, the macros and the levers; when they change the model rebuilds whole.

``full=True`` (``vtforge materialize --full``) rebuilds everything from scratch, the reference the
incremental path is tested against.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

from vtforge import constants as C
from vtforge.warehouse.compaction import commit, record_writes
from vtforge.warehouse.connection import quote_identifier, scalar
from vtforge.warehouse.load import IngestedFile, ingested_files
from vtforge.warehouse.models import (
    MODELS_BY_NAME,
    Model,
    ModelError,
    carry,
    levers_of,
    replace_table,
    sql_text,
)
from vtforge.warehouse.slice_lane import SliceLane, raw_slice_sql

STATE_TABLE = "_model_state"
_STATE_DDL = f"""
CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
    model VARCHAR NOT NULL, mode VARCHAR, built_seq BIGINT, changed_seq BIGINT, reset_seq BIGINT,
    watermark TIMESTAMPTZ, inputs_hash VARCHAR, fingerprint VARCHAR, affected_slices BIGINT,
    built_at TIMESTAMPTZ)"""
FULL = "full"
INCREMENTAL = "incremental"
UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Built:
    """What one model build did: ``mode`` is full | incremental | unchanged. ``rows`` is None for a
    view: its rows are computed when read, so counting them would cost a read of everything it
    reshapes on every build (dbt does not count a view's rows either)."""

    model: str
    rows: int | None
    mode: str
    affected_slices: int = 0


@dataclass(frozen=True)
class _State:
    built_seq: int
    changed_seq: int
    reset_seq: int
    watermark: datetime | None
    inputs_hash: str
    fingerprint: str | None


def materialize(con: duckdb.DuckDBPyConnection, name: str, *, full: bool = False) -> Built:
    """Bring one model up to date with its inputs, rebuilding as little as is correct."""
    with Builder(con) as builder:
        return builder.materialize(name, full=full)


class Builder:
    """Builds models in one transaction on its own connection to the writer's database.

    One transaction for a whole session (a refresh builds every model in one): readers see all
    of it or none, and the session pays one commit. Slice builds see the temporary views that
    shadow partitioned inputs; a table without partition is built with those views dropped."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        compact_every: int = C.WAREHOUSE_COMPACT_EVERY,
        plan: list[str] | None = None,
    ) -> None:
        _ensure_state_table(con)
        self.plan = plan  # the models it will build, in order: slices are cut beside it (lane)
        self.compact_every = compact_every  # appends to a table between row-group merges (compaction)
        self.tx = con.cursor()  # its own temporary catalog, and the session's transaction
        carry(self.tx, levers_of(con))  # the levers, typed, and the macros
        self.tx.execute("BEGIN")
        tx = self.tx
        self.db = quote_identifier(scalar(tx, "SELECT current_database()"))
        self.seq: int = scalar(tx, f"SELECT coalesce(max(built_seq), 0) FROM {STATE_TABLE}")
        self.states = _states(tx)
        self.levers = _levers(con)
        self.tables = _tables(tx)  # the builder holds the writer: only its own builds add tables
        self.high = _high_water(tx, self.tables)  # ... and nothing is ingested while it builds
        self.views = _views(tx)  # the raw layer's and the view models'
        self.raws = {v for v in self.views if v.startswith("raw_")}
        self._shadowed: set[str] = set()  # tables read through a view over their slice
        self._sliced: set[str] = set()  # tables whose affected rows are cut (temp._slice_<name>)
        self._affected_count: int | None = None
        self._ingested: dict[str, IngestedFile] | None = None  # read at the first raw slice
        self._lane: SliceLane | None = None  # slices cut beside the session (new rows only)
        self._arrows: dict[str, pa.Table] = {}  # those the session scans (kept alive while it may)
        self._since: datetime | None = None  # the oldest watermark the affected tasks are taken after
        self._fresh = False  # no model can hold a row of an affected task yet (all new tasks)
        self._pending: list[list[object]] = []  # state rows, written once when the session commits
        self._appended: set[str] = set()  # tables this session inserted slices into
        self._rebuilt: set[str] = set()  # partitioned tables it rebuilt whole
        self._done = False

    def __enter__(self) -> Builder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        try:
            if exc_type is None:
                self.commit()
            elif not self._done:
                self.tx.execute("ROLLBACK")
        finally:
            self._stop_lane()
            self.tx.close()

    def commit(self) -> None:
        """Record every build's state and commit the session (once; leaving the block also does)."""
        if self._done:
            return
        self._stop_lane()
        if self._pending:  # the latest row of each model
            latest = list({row[0]: row for row in self._pending}.values())
            state = f"{self.db}.main.{STATE_TABLE}"
            self.tx.execute(f"DELETE FROM {state} WHERE model IN ?", [[row[0] for row in latest]])
            values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, now())"] * len(latest))
            self.tx.execute(f"INSERT INTO {state} VALUES {values}", [v for row in latest for v in row])
        record_writes(self.tx, appended=self._appended, rebuilt=self._rebuilt, every=self.compact_every)
        commit(self.tx)
        self._done = True

    def materialize(self, name: str, *, full: bool = False) -> Built:
        """Bring ``name`` up to date; a failed SQL raises ``ModelError`` (the session rolls back)."""
        try:
            return self._materialize(MODELS_BY_NAME[name], full)
        except duckdb.Error as exc:
            raise ModelError(f"model {name} (warehouse/sql/{name}.sql): {exc}") from exc

    def _materialize(self, model: Model, full: bool) -> Built:
        self.seq += 1
        seq, states = self.seq, self.states
        state = states.get(model.name)
        inputs_hash = _inputs_hash(model, self.levers)
        if model.materialized == "view":
            return self._define_view(model, seq, state, inputs_hash, full)
        if full or state is None or model.name not in self.tables or state.inputs_hash != inputs_hash:
            return self._rebuild(model, seq, state, inputs_hash)
        if model.partition is None:
            if _inputs_moved(self.tx, self.db, model, state, states, self.tables | self.raws):
                return self._rebuild(model, seq, state, inputs_hash)
            # nothing it reads changed up to the newest ingest
            self._save(
                model.name,
                UNCHANGED,
                seq,
                state.changed_seq,
                state.reset_seq,
                self.high,
                inputs_hash,
                state.fingerprint,
                0,
            )
            return Built(model.name, self._count(model.name), UNCHANGED)
        model_deps = [d for d in model.deps if d in MODELS_BY_NAME]
        if any(d not in states or states[d].reset_seq > state.built_seq for d in model_deps):
            return self._rebuild(model, seq, state, inputs_hash)  # an input changed outside the slices
        return self._update_slices(model, seq, state, inputs_hash)

    def _count(self, name: str) -> int:
        """Rows of model ``name`` (qualified: a slice view of the same name may exist)."""
        return scalar(self.tx, f'SELECT count(*) FROM {self.db}.main."{name}"')

    def _rebuild(self, model: Model, seq: int, state: _State | None, inputs_hash: str) -> Built:
        tx = self.tx
        self._unshadow()
        self._drop_slice(model.name)
        replace_table(tx, model.name)
        self.tables.add(model.name)
        if model.partition is not None:  # a large table: worth merging its row groups
            self._rebuilt.add(model.name)
        fingerprint = _fingerprint(tx, f'{self.db}.main."{model.name}"') if model.partition is None else None
        changed = state is None or model.partition is not None or fingerprint != state.fingerprint
        last_change = seq if state is None or changed else state.changed_seq
        watermark = _watermark(model, self.high, self.states)
        self._save(model.name, FULL, seq, last_change, last_change, watermark, inputs_hash, fingerprint, 0)
        return Built(model.name, self._count(model.name), FULL)

    def _define_view(
        self, model: Model, seq: int, state: _State | None, inputs_hash: str, full: bool
    ) -> Built:
        """A view model is defined once (again when its SQL, macros or levers change). Its rows
        change whenever an input's do, which its change counters record for what reads it (the
        exports are rewritten when ``sft_examples`` changed); it is reset (its readers rebuilt
        whole) only when it is redefined or an input was reset: new rows of a task change only
        that task's rows of the view."""
        if full or state is None or model.name not in self.views or state.inputs_hash != inputs_hash:
            self._unshadow()
            replace_table(self.tx, model.name)
            self.views.add(model.name)
            changed = reset = seq
            mode = FULL
        else:
            moved = _inputs_moved(self.tx, self.db, model, state, self.states, self.tables | self.raws)
            changed, mode = (seq if moved else state.changed_seq), UNCHANGED
            inputs = [self.states[d].reset_seq for d in model.deps if d in self.states]
            reset = max([state.reset_seq, *inputs])
        self._save(model.name, mode, seq, changed, reset, self.high, inputs_hash, None, 0)
        return Built(model.name, None, mode)

    def _update_slices(self, model: Model, seq: int, state: _State, inputs_hash: str) -> Built:
        """Delete the affected tasks' rows and insert the model's SELECT over those tasks only."""
        db, tx = self.db, self.tx
        affected = self._affected()
        if affected:
            self._drop_slice(model.name)
            if self._lane is not None and model.name in self._lane:  # cut beside the session
                self._keep_slice(model.name, self._lane.get(model.name))
            else:
                for dep in model.deps:
                    upstream = MODELS_BY_NAME.get(dep)
                    if upstream is None or upstream.partition is not None:  # else read whole
                        self._shadow(dep)
                tx.execute(f'CREATE TEMP TABLE "_slice_{model.name}" AS {model.sql}')
                self._sliced.add(model.name)  # its new rows are its slice for the models after it
            if not self._fresh:  # else no row of an affected task is stored yet
                tx.execute(
                    f'DELETE FROM {db}.main."{model.name}" '
                    f"WHERE coalesce(\"{model.partition}\", '') IN (SELECT k FROM temp._affected)"
                )
            tx.execute(f'INSERT INTO {db}.main."{model.name}" SELECT * FROM temp."_slice_{model.name}"')
            self._appended.add(model.name)
        mode = INCREMENTAL if affected else UNCHANGED
        watermark = _watermark(model, self.high, self.states)
        changed = seq if affected else state.changed_seq
        self._save(model.name, mode, seq, changed, state.reset_seq, watermark, inputs_hash, None, affected)
        return Built(model.name, self._count(model.name), mode, affected)

    def _affected(self) -> int:
        """The session's affected tasks (``temp._affected``), computed once: those of every raw row
        ingested after the oldest watermark of a partitioned model. A superset of what any one model
        needs, which is correct (a slice rebuilt from the same rows is the same) and lets every
        input's slice be cut once and shared."""
        if self._affected_count is None:
            marks = [
                state.watermark
                for name, state in self.states.items()
                if name in MODELS_BY_NAME and MODELS_BY_NAME[name].partition is not None
            ]
            since = None if not marks or any(m is None for m in marks) else min(m for m in marks if m)
            self._since = since
            tasks = f"SELECT coalesce(task_id, '') AS k FROM {self.db}.main.events"
            if "events" not in self.tables:  # nothing ingested yet
                rows, params = "SELECT NULL::VARCHAR AS k WHERE false", None
            elif since is None:
                rows, params = tasks, None
            else:
                rows, params = f"{tasks} WHERE _ingested_at > $since", {"since": since}
            self.tx.execute(f"CREATE TEMP TABLE _affected AS SELECT DISTINCT k FROM ({rows})", params)
            self._affected_count = scalar(self.tx, "SELECT count(*) FROM temp._affected")
            self._fresh = since is not None and self._all_new()
            if self.plan and since is not None and self._affected_count:  # new rows: cut beside
                self._lane = SliceLane(
                    self.tx,
                    self.db,
                    self._lane_slices(self.plan),
                    affected_sql=rows,
                    params=params,
                    since=since,
                    fresh=self._fresh,
                )
        return int(self._affected_count or 0)

    def _all_new(self) -> bool:
        """Whether every affected task's events were ingested after the last build began: no
        build can have seen them (a build holds the writer, so no ingest runs while it builds), so
        no model holds a row of those tasks and a slice is inserted without deleting anything. New
        tasks, as a live stream starts them, are the common case."""
        last_build = scalar(self.tx, f"SELECT max(built_at) FROM {self.db}.main.{STATE_TABLE}")
        if last_build is None:
            return False
        older = (
            f"SELECT 1 FROM {self.db}.main.events WHERE _ingested_at <= $last "
            "AND coalesce(task_id, '') IN (SELECT k FROM temp._affected) LIMIT 1"
        )
        return not self.tx.execute(older, {"last": last_build}).fetchall()

    def _shadow(self, table: str) -> None:
        """Make ``table`` read as its affected tasks' rows: a view over its slice (cut once)."""
        if table in self._shadowed:
            return
        if table not in self._sliced:
            if self._lane is not None and table in self._lane:  # cut beside the session
                self._keep_slice(table, self._lane.get(table))
            else:
                rows, params = self._slice_sql(table)
                self.tx.execute(f'CREATE TEMP TABLE "_slice_{table}" AS {rows}', params)
                self._sliced.add(table)
        self.tx.execute(f'CREATE OR REPLACE TEMP VIEW "{table}" AS SELECT * FROM temp."_slice_{table}"')
        self._shadowed.add(table)

    def _slice_sql(self, table: str) -> tuple[str, dict[str, object] | None]:
        """The affected tasks' rows of ``table`` (a raw view, or a table not rebuilt this session)."""
        if table in self.raws:
            if self._ingested is None:
                self._ingested = ingested_files(self.tx)
            return raw_slice_sql(
                self.tx, self.db, table, since=self._since, fresh=self._fresh, ingested=self._ingested
            )
        affected = "coalesce(task_id, '') IN (SELECT k FROM temp._affected)"
        return f'SELECT * FROM {self.db}.main."{table}" WHERE {affected}', None

    def _lane_slices(self, plan: list[str]) -> list[str]:
        """What the lane cuts for ``plan``, in order: the raw views that its partitioned models read,
        and those models that read nothing else but stored tables without partition and are to be
        built by slices (as their states say: a model rebuilt whole leaves its slice unread, and so
        do the models after it). The lane reads a table without partition as committed: if the
        session changes it, every partitioned model reading it is rebuilt whole, not by slices."""
        cut: list[str] = []
        for name in plan:
            model = MODELS_BY_NAME[name]
            if model.partition is None or model.materialized != "table":
                continue
            cut.extend(d for d in model.deps if d in self.raws and d not in cut)
            if all(d in cut or self._whole_table(d) for d in model.deps) and self._by_slices(model):
                cut.append(name)
        return cut

    def _whole_table(self, name: str) -> bool:
        """A stored model without partition (read whole, as committed, beside the session)."""
        model = MODELS_BY_NAME.get(name)
        if model is None or name not in self.tables:
            return False
        return model.partition is None and model.materialized == "table"

    def ready(self, name: str) -> bool:
        """Whether building ``name`` now waits for no slice cut beside the session."""
        if self._lane is None:
            return True
        return all(self._lane.done(n) for n in (name, *MODELS_BY_NAME[name].deps) if n in self._lane)

    def _by_slices(self, model: Model) -> bool:
        """Whether ``model`` is to be built by slices, as far as the states tell before its build."""
        state = self.states.get(model.name)
        if state is None or model.name not in self.tables:
            return False
        if state.inputs_hash != _inputs_hash(model, self.levers):
            return False
        deps = [d for d in model.deps if d in MODELS_BY_NAME]
        return all(d in self.states and self.states[d].reset_seq <= state.built_seq for d in deps)

    def _stop_lane(self) -> None:
        if self._lane is not None:
            self._lane.close()
            self._lane = None

    def _keep_slice(self, table: str, rows: pa.Table) -> None:
        """``table``'s slice from rows in hand, scanned where they are (``temp._slice_<table>``)."""
        self._arrows[table] = rows
        self.tx.register(f"_slice_{table}", rows)
        self._sliced.add(table)

    def _drop_slice(self, table: str) -> None:
        """Forget ``table``'s slice (it is being rebuilt) and the view over it."""
        if table in self._shadowed:
            self.tx.execute(f'DROP VIEW temp."{table}"')
            self._shadowed.discard(table)
        if table in self._arrows:
            self.tx.unregister(f"_slice_{table}")
            del self._arrows[table]
        elif table in self._sliced:
            self.tx.execute(f'DROP TABLE temp."_slice_{table}"')
        self._sliced.discard(table)

    def _unshadow(self) -> None:
        """Drop the views over slices, so that the next statement reads whole tables."""
        for table in sorted(self._shadowed):
            self.tx.execute(f'DROP VIEW temp."{table}"')
        self._shadowed.clear()

    def _save(
        self,
        name: str,
        mode: str,
        seq: int,
        changed_seq: int,
        reset_seq: int,
        watermark: datetime | None,
        inputs_hash: str,
        fingerprint: str | None,
        affected: int,
    ) -> None:
        self._pending.append(
            [name, mode, seq, changed_seq, reset_seq, watermark, inputs_hash, fingerprint, affected]
        )
        self.states[name] = _State(seq, changed_seq, reset_seq, watermark, inputs_hash, fingerprint)


def _ensure_state_table(con: duckdb.DuckDBPyConnection) -> None:
    """``_model_state``; a warehouse from before keeps its rows but loses the primary key, whose
    index made every session's commit one DuckDB does not checkpoint at (``compaction.commit``)."""
    con.execute(_STATE_DDL)
    if con.execute(f"SELECT 1 FROM pragma_table_info('main.{STATE_TABLE}') WHERE pk").fetchall():
        con.execute(f"CREATE OR REPLACE TABLE {STATE_TABLE} AS SELECT * FROM {STATE_TABLE}")


def _inputs_moved(
    con: duckdb.DuckDBPyConnection,
    db: str,
    model: Model,
    state: _State,
    states: dict[str, _State],
    tables: set[str],
) -> bool:
    """For a table without partition: has any input changed since it was built?"""
    for dep in model.deps:
        if dep in MODELS_BY_NAME:
            if dep not in states or states[dep].changed_seq > state.built_seq:
                return True
        elif dep in tables:
            since = "_ingested_at > $since" if state.watermark is not None else "true"
            if dep.startswith("raw_"):  # a raw view: its type's kept events
                source, where = f"{db}.main.events", f"event_type = '{dep.removeprefix('raw_')}' AND {since}"
            else:
                source, where = f'{db}.main."{dep}"', since
            newer = f"SELECT count(*) FROM (SELECT 1 FROM {source} WHERE {where} LIMIT 1)"
            if scalar(con, newer, {"since": state.watermark} if state.watermark else None):
                return True
    return False


def _watermark(model: Model, high: datetime | None, states: dict[str, _State]) -> datetime | None:
    """What this build has seen: the ingest high water, held back by partitioned inputs behind it."""
    if model.partition is None:
        return high  # its partitioned inputs are tracked by their change counters instead
    marks = [high]
    for dep in model.deps:
        upstream = MODELS_BY_NAME.get(dep)
        if upstream is not None and upstream.partition is not None:
            marks.append(states[dep].watermark if dep in states else None)
    if any(m is None for m in marks):
        return None
    return min(m for m in marks if m is not None)


def _high_water(con: duckdb.DuckDBPyConnection, tables: set[str]) -> datetime | None:
    """The newest ingest: every raw row has ``_ingested_at`` at or before it."""
    if "_ingested_files" not in tables:
        return None
    return scalar(con, "SELECT max(ingested_at) FROM _ingested_files")


def _levers(con: duckdb.DuckDBPyConnection) -> str:
    """The connection's lever variables, as one string (part of every model's inputs)."""
    levers = scalar(
        con,
        "SELECT string_agg(name || '=' || coalesce(value::VARCHAR, ''), ';' ORDER BY name) "
        "FROM duckdb_variables()",
    )
    return levers or ""


def _inputs_hash(model: Model, levers: str) -> str:
    text = "\n".join([model.sql, sql_text("_macros"), str(model.partition), levers])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _fingerprint(con: duckdb.DuckDBPyConnection, table: str) -> str:
    row = con.execute(f"SELECT count(*), sum(hash(t)) FROM {table} t").fetchone()
    assert row is not None  # an aggregate always returns its row
    count, digest = row
    return f"{count}:{digest}"


def _states(con: duckdb.DuckDBPyConnection) -> dict[str, _State]:
    rows = con.execute(
        "SELECT model, built_seq, changed_seq, reset_seq, watermark, inputs_hash, fingerprint "
        f"FROM {STATE_TABLE}"
    ).fetchall()
    return {row[0]: _State(*row[1:]) for row in rows}


def _views(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The database's own views: the raw layer's (``raw_<event_type>``) and the view models."""
    rows = con.execute(
        "SELECT view_name FROM duckdb_views() WHERE schema_name = 'main' AND NOT temporary AND NOT internal"
    ).fetchall()
    return {row[0] for row in rows}


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The database's own tables (not the slicing connection's temporary views)."""
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND NOT temporary"
    ).fetchall()
    return {row[0] for row in rows}
