"""SWE-bench-style evaluation: predictions x instances -> one sandboxed run each -> the harness's logs.

Reads SWE-bench instances (instance_id, repo, base_commit, patch, test_patch, FAIL_TO_PASS,
PASS_TO_PASS, ... plus ``repo_dir``, a local git repository, for offline use, and optionally
``setup_commands``) and predictions (instance_id, model_name_or_path, model_patch), as JSON Lines,
JSON or Parquet. Writes what ``swebench.harness.run_evaluation`` writes, so that its
``make_run_report`` run from ``<report_dir>`` reads our folders and counts what we count:

- ``<report_dir>/logs/run_evaluation/<run_id>/<model>/<instance_id>/``: ``patch.diff``,
  ``run_instance.log`` (our run status and error), ``test_output.txt`` (when the tests ran) and
  ``report.json`` (SWE-bench's shape) — the latter only when the harness would write one;
- ``<report_dir>/<model>.<run_id>.json``: the run report (the harness's keys, ``schema_version`` 2);

and emits ``execution_result``, ``reward_assigned`` and ``evaluation_result`` events.

Differences from the SWE-bench harness, on purpose: the tests run are exactly the instance's
FAIL_TO_PASS + PASS_TO_PASS ids in one pytest session, with per-test outcomes from our pytest
plugin instead of a per-repository log parser; and the repository comes from ``repo_dir`` instead
of a per-instance image. As in SWE-bench, the test patch's files are reset to the base commit
before the test patch is applied.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vtforge.sandbox.api import RepoSpec, RunRequest, RunResult, Sandbox
from vtforge.sandbox.grading import grade, log_usable, test_ids
from vtforge.sandbox.patches import files_in_patch

PRODUCER = "vtforge.sandbox.eval"
RUN_EVALUATION_DIR = Path("logs") / "run_evaluation"  # relative to the report folder, as the harness's
LOG_REPORT = "report.json"
LOG_TEST_OUTPUT = "test_output.txt"
LOG_INSTANCE = "run_instance.log"
LOG_PATCH = "patch.diff"
# run statuses after which the harness has no report.json: it raised before grading (the patch did
# not apply, the tests timed out, the container/sandbox did not work), so the id is an error
NO_REPORT_STATUSES = frozenset({"patch_apply_failed", "timeout", "infra_failure"})
# statuses that can come from the environment as well as from the patch (``ambiguous_failure_ids``)
AMBIGUOUS_STATUSES = frozenset({"timeout", "oom", "disk_quota", "killed", "denied", "invalid"})


def read_records(path: Path) -> list[dict[str, Any]]:
    """Parquet (as Hugging Face datasets ship), JSON Lines, a JSON list, or a JSON object keyed by id."""
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pylist()
        except (pa.ArrowInvalid, OSError) as exc:
            raise ValueError(f"{path}: not a readable Parquet file: {exc}") from None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (JSON Lines, JSON or .parquet expected): {exc}") from None
    stripped = text.lstrip()
    if stripped.startswith("[") or (stripped.startswith("{") and "\n{" not in stripped.strip()):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
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


def model_of(prediction: Mapping[str, Any]) -> str:
    return str(prediction.get("model_name_or_path") or "model")


def is_empty_patch(model_patch: Any) -> bool:
    """The harness's test: "" or None (or no key) is empty; whitespace is a patch that will not apply."""
    return model_patch is None or model_patch == ""


def patch_id_of(patch: str | None) -> str:
    return hashlib.sha256((patch or "").encode()).hexdigest()[:16]


def run_dir_of(report_dir: Path, run_id: str) -> Path:
    return Path(report_dir) / RUN_EVALUATION_DIR / run_id


def check_predictions(
    instances: Iterable[Mapping[str, Any]], predictions: Iterable[Mapping[str, Any]]
) -> None:
    """Every prediction names a known instance, once per model (the harness keys them by instance)."""
    known = {str(i["instance_id"]) for i in instances}
    preds = list(predictions)
    unknown = [str(p.get("instance_id")) for p in preds if str(p.get("instance_id")) not in known]
    if unknown:
        raise ValueError(f"predictions for unknown instances: {', '.join(unknown[:5])}")
    twice = [key for key, n in Counter((model_of(p), str(p["instance_id"])) for p in preds).items() if n > 1]
    if twice:
        model, instance_id = twice[0]
        raise ValueError(f"two predictions of model {model!r} for instance {instance_id}")


