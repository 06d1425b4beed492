"""One self-play round is one OpenTelemetry trace, and it reaches a real trace store (Arize Phoenix)
through `vtforge export otel` with its parent/child tree intact."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import invoke
from tests.support import require_service
from vtforge.config import load_config
from vtforge.fixtures.completions import records_for_task
from vtforge.sandbox.api import Sandbox
from vtforge.selfplay.engines.replay_engine import ReplayEngine
from vtforge.selfplay.loop import Options, run_task
from vtforge.selfplay.sampling import Schedule
from vtforge.selfplay.selection import Weights
from vtforge.selfplay.task import SelfplayTask
from vtforge.transport import sink_from_config
from vtforge.warehouse.otel import span_records
from vtforge.warehouse.reader import open_reader
from vtforge.warehouse.refresh import refresh

pytestmark = [pytest.mark.slow, pytest.mark.bwrap]

PHOENIX_VERSION = os.environ.get("PHOENIX_VERSION", "20.26.1")  # scripts/setup.d/40-phoenix.sh


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Phoenix server (its own virtual environment, from `make setup`) on free ports."""
    binary = Path.home() / ".cache" / "vtforge" / f"phoenix-{PHOENIX_VERSION}" / "bin" / "phoenix"
    require_service(binary.exists(), f"Arize Phoenix {PHOENIX_VERSION} (scripts/setup.d/40-phoenix.sh)")
    port = _free_port()
    env = {
        **os.environ,
        "PHOENIX_WORKING_DIR": str(tmp_path_factory.mktemp("phoenix")),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(_free_port()),
    }
    log = tmp_path_factory.mktemp("phoenix-log") / "phoenix.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([str(binary), "serve"], env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"phoenix did not start: {log.read_text()[-2000:]}")
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def _one_round(toy_task: SelfplayTask, box: Sandbox) -> None:
    cfg = load_config()
    records = records_for_task(toy_task, patches=3, tests=3)
    opts = Options(patches=3, tests=3, run_id="otel", policy_version="recorded", synthesis=False)
    report = run_task(
        toy_task, ReplayEngine(records), box, opts, schedule=Schedule(0.0, 1.0, 2, 64), weights=Weights()
    )
    with sink_from_config(cfg, producer="test") as sink:
        sink.emit_many(report.events)
    refresh(cfg, exports=False)


def test_a_selfplay_round_is_one_trace_and_phoenix_shows_its_tree(
    workspace: Path, toy_task: SelfplayTask, box: Sandbox, phoenix: str
) -> None:
    _one_round(toy_task, box)
    cfg = load_config()
    con = open_reader(cfg)
    try:
        spans = span_records(con)
        events = con.execute(
            "SELECT count(DISTINCT trace_id), count(*) FILTER (WHERE span_id IS NULL) FROM events"
        ).fetchone()
    finally:
        con.close()
    assert events == (1, 0)  # one task round: one trace, every event a span
    by_id = {s.span_id: s for s in spans}
    roots = [s for s in spans if s.parent_span_id is None]
    assert len(roots) == 1 and roots[0].attributes["vtforge.span"] == "root"
    kinds = {s.attributes["vtforge.event_type"] for s in spans if s is not roots[0]}
    assert {"rollout", "execution_result", "reward_assigned", "patch_proposed"} <= kinds
    for s in spans:  # rewards and patches hang under their rollout, rollouts and executions under the round
        if s is roots[0]:
            continue
        parent = by_id[s.parent_span_id]
        kind = s.attributes["vtforge.event_type"]
        if kind in ("reward_assigned", "patch_proposed", "localization_predicted"):
            assert parent.attributes["vtforge.event_type"] == "rollout"
        if kind in ("rollout", "execution_result", "selection_decided"):
            assert parent is roots[0]
            assert roots[0].start <= s.start and s.end <= roots[0].end  # the round spans its children
    chats = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"]
    assert chats and all(s.attributes["gen_ai.usage.output_tokens"] is not None for s in chats)
    assert not any("gen_ai.input.messages" in s.attributes for s in chats)  # content off by default

    done = invoke("export", "otel", "--endpoint", phoenix, "--project", "vtforge-test")
    assert done.exit_code == 0, done
    assert f"sent {len(spans)} spans in 1 traces" in done.stdout

    seen: list[dict] = []
    deadline = time.monotonic() + 30
    while len(seen) < len(spans) and time.monotonic() < deadline:  # Phoenix writes in the background
        try:
            seen = _get(f"{phoenix}/v1/projects/vtforge-test/spans?limit=1000")["data"]
        except urllib.error.HTTPError as exc:  # 404 until Phoenix has written the project
            assert exc.code == 404, exc
        time.sleep(0.5)
    assert len(seen) == len(spans)
    tree = {s["context"]["span_id"]: s["parent_id"] for s in seen}
    assert tree == {s.span_id: s.parent_span_id for s in spans}
    assert {s["context"]["trace_id"] for s in seen} == {roots[0].trace_id}
    llm = [s for s in seen if s["span_kind"] == "LLM"]
    assert len(llm) == len(chats)


def test_export_refuses_an_unreachable_receiver_in_one_line(workspace: Path) -> None:
    from vtforge.warehouse.connection import writer
    from vtforge.warehouse.load import ensure_tables

    cfg = load_config()
    with writer(cfg.duckdb_path) as con:
        ensure_tables(con)
        con.execute(
            "INSERT INTO events (event_id, event_type, occurred_at, trace_id, span_id, synthetic) "
            "VALUES ('e1', 'rollout', now(), ?, ?, false)",
            ["1" * 32, "2" * 16],
        )
    done = invoke("export", "otel", "--endpoint", f"http://127.0.0.1:{_free_port()}")
    assert done.exit_code == 1
    assert "error: OTLP export to http://127.0.0.1:" in done.stderr and "Traceback" not in done.stderr
