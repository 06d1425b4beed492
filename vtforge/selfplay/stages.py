"""The stages of one self-play round, in Agentless order, each a function of what came before.

localize → repair → write tests → matrix → select → synthesise → catalogue → archive outcomes.

The model stages (localize, repair, write tests, synthesise) journal each sample as it is parsed
(``journal``) and take a resumed round's samples from there instead of the engine; each stage marks
itself done in the journal when it ends. The sandbox and bookkeeping stages are functions of the
samples, so a resumed round recomputes them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vtforge.sandbox.api import PreparedRepo, Sandbox
from vtforge.schemas import stable_id
from vtforge.selfplay import prompts
from vtforge.selfplay.archive import Archive
from vtforge.selfplay.catalog import Catalog, FalsePositive, counterexample_id
from vtforge.selfplay.engines.base import Engine, Message
from vtforge.selfplay.journal import TaskJournal
from vtforge.selfplay.matrix import CandidateTest, Matrix, MatrixRunner, generated_test
from vtforge.selfplay.options import Options
from vtforge.selfplay.parsing import Edit, parse_edit, parse_test_edit
from vtforge.selfplay.predict import localize
from vtforge.selfplay.sampling import Rollout, Schedule, sample
from vtforge.selfplay.selection import Candidate, Score, Weights, score_matrix
from vtforge.selfplay.task import RepoView, SelfplayTask


def prompt_budget(budget_tokens: int, engine: Engine, max_tokens: int) -> int:
    """Tokens a prompt may take: the request's window (``budget_tokens``, capped by the engine's
    context window) less the completion's ``max_tokens``; at least 1 (a prompt that cannot fit is
    then refused by the engine, one error completion per request)."""
    window = min(budget_tokens, engine.context_window or budget_tokens)
    return max(1, window - max_tokens)


def execution_id(run_id: str, task_id: str, what: str) -> str:
    return stable_id("execution", run_id, task_id, what)


@dataclass
class Round:
    """What every stage of one task's round reads."""

    task: SelfplayTask
    engine: Engine
    box: Sandbox
    opts: Options
    schedule: Schedule
    weights: Weights
    archive: Archive
    view: RepoView
    budget: int
    journal: TaskJournal | None = None
    note: Callable[[str], None] = lambda _msg: None
    stream: Callable[[list[dict[str, Any]]], Any] | None = None
    on_rollout: Callable[[Rollout], None] | None = None

    def sampled(self, r: Rollout) -> None:
        """A new sample: journaled first, then streamed (a kill in between loses no sample)."""
        if self.journal is not None or self.stream is not None:
            event = self.archive.sampled(r)
            if self.journal is not None:
                self.journal.record(event, r.completion)
            if self.stream is not None:
                self.stream([event])
        if self.on_rollout is not None:
            self.on_rollout(r)

    def sample(
        self, role: str, messages: list[Message], n: int, parse: Callable[[str], tuple[str, Any]]
    ) -> list[Rollout]:
        return sample(
            self.engine,
            run_id=self.opts.run_id,
            task_id=self.task.task_id,
            role=role,
            messages=messages,
            n=n,
            parse=parse,
            schedule=self.schedule,
            seed=self.opts.seed,
            on_rollout=self.sampled,
            recorded=self.journal.samples if self.journal else None,
        )

    def done(self, stage: str, **kept: Any) -> None:
        if self.journal is not None:
            self.journal.stage_done(stage, **kept)

    def parse_fix(self, text: str) -> tuple[str, Edit]:
        edit = parse_edit(text, self.view.read, self.view.tree, scope=self.task.task_id)
        return edit.status, edit

    def parse_test(self, text: str) -> tuple[str, Any]:
        test = parse_test_edit(text, self.view.read, self.view.tree, scope=self.task.task_id)
        return test.status, test

    @property
    def count(self) -> Callable[[list[Message]], int | None]:
        return self.engine.count_tokens


