"""Warehouse benchmark: full and incremental materialisation of ~1M landing events, then telemetry.

1. **full materialisation** — ``vtforge.warehouse.refresh.refresh(full=True)`` (ingest with dedup,
   every curated table, dataset and telemetry model rebuilt from scratch, then the Parquet exports)
   on N events, next to one plain DuckDB query that reads every landing file once (the cheapest
   thing that touches all the data);
2. **incremental materialisation** — about 1% more events land (new tasks, as a live stream adds
   them) and ``refresh`` brings every model up to date by rebuilding only the affected tasks' slices.
   ``ratio`` is full time / incremental time, both for ingest + every model (the exports, two
   Parquet files rewritten whole whenever their dataset changes, are printed separately); it is the
   median of ``--repeat`` runs from the same state (the first writes the exports too). The same
   increment is then materialised again from the same state in a new Python process (imports not
   timed), as a Dagster run or ``vtforge materialize`` does it: nothing cached in memory;
3. **telemetry query** — events per stage, type and day with distinct tasks, over the warehouse's
   ``events`` table grown to N×scale rows, against the same query over the landing files read
   ``scale`` times by a plain DuckDB ``read_parquet``. The ratio is plain-query latency / ours.

The events come from the synthetic generator (``vtforge.fixtures.events``): a base stream is generated
once, then replicated with every identifier suffixed so that replicas are distinct events (the
generator itself runs at about a thousand events a second, which would dominate the run).

    .venv/bin/python bench/warehouse.py                     # 1M events (+1%), 10M-row query
    .venv/bin/python bench/warehouse.py --events 100000     # quicker
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vtforge.config import load_config  # noqa: E402
from vtforge.fixtures.events import generate_events  # noqa: E402
from vtforge.transport import sink_from_config  # noqa: E402
from vtforge.transport.landing import landing_files, write_parquet_atomic  # noqa: E402
from vtforge.warehouse.connection import writer  # noqa: E402
from vtforge.warehouse.refresh import refresh  # noqa: E402

ID_COLUMNS = {
    "rollout_id",
    "patch_id",
    "test_id",
    "execution_id",
    "reward_id",
    "subject_id",
    "selection_id",
    "selected_patch_id",
    "instance_id",
    "step_id",
    "evaluation_id",
}
ENVELOPE_IDS = {"event_id", "task_id", "run_id"}

TELEMETRY_SQL = """
SELECT stage, event_type, date_trunc('day', occurred_at) AS day, count(*) AS events,
       count(DISTINCT task_id) AS tasks, count(*) FILTER (WHERE synthetic) AS synthetic
