"""``task_registered`` events: one per task that entered (or changed in) the bank."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from vtforge.config import Config
from vtforge.schemas import new_event
from vtforge.tasks.model import IMPORTER_VERSION, Task
from vtforge.transport import sink_from_config

PRODUCER = "vtforge.tasks"


def _timestamp(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def task_event(task: Task, slice_name: str) -> dict[str, Any]:
    """The event for ``task``; its id is a function of the task's content, so re-emits dedup."""
    prov = task.provenance
    content_hash = task.content_hash()
    payload = {
        "instance_id": task.instance_id,
        "repo": task.repo,
        "base_commit": task.base_commit,
        "problem_statement": task.problem_statement,
        "patch": task.patch,
        "test_patch": task.test_patch,
        "fail_to_pass": list(task.fail_to_pass),
        "pass_to_pass": list(task.pass_to_pass),
        "hints_text": task.hints_text or None,
        "version": task.version,
        "environment_setup_commit": task.environment_setup_commit,
        "repo_dir": task.repo_dir or None,
        "source": task.source,
        "provenance": {
            "dataset_slice": prov.get("dataset_slice") or slice_name,
            "origin": str(prov.get("origin") or task.repo),
            "license": prov.get("license"),
            "commit": prov.get("commit"),
            "created_at": _timestamp(prov.get("created_at")),
            "importer_version": str(prov.get("importer_version") or IMPORTER_VERSION),
            "content_hash": content_hash,
        },
        "difficulty_bucket": task.difficulty_bucket,
        "baseline_success_rate": task.baseline_success_rate,
        "split": task.split,
        "contamination_flags": list(task.contamination_flags),
    }
    return new_event(
        "task_registered",
        payload,
        producer=PRODUCER,
        stage="selfplay",
        key=f"{slice_name}/{task.instance_id}/{content_hash}/{task.split}/{','.join(task.contamination_flags)}",
        task_id=task.instance_id,
        synthetic=False,
        attributes={"slice": slice_name},
    )


def emit_registered(cfg: Config, slice_name: str, tasks: Iterable[Task]) -> int:
    """Emit one event per task through the configured sink; returns how many were acknowledged."""
    count = 0
    with sink_from_config(cfg, producer=PRODUCER) as sink:
        for task in tasks:
            sink.emit(task_event(task, slice_name))
            count += 1
    return count