# --- 1. localize ----------------------------------------------------------------------------------
@dataclass
class Localization:
    rollouts: list[tuple[Rollout, str]]  # with the kind each looked for: source | test
    source_files: dict[str, str | None]  # path -> content at the base commit (None: not there)
    test_files: dict[str, str | None]


def localize_files(rnd: Round) -> Localization:
    rnd.note("localizing")
    found = localize(
        rnd.task,
        rnd.view,
        rnd.engine,
        run_id=rnd.opts.run_id,
        schedule=rnd.schedule,
        limit=rnd.opts.max_localized_files,
        budget=rnd.budget,
        seed=rnd.opts.seed,
        on_rollout=rnd.sampled,
        recorded=rnd.journal.samples if rnd.journal else None,
    )
    rnd.done("localize")
    return Localization(
        found.rollouts,
        {p: rnd.view.read(p) for p in found.files["source"]},
        {p: rnd.view.read(p) for p in found.files["test"][:1]},
    )


# --- 2. repair ------------------------------------------------------------------------------------
@dataclass
class Repairs:
    """The BugFixer's samples and the unique patches they propose (normalised key → diff)."""

    rollouts: list[Rollout]
    patches: dict[str, str] = field(default_factory=dict)
    votes: Counter[str] = field(default_factory=Counter)
    lines: dict[str, int] = field(default_factory=dict)  # changed lines per patch

    def candidates(self, bonus: str | None = None) -> list[Candidate]:
        return [Candidate(k, self.lines[k], self.votes[k] + (k == bonus)) for k in self.patches]


def repair(rnd: Round, loc: Localization) -> Repairs:
    rnd.note(f"sampling {rnd.opts.patches} patches, {rnd.opts.tests} tests")
    messages = prompts.bugfixer_messages(
        rnd.task.problem_statement, loc.source_files, budget_tokens=rnd.budget, count=rnd.count
    )
    out = Repairs(rnd.sample("bugfixer", messages, rnd.opts.patches, rnd.parse_fix))
    for r in out.rollouts:
        if r.ok:
            key = r.parsed.key
            out.patches.setdefault(key, r.parsed.diff)
            out.votes[key] += 1
            out.lines[key] = sum(r.parsed.stats)
    rnd.done("repair")
    return out


# --- 3. write tests -------------------------------------------------------------------------------
@dataclass
class WrittenTests:
    """The TestWriter's samples, the unique tests they wrote, and catalogued counterexamples."""

    rollouts: list[Rollout]
    tests: dict[str, CandidateTest] = field(default_factory=dict)
    injected: list[CandidateTest] = field(default_factory=list)

    @property
    def candidates(self) -> list[CandidateTest]:
        return list(self.tests.values()) + self.injected


def write_tests(rnd: Round, loc: Localization, catalog: Catalog | None) -> WrittenTests:
    messages = prompts.testwriter_messages(
        rnd.task.problem_statement, loc.test_files, budget_tokens=rnd.budget, count=rnd.count
    )
    out = WrittenTests(rnd.sample("testwriter", messages, rnd.opts.tests, rnd.parse_test))
    for r in out.rollouts:
        if r.ok:
            t = r.parsed
            out.tests.setdefault(t.key, generated_test(t.key, t.path, t.names, t.edit.new[t.path] or ""))
    kept = rnd.journal.stages.get("tests") if rnd.journal else None
    if kept is not None:
        nodes = list(kept["injected"])  # what the killed round injected, whatever the catalog says now
    elif rnd.opts.inject_counterexamples and catalog is not None:
        nodes = catalog.counterexamples(rnd.task.task_id)
    else:
        nodes = []
    task_id = rnd.task.task_id
    out.injected = [CandidateTest(counterexample_id(task_id, n), (n,), counterexample=True) for n in nodes]
    rnd.done("tests", injected=nodes)
    return out


# --- 4. matrix ------------------------------------------------------------------------------------
@dataclass
class Execution:
    runner: MatrixRunner
    prepared: PreparedRepo | None
    matrix: Matrix | None
    error: str | None = None