FROM {source} GROUP BY ALL ORDER BY ALL
"""


def _suffix(column: pa.ChunkedArray, suffix: str) -> pa.ChunkedArray:
    return pc.binary_join_element_wise(column, pa.scalar(suffix), "")


def replicate(table: pa.Table, suffix: str) -> pa.Table:
    """The same events with every identifier suffixed: distinct events that join the same way."""
    columns = []
    for name in table.column_names:
        column = table.column(name)
        if name in ID_COLUMNS and pa.types.is_string(column.type):
            column = _suffix(column, suffix)
        elif name == "envelope":
            envelope = column.combine_chunks()
            children = [
                _suffix(envelope.field(i), suffix)
                if envelope.type.field(i).name in ENVELOPE_IDS
                else envelope.field(i)
                for i in range(envelope.type.num_fields)
            ]
            column = pa.StructArray.from_arrays(children, fields=list(envelope.type), mask=envelope.is_null())
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=table.schema)


def make_landing(config, events: int, base_tasks: int) -> tuple[int, float]:
    """Generate a base stream through the landing sink, then replicate it to about ``events``."""
    started = time.perf_counter()
    with sink_from_config(config, producer="bench.warehouse") as sink:
        base = sink.emit_many(
            generate_events(
                base_tasks, 7, bugfixer_rollouts=40, testwriter_rollouts=40, policy_versions=("v0", "v1")
            )
        )
    replicas = max(0, -(-events // base) - 1)
    for path in landing_files(config.landing_dir):
        table = pq.read_table(path)
        for r in range(1, replicas + 1):
            write_parquet_atomic(replicate(table, f"~{r}"), path.with_name(f"{path.stem}-r{r}.parquet"))
    return base * (replicas + 1), time.perf_counter() - started


def add_increment(config, fraction: float, base_tasks: int) -> int:
    """About ``fraction`` more events: a replica of the base stream's first tasks (new task ids)."""
    originals = [p for p in landing_files(config.landing_dir) if "-r" not in p.stem]
    task_ids = set()
    for path in originals:
        task_ids |= set(
            pq.read_table(path, columns=["envelope"])
            .column("envelope")
            .combine_chunks()
            .field("task_id")
            .to_pylist()
        )
    chosen = sorted(t for t in task_ids if t)
    total = sum(pq.read_metadata(p).num_rows for p in landing_files(config.landing_dir))
    added = 0
    for keep in range(1, len(chosen) + 1):  # the fewest tasks that reach the fraction
        wanted = pa.array(chosen[:keep])
        tables = []
        for path in originals:
            table = pq.read_table(path)
            mask = pc.is_in(table.column("envelope").combine_chunks().field("task_id"), value_set=wanted)
            tables.append((path, table.filter(mask)))
        added = sum(t.num_rows for _, t in tables)
        if added >= fraction * total:
            break
    for path, table in tables:
        if table.num_rows:
            write_parquet_atomic(replicate(table, "~inc"), path.with_name(f"{path.stem}-inc.parquet"))
    return added


def timed(fn, repeat: int = 1) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def landing_source(config, times: int) -> str:
    """A plain DuckDB source of every envelope, reading each landing file ``times`` times."""
    parts = []
    for folder in sorted(p for p in config.landing_dir.iterdir() if p.is_dir()):
        files = [str(f) for f in sorted(folder.rglob("*.parquet"))] * times
        parts.append(
            "SELECT envelope.event_type, envelope.stage, envelope.occurred_at, envelope.task_id, "
            f"envelope.synthetic FROM read_parquet({files!r}, union_by_name = true)"
        )
    return "(" + " UNION ALL ".join(parts) + ")"


