"""A landing-sink writer for the SIGKILL test: prints the ids of each batch once it is acknowledged."""

from __future__ import annotations

import sys
from pathlib import Path

from vtforge.fixtures.events import generate_events
from vtforge.transport.landing import LandingSink


def main(root: str, seed: int) -> None:
    sink = LandingSink(Path(root), max_events=10_000, interval_s=3600)
    batch: list[str] = []
    for event in generate_events(100_000, seed):
        sink.emit(event)
        batch.append(event["envelope"]["event_id"])
        if len(batch) == 97:
            sink.flush()  # returns => acknowledged
            sys.stdout.write("\n".join(batch) + "\n")
            sys.stdout.flush()
            batch.clear()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
