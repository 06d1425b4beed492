"""Live-session tailing: cursor-based polls vs. re-reading the whole session file every poll.

A session grows turn by turn (TURNS turns of ~9 events each, written like vtcode: one flush per
turn) and is polled after every turn. Ours: ``WorkspaceTailer.poll`` (persisted cursor, reads only
the new lines). Baseline: what a cursor-less follower must do — re-read, re-parse and re-map the
whole file on every poll and rely on deterministic ids to deduplicate. Both emit into the same
sink, which Avro-encodes (validates) every event and keeps nothing, so the comparison is of the
reading and mapping work. Also printed: events/s of ours into the real landing sink.

    .venv/bin/python bench/vtcode_tail.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.vtcode.vtcode_files import SessionWriter, item, usage  # noqa: E402
from vtforge.schemas import Codec  # noqa: E402
from vtforge.transport.landing import LandingSink  # noqa: E402
from vtforge.transport.sink import EventSink  # noqa: E402
from vtforge.vtcode.formats import parse_thread_line  # noqa: E402
from vtforge.vtcode.mapping import MappingContext, SessionMapper, SessionState  # noqa: E402
from vtforge.vtcode.tailer import WorkspaceTailer  # noqa: E402

TURNS = 120


class EncodingSink(EventSink):
    """Validates and encodes like every real sink, then drops the bytes."""

    def __init__(self) -> None:
        self.codec = Codec()
        self.count = 0

    def emit(self, event: dict[str, Any]) -> None:
        self.codec.encode(event)
        self.count += 1

    def flush(self) -> int:
        return 0

    def close(self) -> None:
        pass


def turn(n: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [{"type": "turn.started"}]
    if n == 1:
        events.insert(0, {"type": "thread.started", "thread_id": "bench"})
    events += [
        item(f"r{n}", "reasoning", text=f"step {n}: look at module {n % 17}. " * 8),
        item(
            f"t{n}",
            "tool_invocation",
            tool_name="read_file",
            arguments={"path": f"src/m{n % 17}.py"},
            tool_call_id=f"c{n}",
            status="completed",
        ),
        item(
            f"o{n}",
            "tool_output",
            call_id=f"t{n}",
            tool_call_id=f"c{n}",
            output="x = 1\n" * 40,
            status="completed",
        ),
        item(
            f"p{n}",
            "tool_invocation",
            tool_name="apply_patch",
            arguments={
                "input": f"*** Begin Patch\n*** Update File: src/m{n}.py\n-x = 1\n+x = 2\n*** End Patch"
            },
            tool_call_id=f"d{n}",
            status="completed",
        ),
        item(
            f"e{n}",
            "command_execution",
            command="pytest -q",
            aggregated_output="1 passed\n",
            exit_code=0,
            status="completed",
        ),
        item(f"m{n}", "agent_message", text=f"Done with step {n}."),
        {"type": "turn.completed", "usage": usage(1000 + n, 500, 50)},
    ]
    return events


def run_ours(root: Path, sink: EventSink) -> tuple[float, int]:
    writer = SessionWriter(root, "bench")
    tailer = WorkspaceTailer(root, sink, cursor_root=root / ".forge" / "cursors")
    elapsed, events = 0.0, 0
    for n in range(1, TURNS + 1):
        writer.write_turn(turn(n))
        start = time.perf_counter()
        events += tailer.poll().events
        elapsed += time.perf_counter() - start
    return elapsed, events


def run_baseline(root: Path, sink: EventSink) -> tuple[float, int]:
    writer = SessionWriter(root, "bench")
    elapsed, events = 0.0, 0
    seen: set[str] = set()
    for n in range(1, TURNS + 1):
        writer.write_turn(turn(n))
        start = time.perf_counter()
        mapper = SessionMapper(SessionState(session_id="bench"), MappingContext())
        for line in writer.path.read_text(encoding="utf-8").splitlines():
            for event in mapper.feed(parse_thread_line(line)):
                sink.emit(event)  # everything is re-emitted; ids deduplicate downstream
                if event["envelope"]["event_id"] not in seen:
                    seen.add(event["envelope"]["event_id"])
                    events += 1
        elapsed += time.perf_counter() - start
    return elapsed, events


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ours_s, ours_events = run_ours(Path(tmp) / "ours", EncodingSink())
        base_s, base_events = run_baseline(Path(tmp) / "base", EncodingSink())
        landing_root = Path(tmp) / "landing-run"
        sink = LandingSink(landing_root / ".forge" / "landing", interval_s=3600)
        landing_s, landing_events = run_ours(landing_root, sink)
        sink.close()
    assert ours_events == base_events, (ours_events, base_events)
    print(f"session of {TURNS} turns, polled after every turn, {ours_events} distinct events")
    print(f"baseline (re-read whole file per poll): {base_s:.3f} s")
    print(f"ours (persisted cursor, new lines only): {ours_s:.3f} s ({ours_events / ours_s:,.0f} events/s)")
    print(
        f"ours into the landing sink (one Parquet file per poll): {landing_s:.3f} s "
        f"({landing_events / landing_s:,.0f} events/s)"
    )
    print(f"ratio: {base_s / ours_s:.1f} (baseline time / ours; higher is better)")


if __name__ == "__main__":
    main()
