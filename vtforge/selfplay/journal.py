"""A task's round journal: every stage's output on disk as it is made, so a killed round resumes.

Model calls are the expensive part of a round (minutes each on a CPU), so none is ever made twice
for the same run: each sample's ``sampled`` rollout event is appended to the journal, with its
completion, *before* it is streamed to the sink; a resumed round takes every journaled completion
instead of asking the engine again, and asks only for what is missing.

``<data_dir>/selfplay/journal/<run_id>/<task_id>.jsonl``, one JSON object a line, each appended
with one write and fsynced (a torn last line, from a crash mid-write, is ignored):

- ``{"sample": <the sampled rollout event>, "completion": {...}}``: one sample, as parsed;
- ``{"stage": "<name>", "delivered": n, ...}``: a stage finished. The sink was flushed first, so
  the first ``n`` sampled events are acknowledged (``EventSink.flush``). A stage may keep what a
  resume must not recompute (the tests stage keeps the counterexamples it injected: the catalog
  may have grown since);
- ``{"finished": {...}}``: the task's final events are acknowledged; the file is then rewritten
  to this one line, and a resumed run skips the task and counts this summary.

Sampled events journaled after the last ``delivered`` mark are streamed again when the round
resumes (they may have reached the sink before the kill, or not): at least once, and the
warehouse keeps one event per event id. The sandbox runs of an unfinished matrix are run again:
they are deterministic, their events leave only when the task is done, and the prepared
environment is cached.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import quote

from vtforge.schemas.codec import Codec
from vtforge.schemas.jsonform import from_jsonable, to_jsonable
from vtforge.selfplay.engines.base import Completion

SampleKey = tuple[str, int, int]  # (role, sample_index, retry_index): unique within a task's round


def journal_dir(data_dir: Path, run_id: str) -> Path:
    return Path(data_dir) / "selfplay" / "journal" / quote(run_id, safe="")


class TaskJournal:
    """The journal of one task in one run; reads what an earlier, killed process left."""

    def __init__(self, path: Path, *, flush: Callable[[], object] | None = None) -> None:
        self.path = Path(path)
        self.flush_sink = flush or (lambda: None)
        self.samples: dict[SampleKey, Completion] = {}
        self.events: list[dict[str, Any]] = []  # sampled events, in the order they were made
        self.stages: dict[str, dict[str, Any]] = {}
        self.delivered = 0
        self.finished: dict[str, Any] | None = None
        self._codec = Codec()
        if self.path.exists():
            self._load()

    @classmethod
    def for_task(
        cls, data_dir: Path, run_id: str, task_id: str, *, flush: Callable[[], object] | None = None
    ) -> TaskJournal:
        return cls(journal_dir(data_dir, run_id) / f"{quote(task_id, safe='')}.jsonl", flush=flush)

    @property
    def resumed(self) -> bool:
        """An earlier process left samples or finished stages here."""
        return bool(self.samples or self.stages)

    def undelivered(self) -> list[dict[str, Any]]:
        """Sampled events not known to be acknowledged by the sink."""
        return self.events[self.delivered :]

    def record(self, event: dict[str, Any], completion: Completion) -> None:
        """One sample, before its event is streamed."""
        self._append({"sample": to_jsonable(event), "completion": asdict(completion)})
        self._remember(event, completion)

    def stage_done(self, stage: str, **kept: Any) -> None:
        """Flush the sink (every sampled event so far is then acknowledged), then mark ``stage``."""
        self.flush_sink()
        self.delivered = len(self.events)
        record = {"stage": stage, "delivered": self.delivered, **kept}
        self._append(record)
        self.stages[stage] = record

    def finish(self, summary: Mapping[str, Any]) -> None:
        """The task's final events are acknowledged (call after the sink's flush returned).

        The samples are dropped from the file then (the events hold them): a finished task's
        journal is its one ``finished`` line."""
        self.finished = dict(summary)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps({"finished": self.finished}, sort_keys=True) + "\n", encoding="utf-8")
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

    # --- internals -----------------------------------------------------------------------------
    def _remember(self, event: dict[str, Any], completion: Completion) -> None:
        key = (str(event["role"]), int(event["sample_index"]), int(event["retry_index"]))
        self.samples[key] = completion
        self.events.append(event)

    def _append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
        with open(self.path, "ab") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def _load(self) -> None:
        lines = self.path.read_bytes().splitlines()
        for number, raw in enumerate(lines, start=1):
            try:
                record = json.loads(raw)
            except ValueError:
                if number == len(lines):
                    break  # torn by a crash mid-write: the sample is simply made again
                raise ValueError(f"{self.path}:{number}: not a JSON journal record") from None
            if "sample" in record:
                event = record["sample"]
                event = from_jsonable(event, self._codec.schema_of(event).parsed)
                self._remember(event, Completion(**record["completion"]))
            elif "stage" in record:
                self.stages[record["stage"]] = record
                self.delivered = int(record["delivered"])
            elif "finished" in record:
                self.finished = record["finished"]
