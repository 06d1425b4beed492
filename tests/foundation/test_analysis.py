"""``vtforge.analysis``: docs/ANALYSIS.md's examples run as written, and reading never blocks the writer.

The examples are taken from the Markdown itself (every ```python block), so the page cannot drift
from the warehouse's column names: the first block opens ``a``, each later one runs from a copy of
its namespace and its last line is the answer, a non-empty polars DataFrame.
"""

from __future__ import annotations

import ast
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import vtforge.analysis
from tests.conftest import enter_workspace
from tests.warehouse.conftest import emit, make_workspace
from tests.warehouse.streams import Stream, hand_stream
from vtforge.config import Config, load_config
from vtforge.fixtures.events import generate_events
from vtforge.warehouse.connection import writer
from vtforge.warehouse.refresh import refresh

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "ANALYSIS.md"

# the answer of each numbered section of the page: the columns it must have
EXPECTED = {
    "1": {"policy_version", "bucket", "rollouts", "resolve_rate"},
    "2": {"task_id", "test_id", "test_file", "test_names", "policy_version", "results"},
    "3": {"policy_version", "tokens", "resolved_tasks", "tokens_per_resolved_task"},
    "4": {"policy_version", "localizations", "recall_at_k", "version_index"},
    "5": {"task_id", "false_positives", "counterexamples", "patches", "share"},
    "6": {"date", "event_type", "events", "producers"},
}


def doc_blocks() -> tuple[str, dict[str, str]]:
    """The set-up block and each numbered section's block (``## 3. …`` → ``"3"``)."""
    setup: str | None = None
    sections: dict[str, str] = {}
    heading = ""
    for part in re.split(r"^(## .*)$", DOC.read_text(encoding="utf-8"), flags=re.M):
        if part.startswith("## "):
            heading = part
            continue
        for code in re.findall(r"^```python\n(.*?)^```", part, flags=re.M | re.S):
            if setup is None:
                setup = code
            else:
                number = re.match(r"## (\d+)\.", heading)
                assert number and number[1] not in sections, f"one python block per section: {heading}"
                sections[number[1]] = code
    assert setup is not None
    return setup, sections


def run_block(code: str, namespace: dict[str, Any]) -> Any:
    """Execute a block like a notebook cell: the value of its last line, an expression."""
    tree = ast.parse(code)
    last = tree.body.pop()
    assert isinstance(last, ast.Expr), "each example ends with the answer's name"
    exec(compile(tree, str(DOC), "exec"), namespace)
    return eval(compile(ast.Expression(last.value), str(DOC), "eval"), namespace)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Config]:
    """A warehouse from the hand stream (a flaky test, a false positive, measured buckets) plus the
    synthetic generator's stream (two policy versions); the cwd for the module."""
    root = make_workspace(tmp_path_factory.mktemp("analysis"))
    with pytest.MonkeyPatch.context() as mp:
        enter_workspace(mp, root)
        config = load_config()
        emit(config, hand_stream())
        emit(config, generate_events(6, seed=0, policy_versions=("v0", "v1")))
        refresh(config, exports=False)
        yield config


@pytest.fixture(scope="module")
def setup_namespace(built: Config) -> Iterator[dict[str, Any]]:
    setup, _ = doc_blocks()
    namespace: dict[str, Any] = {}
    exec(compile(setup, str(DOC), "exec"), namespace)
    assert isinstance(namespace["a"], vtforge.analysis.Analysis)
    yield namespace
    namespace["a"].close()


def test_the_page_has_a_block_per_question() -> None:
    _, sections = doc_blocks()
    assert sorted(sections) == sorted(EXPECTED)


@pytest.mark.parametrize("section", sorted(EXPECTED))
def test_doc_example_runs(section: str, setup_namespace: dict[str, Any]) -> None:
    _, sections = doc_blocks()
    answer = run_block(sections[section], dict(setup_namespace))
    assert isinstance(answer, pl.DataFrame), type(answer)
    assert answer.height > 0, f"section {section} answered with no rows"
    assert set(answer.columns) == EXPECTED[section], answer.columns


