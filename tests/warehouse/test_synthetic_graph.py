"""The whole graph on the synthetic stream, through the CLI: materialize, sql, report."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.cli import invoke
from tests.warehouse.conftest import config_here, emit
from vtforge.fixtures.events import generate_events
from vtforge.warehouse.reader import open_reader

pytestmark = pytest.mark.slow
VERSIONS = ("v0", "v1", "v2")
N_TASKS = 12


@pytest.fixture(scope="module")
def materialised(module_workspace: Path) -> Path:
    emitted = emit(config_here(), generate_events(N_TASKS, 3, policy_versions=VERSIONS))
    result = invoke("materialize")
    assert result.exit_code == 0, result.output
    assert "no orphan rewards" in result.output
    (module_workspace / "emitted.txt").write_text(str(emitted))
    return module_workspace


@pytest.fixture
def con(materialised: Path):
    reader = open_reader(config_here())
    yield reader
    reader.close()


def one(con, sql: str):
    return con.execute(sql).fetchone()[0]


def test_every_table_is_filled(con, materialised: Path) -> None:
    assert one(con, "SELECT count(*) FROM events") == int((materialised / "emitted.txt").read_text())
    assert one(con, "SELECT count(*) FROM tasks") == N_TASKS
    # synthetic tasks have no repository, so no reward can run on them: none is an RL prompt
    assert one(con, "SELECT count(*) FROM rl_prompts") == 0
    assert con.execute("SELECT count(*), list(DISTINCT reason) FROM rl_prompts_excluded").fetchone() == (
        N_TASKS,
        ["no_repo_dir"],
    )
    assert one(con, "SELECT count(*) FROM replay_buffer") == 0  # nothing to replay into
    for table in (
        "rollouts",
        "localizations",
        "patches",
        "tests",
        "executions",
        "rewards",
        "selections",
        "training_steps",
        "sft_examples",
        "telemetry_localization",
        "telemetry_patches",
        "telemetry_rewards",
        "curriculum_gates",
    ):
        assert one(con, f"SELECT count(*) FROM {table}") > 0, table
    assert [
        r[0]
        for r in con.execute("SELECT policy_version FROM policy_versions ORDER BY version_index").fetchall()
    ] == list(VERSIONS)


def test_datasets_follow_the_levers(con) -> None:
    # synthetic rollouts are repeated synthetic_upsample (3 in this workspace) times
    assert con.execute(
        "SELECT DISTINCT count(*), list_sort(list(upsample_index)) FROM sft_examples GROUP BY rollout_id"
    ).fetchall() == [(3, [0, 1, 2])]
    assert one(con, "SELECT bool_and(synthetic AND source = 'selfplay') FROM sft_examples")
    assert one(
        con,
        "SELECT bool_and(messages[len(messages)].role = 'assistant' "
        "AND starts_with(messages[len(messages)].content, '<think>')) FROM sft_examples",
    )


def test_materialize_select_runs_only_the_selection(materialised: Path) -> None:
    result = invoke("materialize", "--select", "tasks")
    assert result.exit_code == 0, result.output
    assert "tasks" in result.output and "sft_examples" not in result.output
    bad = invoke("materialize", "--select", "no_such_asset")
    assert bad.exit_code == 2 and "error: --select:" in bad.stderr and "no_such_asset" in bad.stderr


def test_sql_writes_csv_json_and_parquet(materialised: Path, tmp_path: Path) -> None:
    csv = invoke("sql", "SELECT count(*) AS n FROM tasks", "--format", "csv")
    assert csv.exit_code == 0 and csv.stdout.splitlines() == ["n", str(N_TASKS)]
    two = "SELECT gate, passed FROM curriculum_gates ORDER BY gate LIMIT 2"
    js = invoke("sql", two, "-f", "json")  # the DuckDB CLI's json: one array
    assert js.exit_code == 0
    rows = json.loads(js.stdout)
    assert isinstance(rows, list) and len(rows) == 2 and set(rows[0]) == {"gate", "passed"}
    lines = invoke("sql", two, "-f", "jsonlines")
    assert [json.loads(line) for line in lines.stdout.splitlines()] == rows
    md = invoke("sql", "SELECT count(*) AS n, 'a|b' AS s FROM tasks", "-f", "markdown")
    assert md.stdout.splitlines() == ["| n | s |", "|---|---|", f"| {N_TASKS} | a\\|b |"]
    for write in ("CREATE TABLE t AS SELECT 1", "INSERT INTO tasks SELECT * FROM tasks", "DROP TABLE tasks"):
        refused = invoke("sql", write)  # a CliError: one line on stderr, exit 2
        assert refused.exit_code == 2 and "vtforge sql reads a snapshot" in refused.stderr, write
    temp = invoke("sql", "CREATE TEMP TABLE t AS SELECT 1")
    assert temp.exit_code == 0
    target = tmp_path / "prompts.parquet"
    pq_run = invoke("sql", "SELECT task_id, reason FROM rl_prompts_excluded", "-o", str(target))
    assert pq_run.exit_code == 0
    assert pq.read_table(target).num_rows == N_TASKS
    wrong = invoke("sql", "SELEC 1")
    assert wrong.exit_code == 1 and wrong.stderr.startswith("error: Parser Error")


def test_report_writes_html_and_pngs(materialised: Path) -> None:
    result = invoke("report")
    assert result.exit_code == 0, result.output
    folder = materialised / ".forge" / "report"
    pngs = sorted(p.name for p in folder.glob("*.png"))
    assert {"localization_recall.png", "patch_acceptance.png", "reward_mean.png", "training_loss.png"} <= set(
        pngs
    )
    page = (folder / "index.html").read_text()
    assert all(name in page for name in pngs) and "Curriculum gates" in page
    assert all((folder / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
