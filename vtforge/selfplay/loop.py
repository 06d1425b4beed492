"""One self-play round over one task, from prompts to archived decisions.

localize (source files, test file) → BugFixer × P and TestWriter × T (temperature schedule,
retries) → matrix (one base run, one gold run, one run per unique patch) → weighted selection →
optional synthesis over the top-n → outcome rewards → false-positive catalog → events.

Failing tests are rerun ``flaky_reruns`` times in every matrix run; a test flagged flaky anywhere
in the matrix rewards and penalises nobody (``matrix`` explains the protocol): a flaky generated
test earns its TestWriter the outcome ``flaky`` (reward 0), and a patch whose every FAIL_TO_PASS
test is flaky gets the outcome ``flaky`` instead of a verdict.

Prompts fit the window: ``prompt_budget`` = min(``budget_tokens``, the engine's context window) −
the completion's ``max_tokens``, measured with the engine's tokenizer when it has one
(``prompts`` explains the trimming). With ``stream``, every rollout's ``sampled`` event goes out
as soon as its completion is parsed; the task's other events are in the report, as before.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vtforge import constants as C
from vtforge.sandbox.api import Sandbox
from vtforge.schemas import stable_id
from vtforge.selfplay import prompts
from vtforge.selfplay.archive import Archive
from vtforge.selfplay.catalog import Catalog, FalsePositive, counterexample_id
from vtforge.selfplay.engines.base import Engine
from vtforge.selfplay.matrix import CandidateTest, Matrix, MatrixRunner, generated_test
from vtforge.selfplay.parsing import Edit, parse_edit, parse_test_edit
from vtforge.selfplay.predict import localize
from vtforge.selfplay.sampling import Rollout, Schedule, sample
from vtforge.selfplay.selection import Candidate, Score, Weights, score_matrix
from vtforge.selfplay.task import RepoView, SelfplayTask

if TYPE_CHECKING:
    from vtforge.config import Config


@dataclass(frozen=True)
class Options:
    patches: int
    tests: int
    run_id: str
    policy_version: str
    round_index: int = 1
    synthesis: bool = True
    synthesis_top_n: int = C.SYNTHESIS_TOP_N
    inject_counterexamples: bool = True
    majority_vote: bool = False
    max_localized_files: int = C.MAX_LOCALIZED_FILES
    budget_tokens: int = C.INFERENCE_TOKENS  # a request's window (prompt + completion), model-capped
    seed: int = 0
    flaky_reruns: int = C.FLAKY_RERUNS  # forge.selfplay.flaky_reruns

    @classmethod
    def measurement(
        cls, cfg: Config, *, patches: int, tests: int, run_id: str, policy_version: str
    ) -> Options:
        """A round that measures a policy (baselines, skill evaluations): no synthesis, no injected
        counterexamples, the config's selection, localization, flaky-rerun and window levers."""
        sp = cfg.forge.selfplay
        return cls(
            patches=patches,
            tests=tests,
            run_id=run_id,
            policy_version=policy_version,
            synthesis=False,
            inject_counterexamples=False,
            majority_vote=cfg.forge.selection.majority_vote,
            max_localized_files=sp.max_localized_files,
            flaky_reruns=sp.flaky_reruns,
            budget_tokens=min(sp.context_tokens, cfg.forge.context.inference_tokens),
        )


@dataclass
class TaskReport:
    task_id: str
    rollouts: list[Rollout] = field(default_factory=list)
    matrix: Matrix | None = None
    scores: list[Score] = field(default_factory=list)
    selected: str | None = None
    synthesized: bool = False
    selected_resolved: bool | None = None
    false_positives: list[FalsePositive] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    patches: dict[str, str] = field(default_factory=dict)