def check_runnable(instances: Iterable[Mapping[str, Any]], predictions: Iterable[Mapping[str, Any]]) -> None:
    """Every instance that a non-empty patch will run on has a ``repo_dir`` that is a folder."""
    by_id = {str(i["instance_id"]): i for i in instances}
    to_run = dict.fromkeys(
        str(p["instance_id"]) for p in predictions if not is_empty_patch(p.get("model_patch"))
    )
    missing = [i for i in to_run if i in by_id and not str(by_id[i].get("repo_dir") or "").strip()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ValueError(
            f"instance {missing[0]}{more}: field repo_dir is missing or empty "
            "(a local git checkout of the instance's repository is needed to run its tests)"
        )
    absent = [i for i in to_run if i in by_id and not Path(str(by_id[i]["repo_dir"])).is_dir()]
    if absent:
        more = f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""
        raise ValueError(
            f"instance {absent[0]}{more}: field repo_dir {by_id[absent[0]]['repo_dir']!r} is not a folder"
        )


@dataclass
class EvalOutcome:
    instance_id: str
    model: str
    report: dict[str, Any]
    result: RunResult | None
    report_path: Path | None  # None when the harness would have written no report.json
    model_patch: str | None = None

    @property
    def failure_reason(self) -> str | None:
        """Why a non-resolved run may not be the patch's fault: ``infra_failure`` or an ambiguous status."""
        r = self.report[self.instance_id]
        if self.result is None or r["resolved"]:
            return None
        if self.result.infra_failure:
            return "infra_failure"
        if self.result.status in AMBIGUOUS_STATUSES:
            return self.result.status
        if self.result.status == "completed" and not log_usable(self.result):
            return "no_test_results"
        return None


@dataclass
class Summary:
    """One model's run report, counted as the harness's ``make_run_report`` counts it."""

    model: str
    run_id: str
    total_instances: int = 0
    submitted_ids: list[str] = field(default_factory=list)
    incomplete_ids: list[str] = field(default_factory=list)  # instances without a prediction
    completed_ids: list[str] = field(default_factory=list)  # a report.json was written
    resolved_ids: list[str] = field(default_factory=list)
    unresolved_ids: list[str] = field(default_factory=list)
    empty_patch_ids: list[str] = field(default_factory=list)  # model_patch "" or None: not run
    error_ids: list[str] = field(default_factory=list)  # ran but no report.json (apply, timeout, infra)
    infra_failure_ids: list[str] = field(default_factory=list)  # the sandbox failed (also in error_ids)
    ambiguous_failure_ids: list[str] = field(default_factory=list)  # environment or patch: unclear
    failure_reasons: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(cls, model: str, run_id: str, instance_ids: list[str], predicted: Iterable[str]) -> Summary:
        submitted = list(dict.fromkeys(predicted))
        chosen = set(submitted)
        incomplete = [i for i in instance_ids if i not in chosen]
        return cls(model, run_id, len(instance_ids), submitted, incomplete)

    @property
    def file_name(self) -> str:
        """``<model>.<run_id>.json``, the harness's run report name."""
        return f"{model_dir_name(self.model)}.{self.run_id}.json"

    def add(self, outcome: EvalOutcome) -> None:
        iid = outcome.instance_id
        r = outcome.report[iid]
        if is_empty_patch(outcome.model_patch):
            self.empty_patch_ids.append(iid)
            return
        if outcome.report_path is None:
            self.error_ids.append(iid)
        else:
            self.completed_ids.append(iid)
            (self.resolved_ids if r["resolved"] else self.unresolved_ids).append(iid)
        reason = outcome.failure_reason
        if reason is not None:
            self.failure_reasons[iid] = reason
            (self.infra_failure_ids if reason == "infra_failure" else self.ambiguous_failure_ids).append(iid)

    def to_dict(self) -> dict[str, Any]:
        """The harness's keys, in its order."""
        return {
            "total_instances": self.total_instances,
            "submitted_instances": len(self.submitted_ids),
            "completed_instances": len(self.completed_ids),
            "resolved_instances": len(self.resolved_ids),
            "unresolved_instances": len(self.unresolved_ids),
            "infra_failure_instances": len(self.infra_failure_ids),
            "ambiguous_failure_instances": len(self.ambiguous_failure_ids),
            "empty_patch_instances": len(self.empty_patch_ids),
            "error_instances": len(self.error_ids),
            "completed_ids": sorted(self.completed_ids),
            "incomplete_ids": sorted(self.incomplete_ids),
            "empty_patch_ids": sorted(self.empty_patch_ids),
            "submitted_ids": sorted(self.submitted_ids),
            "resolved_ids": sorted(self.resolved_ids),
            "unresolved_ids": sorted(self.unresolved_ids),
            "infra_failure_ids": sorted(self.infra_failure_ids),
            "ambiguous_failure_ids": sorted(self.ambiguous_failure_ids),
            "failure_reasons": dict(sorted(self.failure_reasons.items())),
            "error_ids": sorted(self.error_ids),
            "schema_version": 2,
        }

    def write(self, report_dir: Path) -> Path:
        path = Path(report_dir) / self.file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=4) + "\n", encoding="utf-8")
        return path