def test_recall_example_agrees_with_the_warehouse_telemetry(setup_namespace: dict[str, Any]) -> None:
    """The page's polars recall is the warehouse's own metric (telemetry_localization, k = 3)."""
    _, sections = doc_blocks()
    ours = run_block(sections["4"], dict(setup_namespace))
    a: vtforge.analysis.Analysis = setup_namespace["a"]
    theirs = a.sql(
        "SELECT policy_version, sum(localizations) AS localizations, "
        "sum(recall_at_k * localizations) / sum(localizations) AS recall_at_k "
        "FROM telemetry_localization WHERE file_kind = 'source' AND k = 3 GROUP BY ALL"
    )
    joined = ours.join(theirs, on="policy_version", suffix="_sql")
    assert joined.height == ours.height == theirs.height
    assert (joined["localizations"] == joined["localizations_sql"]).all()
    assert ((joined["recall_at_k"] - joined["recall_at_k_sql"]).abs() < 1e-9).all()


def test_tables_frames_and_sql(setup_namespace: dict[str, Any]) -> None:
    a: vtforge.analysis.Analysis = setup_namespace["a"]
    names = a.tables()
    assert {"rollouts", "rollout_outcomes", "tasks", "landing.events", "landing.rollout"} <= set(names)
    rollouts = a.table("rollouts")
    assert isinstance(rollouts, pl.LazyFrame)
    n = a.sql("SELECT count(*) AS n FROM rollouts")["n"].item()
    # a self-join scans the same table twice at once: each scan has its own cursor
    pairs = rollouts.join(rollouts.select("rollout_id"), on="rollout_id")
    assert pairs.select(pl.len()).collect().item() == n
    assert rollouts.filter(pl.col("role") == "bugfixer").head(2).collect().height == 2
    assert a.table("landing.rollout").select(pl.len()).collect().item() == n
    with pytest.raises(KeyError, match="no table or view 'nope'"):
        a.table("nope")


def test_a_closed_analysis_says_so(built: Config) -> None:
    with vtforge.analysis.open(built) as a:
        frame = a.table("tasks")
    with pytest.raises(RuntimeError, match="closed"):
        frame.collect()
    with pytest.raises(RuntimeError, match="closed"):
        a.tables()


@pytest.fixture
def small(workspace: Path) -> Config:
    make_workspace(workspace)
    config = load_config()
    emit(config, hand_stream())
    refresh(config, exports=False)
    return config


def test_an_open_analysis_does_not_block_the_writer(small: Config) -> None:
    with vtforge.analysis.open(small) as a:
        before = a.table("rollouts").select(pl.len()).collect().item()
        more = Stream()
        more.rollout("late", "org__repo-1", "bugfixer", "v1", 7)
        emit(small, more.events)
        rows = refresh(small, exports=False)  # takes the writer's lock while `a` is open
        assert rows["rollouts"] == before + 1
        assert a.table("rollouts").select(pl.len()).collect().item() == before  # its own snapshot
    with vtforge.analysis.open(small) as fresh:
        assert fresh.table("rollouts").select(pl.len()).collect().item() == before + 1


def test_it_reads_while_a_writer_holds_the_lock(small: Config) -> None:
    """A writer busy for longer than the reader's patience: the last snapshot is read, no waiting."""
    with vtforge.analysis.open(small) as first:
        tasks = first.table("tasks").select(pl.len()).collect().item()
    holding, release = threading.Event(), threading.Event()

    def long_write() -> None:
        with writer(small.duckdb_path) as con:
            con.execute("CREATE TABLE IF NOT EXISTS _busy AS SELECT 1 AS x")
            holding.set()
            release.wait(60)

    thread = threading.Thread(target=long_write)
    thread.start()
    try:
        assert holding.wait(30)
        started = time.monotonic()
        with vtforge.analysis.open(small, timeout_s=1) as during:
            assert during.table("tasks").select(pl.len()).collect().item() == tasks
            assert during.sql("SELECT count(*) AS n FROM rollouts")["n"].item() > 0
        assert time.monotonic() - started < 20
        assert not release.is_set() and thread.is_alive()  # the writer held the lock the whole time
    finally:
        release.set()
        thread.join(60)
