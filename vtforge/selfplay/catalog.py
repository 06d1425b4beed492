"""The false-positive catalog: patches that fooled the generated tests, with a counterexample.

A selected or top-ranked patch that passes every valid generated test yet fails the task's own
tests is a false positive. It is appended to ``<data_dir>/selfplay/false_positives.jsonl`` (one JSON
object a line, append-only, deduplicated on read) with the first failing FAIL_TO_PASS test (else
PASS_TO_PASS) as its counterexample, and archived as a ``test_proposed`` event with
``is_counterexample = true``. Later rounds of the same task read the catalog and add the
counterexample tests to the candidate tests (``forge.selfplay.inject_counterexamples``).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vtforge.schemas import stable_id

CATALOG_FILE = "false_positives.jsonl"
_lock = threading.Lock()


@dataclass(frozen=True)
class FalsePositive:
    task_id: str
    patch_id: str
    diff: str
    counterexample_test: str
    failing_task_tests: list[str] = field(default_factory=list)
    passed_generated_tests: list[str] = field(default_factory=list)
    reason: str = "selected"  # selected | top_ranked | synthesized
    run_id: str = ""
    policy_version: str = ""
    rollout_ids: list[str] = field(default_factory=list)
    synthetic: bool = False

    @property
    def counterexample_id(self) -> str:
        return counterexample_id(self.task_id, self.counterexample_test)


def counterexample_id(task_id: str, node: str) -> str:
    return "cx" + stable_id("counterexample", task_id, node)[:14]


class Catalog:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "selfplay" / CATALOG_FILE

    def add(self, entries: list[FalsePositive]) -> None:
        if not entries:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _lock, open(self.path, "a", encoding="utf-8") as handle:
            for entry in entries:
                handle.write(json.dumps(asdict(entry), sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def entries(self, task_id: str | None = None) -> list[FalsePositive]:
        if not self.path.exists():
            return []
        seen: set[tuple[str, str, str]] = set()
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = FalsePositive(**json.loads(line))
            except (ValueError, TypeError):
                continue  # a torn last line after a crash
            ident = (entry.task_id, entry.patch_id, entry.counterexample_test)
            if ident in seen or (task_id is not None and entry.task_id != task_id):
                continue
            seen.add(ident)
            out.append(entry)
        return out

    def counterexamples(self, task_id: str) -> list[str]:
        """The distinct counterexample node ids catalogued for a task, oldest first."""
        nodes: list[str] = []
        for entry in self.entries(task_id):
            if entry.counterexample_test not in nodes:
                nodes.append(entry.counterexample_test)
        return nodes