def _run_log(result: RunResult) -> str:
    return "\n".join(
        [
            f"status: {result.status}",
            f"exit_code: {result.exit_code}",
            f"error: {result.error}",
            f"applied_with: {', '.join(result.applied_with)}",
            *result.apply_errors,
        ]
    )


def record(
    instance: Mapping[str, Any], prediction: Mapping[str, Any], result: RunResult | None, run_dir: Path
) -> EvalOutcome:
    """Grade one prediction's run (None: nothing ran) and write its folder under ``run_dir``.

    Files from an earlier run with the same run id are removed first, so a report.json left behind
    is never read as this run's.
    """
    instance_id = str(instance["instance_id"])
    model = model_of(prediction)
    model_patch = prediction.get("model_patch")
    out_dir = Path(run_dir) / model_dir_name(model) / instance_id
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in (LOG_REPORT, LOG_TEST_OUTPUT, LOG_INSTANCE, LOG_PATCH):
        (out_dir / name).unlink(missing_ok=True)
    if not is_empty_patch(model_patch):
        (out_dir / LOG_PATCH).write_text(str(model_patch), encoding="utf-8")
    report = grade(instance, result, None if model_patch is None else str(model_patch))
    report_path: Path | None = out_dir / LOG_REPORT
    if result is not None:
        (out_dir / LOG_INSTANCE).write_text(_run_log(result), encoding="utf-8")
        if result.patch_applied:
            output = "\n".join(["--- stdout", result.stdout_tail, "--- stderr", result.stderr_tail])
            (out_dir / LOG_TEST_OUTPUT).write_text(output, encoding="utf-8")
        if result.status in NO_REPORT_STATUSES:
            report_path = None
    elif not is_empty_patch(model_patch):
        report_path = None  # a patch that never ran has no report (an error, as in the harness)
    if report_path is not None:
        report_path.write_text(json.dumps(report, indent=4), encoding="utf-8")
    return EvalOutcome(instance_id, model, report, result, report_path, model_patch)


def evaluate_one(
    box: Sandbox,
    instance: Mapping[str, Any],
    prediction: Mapping[str, Any],
    run_dir: Path,
    *,
    flaky_reruns: int = 1,
) -> EvalOutcome:
    """Run and grade one prediction; never raises for what the patch does."""
    model_patch = prediction.get("model_patch")
    if is_empty_patch(model_patch):
        return record(instance, prediction, None, run_dir)
    instance_id = str(instance["instance_id"])
    repo_dir = str(instance.get("repo_dir") or "").strip()
    if not repo_dir:  # check_runnable refuses this before any run; never fall back to the CWD
        raise ValueError(f"instance {instance_id}: field repo_dir is missing or empty")
    spec = RepoSpec(
        repo_dir=Path(repo_dir),
        base_commit=str(instance.get("base_commit") or "HEAD"),
        setup_commands=tuple(instance.get("setup_commands") or ()),
        task_id=instance_id,
    )
    prepared = box.prepare(spec)
    tests = [*test_ids(instance.get("FAIL_TO_PASS")), *test_ids(instance.get("PASS_TO_PASS"))]
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
    return record(instance, prediction, box.run(prepared, request), run_dir)


