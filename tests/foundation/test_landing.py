"""Landing sink: flush triggers, atomic files, and nothing acknowledged lost after SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from vtforge.config import load_config
from vtforge.fixtures.events import generate_events
from vtforge.schemas import SchemaViolationError, new_event
from vtforge.transport import sink_from_config
from vtforge.transport.landing import TMP_SUFFIX, LandingSink, landing_files

REPO = Path(__file__).resolve().parents[2]


def _ids(root: Path) -> list[str]:
    files = landing_files(root)
    if not files:
        return []
    listing = ", ".join(f"'{f}'" for f in files)
    rows = duckdb.sql(
        f"SELECT envelope.event_id FROM read_parquet([{listing}], union_by_name = true)"
    ).fetchall()
    return [r[0] for r in rows]


def test_flush_on_size(tmp_path: Path) -> None:
    sink = LandingSink(tmp_path, max_events=10, interval_s=3600)
    events = [e for e in generate_events(5, 0) if e["envelope"]["event_type"] == "rollout"][:25]
    for event in events:
        sink.emit(event)
    assert len(landing_files(tmp_path)) == 2  # two full batches of 10 written, 5 still buffered
    sink.close()
    assert sorted(_ids(tmp_path)) == sorted(e["envelope"]["event_id"] for e in events)


def test_flush_on_interval(tmp_path: Path) -> None:
    sink = LandingSink(tmp_path, max_events=1000, interval_s=0.3)
    sink.emit(next(iter(generate_events(1, 0))))
    deadline = time.monotonic() + 10
    while not landing_files(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(landing_files(tmp_path)) == 1
    sink.close()


def test_layout_is_hive_partitioned_by_type_and_day(tmp_path: Path) -> None:
    with LandingSink(tmp_path) as sink:
        sink.emit_many(generate_events(2, 0))
    for f in landing_files(tmp_path):
        event_type, day = f.relative_to(tmp_path).parts[:2]
        assert day.startswith("date=2026-11-")
        schema = pq.read_schema(f)
        assert schema.metadata[b"vtforge.event_type"].decode() == event_type


def test_invalid_event_is_refused_at_emit(tmp_path: Path) -> None:
    sink = LandingSink(tmp_path)
    bad = new_event("reward_assigned", {"reward_id": "r"}, producer="t")
    with pytest.raises(SchemaViolationError, match="field subject_kind is missing"):
        sink.emit(bad)
    sink.close()
    assert landing_files(tmp_path) == []


def test_sink_from_config_writes_under_the_data_dir(workspace: Path) -> None:
    events = list(generate_events(1, 0))
    with sink_from_config(load_config()) as sink:
        sink.emit_many(events)
    landing = workspace / ".forge" / "landing"
    assert sorted(workspace.rglob("*.parquet")) == sorted(landing_files(landing))  # nothing elsewhere
    assert sorted(_ids(landing)) == sorted(e["envelope"]["event_id"] for e in events)


def test_readers_never_see_partial_files_while_writing(tmp_path: Path) -> None:
    errors: list[str] = []
    reads: list[Path] = []
    first_read = threading.Event()
    stop = threading.Event()

    def read_loop() -> None:
        while not stop.is_set():
            for f in landing_files(tmp_path):
                try:
                    pq.read_table(f)
                    reads.append(f)
                    first_read.set()
                except FileNotFoundError:
                    continue
                except Exception as exc:  # a partial file would fail here
                    errors.append(f"{f}: {exc}")

    events = list(generate_events(40, 1))
    reader = threading.Thread(target=read_loop)
    reader.start()
    try:
        with LandingSink(tmp_path, max_events=50) as sink:
            sink.emit_many(events[:100])
            sink.flush()
            assert first_read.wait(30), "the reader never saw a landed file"
            sink.emit_many(events[100:])  # more files land while the reader keeps reading
    finally:
        stop.set()
        reader.join()
    assert errors == []
    assert len(reads) > 1


@pytest.mark.slow
def test_sigkill_mid_batch_loses_nothing_acknowledged(tmp_path: Path) -> None:
    rng = random.Random(7)
    acknowledged: list[str] = []
    for round_ in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.foundation.landing_writer", str(tmp_path), str(round_)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        lines: list[str] = []
        collector = threading.Thread(target=lines.extend, args=(proc.stdout,))
        collector.start()
        deadline = time.monotonic() + 60
        while len(lines) < 97 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.4))  # somewhere in the middle of a later batch
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        collector.join()
        acknowledged += [line.strip() for line in lines if line.strip()]
    assert len(acknowledged) >= 97 * 4, "every round acknowledged batches before being killed"
    for f in landing_files(tmp_path):  # every visible file is whole
        pq.read_table(f)
    landed = _ids(tmp_path)
    assert set(acknowledged) <= set(landed)
    assert len(landed) == len(set(landed))
    leftovers = set(tmp_path.rglob(f"*{TMP_SUFFIX}"))  # a writer killed mid-write leaves its temporary
    assert not leftovers & set(landing_files(tmp_path))  # ... which no reader ever lists


def test_a_new_sink_sweeps_stale_temporaries_only(tmp_path: Path) -> None:
    """A writer killed mid-write leaves a hidden temporary file; the next sink removes it once it is
    old (an hour), and leaves a fresh one alone: another live writer may be writing it."""
    folder = tmp_path / "rollout" / "date=2026-01-01"
    folder.mkdir(parents=True)
    stale, fresh = folder / f".a.parquet{TMP_SUFFIX}", folder / f".b.parquet{TMP_SUFFIX}"
    stale.write_bytes(b"partial")
    fresh.write_bytes(b"partial")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    with LandingSink(tmp_path) as sink:
        assert sink.swept_on_start == 1
    assert not stale.exists() and fresh.exists()
