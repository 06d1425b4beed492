"""Skill evaluations: a policy checkpoint measured on a held-out suite, after epochs or by hand.

``evaluate_policy`` plays one self-play round per suite task (``vtforge.selfplay.loop.run_task``,
as ``vtforge tasks baseline`` does): localization, ``forge.eval.samples`` BugFixer and TestWriter
samples of at most ``forge.eval.max_new_tokens`` tokens (sample 0 greedy, the others at
``forge.selfplay.temperature``, no retries: a sample is a sample), the execution matrix in the
sandbox, execution-based selection, no synthesis and no injected counterexamples. It then emits:

- one ``evaluation_result`` per suite task: the selected patch graded as SWE-bench grades it, built
  by ``vtforge.sandbox.evaluate``'s own ``record``/``events_for`` from the matrix run of that patch (no
  extra sandbox run), with ``policy_version`` set, ``split`` = the suite, and an ``evaluation_id``
  per evaluation run (so two checkpoints never share a row of ``evaluations``); a task with no
  patch selected is graded as an empty prediction;
- one ``skill_evaluation`` per metric (``METRICS``), with its denominator ``n``.

One home per definition: the metrics are the recipe metrics of docs/SELFPLAY.md ("Recipe
metrics") and are *not* re-written here. The evaluation's own events (plus a ``task_registered``
event per suite task, which the gold and test files come from) are written to a landing zone of
their own, ``<data_dir>/skill_eval/<run_id>/landing/``, ingested into an in-memory DuckDB with the
warehouse's ingest code, and the warehouse's own SQL models are built over them
(``telemetry_localization``, ``telemetry_patches``, ``telemetry_tests`` and what they read); the
values are read from those tables:

- ``localization_accuracy`` = ``all_found_at_k`` of ``source`` localizations at
  k = ``forge.selfplay.max_localized_files`` (n = localizations);
- ``patch_acceptance`` = ``acceptance`` (n = BugFixer samples − not_tried);
- ``fail_before_fix_task_rate`` (n = ``tasks_sampled``);
- ``resolve_rate`` = resolved / judged patch proposals (n = judged).

A SQL change changes the trainers' figures and the warehouse's at once; a second formula in Python
could drift. That folder also keeps the SWE-bench logs of the graded patches
(``logs/run_evaluation/<run_id>/…``), so an evaluation can be inspected after the fact.

Why the round's own events (rollouts, patches, tests, executions, rewards) do not go to the
configured sink: the datasets (``sft_examples``, ``replay_buffer``) take successful rollouts of
any stage, so a held-out task the policy solved would become training data. Only the metrics and
the per-task gradings go out; the warehouse turns them into ``skill_evaluations`` and
``evaluations``.

``SkillEvalCallback`` runs ``evaluate_policy`` on the model being trained every
``forge.eval.every_epochs`` epochs and at the end of training (once per optimiser step: the end of
the last epoch is the end of training), through the transformers engine on the live model (put in
eval mode for the evaluation and back in train mode after; its tokenizer is copied, so the
engine's left padding never leaks into training).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from vtforge.trainers.suites import Suite, SuiteError, load_suite

if TYPE_CHECKING:
    from vtforge.config import Config

MODE = "agentless"
AGENTIC = "agentic"
MODES = (MODE, AGENTIC)
STAGE = "eval"
PURPOSE = "skill_eval"
PRODUCER = "vtforge.trainers.skill_eval"
EVAL_DIR = "skill_eval"  # under the data dir: one folder per evaluation run
METRICS = ("localization_accuracy", "patch_acceptance", "fail_before_fix_task_rate", "resolve_rate")
TELEMETRY_MODELS = ("telemetry_localization", "telemetry_patches", "telemetry_tests")

Emit = Callable[[dict[str, Any]], Any]


@dataclass
class TaskOutcome:
    """One suite task as graded: the selected patch (None: nothing to select) and its verdict."""

    task_id: str
    selected: str | None
    resolved: bool
    applied: bool
    error: str | None = None


@dataclass
class SkillEvaluation:
    """One checkpoint on one suite: the metrics (value, n) and each task's graded patch."""

    run_id: str
    policy_version: str
    suite: str
    step: int
    epoch: float | None
    arm: str | None
    model: str
    mode: str = MODE  # agentless (the harness) | agentic (the tool loop)
    metrics: dict[str, tuple[float | None, int]] = field(default_factory=dict)
    tasks: list[TaskOutcome] = field(default_factory=list)
    events: int = 0  # emitted to the sink
    seconds: float = 0.0
    folder: Path | None = None