def events_for(outcome: EvalOutcome, instance: Mapping[str, Any]) -> list[dict[str, Any]]:
    """execution_result (when something ran), reward_assigned and evaluation_result.

    One prediction's evaluation is one OpenTelemetry trace: the ``evaluation_result`` is its root
    span, the run and the reward its children (ids derived from instance, model and patch)."""
    from vtforge.schemas import derived_span_id, derived_trace_id, new_event, stable_id

    r = outcome.report[outcome.instance_id]
    patch_id = outcome.result.label if outcome.result else patch_id_of(None)
    trace_id = derived_trace_id("eval", outcome.instance_id, outcome.model, patch_id)
    root = derived_span_id(trace_id, "evaluation")
    common: dict[str, Any] = {
        "producer": PRODUCER,
        "stage": "eval",
        "task_id": outcome.instance_id,
        "trace_id": trace_id,
    }
    events = []
    execution_id = None
    if outcome.result is not None:
        execution_id = stable_id("eval", outcome.instance_id, outcome.model, patch_id)
        payload = outcome.result.to_event_payload(execution_id=execution_id, patch_id=patch_id)
        events.append(
            new_event(
                "execution_result",
                payload,
                key=execution_id,
                **common,
                span_id=derived_span_id(trace_id, "execution"),
                parent_span_id=root,
            )
        )
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
            span_id=derived_span_id(trace_id, "reward"),
            parent_span_id=root,
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
                "report_path": None if outcome.report_path is None else str(outcome.report_path),
            },
            key=evaluation_id,
            **common,
            span_id=root,
        )
    )
    return events


def summarise(
    outcomes: Iterable[EvalOutcome],
    instances: Iterable[Mapping[str, Any]],
    predictions: Iterable[Mapping[str, Any]],
    run_id: str,
) -> dict[str, Summary]:
    """One run report per model in ``predictions``, from the graded outcomes."""
    instance_ids = [str(i["instance_id"]) for i in instances]
    per_model: dict[str, list[str]] = {}
    for p in predictions:
        per_model.setdefault(model_of(p), []).append(str(p["instance_id"]))
    summaries = {m: Summary.start(m, run_id, instance_ids, ids) for m, ids in per_model.items()}
    for outcome in outcomes:
        summaries[outcome.model].add(outcome)
    return summaries


def evaluate(
    box: Sandbox,
    instances: Iterable[Mapping[str, Any]],
    predictions: Iterable[Mapping[str, Any]],
    report_dir: Path,
    *,
    run_id: str,
    workers: int = 1,
    emit: Callable[[dict[str, Any]], None] | None = None,
    on_done: Callable[[EvalOutcome], None] | None = None,
    flaky_reruns: int = 1,
) -> dict[str, Summary]:
    """Evaluate every prediction; write each model's run report; return them by model.

    Raises ValueError before any run for a prediction of an unknown instance, two predictions of
    one model for one instance, or an instance to run without a usable ``repo_dir``.
    """
    rows = list(instances)
    preds = list(predictions)
    if not run_id or "/" in run_id or run_id in (".", ".."):
        raise ValueError(f"run id {run_id!r}: must be a non-empty name without '/'")
    check_predictions(rows, preds)
    check_runnable(rows, preds)
    by_id = {str(i["instance_id"]): i for i in rows}
    run_dir = run_dir_of(report_dir, run_id)
    outcomes: list[EvalOutcome] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [
            pool.submit(
                evaluate_one, box, by_id[str(p["instance_id"])], p, run_dir, flaky_reruns=flaky_reruns
            )
            for p in preds
        ]
        for future in as_completed(futures):
            outcome = future.result()  # this loop is the only thread that emits and counts
            outcomes.append(outcome)
            if emit is not None:
                for event in events_for(outcome, by_id[outcome.instance_id]):
                    emit(event)
            if on_done is not None:
                on_done(outcome)
    summaries = summarise(outcomes, rows, preds, run_id)
    for summary in summaries.values():
        summary.write(report_dir)
    return summaries
