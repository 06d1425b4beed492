"""SWE-bench-style evaluation: predictions x instances -> one sandboxed run each -> report.json.

Reads SWE-bench instances (instance_id, repo, base_commit, patch, test_patch, FAIL_TO_PASS,
PASS_TO_PASS, ... plus ``repo_dir``, a local git repository, for offline use, and optionally
``setup_commands``) and predictions (instance_id, model_name_or_path, model_patch). Writes
``<report_dir>/<model>/<instance_id>/report.json`` (SWE-bench's shape), ``patch.diff`` and
``test_output.txt`` beside it, and ``<report_dir>/<model>/summary.json``; emits
``execution_result``, ``reward_assigned`` and ``evaluation_result`` events.

Differences from the SWE-bench harness, on purpose: the tests run are exactly the instance's
FAIL_TO_PASS + PASS_TO_PASS (+ FAIL_TO_FAIL/PASS_TO_FAIL) ids in one pytest session, with
per-test outcomes from our pytest plugin instead of a per-repository log parser; and the
repository comes from ``repo_dir`` instead of a per-instance image. As in SWE-bench, the test
patch's files are reset to the base commit before the test patch is applied.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.api import RepoSpec, RunRequest, RunResult, Sandbox
from sandbox.grading import grade, test_ids
from sandbox.patches import files_in_patch

PRODUCER = "vtforge.sandbox.eval"


def read_records(path: Path) -> list[dict[str, Any]]:
    """JSON Lines, a JSON list, or (predictions) a JSON object keyed by instance_id."""
    text = Path(path).read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("[") or (stripped.startswith("{") and "\n{" not in stripped.strip()):
        data = json.loads(text)
        if isinstance(data, dict):
            if "instance_id" in data:
                return [data]
            return [{"instance_id": k, **v} for k, v in data.items()]
        return list(data)
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not valid JSON: {exc.msg}") from None
    return out


def model_dir_name(model: str) -> str:
    """SWE-bench writes logs under the model name with '/' replaced."""
    return model.replace("/", "__")


def patch_id_of(patch: str | None) -> str:
    return hashlib.sha256((patch or "").encode()).hexdigest()[:16]


@dataclass
class EvalOutcome:
    instance_id: str
    model: str
    report: dict[str, Any]
    result: RunResult | None
    report_path: Path


@dataclass
class Summary:
    total_instances: int = 0
    submitted_ids: list[str] = field(default_factory=list)
    completed_ids: list[str] = field(default_factory=list)
    resolved_ids: list[str] = field(default_factory=list)
    unresolved_ids: list[str] = field(default_factory=list)
    empty_patch_ids: list[str] = field(default_factory=list)
    error_ids: list[str] = field(default_factory=list)  # patch did not apply / invalid run
    infra_failure_ids: list[str] = field(default_factory=list)  # never counted against the model

    def add(self, outcome: EvalOutcome) -> None:
        r = outcome.report[outcome.instance_id]
        self.submitted_ids.append(outcome.instance_id)
        if r["infra_failure"]:
            self.infra_failure_ids.append(outcome.instance_id)
            return
        if not r["patch_exists"]:
            self.empty_patch_ids.append(outcome.instance_id)
        elif r["status"] in ("patch_apply_failed", "invalid"):
            self.error_ids.append(outcome.instance_id)
        else:  # as SWE-bench: resolved/unresolved only among completed runs
            self.completed_ids.append(outcome.instance_id)
            (self.resolved_ids if r["resolved"] else self.unresolved_ids).append(outcome.instance_id)

    def to_dict(self) -> dict[str, Any]:
        ids = {k: sorted(v) for k, v in self.__dict__.items() if k.endswith("_ids")}
        counts = {k.replace("_ids", "_instances"): len(v) for k, v in ids.items()}
        counts["submitted_instances"] = len(self.submitted_ids)
        return {"total_instances": self.total_instances, **counts, **ids, "schema_version": 2}


def evaluate_one(
    box: Sandbox,
    instance: Mapping[str, Any],
    prediction: Mapping[str, Any],
    report_dir: Path,
    *,
    flaky_reruns: int = 1,
) -> EvalOutcome:
    """Run and grade one prediction; never raises for what the patch does."""
    instance_id = str(instance["instance_id"])
    model = str(prediction.get("model_name_or_path") or "model")
    model_patch = prediction.get("model_patch")
    out_dir = report_dir / model_dir_name(model) / instance_id
    out_dir.mkdir(parents=True, exist_ok=True)
    result: RunResult | None = None
    if model_patch and str(model_patch).strip():
        (out_dir / "patch.diff").write_text(str(model_patch), encoding="utf-8")
        repo_dir = instance.get("repo_dir")
        spec = RepoSpec(
            repo_dir=Path(str(repo_dir or ".")),
            base_commit=str(instance.get("base_commit") or "HEAD"),
            setup_commands=tuple(instance.get("setup_commands") or ()),
            task_id=instance_id,
        )
        prepared = box.prepare(spec)
        tests = [
            *test_ids(instance.get("FAIL_TO_PASS")),
            *test_ids(instance.get("PASS_TO_PASS")),
            *test_ids(instance.get("FAIL_TO_FAIL")),
            *test_ids(instance.get("PASS_TO_FAIL")),
        ]
        patches = [str(model_patch)]
        reset: dict[int, list[str]] = {}
        if instance.get("test_patch"):
            # as SWE-bench: the test patch's files go back to the base commit before it is applied
            reset[1] = files_in_patch(str(instance["test_patch"]))
            patches.append(str(instance["test_patch"]))
        request = RunRequest(
            patches=patches,
            tests=list(dict.fromkeys(tests)) or None,
            flaky_reruns=flaky_reruns,
            label=patch_id_of(str(model_patch)),
            reset_before=reset,
        )
        result = box.run(prepared, request)
        log = "\n".join(
            [
                f"status: {result.status}",
                f"error: {result.error}",
                *result.apply_errors,
                "--- stdout",
                result.stdout_tail,
                "--- stderr",
                result.stderr_tail,
            ]
        )
        (out_dir / "test_output.txt").write_text(log, encoding="utf-8")
    report = grade(instance, result, model_patch)
    report_path = out_dir / "report.json"
    report_path.write_text(json.dumps(report, indent=4), encoding="utf-8")
    return EvalOutcome(instance_id, model, report, result, report_path)


def events_for(outcome: EvalOutcome, instance: Mapping[str, Any]) -> list[dict[str, Any]]:
    """execution_result (when something ran), reward_assigned and evaluation_result."""
    from schemas import new_event, stable_id

    r = outcome.report[outcome.instance_id]
    patch_id = outcome.result.label if outcome.result else patch_id_of(None)
    common = {"producer": PRODUCER, "stage": "eval", "task_id": outcome.instance_id}
    events = []
    execution_id = None
    if outcome.result is not None:
        execution_id = stable_id("eval", outcome.instance_id, outcome.model, patch_id)
        payload = outcome.result.to_event_payload(execution_id=execution_id, patch_id=patch_id)
        events.append(new_event("execution_result", payload, key=execution_id, **common))
    outcome_name = "infra_failure" if r["infra_failure"] else ("resolved" if r["resolved"] else "unresolved")
    reward_id = stable_id("reward", outcome.instance_id, outcome.model, patch_id)
    events.append(
        new_event(
            "reward_assigned",
            {
                "reward_id": reward_id,
                "subject_kind": "patch",
                "subject_id": patch_id,
                "rollout_id": None,
                "execution_id": execution_id,
                "policy_version": None,
                "reward": 1.0 if r["resolved"] else 0.0,
                "outcome": outcome_name,
            },
            key=reward_id,
            **common,
        )
    )
    status = r["tests_status"]
    evaluation_id = stable_id("evaluation", outcome.instance_id, outcome.model, patch_id)
    events.append(
        new_event(
            "evaluation_result",
            {
                "evaluation_id": evaluation_id,
                "instance_id": outcome.instance_id,
                "model": outcome.model,
                "policy_version": None,
                "patch_is_none": r["patch_is_None"],
                "patch_exists": r["patch_exists"],
                "patch_successfully_applied": r["patch_successfully_applied"],
                "resolved": r["resolved"],
                "infra_failure": r["infra_failure"],
                "fail_to_pass_success": status["FAIL_TO_PASS"]["success"],
                "fail_to_pass_failure": status["FAIL_TO_PASS"]["failure"],
                "pass_to_pass_success": status["PASS_TO_PASS"]["success"],
                "pass_to_pass_failure": status["PASS_TO_PASS"]["failure"],
                "split": instance.get("split"),
                "report_path": str(outcome.report_path),
            },
            key=evaluation_id,
            **common,
        )
    )
    return events


def evaluate(
    box: Sandbox,
    instances: Iterable[Mapping[str, Any]],
    predictions: Iterable[Mapping[str, Any]],
    report_dir: Path,
    *,
    workers: int = 1,
    emit: Callable[[dict[str, Any]], None] | None = None,
    on_done: Callable[[EvalOutcome], None] | None = None,
    flaky_reruns: int = 1,
) -> dict[str, Summary]:
    """Evaluate every prediction whose instance is known; returns a summary per model."""
    by_id = {str(i["instance_id"]): i for i in instances}
    preds = list(predictions)
    unknown = [str(p.get("instance_id")) for p in preds if str(p.get("instance_id")) not in by_id]
    if unknown:
        raise ValueError(f"predictions for unknown instances: {', '.join(unknown[:5])}")
    summaries: dict[str, Summary] = {}
    lock = threading.Lock()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {
            pool.submit(
                evaluate_one, box, by_id[str(p["instance_id"])], p, report_dir, flaky_reruns=flaky_reruns
            ): p
            for p in preds
        }
        for future in as_completed(futures):
            outcome = future.result()
            with lock:
                summary = summaries.setdefault(outcome.model, Summary(total_instances=len(by_id)))
                summary.add(outcome)
                if emit is not None:
                    for event in events_for(outcome, by_id[outcome.instance_id]):
                        emit(event)
                if on_done is not None:
                    on_done(outcome)
    for model, summary in summaries.items():
        path = report_dir / model_dir_name(model) / "summary.json"
        path.write_text(json.dumps(summary.to_dict(), indent=2), encoding="utf-8")
    return summaries