def evaluation_run_id(policy_version: str, suite: str, step: int | None = None) -> str:
    """The id of an evaluation: deterministic for a checkpoint of a training run (re-emitting is
    idempotent), else time-based."""
    if step is not None:
        return f"skill-{policy_version}-{suite}-step{step}"
    return f"skill-{policy_version}-{suite}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"


def model_closure(names: Iterable[str]) -> list[str]:
    """``names`` and every model they read, in the registry's (dependency) order."""
    from vtforge.warehouse.models import MODELS_BY_NAME, build_order

    wanted: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name in wanted or name not in MODELS_BY_NAME:
            continue  # raw tables and the already seen
        wanted.add(name)
        stack.extend(MODELS_BY_NAME[name].deps)
    return [m.name for m in build_order(sorted(wanted))]


def recipe_metrics(
    cfg: Config, events: list[dict[str, Any]], policy_version: str, landing: Path
) -> dict[str, tuple[float | None, int]]:
    """The recipe metrics of ``events`` alone, by the warehouse's own SQL (see the module doc)."""
    import duckdb

    from vtforge.transport import sink_from_config
    from vtforge.warehouse.load import load_landing
    from vtforge.warehouse.models import build, prepare

    own = cfg.with_lever("warehouse", "data_dir", str(landing.parent.resolve()))
    own = own.with_lever("events", "sink", "landing")
    with sink_from_config(own, producer=PRODUCER) as sink:
        sink.emit_many(events)
    con = duckdb.connect()
    try:
        prepare(con, cfg)
        load_landing(con, own.landing_dir)
        for name in model_closure(TELEMETRY_MODELS):
            build(con, name)
        where = "policy_version = ? AND stage = ?"
        params = [policy_version, STAGE]
        loc = con.execute(
            f"SELECT all_found_at_k, localizations FROM telemetry_localization WHERE {where} "
            "AND file_kind = 'source' AND k = getvariable('max_localized_files')",
            params,
        ).fetchone()
        patches = con.execute(
            "SELECT acceptance, samples - not_tried, resolve_rate, judged FROM telemetry_patches "
            f"WHERE {where}",
            params,
        ).fetchone()
        tests = con.execute(
            f"SELECT fail_before_fix_task_rate, tasks_sampled FROM telemetry_tests WHERE {where}", params
        ).fetchone()
    finally:
        con.close()
    loc, patches, tests = loc or (None, 0), patches or (None, 0, None, 0), tests or (None, 0)
    return {
        "localization_accuracy": (loc[0], int(loc[1])),
        "patch_acceptance": (patches[0], int(patches[1])),
        "fail_before_fix_task_rate": (tests[0], int(tests[1])),
        "resolve_rate": (patches[2], int(patches[3])),
    }


def _mark(events: list[dict[str, Any]], run_id: str, suite: str) -> list[dict[str, Any]]:
    """The round's events as this evaluation's: stage 'eval', attributes purpose and suite."""
    for event in events:
        envelope = event["envelope"]
        envelope["stage"] = STAGE
        envelope["run_id"] = envelope.get("run_id") or run_id
        envelope["attributes"] = {**envelope.get("attributes", {}), "purpose": PURPOSE, "suite": suite}
    return events


def graded_event(
    task: Any,
    outcome: Any,
    *,
    suite: str,
    policy_version: str,
    run_id: str,
    synthetic: bool,
    mode: str = MODE,
) -> dict[str, Any]:
    """The ``evaluation_result`` event of one graded suite task (``vtforge.sandbox.evaluate``'s own builder),
    keyed by this evaluation run."""
    from vtforge.sandbox.evaluate import events_for
    from vtforge.schemas import new_event, stable_id

    instance = {**task.to_swebench(), "split": suite}
    built = next(
        e for e in events_for(outcome, instance) if e["envelope"]["event_type"] == "evaluation_result"
    )
    payload = {k: v for k, v in built.items() if k != "envelope"}
    evaluation_id = stable_id(PURPOSE, run_id, task.instance_id)
    payload.update(evaluation_id=evaluation_id, policy_version=policy_version)
    return new_event(
        "evaluation_result",
        payload,
        producer=PRODUCER,
        stage=STAGE,
        key=evaluation_id,
        task_id=task.instance_id,
        run_id=run_id,
        synthetic=synthetic,
        attributes={"purpose": PURPOSE, "suite": suite, "mode": mode},
    )


