"""Events, producers and landing-zone readers shared by the Kafka tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from vtforge.config import Config
from vtforge.schemas import new_event
from vtforge.transport import sink_from_config
from vtforge.transport.landing import landing_files

REPO = Path(__file__).resolve().parents[2]


def rollout(i: int, *, tag: str = "t", tasks: int = 17, content_bytes: int = 600) -> dict[str, Any]:
    """A ~1 KB rollout event with a deterministic id."""
    return new_event(
        "rollout",
        {
            "rollout_id": f"{tag}-r{i}",
            "role": "bugfixer",
            "model": "tiny",
            "policy_version": "v0",
            "engine": "replay",
            "sample_index": i,
            "temperature": 1.0,
            "prompt_tokens": 100,
            "completion_tokens": 50,
            "latency_ms": 1.5,
            "stop_reason": "stop",
            "messages": [{"role": "user", "content": (f"fix bug {i} " * 100)[:content_bytes]}],
            "parse_status": "ok",
        },
        producer="vtforge.tests",
        key=f"{tag}-r{i}",
        task_id=f"{tag}-task-{i % tasks}",
    )


def produce(config: Config, events: list[dict[str, Any]]) -> list[str]:
    """Emit through the configured sink; returns the acknowledged event ids."""
    with sink_from_config(config, producer="vtforge.tests") as sink:
        for event in events:
            sink.emit(event)
    return [e["envelope"]["event_id"] for e in events]


def landed(config: Config, event_type: str = "rollout") -> list[dict[str, Any]]:
    """Every landed row's envelope plus the file it is in (file names carry the partition)."""
    rows = []
    for path in landing_files(config.landing_dir, [event_type]):
        table = pq.read_table(path, columns=["envelope", "sample_index"])
        for envelope, sample in zip(
            table.column("envelope").to_pylist(), table.column("sample_index").to_pylist(), strict=True
        ):
            rows.append({**envelope, "sample_index": sample, "file": path.name})
    return rows


def landed_ids(config: Config, event_type: str = "rollout") -> list[str]:
    return [r["event_id"] for r in landed(config, event_type)]


def quarantined(config: Config) -> list[dict[str, Any]]:
    root = config.quarantine_dir / "kafka"
    rows: list[dict[str, Any]] = []
    for path in sorted(root.rglob("*.parquet")) if root.exists() else []:
        rows.extend(pq.read_table(path).to_pylist())
    return rows


def ingest_process(root: Path, *args: str) -> subprocess.Popen[str]:
    """``python -m vtforge.ingest`` in the workspace (a real separate process, killable)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "vtforge.ingest", *args],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