def fresh_process_refresh(root: Path, db: Path, before: Path) -> float:
    """Seconds of ``refresh()`` (exports aside) over a copy of the state ``before`` in a new Python
    process, interpreter start-up and imports excluded; ``db`` is left as it was."""
    after = db.with_name("after-increment.duckdb")
    os.replace(db, after)
    shutil.copyfile(before, db)
    script = (
        "import json, sys, time\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from pathlib import Path\n"
        "from vtforge.config import load_config\n"
        "from vtforge.warehouse.refresh import refresh\n"
        f"config = load_config(Path({str(root / 'vtcode.toml')!r}), cwd=Path({str(root)!r}), env={{}})\n"
        "started = time.perf_counter()\n"
        "refresh(config, exports=False)\n"
        "print(json.dumps(time.perf_counter() - started))\n"
    )
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    finally:
        os.replace(after, db)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--scale", type=int, default=10, help="telemetry rows = events × scale")
    parser.add_argument("--base-tasks", type=int, default=25)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile-top", type=int, default=12, help="steps listed in the profile")
    parser.add_argument("--increment", type=float, default=0.01, help="new events, as a share of the first")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vtforge-bench-wh-") as tmp:
        root = Path(tmp)
        (root / "vtcode.toml").write_text(
            '[forge.warehouse]\ndata_dir = ".forge"\n[forge.events]\nflush_max_events = 100000\n'
        )
        config = load_config(root / "vtcode.toml", cwd=root, env={})
        n_events, made_s = make_landing(config, args.events, args.base_tasks)
        files = landing_files(config.landing_dir)
        print(f"landing: {n_events} events in {len(files)} files (prepared in {made_s:.1f}s, not timed)")

        # 1. materialise vs one plain read of every landing file
        plain = duckdb.connect()
        read_all = f"SELECT count(*) FROM {landing_source(config, 1)}"
        plain_read_s = timed(lambda: plain.execute(read_all).fetchall(), args.repeat)
        spent: dict[str, float] = {}
        total_s = timed(lambda: refresh(config, full=True, timings=spent), 1)
        full_s = total_s - spent["exports"]
        print(
            f"full materialisation (ingest + every model from scratch): {full_s:.2f}s "
            f"= {n_events / full_s:,.0f} events/s; exports {spent['exports']:.2f}s more"
        )
        print(
            f"plain DuckDB read of the same landing files: {plain_read_s:.2f}s "
            f"(full materialisation costs {full_s / plain_read_s:.1f}× one plain read)"
        )
        print("where it goes (seconds, largest first):")
        for name, seconds in sorted(spent.items(), key=lambda kv: -kv[1])[: args.profile_top]:
            print(f"  {name:<24} {seconds:7.2f}  {seconds / total_s:6.1%}")

        added = add_increment(config, args.increment, args.base_tasks)
        before = config.duckdb_path.with_name("before-increment.duckdb")
        shutil.copyfile(config.duckdb_path, before)
        later: dict[str, float] = {}
        inc_total_s = timed(lambda: refresh(config, timings=later), 1)
        runs = [inc_total_s - later["exports"]]
        for _ in range(args.repeat - 1):  # again from the same state (the exports are written)
            shutil.copyfile(before, config.duckdb_path)
            runs.append(timed(lambda: refresh(config, exports=False), 1))
        inc_s = statistics.median(runs)
        print(
            f"incremental materialisation of +{added:,} events ({added / n_events:.1%}): {inc_s:.2f}s "
            f"= {inc_s / full_s:.1%} of the full time (median of {', '.join(f'{r:.2f}' for r in runs)}); "
            f"exports {later['exports']:.2f}s more"
        )
        print("where it goes (seconds, largest first):")
        for name, seconds in sorted(later.items(), key=lambda kv: -kv[1])[: args.profile_top]:
            print(f"  {name:<24} {seconds:7.2f}  {seconds / inc_total_s:6.1%}")
        fresh = [fresh_process_refresh(root, config.duckdb_path, before) for _ in range(args.repeat)]
        fresh_s = statistics.median(fresh)
        print(
            f"the same incremental materialisation in a new process (as a Dagster run or "
            f"`vtforge materialize` does it, exports aside): {fresh_s:.2f}s "
            f"= {fresh_s / full_s:.1%} of the full time (median of {', '.join(f'{r:.2f}' for r in fresh)})"
        )

        # 2. telemetry latency over events × scale rows
        with writer(config.duckdb_path) as con:
            con.execute(
                "INSERT INTO events SELECT * EXCLUDE (r) REPLACE (event_id || '#' || r AS event_id) "
                f"FROM events, range(1, {args.scale}) t(r) WHERE true"
            )
            rows = con.execute("SELECT count(*) FROM events").fetchone()[0]
        warehouse = duckdb.connect(str(config.duckdb_path), read_only=True)
        ours_sql = TELEMETRY_SQL.format(source="events")
        base_sql = TELEMETRY_SQL.format(source=landing_source(config, args.scale))
        ours = warehouse.execute(ours_sql).fetchall()
        baseline = plain.execute(base_sql).fetchall()
        assert [r[:2] + r[3:] for r in ours] == [r[:2] + r[3:] for r in baseline], "the two queries disagree"
        ours_s = timed(lambda: warehouse.execute(ours_sql).fetchall(), args.repeat)
        base_s = timed(lambda: plain.execute(base_sql).fetchall(), args.repeat)
        print(
            f"telemetry query over {rows:,} rows: warehouse {ours_s * 1000:.0f} ms, "
            f"plain DuckDB over landing Parquet {base_s * 1000:.0f} ms (median of {args.repeat})"
        )
        print(f"telemetry speed-up, warehouse over plain landing reads: {base_s / ours_s:.2f}")
        print(
            f"ratio: {full_s / inc_s:.2f} "
            f"(full materialisation time / incremental time after +{added / n_events:.1%})"
        )


if __name__ == "__main__":
    main()