def graded_selection(
    task: Any,
    report: Any,
    *,
    suite: str,
    model: str,
    policy_version: str,
    run_id: str,
    folder: Path,
    synthetic: bool,
) -> tuple[TaskOutcome, dict[str, Any]]:
    """The selected patch graded by ``vtforge.sandbox.evaluate`` (its matrix run, no new run) and its
    ``evaluation_result`` event, keyed by this evaluation run."""
    from vtforge.sandbox.evaluate import record, run_dir_of

    instance = {**task.to_swebench(), "split": suite}
    row = report.matrix.rows.get(report.selected) if report.selected and report.matrix else None
    patch = report.patches.get(report.selected, "") if row is not None else ""
    prediction = {"instance_id": task.instance_id, "model_name_or_path": model, "model_patch": patch}
    outcome = record(
        instance, prediction, row.result if row is not None else None, run_dir_of(folder, run_id)
    )
    event = graded_event(
        task, outcome, suite=suite, policy_version=policy_version, run_id=run_id, synthetic=synthetic
    )
    verdict = outcome.report[task.instance_id]
    graded = TaskOutcome(
        task.instance_id,
        report.selected if row is not None else None,
        bool(verdict["resolved"]),
        bool(verdict["patch_successfully_applied"]),
        report.error,
    )
    return graded, event


def metric_event(result: SkillEvaluation, metric: str, *, synthetic: bool) -> dict[str, Any]:
    from vtforge.schemas import new_event

    value, n = result.metrics[metric]
    return new_event(
        "skill_evaluation",
        {
            "evaluation_run_id": result.run_id,
            "policy_version": result.policy_version,
            "arm": result.arm,
            "suite": result.suite,
            "mode": result.mode,
            "step": int(result.step),
            "epoch": None if result.epoch is None else float(result.epoch),
            "metric": metric,
            "value": None if value is None else float(value),
            "n": int(n),
        },
        producer=PRODUCER,
        stage=STAGE,
        key=f"{result.run_id}/{metric}",
        run_id=result.run_id,
        synthetic=synthetic,
        attributes={"purpose": PURPOSE},
    )


def evaluate_policy(
    cfg: Config,
    suite: Suite,
    engine: Any,
    box: Any,
    emit: Emit,
    *,
    policy_version: str,
    run_id: str | None = None,
    model: str | None = None,
    samples: int | None = None,
    max_new_tokens: int | None = None,
    step: int = 0,
    epoch: float | None = None,
    arm: str | None = None,
    progress: Callable[[str], None] | None = None,
    mode: str | None = None,
) -> SkillEvaluation:
    """Measure ``engine`` (playing ``policy_version``) on ``suite`` in ``box``; events go to ``emit``.
    ``mode`` (default ``forge.eval.mode``): ``agentless`` plays the harness, ``agentic`` the tool loop."""
    mode = mode or cfg.forge.eval.mode
    run_id = run_id or evaluation_run_id(policy_version, suite.name)
    result = SkillEvaluation(
        run_id=run_id,
        policy_version=policy_version,
        suite=suite.name,
        step=step,
        epoch=epoch,
        arm=arm,
        model=model or policy_version,
        mode=mode,
        folder=cfg.data_dir / EVAL_DIR / run_id,
    )
    if mode == AGENTIC:
        return evaluate_agentic(cfg, suite, engine, box, emit, result, max_new_tokens, progress)
    from vtforge.selfplay.loop import Options, run_task
    from vtforge.selfplay.sampling import Schedule
    from vtforge.selfplay.selection import Weights
    from vtforge.selfplay.task import as_selfplay_task
    from vtforge.tasks.events import task_event

    started = time.perf_counter()
    ev, sp = cfg.forge.eval, cfg.forge.selfplay
    samples = samples or ev.samples
    playable = []
    for task in suite.tasks:
        try:
            playable.append((task, as_selfplay_task(task)))
        except ValueError as exc:
            raise SuiteError(f"suite {suite.name} ({suite.source}): task {task.instance_id}: {exc}") from None
    opts = Options.measurement(
        cfg, patches=samples, tests=samples, run_id=run_id, policy_version=policy_version
    )
    schedule = Schedule(sp.first_temperature, sp.temperature, 0, max_new_tokens or ev.max_new_tokens)
    weights = Weights.from_config(cfg.forge.selection)
    folder = result.folder
    round_events: list[dict[str, Any]] = [task_event(task, suite.name) for task in suite.tasks]
    synthetic = False
    for task, playing in playable:
        if progress is not None:
            progress(task.instance_id)
        report = run_task(playing, engine, box, opts, schedule=schedule, weights=weights, catalog=None)
        events = _mark(report.events, run_id, suite.name)
        task_synthetic = any(e["envelope"].get("synthetic") for e in events)
        synthetic = synthetic or task_synthetic
        round_events += events
        graded, event = graded_selection(
            task,
            report,
            suite=suite.name,
            model=result.model,
            policy_version=policy_version,
            run_id=run_id,
            folder=folder,
            synthetic=task_synthetic,
        )
        result.tasks.append(graded)
        emit(event)
        result.events += 1
    result.metrics = recipe_metrics(cfg, round_events, policy_version, folder / "landing")
    for metric in METRICS:
        emit(metric_event(result, metric, synthetic=synthetic))
        result.events += 1
    result.seconds = round(time.perf_counter() - started, 2)
    return result