def run_matrix(rnd: Round, repairs: Repairs, tests: WrittenTests) -> Execution:
    """One base run, one gold run and one run per unique patch (``matrix`` explains the protocol)."""
    prepared = rnd.box.prepare(rnd.task.repo_spec())
    runner = MatrixRunner(rnd.box, flaky_reruns=rnd.opts.flaky_reruns)
    if not prepared.ok:
        return Execution(runner, None, None, f"sandbox set-up failed: {prepared.setup_log[-300:]}")
    candidates = tests.candidates
    rnd.note(f"base run: {len(candidates)} tests")
    matrix = runner.base(prepared, rnd.task, candidates, rnd.view.tree_set)
    rnd.note(f"matrix: {len(repairs.patches)} unique patches x {len(candidates)} tests")
    runner.rows(prepared, rnd.task, matrix, repairs.patches)
    return Execution(runner, prepared, matrix)


# --- 5. select ------------------------------------------------------------------------------------
@dataclass
class Selection:
    scores: list[Score]
    selected: str | None
    synthesized: bool = False
    synthetic: bool = False  # born of recorded synthetic completions


def select(rnd: Round, matrix: Matrix, repairs: Repairs) -> Selection:
    """Execution-based selection over the unique patches (weighted, or Agentless's majority vote)."""
    scores = score_matrix(repairs.candidates(), matrix, rnd.weights, majority_vote=rnd.opts.majority_vote)
    chosen = Selection(
        scores,
        scores[0].patch_id if scores else None,
        synthetic=any(r.completion.synthetic for r in repairs.rollouts),
    )
    method = "majority_vote" if rnd.opts.majority_vote else "weighted"
    rnd.archive.selection(
        stable_id(rnd.opts.run_id, rnd.task.task_id, method),
        method,
        chosen.selected,
        rnd.weights,
        chosen.scores,
        synthesized=False,
        synthetic=chosen.synthetic,
    )
    return chosen


# --- 6. synthesise --------------------------------------------------------------------------------
@dataclass
class Synthesis:
    rollouts: list[Rollout] = field(default_factory=list)
    selection: Selection | None = None  # the selection over every patch, the synthesised one too


def synthesise(
    rnd: Round,
    loc: Localization,
    run: Execution,
    repairs: Repairs,
    first: Selection,
) -> Synthesis:
    """One more BugFixer sample shown the top applied candidates and their scores; its patch joins
    the matrix and the selection is made again."""
    matrix, prepared = run.matrix, run.prepared
    assert matrix is not None and prepared is not None
    applied = [s for s in first.scores if matrix.rows[s.patch_id].result.patch_applied]
    if not (rnd.opts.synthesis and applied):
        return Synthesis()
    rnd.note("synthesis")
    top = [
        {
            "diff": repairs.patches[s.patch_id],
            "test_pass_rate": s.test_pass_rate,
            "regression_safety": s.regression_safety,
            "votes": s.votes,
        }
        for s in applied[: rnd.opts.synthesis_top_n]
    ]
    messages = prompts.synthesis_messages(
        rnd.task.problem_statement, loc.source_files, top, budget_tokens=rnd.budget, count=rnd.count
    )
    out = Synthesis(rnd.sample("synthesis", messages, 1, rnd.parse_fix))
    rnd.done("synthesis")
    done = [r for r in out.rollouts if r.ok]
    if not done:
        return out
    edit: Edit = done[-1].parsed
    key = edit.key
    if key not in repairs.patches:
        repairs.patches[key] = edit.diff
        repairs.lines[key] = sum(edit.stats)
        run.runner.rows(prepared, rnd.task, matrix, {key: edit.diff}, gold=False)
    scores = score_matrix(
        repairs.candidates(bonus=key), matrix, rnd.weights, majority_vote=rnd.opts.majority_vote
    )
    out.selection = Selection(
        scores,
        scores[0].patch_id,
        synthesized=scores[0].patch_id == key,
        synthetic=first.synthetic or done[-1].completion.synthetic,
    )
    rnd.archive.selection(
        stable_id(rnd.opts.run_id, rnd.task.task_id, "synthesis"),
        "synthesis",
        out.selection.selected,
        rnd.weights,
        scores,
        synthesized=out.selection.synthesized,
        synthetic=out.selection.synthetic,
    )
    return out