def run_task(
    task: SelfplayTask,
    engine: Engine,
    box: Sandbox,
    opts: Options,
    *,
    schedule: Schedule,
    weights: Weights,
    catalog: Catalog | None = None,
    progress: Callable[[str], None] | None = None,
    stream: Callable[[list[dict[str, Any]]], Any] | None = None,
    on_rollout: Callable[[Rollout], None] | None = None,
) -> TaskReport:
    """One task's round. ``stream`` receives each rollout's event as it is sampled (an interrupted
    task keeps them); ``on_rollout`` sees each rollout (progress)."""
    note = progress or (lambda _msg: None)
    report = TaskReport(task.task_id)
    archive = Archive(
        run_id=opts.run_id,
        task_id=task.task_id,
        policy_version=opts.policy_version,
        engine=engine.name,
        round_index=opts.round_index,
    )
    view = RepoView(task.repo_dir, task.base_commit)
    budget = prompt_budget(opts.budget_tokens, engine, schedule.max_tokens)
    count = engine.count_tokens

    def sampled(r: Rollout) -> None:
        if stream is not None:
            stream([archive.sampled(r)])
        if on_rollout is not None:
            on_rollout(r)

    # --- localization ---------------------------------------------------------------------------
    note("localizing")
    found = localize(
        task,
        view,
        engine,
        run_id=opts.run_id,
        schedule=schedule,
        limit=opts.max_localized_files,
        budget=budget,
        seed=opts.seed,
        on_rollout=sampled,
    )
    localized, loc_rollouts = found.files, found.rollouts
    source_files = {p: view.read(p) for p in localized["source"]}
    test_files = {p: view.read(p) for p in localized["test"][:1]}

    # --- rollouts -------------------------------------------------------------------------------
    note(f"sampling {opts.patches} patches, {opts.tests} tests")

    def parse_fix(text: str) -> tuple[str, Any]:
        edit = parse_edit(text, view.read, view.tree, scope=task.task_id)
        return edit.status, edit

    def parse_test(text: str) -> tuple[str, Any]:
        test = parse_test_edit(text, view.read, view.tree, scope=task.task_id)
        return test.status, test

    fix_rollouts = sample(
        engine,
        run_id=opts.run_id,
        task_id=task.task_id,
        role="bugfixer",
        messages=prompts.bugfixer_messages(
            task.problem_statement, source_files, budget_tokens=budget, count=count
        ),
        n=opts.patches,
        parse=parse_fix,
        schedule=schedule,
        seed=opts.seed,
        on_rollout=sampled,
    )
    test_rollouts = sample(
        engine,
        run_id=opts.run_id,
        task_id=task.task_id,
        role="testwriter",
        messages=prompts.testwriter_messages(
            task.problem_statement, test_files, budget_tokens=budget, count=count
        ),
        n=opts.tests,
        parse=parse_test,
        schedule=schedule,
        seed=opts.seed,
        on_rollout=sampled,
    )

    patches: dict[str, str] = {}
    votes: Counter[str] = Counter()
    lines: dict[str, int] = {}
    for r in fix_rollouts:
        if r.ok:
            key = r.parsed.key
            patches.setdefault(key, r.parsed.diff)
            votes[key] += 1
            lines[key] = sum(r.parsed.stats)
    tests: dict[str, CandidateTest] = {}
    for r in test_rollouts:
        if r.ok:
            t = r.parsed
            tests.setdefault(t.key, generated_test(t.key, t.path, t.names, t.edit.new[t.path] or ""))
    injected: list[CandidateTest] = []
    if opts.inject_counterexamples and catalog is not None:
        for node in catalog.counterexamples(task.task_id):
            injected.append(
                CandidateTest(counterexample_id(task.task_id, node), (node,), counterexample=True)
            )
    candidate_tests = list(tests.values()) + injected

    # --- execution ------------------------------------------------------------------------------
    prepared = box.prepare(task.repo_spec())
    runner = MatrixRunner(box, flaky_reruns=opts.flaky_reruns)
    synth_rollouts: list[Rollout] = []
    synth_key: str | None = None
    if not prepared.ok:
        report.error = f"sandbox set-up failed: {prepared.setup_log[-300:]}"
        matrix = None
    else:
        note(f"base run: {len(candidate_tests)} tests")
        matrix = runner.base(prepared, task, candidate_tests, view.tree_set)
        note(f"matrix: {len(patches)} unique patches x {len(candidate_tests)} tests")
        runner.rows(prepared, task, matrix, patches)
        candidates = [Candidate(k, lines[k], votes[k]) for k in patches]
        report.scores = score_matrix(candidates, matrix, weights, majority_vote=opts.majority_vote)
        report.selected = report.scores[0].patch_id if report.scores else None
        method = "majority_vote" if opts.majority_vote else "weighted"
        first_scores = report.scores
        synthetic_run = any(r.completion.synthetic for r in fix_rollouts)
        archive.selection(
            stable_id(opts.run_id, task.task_id, method),
            method,
            report.selected,
            weights,
            report.scores,
            synthesized=False,
            synthetic=synthetic_run,
        )

        # --- synthesis --------------------------------------------------------------------------
        applied = [s for s in report.scores if matrix.rows[s.patch_id].result.patch_applied]
        if opts.synthesis and applied:
            note("synthesis")
            top = [
                {
                    "diff": patches[s.patch_id],
                    "test_pass_rate": s.test_pass_rate,
                    "regression_safety": s.regression_safety,
                    "votes": s.votes,
                }
                for s in applied[: opts.synthesis_top_n]
            ]
            synth_rollouts = sample(
                engine,
                run_id=opts.run_id,
                task_id=task.task_id,
                role="synthesis",
                messages=prompts.synthesis_messages(
                    task.problem_statement, source_files, top, budget_tokens=budget, count=count
                ),
                n=1,
                parse=parse_fix,
                schedule=schedule,
                seed=opts.seed,
                on_rollout=sampled,
            )
            done = [r for r in synth_rollouts if r.ok]
            if done:
                edit: Edit = done[-1].parsed
                synth_key = edit.key
                if synth_key not in patches:
                    patches[synth_key] = edit.diff
                    lines[synth_key] = sum(edit.stats)
                    runner.rows(prepared, task, matrix, {synth_key: edit.diff}, gold=False)
                candidates = [
                    Candidate(k, lines[k], votes[k] + (1 if k == synth_key else 0)) for k in patches
                ]
                report.scores = score_matrix(candidates, matrix, weights, majority_vote=opts.majority_vote)
                report.selected = report.scores[0].patch_id
                report.synthesized = report.selected == synth_key
                archive.selection(
                    stable_id(opts.run_id, task.task_id, "synthesis"),
                    "synthesis",
                    report.selected,
                    weights,
                    report.scores,
                    synthesized=report.synthesized,
                    synthetic=synthetic_run or done[-1].completion.synthetic,
                )
        if report.selected:
            report.selected_resolved = matrix.rows[report.selected].resolved

        # --- false positives --------------------------------------------------------------------
        flagged: dict[str, str] = {}
        if first_scores:
            flagged[first_scores[0].patch_id] = "top_ranked"
        if report.selected:
            flagged[report.selected] = "synthesized" if report.synthesized else "selected"
        proposers: dict[str, list[Rollout]] = defaultdict(list)
        for r in fix_rollouts + synth_rollouts:
            if r.ok:
                proposers[r.parsed.key].append(r)
        informative = matrix.informative()
        for key, reason in flagged.items():
            row = matrix.rows.get(key)
            if row is None or row.resolved is not False or not informative:
                continue
            if not all(row.passes.get(t, False) for t in informative):
                continue
            f2p = [t for t in row.failing_task_tests if t in task.fail_to_pass]
            counter = (f2p or row.failing_task_tests or [None])[0]
            if counter is None:
                continue
            fp = FalsePositive(
                task_id=task.task_id,
                patch_id=key,
                diff=patches[key],
                counterexample_test=counter,
                failing_task_tests=row.failing_task_tests,
                passed_generated_tests=sorted(informative),
                reason=reason,
                run_id=opts.run_id,
                policy_version=opts.policy_version,
                rollout_ids=[r.rollout_id for r in proposers[key]],
                synthetic=any(r.completion.synthetic for r in proposers[key]),
            )
            report.false_positives.append(fp)
            archive.test(
                None,
                fp.counterexample_id,
                counter.split("::", 1)[0],
                [counter],
                task.test_patch,
                None,
                counterexample=True,
                synthetic=fp.synthetic,
                attributes={"false_positive_patch_id": key, "reason": reason},
            )
        if catalog is not None:
            catalog.add(report.false_positives)
    report.matrix = matrix
    report.patches = patches

    # --- rewards and archive ----------------------------------------------------------------------
    _archive_all(
        archive,
        task,
        matrix,
        loc_rollouts,
        fix_rollouts,
        test_rollouts,
        synth_rollouts,
        tests,
        injected,
        opts,
    )
    report.rollouts = [r for r, _ in loc_rollouts] + fix_rollouts + test_rollouts + synth_rollouts
    report.events = archive.events
    return report