def agentic_metrics(
    outcomes: list[TaskOutcome], gold_files: dict[str, set[str]], edited: dict[str, list[str]]
) -> dict[str, tuple[float | None, int]]:
    """The agentic mode's metrics, per task (an episode has one answer): ``resolve_rate`` = resolved
    / tasks; ``patch_acceptance`` = patches that applied / tasks that ended with a patch;
    ``localization_accuracy`` = tasks whose edited files include every gold-patch file / tasks that
    edited something; ``fail_before_fix_task_rate`` is not measured (the loop writes no tests)."""

    def rate(hits: int, n: int) -> tuple[float | None, int]:
        return (hits / n if n else None), n

    with_patch = [o for o in outcomes if o.selected]
    return {
        "localization_accuracy": rate(
            sum(1 for o in with_patch if gold_files[o.task_id] <= set(edited[o.task_id])), len(with_patch)
        ),
        "patch_acceptance": rate(sum(1 for o in with_patch if o.applied), len(with_patch)),
        "fail_before_fix_task_rate": (None, 0),
        "resolve_rate": rate(sum(1 for o in outcomes if o.resolved), len(outcomes)),
    }


def evaluate_agentic(
    cfg: Config,
    suite: Suite,
    engine: Any,
    box: Any,
    emit: Emit,
    result: SkillEvaluation,
    max_new_tokens: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> SkillEvaluation:
    """The policy as a multi-turn agent (``vtforge.selfplay.agent``), ``forge.eval.agent_turns``
    turns a task; each final patch graded as SWE-bench grades it (``vtforge.sandbox.evaluate``); fills
    ``result`` (``evaluate_policy`` makes it)."""
    from vtforge.sandbox.evaluate import evaluate_one, run_dir_of
    from vtforge.selfplay.agent import run_agent
    from vtforge.selfplay.task import as_selfplay_task
    from vtforge.tasks.diffs import changed_paths

    started = time.perf_counter()
    ev, sp = cfg.forge.eval, cfg.forge.selfplay
    run_id, policy_version, folder = result.run_id, result.policy_version, result.folder
    gold: dict[str, set[str]] = {}
    edited: dict[str, list[str]] = {}
    synthetic = False
    for task in suite.tasks:
        if progress is not None:
            progress(task.instance_id)
        try:
            playing = as_selfplay_task(task)
        except ValueError as exc:
            raise SuiteError(f"suite {suite.name} ({suite.source}): task {task.instance_id}: {exc}") from None
        episode = run_agent(
            playing,
            engine,
            box,
            max_turns=ev.agent_turns,
            max_tokens=max_new_tokens or ev.max_new_tokens,
            temperature=sp.first_temperature,
        )
        task_synthetic = any(t.completion.synthetic for t in episode.turns)
        synthetic = synthetic or task_synthetic
        instance = {**task.to_swebench(), "split": suite.name}
        prediction = {
            "instance_id": task.instance_id,
            "model_name_or_path": result.model,
            "model_patch": episode.patch,
        }
        outcome = evaluate_one(box, instance, prediction, run_dir_of(folder, run_id))
        verdict = outcome.report[task.instance_id]
        result.tasks.append(
            TaskOutcome(
                task.instance_id,
                "agent" if episode.patch else None,
                bool(verdict["resolved"]),
                bool(verdict["patch_successfully_applied"]),
                None if episode.stop != "engine_error" else episode.turns[-1].observation,
            )
        )
        gold[task.instance_id] = set(changed_paths(task.patch))  # the warehouse's gold_files rule
        edited[task.instance_id] = episode.edited
        emit(
            graded_event(
                task,
                outcome,
                suite=suite.name,
                policy_version=policy_version,
                run_id=run_id,
                synthetic=task_synthetic,
                mode=AGENTIC,
            )
        )
        result.events += 1
    result.metrics = agentic_metrics(result.tasks, gold, edited)
    for metric in METRICS:
        emit(metric_event(result, metric, synthetic=synthetic))
        result.events += 1
    result.seconds = round(time.perf_counter() - started, 2)
    return result


def transformers_engine(
    cfg: Config, *, folder: str | Path = "", model: Any = None, tokenizer: Any = None, name: str
):
    """The transformers engine on a Hugging Face folder, or on a live model and its tokenizer."""
    from vtforge.selfplay.engines.local_engines import TransformersEngine

    return TransformersEngine(
        str(folder),
        model=model,
        tokenizer=tokenizer,
        batch_size=cfg.forge.selfplay.engine_batch_size,
        model_name=name,
    )


class SkillEvalCallback(TrainerCallback):
    """Measures the model being trained on a suite every ``every_epochs`` epochs and at the end."""

    def __init__(
        self,
        cfg: Config,
        suite: str,
        *,
        policy_version: str,
        tokenizer: Any,
        emit: Emit,
        arm: str | None = None,
        every_epochs: int | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        from vtforge.trainers.sft import TrainingDataError

        try:
            self.suite = load_suite(cfg, suite)
        except SuiteError as exc:
            raise TrainingDataError(f"--eval-suite: {exc}") from None
        if not self.suite.tasks:
            raise TrainingDataError(
                f"--eval-suite {suite}: no task left to evaluate ({len(self.suite.dropped)} of "
                f"{self.suite.candidates} dropped by decontamination; see docs/research/suites/{suite}.md)"
            )
        self.cfg = cfg
        self.policy_version = policy_version
        self.tokenizer = tokenizer
        self.emit = emit
        self.arm = arm
        self.every = every_epochs or cfg.forge.eval.every_epochs
        self.progress = progress
        self.results: list[SkillEvaluation] = []
        self._epochs = 0
        self._last_step: int | None = None
        self._box: Any = None

    def evaluate(self, state: Any, model: Any) -> SkillEvaluation:
        from vtforge.sandbox.api import open_sandbox

        if self._box is None:
            self._box = open_sandbox(self.cfg)
        step = int(state.global_step)
        was_training = bool(model.training)
        engine = transformers_engine(
            self.cfg,
            model=model,
            tokenizer=copy.deepcopy(self.tokenizer),
            name=f"{self.policy_version}@step-{step}",
        )
        try:
            result = evaluate_policy(
                self.cfg,
                self.suite,
                engine,
                self._box,
                self.emit,
                policy_version=self.policy_version,
                run_id=evaluation_run_id(self.policy_version, self.suite.name, step),
                model=engine.model,
                step=step,
                epoch=None if state.epoch is None else float(state.epoch),
                arm=self.arm,
                progress=self.progress,
            )
        finally:
            model.train(was_training)
        self._last_step = step
        self.results.append(result)
        return result

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        self._epochs += 1
        if model is not None and self._epochs % self.every == 0:
            self.evaluate(state, model)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        try:
            if model is not None and self._last_step != int(state.global_step):
                self.evaluate(state, model)
        finally:
            if self._box is not None:
                self._box.close()
                self._box = None


def skill_eval_callbacks(
    cfg: Config, suite: str | None, policy_version: str, tokenizer: Any, emit: Emit, arm: str | None = None
) -> list[Any]:
    """The trainers' hook: ``[SkillEvalCallback]`` when a suite is named, else ``[]``."""
    if not suite:
        return []
    return [
        SkillEvalCallback(cfg, suite, policy_version=policy_version, tokenizer=tokenizer, emit=emit, arm=arm)
    ]
