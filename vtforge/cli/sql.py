"""``vtforge sql``: query the warehouse and the landing zone, one-shot or interactively.

It reads through ``vtforge.warehouse.reader.open_reader``: a snapshot of the warehouse (never the file the
pipeline is writing) plus views over the landing Parquet files, so it works before anything was
materialised and never blocks the pipeline's single DuckDB writer.
"""

from __future__ import annotations

import contextlib
import re
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

# the DuckDB CLI's names: json is one JSON array, jsonlines one object per line
FORMATS = ("table", "csv", "json", "jsonlines", "markdown", "parquet")
_SUFFIXES = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonlines",
    ".ndjson": "jsonlines",
    ".md": "markdown",
    ".parquet": "parquet",
}
_COPY_OPTIONS = {
    "csv": "FORMAT csv, HEADER true",
    "json": "FORMAT json, ARRAY true",
    "jsonlines": "FORMAT json",
    "parquet": "FORMAT parquet",
}
_RESULT_VIEW = "_vtforge_result"
# statements that would change the snapshot being read, and be lost with it (temporary objects
# live in the session and are allowed)
_WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE_INTO", "CREATE", "DROP", "ALTER"})
_TEMPORARY = re.compile(r"^\s*create\s+(or\s+replace\s+)?temp(orary)?\b", re.IGNORECASE)


def refuse_writes(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """One clear line instead of a write that would vanish: ``vtforge sql`` reads a snapshot."""
    import duckdb

    try:
        statements = con.extract_statements(query)
    except duckdb.Error:
        return  # the query itself reports its syntax error
    for statement in statements:
        kind = statement.type.name
        if kind in _WRITES and not (kind == "CREATE" and _TEMPORARY.match(statement.query)):
            raise CliError(
                f"{kind} refused: vtforge sql reads a snapshot of the warehouse, so a write would be "
                "lost; tables are built by `vtforge materialize` (warehouse/sql/), and CREATE TEMP "
                "objects last for the session",
                code=2,
            )


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

    refuse_writes(con, query)
    try:
        relation = con.sql(query)
    except duckdb.Error as exc:
        raise CliError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    if relation is None:  # a statement without a result (SET, CREATE VIEW …)
        console.print("ok")
        return 0
    if fmt == "table":
        return _print_table(relation, limit)
    if fmt == "markdown":
        return _write_markdown(relation, output)
    if fmt == "parquet" and output is None:
        raise CliError("--format parquet needs --output FILE", code=2)
    relation.create_view(_RESULT_VIEW, replace=True)
    options = _COPY_OPTIONS[fmt]
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


def _write_markdown(relation: duckdb.DuckDBPyRelation, output: Path | None) -> int:
    """A GitHub-style markdown table of the whole result (``|`` in values escaped)."""

    def cell(value: object) -> str:
        return "NULL" if value is None else str(value).replace("|", "\\|").replace("\n", " ")

    rows = relation.fetchall()
    lines = ["| " + " | ".join(relation.columns) + " |", "|" + "---|" * len(relation.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        console.print(f"{len(rows)} rows → {output}", highlight=False)
    return len(rows)


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
            None,
            "--format",
            "-f",
            help="table | csv | json (an array) | jsonlines | markdown | parquet (default: by --output).",
        ),
        output: Path = typer.Option(None, "--output", "-o", help="Write the result to this file."),  # noqa: B008
        limit: int = typer.Option(50, help="Rows shown by the table format."),
    ) -> None:
        """Query the warehouse (a snapshot) and the landing files with DuckDB SQL.

        Warehouse tables are unqualified (sft_examples, rollouts …); landing files are views in
        schema landing (landing.rollout, landing.events), and unqualified too until the warehouse
        has a table of that name. Writes are refused (a snapshot is read); CREATE TEMP is allowed.
        """
        from vtforge.warehouse.connection import WarehouseBusy
        from vtforge.warehouse.reader import open_reader

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