def prompt_budget(budget_tokens: int, engine: Engine, max_tokens: int) -> int:
    """Tokens a prompt may take: the request's window (``budget_tokens``, capped by the engine's
    context window) less the completion's ``max_tokens``; at least 1 (a prompt that cannot fit is
    then refused by the engine, one error completion per request)."""
    window = min(budget_tokens, engine.context_window or budget_tokens)
    return max(1, window - max_tokens)


def execution_id(run_id: str, task_id: str, what: str) -> str:
    return stable_id("execution", run_id, task_id, what)


def _archive_all(
    archive: Archive,
    task: SelfplayTask,
    matrix: Matrix | None,
    loc_rollouts: list[tuple[Rollout, str]],
    fix_rollouts: list[Rollout],
    test_rollouts: list[Rollout],
    synth_rollouts: list[Rollout],
    tests: dict[str, CandidateTest],
    injected: list[CandidateTest],
    opts: Options,
) -> None:
    run_id = opts.run_id
    for r, kind in loc_rollouts:
        archive.rollout(r, outcome=None)
        if r.ok:
            archive.localization(r, kind)

    # executions
    if matrix is not None:
        archive.execution(
            execution_id(run_id, task.task_id, "base"),
            matrix.base,
            patch_id=None,
            kind="base",
            synthetic=False,
        )
        if matrix.gold is not None:
            archive.execution(
                execution_id(run_id, task.task_id, "gold"),
                matrix.gold.result,
                patch_id=None,
                kind="gold",
                synthetic=False,
            )
        synthetic_keys = {r.parsed.key: r.completion.synthetic for r in fix_rollouts + synth_rollouts if r.ok}
        for key, row in matrix.rows.items():
            archive.execution(
                execution_id(run_id, task.task_id, key),
                row.result,
                patch_id=key,
                kind="candidate",
                synthetic=synthetic_keys.get(key, False),
            )

    # patches and their rewards
    for r in fix_rollouts + synth_rollouts:
        row = matrix.rows.get(r.parsed.key) if (r.ok and matrix is not None) else None
        if row is not None:
            outcome = row.outcome  # resolved | unresolved | infra_failure | flaky
        else:
            outcome = "infra_failure" if (r.ok and matrix is None) else "unresolved"
        if r.ok:
            archive.patch(r, r.parsed.key, row.result if row else None)
        archive.rollout(r, outcome=outcome if r.ok else r.status)
        archive.reward(  # an unparseable sample has no patch: its rollout is the subject (reward 0)
            subject_kind="patch" if r.ok else "rollout",
            subject_id=r.parsed.key if r.ok else r.rollout_id,
            rollout=r,
            execution_id=execution_id(run_id, task.task_id, r.parsed.key) if row else None,
            reward=1.0 if outcome == "resolved" else 0.0,
            outcome=outcome,
        )

    # tests and their rewards
    gold = matrix.gold if matrix is not None else None
    for r in test_rollouts:
        test = tests.get(r.parsed.key) if r.ok else None
        if test is None:
            archive.rollout(r, outcome=r.status)
            archive.reward(  # no test could be parsed or kept: the rollout is the subject
                subject_kind="rollout",
                subject_id=r.rollout_id,
                rollout=r,
                execution_id=None,
                reward=0.0,
                outcome="not_discriminating",
            )
            continue
        if gold is None or gold.result.infra_failure:
            outcome = "infra_failure"
        elif test.test_id in matrix.flaky:
            outcome = "flaky"  # never fails-before-passes-after, whatever its runs said
        elif test.test_id in matrix.counted() and gold.passes.get(test.test_id, False):
            outcome = "fails_before_passes_after"
        else:
            outcome = "not_discriminating"
        archive.test(
            r, test.test_id, test.bundle_path or "", test.nodes, test.bundle_diff, r.parsed.edit.answer
        )
        archive.rollout(r, outcome=outcome)
        archive.reward(
            subject_kind="test",
            subject_id=test.test_id,
            rollout=r,
            execution_id=execution_id(run_id, task.task_id, "gold") if gold else None,
            reward=1.0 if outcome == "fails_before_passes_after" else 0.0,
            outcome=outcome,
        )
    for test in injected:
        archive.test(
            None,
            test.test_id,
            test.nodes[0].split("::", 1)[0],
            test.nodes,
            task.test_patch,
            None,
            counterexample=True,
            attributes={"injected": "true"},
            key_suffix="injected",
        )
