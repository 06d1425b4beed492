"""Refresh the whole warehouse without Dagster (benchmarks, debugging, the trainers' tests).

The Dagster assets call exactly the same functions, one per asset; this is the same sequence in
one writer session.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from vtforge.warehouse.compaction import checkpoint
from vtforge.warehouse.connection import writer
from vtforge.warehouse.exports import export_datasets
from vtforge.warehouse.incremental import Builder
from vtforge.warehouse.load import load_landing
from vtforge.warehouse.models import Model, build_order, prepare
from vtforge.warehouse.quarantine_table import build_quarantine

if TYPE_CHECKING:
    from vtforge.config import Config


def refresh(
    config: Config,
    *,
    exports: bool = True,
    full: bool = False,
    timings: dict[str, float] | None = None,
) -> dict[str, int]:
    """Ingest new landing files, bring every model up to date (and the exports); rows per table.

    Models update incrementally (only the tasks new events touched); ``full`` rebuilds them all.

    ``timings`` (when given) receives the seconds each step took: ``load`` (landing → raw tables),
    ``quarantine``, each model by name, ``commit`` (the models' one transaction, and DuckDB's
    checkpoint at it), ``checkpoint`` (what is left in the WAL: a session with a table due for its
    merge), ``exports`` — where a materialisation spends its time."""
    rows: dict[str, int] = {}
    spent = timings if timings is not None else {}

    @contextmanager
    def step(name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - started

    with writer(config.duckdb_path, storage_version=config.forge.warehouse.storage_version) as con:
        prepare(con, config)
        compact_every = config.forge.warehouse.compact_every
        with step("load"):
            for stats in load_landing(con, config.landing_dir, compact_every=compact_every):
                rows[f"raw_{stats.event_type}"] = stats.rows_new
        with step("quarantine"):
            rows["quarantine"] = build_quarantine(con, config.quarantine_dir)
        pending = build_order()
        with Builder(con, compact_every=compact_every, plan=[m.name for m in pending]) as builder:
            while pending:
                model = _next(pending, builder)
                with step(model.name):
                    built = builder.materialize(model.name, full=full)
                if built.rows is not None:  # a view's rows are not counted
                    rows[model.name] = built.rows
            with step("commit"):
                builder.commit()
        with step("checkpoint"):
            checkpoint(con)  # what the writer does on close anyway: timed here
        if exports:
            with step("exports"):
                for name, count in export_datasets(
                    con, config.data_dir / "exports", vtcode=config.forge.datasets.sft_vtcode
                ).items():
                    rows[f"exports/{name}"] = count
    return rows


def _next(pending: list[Model], builder: Builder) -> Model:
    """Take the next model to build from ``pending`` (in build order): the first whose inputs are
    built and whose slices cut beside the session are ready, else the first whose inputs are built
    (it waits). So the session builds what needs no slice (a table without partition) while the
    slices it waits for are being cut."""
    names = {m.name for m in pending}
    runnable = [m for m in pending if not names & set(m.deps)]
    model = next((m for m in runnable if builder.ready(m.name)), runnable[0])
    pending.remove(model)
    return model
