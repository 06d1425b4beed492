"""The execution matrix: every unique patch against every unique test, one sandbox session per patch.

How it stays cheap (the naive way is a fresh workspace and one run per patch × test pair):

- the task's environment is prepared once (``Sandbox.prepare`` caches it);
- each generated test becomes a standalone copy of the test file it edited, under a unique name
  beside it (``tests/test_x_vtf<id>.py``), so all of them coexist in one bundle patch and run in one
  pytest session (``--continue-on-collection-errors``: a broken file costs only its own tests);
- each unique patch (normalised) is applied once and runs every candidate test, the task's
  regression tests and its FAIL_TO_PASS / PASS_TO_PASS (with the task's test patch applied) in that
  same session: the row of the matrix and the patch's outcome reward in one run;
- one base run (no patch) tells which tests fail before any fix and which regression tests pass;
  one gold run tells which tests the reference fix makes pass (the TestWriter reward);
- runs go ``forge.sandbox.concurrency`` at a time.

A generated test that hangs or kills its session at the base run is isolated (each test file run
alone once) and dropped as ``poison`` so that it cannot spoil every row.

Flaky tests: every run asks the sandbox to rerun its failing tests ``flaky_reruns`` times
(``forge.selfplay.flaky_reruns``) in a second session on the same workspace; a test whose outcome
changes is marked ``flaky`` in that run's result (and its ``execution_result`` event). A node
flagged flaky in *any* run of the matrix (base, gold, any candidate) is flaky for the whole matrix:
it counts for no pass rate, regression share, informativeness or TestWriter reward, and it is left
out of the task's FAIL_TO_PASS / PASS_TO_PASS when rows are graded. A row whose every
FAIL_TO_PASS test is flaky cannot be judged (``resolved`` None, outcome ``flaky``). Only failures
are rerun, so a test that passes first and would fail later is not caught by that run; but each
test runs in every row, and a flip in any of them excludes it everywhere, while a test that
passes on the base commit was never valid anyway.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from vtforge import constants as C
from vtforge.sandbox.api import PreparedRepo, RunRequest, RunResult, Sandbox
from vtforge.sandbox.grading import FAIL_STATUSES, PASS_STATUSES, grade, lookup
from vtforge.selfplay.diffs import unified_diff
from vtforge.selfplay.task import SelfplayTask

PYTEST_ARGS = ("--continue-on-collection-errors",)
GOLD = "\x00gold"  # the gold patch's row key (never a content hash)
INCOMPLETE = frozenset({"timeout", "oom", "disk_quota", "killed", "infra_failure"})  # runs cut short


@dataclass(frozen=True)
class CandidateTest:
    """One unique test: a generated test file (bundled) or a catalogued counterexample node."""

    test_id: str
    nodes: tuple[str, ...]  # pytest node ids as they run
    bundle_path: str | None = None  # the standalone file (generated tests)
    content: str | None = None
    counterexample: bool = False

    @property
    def bundle_diff(self) -> str:
        if self.bundle_path is None or self.content is None:
            return ""
        return unified_diff(self.bundle_path, None, self.content)


def bundle_path_for(test_file: str, test_id: str) -> str:
    folder, _, name = test_file.rpartition("/")
    stem = name[:-3] if name.endswith(".py") else name
    new = (
        f"{stem[:-5]}_vtf{test_id[:10]}_test.py" if stem.endswith("_test") else f"{stem}_vtf{test_id[:10]}.py"
    )
    if not new.startswith("test_") and not new.endswith("_test.py"):
        new = f"test_{new}"
    return f"{folder}/{new}" if folder else new


def generated_test(test_id: str, test_file: str, names: Sequence[str], content: str) -> CandidateTest:
    path = bundle_path_for(test_file, test_id)
    return CandidateTest(test_id, tuple(f"{path}::{n}" for n in names), path, content)


def bundle_of(tests: Iterable[CandidateTest]) -> str:
    return "".join(t.bundle_diff for t in tests)


def test_passed(test: CandidateTest, statuses: Mapping[str, str]) -> bool:
    """Every node of the test ran and passed (parametrised cases included)."""
    return all(lookup(node, statuses) in PASS_STATUSES for node in test.nodes)


def test_failed(test: CandidateTest, statuses: Mapping[str, str]) -> bool:
    """Some node failed or errored, or did not run at all (a collection error)."""
    found = [lookup(node, statuses) for node in test.nodes]
    return any(s is None or s in FAIL_STATUSES for s in found)


def flaky_nodes(result: RunResult) -> set[str]:
    """Node ids whose outcome changed between the sessions of one run (the sandbox's reruns)."""
    return {name for name, outcome in result.tests.items() if outcome.flaky}


def flagged(test_id: str, flaky: Collection[str]) -> bool:
    """``test_id`` is flaky: itself, one of its parametrised cases, or (a truncated id) by prefix.

    Generous on purpose (any run id it could stand for): excluding one test too many only costs
    evidence, counting a flaky one would let chance decide.
    """
    if test_id in flaky:
        return True
    truncated = test_id.count("[") > test_id.count("]") or test_id.endswith("...")
    prefix = test_id.removesuffix("...") if truncated else test_id + "["
    return any(name.startswith(prefix) for name in flaky)


def without_flaky(test_ids: Iterable[str], flaky: Collection[str]) -> list[str]:
    """The ids that are not flaky, in order: what a judgement may be decided by."""
    return [t for t in test_ids if not flagged(t, flaky)]


@dataclass
class Row:
    """One patch's run: per-test results and its outcome on the task's own tests."""

    key: str
    result: RunResult
    patch: str = ""
    statuses: dict[str, str] = field(default_factory=dict)  # node id -> status ({} when not applied)
    passes: dict[str, bool] = field(default_factory=dict)  # test_id -> passed
    resolved: bool | None = None  # None: infra failure or only flaky FAIL_TO_PASS: never counted
    failing_task_tests: list[str] = field(default_factory=list)  # flaky ones left out
    graded: bool = True  # False when the task's test patch could not be applied with this patch

    @property
    def outcome(self) -> str:
        """The patch reward's outcome: resolved | unresolved | infra_failure | flaky."""
        if self.result.infra_failure:
            return "infra_failure"
        if self.resolved is None:
            return "flaky"
        return "resolved" if self.resolved else "unresolved"


@dataclass
class Matrix:
    tests: list[CandidateTest]
    base: RunResult
    valid: set[str]  # test ids that fail on the base commit (the only ones that count)
    regression: list[str]  # node ids passing on the base commit
    poison: set[str] = field(default_factory=set)
    rows: dict[str, Row] = field(default_factory=dict)
    gold: Row | None = None
    runs: int = 0
    flaky_nodes: set[str] = field(default_factory=set)  # flagged flaky in any run of this matrix

    @property
    def flaky(self) -> set[str]:
        """Candidate tests with a node flagged flaky in some run: they neither reward nor penalise."""
        return {t.test_id for t in self.tests if any(flagged(n, self.flaky_nodes) for n in t.nodes)}

    def counted(self) -> set[str]:
        """The tests that judge: valid (fail on the base commit) and not flaky."""
        return self.valid - self.flaky

    def informative(self) -> set[str]:
        """Counted tests that some candidate passes (a test no candidate can pass tells nothing)."""
        return {t for t in self.counted() if any(row.passes.get(t, False) for row in self.rows.values())}

    def pass_rate(self, key: str) -> float:
        row = self.rows.get(key)
        counted = self.counted()
        if row is None or not counted:
            return 0.0
        return sum(row.passes.get(t, False) for t in counted) / len(counted)

    def regression_safety(self, key: str) -> float:
        """Share of the base-passing regression tests (flaky ones left out) the patch keeps passing."""
        row = self.rows.get(key)
        if row is None or not row.result.patch_applied:
            return 0.0
        regression = without_flaky(self.regression, self.flaky_nodes)
        if not regression:
            return 1.0
        return sum(row.statuses.get(n) in PASS_STATUSES for n in regression) / len(regression)

    def regrade(self, task: SelfplayTask) -> None:
        """Grade every row on the task's tests, leaving out those flaky anywhere in the matrix."""
        f2p = without_flaky(task.fail_to_pass, self.flaky_nodes)
        p2p = without_flaky(task.pass_to_pass, self.flaky_nodes)
        instance = {"instance_id": task.task_id, "FAIL_TO_PASS": f2p, "PASS_TO_PASS": p2p}
        for row in [*self.rows.values(), *([self.gold] if self.gold else [])]:
            row.failing_task_tests = []
            if row.result.infra_failure:
                row.resolved = None
            elif not row.graded:
                row.resolved = False
            elif task.fail_to_pass and not f2p and row.result.status == "completed":
                row.resolved = None  # a clean run, but every FAIL_TO_PASS test is flaky: nothing judges it
            else:
                report = grade(instance, row.result, row.patch)[task.task_id]
                row.resolved = bool(report["resolved"])
                block = report["tests_status"]
                row.failing_task_tests = block["FAIL_TO_PASS"]["failure"] + block["PASS_TO_PASS"]["failure"]


class MatrixRunner:
    """Runs a task's matrix through one sandbox (thread-safe ``run``)."""

    def __init__(
        self,
        box: Sandbox,
        *,
        concurrency: int | None = None,
        timeout_s: float | None = None,
        flaky_reruns: int = C.FLAKY_RERUNS,
    ):
        if flaky_reruns < 0:
            raise ValueError(f"forge.selfplay.flaky_reruns must be >= 0, got {flaky_reruns}")
        self.box = box
        self.concurrency = max(1, concurrency or box.concurrency)
        self.timeout_s = timeout_s
        self.flaky_reruns = flaky_reruns

    def _request(self, patches: Sequence[str], nodes: Sequence[str], label: str) -> RunRequest:
        return RunRequest(
            patches=[p for p in patches if p.strip()],
            tests=sorted(set(nodes)),
            pytest_args=PYTEST_ARGS,
            flaky_reruns=self.flaky_reruns,
            timeout_s=self.timeout_s,
            label=label,
        )

    def base(
        self,
        prepared: PreparedRepo,
        task: SelfplayTask,
        tests: Sequence[CandidateTest],
        base_tree: frozenset[str],
    ) -> Matrix:
        """The base run: which tests fail before a fix, which regression tests pass."""
        nodes = [n for t in tests for n in t.nodes] + list(task.pass_to_pass)
        result = self.box.run(prepared, self._request([task.test_patch, bundle_of(tests)], nodes, "base"))
        runs = 1
        statuses = result.status_map()
        flaky = flaky_nodes(result)
        poison: set[str] = set()
        if result.status in INCOMPLETE:
            missing = [t for t in tests if any(lookup(n, statuses) is None for n in t.nodes)]
            with ThreadPoolExecutor(self.concurrency) as pool:
                alone = list(
                    pool.map(
                        lambda t: self.box.run(
                            prepared, self._request([task.test_patch, bundle_of([t])], t.nodes, "isolate")
                        ),
                        missing,
                    )
                )
            runs += len(alone)
            for test, single in zip(missing, alone, strict=True):
                if single.status in INCOMPLETE:
                    poison.add(test.test_id)
                else:
                    statuses.update(single.status_map())
                    flaky |= flaky_nodes(single)
        if result.status == "infra_failure" or not result.patch_applied:
            valid: set[str] = set()
        else:
            valid = {t.test_id for t in tests if t.test_id not in poison and test_failed(t, statuses)}
        regression = [
            n
            for n in task.pass_to_pass
            if n.split("::", 1)[0] in base_tree and statuses.get(n) in PASS_STATUSES
        ]
        return Matrix(list(tests), result, valid, regression, poison, runs=runs, flaky_nodes=flaky)

    def _row(self, prepared: PreparedRepo, task: SelfplayTask, matrix: Matrix, key: str, patch: str) -> Row:
        """One patch's run; graded later (``Matrix.regrade``), once every row's flaky tests are known."""
        tests = [t for t in matrix.tests if t.test_id not in matrix.poison]
        own = list(task.fail_to_pass) + list(task.pass_to_pass)
        nodes = [n for t in tests for n in t.nodes] + matrix.regression + own
        label = "gold" if key == GOLD else key
        result = self.box.run(
            prepared, self._request([patch, task.test_patch, bundle_of(tests)], nodes, label)
        )
        graded = True
        if result.status == "patch_apply_failed" and result.applied_with and task.test_patch.strip():
            # the candidate applied but clashes with the task's test patch: matrix row without grading
            graded = False
            nodes = [n for t in tests for n in t.nodes] + matrix.regression
            result = self.box.run(prepared, self._request([patch, bundle_of(tests)], nodes, label))
        statuses = result.status_map() if result.patch_applied else {}
        row = Row(key, result, patch=patch, statuses=statuses, graded=graded)
        row.passes = {t.test_id: test_passed(t, statuses) for t in tests}
        return row

    def rows(
        self,
        prepared: PreparedRepo,
        task: SelfplayTask,
        matrix: Matrix,
        patches: Mapping[str, str],
        *,
        gold: bool = True,
    ) -> Matrix:
        """Run every patch not yet in the matrix (and the gold patch once), concurrently, then regrade."""
        todo = [(k, d) for k, d in patches.items() if k not in matrix.rows]
        if gold and matrix.gold is None and task.gold_patch.strip():
            todo.append((GOLD, task.gold_patch))
        with ThreadPoolExecutor(self.concurrency) as pool:
            done = list(pool.map(lambda kd: self._row(prepared, task, matrix, kd[0], kd[1]), todo))
        for (key, _), row in zip(todo, done, strict=True):
            if key == GOLD:
                matrix.gold = row
            else:
                matrix.rows[key] = row
            matrix.runs += 1 + (0 if row.graded else 1)
            matrix.flaky_nodes |= flaky_nodes(row.result)
        matrix.regrade(task)
        return matrix


class NaiveRunner:
    """The baseline: a fresh workspace and one run per patch × test pair (no bundling, no dedup)."""

    def __init__(
        self, box: Sandbox, *, timeout_s: float | None = None, flaky_reruns: int = C.FLAKY_RERUNS
    ) -> None:
        self.box = box
        self.timeout_s = timeout_s
        self.flaky_reruns = flaky_reruns

    def pair(self, prepared: PreparedRepo, task: SelfplayTask, patch: str, test: CandidateTest) -> bool:
        request = RunRequest(
            patches=[p for p in (patch, task.test_patch, test.bundle_diff) if p.strip()],
            tests=list(test.nodes),
            pytest_args=PYTEST_ARGS,
            flaky_reruns=self.flaky_reruns,
            timeout_s=self.timeout_s,
        )
        return test_passed(test, self.box.run(prepared, request).status_map())
