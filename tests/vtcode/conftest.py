"""Fixtures for the live-session tests: a VT Code workspace, the tailer, readers of the landing zone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# the Kafka tests' session broker (one per session, reused when already up)
from tests.kafka.conftest import kafka_broker  # noqa: F401
from vtforge.config import Config, load_config
from vtforge.transport import sink_from_config
from vtforge.transport.sink import EventSink
from vtforge.vtcode.deliver import spool_for
from vtforge.vtcode.queries import query
from vtforge.vtcode.tailer import WorkspaceTailer

REPO = Path(__file__).resolve().parents[2]
WORKSPACE_TOML = """[agent]
provider = "openai"
default_model = "gpt-5.4"
temperature = 0.7

[forge.warehouse]
data_dir = ".forge"

[forge.events]
flush_interval_s = 60.0
"""


@pytest.fixture
def ws(workspace: Path) -> Path:
    """A VT Code workspace (the cwd) whose model settings the mapping reads."""
    (workspace / "vtcode.toml").write_text(WORKSPACE_TOML)
    return workspace


@pytest.fixture
def cfg(ws: Path) -> Config:
    return load_config(cwd=ws)


@pytest.fixture
def sink(cfg: Config) -> Iterator[EventSink]:
    with sink_from_config(cfg, producer="vtforge.vtcode") as s:
        yield s


def make_tailer(cfg: Config, sink: EventSink) -> WorkspaceTailer:
    return WorkspaceTailer(
        cfg.root,
        sink,
        cursor_root=cfg.data_dir / "vtcode" / "cursors",
        spool=spool_for(cfg),
        quarantine_dir=cfg.quarantine_dir,
    )


@pytest.fixture
def tailer(cfg: Config, sink: EventSink) -> WorkspaceTailer:
    return make_tailer(cfg, sink)


def steps(cfg: Config, where: str = "true") -> list[dict[str, Any]]:
    """Deduplicated agent_step rows from the landing files, in session order."""
    cols = [
        "event_id",
        "session",
        "turn",
        "step_index",
        "kind",
        "tool_name",
        "status",
        "exit_code",
        "files_changed",
        "lines_added",
        "lines_removed",
        "raw",
        "source_schema_version",
        "source",
        "duration_ms",
        "arguments",
        "output",
    ]
    rows = query(
        cfg.landing_dir,
        "agent_step",
        "SELECT envelope.event_id, envelope.session_id, turn, step_index, kind, tool_name, status, "
        "exit_code, files_changed, lines_added, lines_removed, raw, source_schema_version, "
        "envelope.attributes['source'], duration_ms, arguments, output "
        f"FROM {{t}} WHERE {where} ORDER BY 2, 3, 4",
    )
    return [dict(zip(cols, row, strict=True)) for row in rows]


def raw_count(cfg: Config, event_type: str) -> tuple[int, int]:
    """(rows landed, distinct event ids) — equal when nothing was emitted twice."""
    import duckdb

    folder = cfg.landing_dir / event_type
    if not folder.exists():
        return 0, 0
    with duckdb.connect() as con:
        total, distinct = con.execute(
            f"SELECT count(*), count(DISTINCT envelope.event_id) FROM read_parquet('{folder}/**/*.parquet')"
        ).fetchone()
    return int(total), int(distinct)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say it in the summary when the real-binary test skipped (the one skip allowed under CI)."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "test_real_binary" in r.nodeid]
    if skipped:
        terminalreporter.write_line(
            "vtcode end-to-end test skipped: no vtcode binary;"
            " `make vtcode` builds it (over an hour on 2 cores)"
        )
