"""``vtforge sql``: query the warehouse and the landing zone, one-shot or interactively.

It reads through ``warehouse.reader.open_reader``: a snapshot of the warehouse (never the file the
pipeline is writing) plus views over the landing Parquet files, so it works before anything was
materialised and never blocks the pipeline's single DuckDB writer.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from vtforge.cli._common import CliError, ConfigOption, config_from, console

if TYPE_CHECKING:
    import duckdb

FORMATS = ("table", "csv", "json", "parquet")
_SUFFIXES = {".csv": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json", ".parquet": "parquet"}
_RESULT_VIEW = "_vtforge_result"


def _format_for(fmt: str | None, output: Path | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise CliError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}", code=2)
        return fmt
    if output is not None:
        return _SUFFIXES.get(output.suffix.lower(), "csv")
    return "table"


def run_query(con: duckdb.DuckDBPyConnection, query: str, fmt: str, output: Path | None, limit: int) -> int:
    """Run one statement and write its result; returns the number of result rows."""
    import duckdb

    try:
        relation = con.sql(query)
    except duckdb.Error as exc:
        raise CliError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    if relation is None:  # a statement without a result (SET, CREATE VIEW …)
        console.print("ok")
        return 0
    if fmt == "table":
        return _print_table(relation, limit)
    if fmt == "parquet" and output is None:
        raise CliError("--format parquet needs --output FILE", code=2)
    relation.create_view(_RESULT_VIEW, replace=True)
    options = {"csv": "FORMAT csv, HEADER true", "json": "FORMAT json", "parquet": "FORMAT parquet"}[fmt]
    with tempfile.TemporaryDirectory(prefix="vtforge-sql-") as tmp:
        target = Path(tmp) / f"result.{fmt}"
        quoted = "'" + str(target).replace("'", "''") + "'"
        try:
            con.execute(f"COPY (FROM {_RESULT_VIEW}) TO {quoted} ({options})")
        except duckdb.Error as exc:
            raise CliError(str(exc).splitlines()[0]) from None
        rows = con.execute(f"SELECT count(*) FROM {_RESULT_VIEW}").fetchone()[0]
        if output is None:
            with open(target, "rb") as handle:
                shutil.copyfileobj(handle, sys.stdout.buffer)
            sys.stdout.flush()
        else:
            output.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(target), output)
            console.print(f"{rows} rows → {output}", highlight=False)
    return rows


def _print_table(relation: duckdb.DuckDBPyRelation, limit: int) -> int:
    columns = relation.columns
    rows = relation.limit(limit + 1).fetchall()
    table = Table(show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows[:limit]:
        table.add_row(*("NULL" if v is None else str(v) for v in row))
    console.print(table)
    more = " (more not shown; use --limit or --output)" if len(rows) > limit else ""
    console.print(f"{min(len(rows), limit)} rows{more}", highlight=False)
    return min(len(rows), limit)


def _list_tables(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        "SELECT database_name || '.' || schema_name AS place, table_name AS name, 'table' AS kind "
        "FROM duckdb_tables() WHERE NOT temporary "
        "UNION ALL SELECT database_name || '.' || schema_name, view_name, 'view' FROM duckdb_views() "
        "WHERE NOT internal AND view_name <> ? ORDER BY 1, 2",
        [_RESULT_VIEW],
    ).fetchall()
    table = Table("where", "name", "kind")
    for place, name, kind in rows:
        table.add_row(place, name, kind)
    console.print(table)


def interactive(open_connection, limit: int) -> None:
    """A small REPL: statements end with ';'. ``.tables``, ``.refresh`` (new snapshot), ``.quit``."""
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  (line editing and history for input())
    con = open_connection()
    console.print(
        "vtforge sql — statements end with ';'. .tables lists tables, .refresh re-reads, .quit exits."
    )
    buffer: list[str] = []
    while True:
        try:
            line = input("vtforge> " if not buffer else "     ...> ")
        except EOFError:
            break
        except KeyboardInterrupt:
            buffer.clear()
            console.print()
            continue
        stripped = line.strip()
        if not buffer and stripped.startswith("."):
            if stripped in (".quit", ".exit", ".q"):
                break
            if stripped == ".tables":
                _list_tables(con)
            elif stripped == ".refresh":
                con.close()
                con = open_connection()
                console.print("re-read the warehouse and the landing zone")
            else:
                console.print(f"unknown command {stripped}")
            continue
        buffer.append(line)
        if stripped.endswith(";"):
            statement = "\n".join(buffer).strip().rstrip(";")
            buffer.clear()
            try:
                run_query(con, statement, "table", None, limit)
            except CliError as exc:
                console.print(f"[red]error:[/] {exc}", highlight=False)
    con.close()


def register(app: typer.Typer) -> None:
    @app.command("sql")
    def sql(
        query: str = typer.Argument(
            None, help="SQL to run ('-' reads stdin); none starts an interactive session."
        ),
        config: ConfigOption = None,
        fmt: str = typer.Option(
            None, "--format", "-f", help="table | csv | json | parquet (default: by --output)."
        ),
        output: Path = typer.Option(None, "--output", "-o", help="Write the result to this file."),  # noqa: B008
        limit: int = typer.Option(50, help="Rows shown by the table format."),
    ) -> None:
        """Query the warehouse (a snapshot) and the landing files with DuckDB SQL.

        Warehouse tables are unqualified (sft_examples, rollouts …); landing files are views in
        schema landing (landing.rollout, landing.events), and unqualified too until the warehouse
        has a table of that name.
        """
        from warehouse.connection import WarehouseBusy
        from warehouse.reader import open_reader

        cfg = config_from(config)

        def connect() -> duckdb.DuckDBPyConnection:
            try:
                return open_reader(cfg)
            except WarehouseBusy as exc:
                raise CliError(str(exc)) from None

        if query is None:
            interactive(connect, limit)
            return
        text = sys.stdin.read() if query == "-" else query
        chosen = _format_for(fmt, output)
        con = connect()
        try:
            run_query(con, text.strip().rstrip(";"), chosen, output, limit)
        finally:
            con.close()
