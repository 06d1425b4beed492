"""A self-play round killed mid-matrix resumes from its journal: no sample is generated twice and
no event reaches the landing zone twice; the result is the round an uninterrupted run makes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.sandbox.toyrepo import ToyRepo
from vtforge.config import load_config
from vtforge.fixtures.completions import records_for_task
from vtforge.selfplay.journal import journal_dir
from vtforge.selfplay.task import SelfplayTask

pytestmark = [pytest.mark.slow, pytest.mark.bwrap]

ROOT = Path(__file__).resolve().parents[2]

# One self-play run in its own process. Every request the engine gets is logged (one line each);
# with "kill" the process SIGKILLs itself when the first candidate patch's matrix run starts.
RUNNER = """
import json, os, signal, sys
from vtforge.cli.selfplay import run_selfplay
from vtforge.config import load_config
from vtforge.selfplay import matrix
from vtforge.selfplay.engines.replay_engine import ReplayEngine
from vtforge.selfplay.task import as_selfplay_task

instance, records, log, mode, run_id = sys.argv[1:6]
requests = open(log, "a")

class Logged(ReplayEngine):
    def generate_stream(self, batch):
        for r in batch:
            requests.write(json.dumps([r.role, r.sample_index, r.retry_index]) + "\\n")
        requests.flush()
        yield from super().generate_stream(batch)

if mode == "kill":
    def killed(self, prepared, task, m, key, patch):
        os.kill(os.getpid(), signal.SIGKILL)
    matrix.MatrixRunner._row = killed

task = as_selfplay_task(json.load(open(instance)))
engine = Logged([json.loads(line) for line in open(records)])
stats = run_selfplay(load_config(), [task], engine, patches=4, tests=4, policy_version="recorded",
                     run_id=run_id, resume=mode == "resume")
print("STATS " + json.dumps({k: stats[k] for k in ("rollouts", "events", "resumed_tasks", "skipped_tasks")}))
"""


def _run(workspace: Path, toy: ToyRepo, records: Path, log: Path, mode: str, run_id: str):
    instance = workspace / "instance.json"
    instance.write_text(json.dumps(toy.instance()))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", RUNNER, str(instance), str(records), str(log), mode, run_id],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _requests(log: Path) -> list[tuple[str, int, int]]:
    if not log.exists():
        return []
    return [tuple(json.loads(line)) for line in log.read_text().splitlines()]


def _landed(landing: Path, run_id: str) -> list[tuple[str, str]]:
    con = duckdb.connect()
    try:
        return con.execute(
            "SELECT envelope.event_type, envelope.event_id "
            f"FROM read_parquet('{landing}/*/**/*.parquet', union_by_name=true) "
            "WHERE envelope.run_id = ? ORDER BY 1, 2",
            [run_id],
        ).fetchall()
    finally:
        con.close()


def test_a_round_killed_mid_matrix_resumes_without_generating_again(
    workspace: Path, toy: ToyRepo, toy_task: SelfplayTask
) -> None:
    records = workspace / "records.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in records_for_task(toy_task, patches=4, tests=4)))
    cfg = load_config()

    # the reference: one uninterrupted run
    whole_log = workspace / "whole.log"
    whole = _run(workspace, toy, records, whole_log, "whole", "whole")
    assert whole.returncode == 0, whole.stderr[-2000:]

    # killed when the first candidate patch's matrix run starts
    log = workspace / "cut.log"
    cut = _run(workspace, toy, records, log, "kill", "cut")
    assert cut.returncode == -signal.SIGKILL, cut.stderr[-2000:]
    before_kill = _requests(log)
    journal = journal_dir(cfg.data_dir, "cut")
    lines = [json.loads(x) for f in journal.iterdir() for x in f.read_text().splitlines()]
    assert [x["stage"] for x in lines if "stage" in x] == ["localize", "repair", "tests"]
    assert sum("sample" in x for x in lines) == len(before_kill) > 0
    assert all(role != "synthesis" for role, _, _ in before_kill)  # killed before synthesis

    # a second run of the same id without --resume is refused; with it, the round finishes
    again = _run(workspace, toy, records, workspace / "refused.log", "whole", "cut")
    assert again.returncode != 0 and "--resume" in again.stderr
    resumed = _run(workspace, toy, records, log, "resume", "cut")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    stats = json.loads(resumed.stdout.split("STATS ", 1)[1])
    assert stats["resumed_tasks"] == 1

    # no generation twice: the resumed run asked the engine only for the synthesis sample
    after = _requests(log)[len(before_kill) :]
    assert [role for role, _, _ in after] == ["synthesis"]
    assert len(set(_requests(log))) == len(_requests(log))
    assert sorted(_requests(log)) == sorted(_requests(whole_log))  # the same requests as one run

    # no event twice, and the same events as the uninterrupted run (event ids hash the run id)
    cut_events = _landed(cfg.landing_dir, "cut")
    assert len(cut_events) == len(set(cut_events))
    whole_events = _landed(cfg.landing_dir, "whole")
    assert sorted(t for t, _ in cut_events) == sorted(t for t, _ in whole_events)

    # the finished task's journal is one line, and a third run skips the task
    (task_journal,) = journal.iterdir()
    assert list(json.loads(task_journal.read_text())) == ["finished"]
    third = _run(workspace, toy, records, workspace / "third.log", "resume", "cut")
    assert third.returncode == 0, third.stderr[-2000:]
    assert json.loads(third.stdout.split("STATS ", 1)[1])["skipped_tasks"] == 1
    assert _requests(workspace / "third.log") == [] and _landed(cfg.landing_dir, "cut") == cut_events