# --- 7. catalogue ---------------------------------------------------------------------------------
def catalogue(
    rnd: Round,
    matrix: Matrix,
    repairs: Repairs,
    synthesis: Synthesis,
    first: Selection,
    final: Selection,
    catalog: Catalog | None,
) -> list[FalsePositive]:
    """False positives: the top-ranked or selected patch passes every informative generated test
    yet fails the task's own tests. Each is catalogued with a counterexample test (and archived)."""
    task = rnd.task
    flagged: dict[str, str] = {}
    if first.scores:
        flagged[first.scores[0].patch_id] = "top_ranked"
    if final.selected:
        flagged[final.selected] = "synthesized" if final.synthesized else "selected"
    proposers: dict[str, list[Rollout]] = defaultdict(list)
    for r in repairs.rollouts + synthesis.rollouts:
        if r.ok:
            proposers[r.parsed.key].append(r)
    informative = matrix.informative()
    found: list[FalsePositive] = []
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
            diff=repairs.patches[key],
            counterexample_test=counter,
            failing_task_tests=row.failing_task_tests,
            passed_generated_tests=sorted(informative),
            reason=reason,
            run_id=rnd.opts.run_id,
            policy_version=rnd.opts.policy_version,
            rollout_ids=[r.rollout_id for r in proposers[key]],
            synthetic=any(r.completion.synthetic for r in proposers[key]),
        )
        found.append(fp)
        rnd.archive.test(
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
        catalog.add(found)  # read back deduplicated: a resumed round may add an entry twice
    return found


# --- 8. archive outcomes --------------------------------------------------------------------------
def archive_outcomes(
    rnd: Round,
    loc: Localization,
    repairs: Repairs,
    tests: WrittenTests,
    synthesis: Synthesis,
    matrix: Matrix | None,
) -> None:
    """Every rollout's final event, every execution, and the outcome rewards (1 only for a patch
    that resolves the task, or a test that fails before the gold fix and passes after it)."""
    archive, task, run_id = rnd.archive, rnd.task, rnd.opts.run_id
    for r, kind in loc.rollouts:
        archive.rollout(r, outcome=None)
        if r.ok:
            archive.localization(r, kind)
    fixes = repairs.rollouts + synthesis.rollouts
    if matrix is not None:
        _archive_executions(archive, task, matrix, fixes, run_id)
    for r in fixes:
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
    _archive_tests(rnd, tests, matrix)


def _archive_executions(
    archive: Archive, task: SelfplayTask, matrix: Matrix, fixes: list[Rollout], run_id: str
) -> None:
    archive.execution(
        execution_id(run_id, task.task_id, "base"), matrix.base, patch_id=None, kind="base", synthetic=False
    )
    if matrix.gold is not None:
        archive.execution(
            execution_id(run_id, task.task_id, "gold"),
            matrix.gold.result,
            patch_id=None,
            kind="gold",
            synthetic=False,
        )
    synthetic_keys = {r.parsed.key: r.completion.synthetic for r in fixes if r.ok}
    for key, row in matrix.rows.items():
        archive.execution(
            execution_id(run_id, task.task_id, key),
            row.result,
            patch_id=key,
            kind="candidate",
            synthetic=synthetic_keys.get(key, False),
        )


def _archive_tests(rnd: Round, tests: WrittenTests, matrix: Matrix | None) -> None:
    archive, task, run_id = rnd.archive, rnd.task, rnd.opts.run_id
    gold = matrix.gold if matrix is not None else None
    for r in tests.rollouts:
        test = tests.tests.get(r.parsed.key) if r.ok else None
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
        if matrix is None or gold is None or gold.result.infra_failure:
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
    for test in tests.injected:
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
