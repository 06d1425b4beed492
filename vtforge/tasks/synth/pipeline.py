"""``synthesize``: validated bugs from one real package, deterministic for a seed.

1. the sdist becomes a git repository (``sdist``); its whole test suite runs once in the sandbox
   for the passing baseline;
2. every mutation of its functions is listed (``mutations``) and ordered by the seed: kinds
   interleaved, so one kind does not crowd out the others;
3. candidates are tried a batch at a time (``workers`` in parallel): the bug is committed on top
   of the clean commit and the tests relevant to the mutated module run on it; a bug is kept when
   at least one test that passed now fails (F2P) and at least one still passes (P2P), at most one
   per function;
4. a kept bug is verified: the gold patch (the inverse of the mutation) must resolve it — the run
   that measured F2P already showed the empty patch does not.

Whether a candidate is kept depends only on test outcomes and the seed's order, never on timing,
so the same seed gives the same tasks.
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from vtforge import gitrepo
from vtforge.config import Config
from vtforge.sandbox import open_sandbox
from vtforge.sandbox.api import RunRequest, Sandbox
from vtforge.tasks.bank import repos_dir
from vtforge.tasks.diffs import is_test_path
from vtforge.tasks.model import IMPORTER_VERSION, Task
from vtforge.tasks.synth.mutations import Mutation, candidates_in_files, mutable_file
from vtforge.tasks.synth.sdist import SDIST_CACHE, PackageRepo, package_repo
from vtforge.tasks.synth.statement import problem_statement
from vtforge.tasks.validate import prepare, resolved_by, split_outcomes

TASK_TAG = "vtforge/task/"
# pytest plugins of the host interpreter (hypothesis, …) cost seconds of start-up per run and the
# packages we synthesise from need none; recorded as provenance.test_env so runs can match.
TEST_ENV = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
FIXED_CREATED_AT = "2000-01-01T00:00:00+00:00"  # synthesised tasks carry the commit's fixed date


@dataclass
class SynthReport:
    package: str
    version: str
    seed: int
    repo_dir: str = ""
    candidates: int = 0
    tried: int = 0
    tasks: list[Task] = field(default_factory=list)
    rejected: Counter = field(default_factory=Counter)
    baseline_tests: int = 0
    baseline_passed: int = 0
    duration_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "package": f"{self.package}=={self.version}",
            "seed": self.seed,
            "candidates": self.candidates,
            "tried": self.tried,
            "kept": len(self.tasks),
            "rejected": dict(sorted(self.rejected.items())),
            "baseline_tests": self.baseline_tests,
            "baseline_passed": self.baseline_passed,
            "duration_s": round(self.duration_s, 1),
        }


def order_candidates(candidates: list[Mutation], seed: int) -> list[Mutation]:
    """Seeded order with kinds interleaved (round robin over per-kind shuffles)."""
    rng = random.Random(seed)
    by_kind: dict[str, list[Mutation]] = defaultdict(list)
    for mutation in sorted(candidates, key=lambda m: (m.path, m.start, m.end, m.kind, m.replacement)):
        by_kind[mutation.kind].append(mutation)
    kinds = sorted(by_kind)
    for kind in kinds:
        rng.shuffle(by_kind[kind])
    rng.shuffle(kinds)
    ordered: list[Mutation] = []
    while any(by_kind[k] for k in kinds):
        for kind in kinds:
            if by_kind[kind]:
                ordered.append(by_kind[kind].pop())
    return ordered


def relevant_tests(module: str, test_sources: dict[str, str]) -> list[str] | None:
    """Test files worth running for a mutation of ``module``; None means the whole suite.

    A test file named after the module (``itertoolz.py`` → ``test_itertoolz.py``) is enough;
    otherwise every test file that mentions the module's name.
    """
    p = PurePosixPath(module)
    stem = p.parent.name if p.name == "__init__.py" else p.stem
    named = sorted(f for f in test_sources if stem in PurePosixPath(f).stem)
    if named:
        return named
    mentioning = sorted(f for f, text in test_sources.items() if stem in text)
    if mentioning and len(mentioning) < len(test_sources):
        return mentioning
    return None


def instance_id_for(pkg: PackageRepo, mutation: Mutation) -> str:
    return f"{pkg.name.lower()}-{pkg.version}__synth-{mutation.key[:10]}"


def synthesize(
    cfg: Config,
    name: str,
    version: str,
    *,
    max_tasks: int = 10,
    seed: int = 0,
    max_tries: int | None = None,
    box: Sandbox | None = None,
    slice_name: str = "synth",
    log: Any = None,
    sdist_cache: Path | None = None,
) -> SynthReport:
    """Up to ``max_tasks`` validated bugs of ``name==version`` (see the module docstring)."""
    started = time.monotonic()
    report = SynthReport(package=name, version=version, seed=seed)
    pkg = package_repo(name, version, repos_dir(cfg), sdist_cache or SDIST_CACHE)
    report.repo_dir = str(pkg.path)
    own_box = box is None
    box = box or open_sandbox(cfg)
    try:
        _synthesize(
            cfg, pkg, box, report, max_tasks, seed, max_tries or max(4 * max_tasks, 20), slice_name, log
        )
    finally:
        if own_box:
            box.close()
    report.duration_s = time.monotonic() - started
    return report


def _synthesize(cfg, pkg, box, report, max_tasks, seed, max_tries, slice_name, log) -> None:
    say = log or (lambda _msg: None)
    clean = prepare(box, pkg.path, pkg.pristine)
    baseline = box.run(clean, RunRequest(label="baseline", env=dict(TEST_ENV)))
    report.baseline_tests = len(baseline.tests)
    passed = baseline.passed()
    report.baseline_passed = len(passed)
    if baseline.status not in ("completed",) or not passed:
        raise RuntimeError(
            f"{pkg.name}=={pkg.version}: the test suite has no passing baseline "
            f"(status {baseline.status}: {(baseline.error or baseline.stderr_tail)[-400:]})"
        )
    say(
        f"{pkg.name} {pkg.version}: baseline {len(passed)}/{len(baseline.tests)} passed "
        f"in {baseline.duration_s:.1f}s"
    )
    timeout = max(30.0, 4.0 * baseline.duration_s)
    files = gitrepo.list_files(pkg.path, pkg.pristine)
    sources = {f: gitrepo.show(pkg.path, pkg.pristine, f) for f in files if mutable_file(f)}
    run_files = {n.split("::", 1)[0] for n in baseline.tests}
    test_sources = {
        f: gitrepo.show(pkg.path, pkg.pristine, f).decode("utf-8", "replace")
        for f in files
        if is_test_path(f) and f.endswith(".py") and f in run_files
    }
    candidates = order_candidates(candidates_in_files(sources), seed)
    report.candidates = len(candidates)
    relevant: dict[str, list[str] | None] = {}
    done_functions: set[tuple[str, str]] = set()
    queue = list(candidates)
    workers = max(1, box.concurrency)

    def evaluate(mutation: Mutation) -> tuple[str, Task | None]:
        return _evaluate(pkg, box, mutation, sources, relevant[mutation.path], passed, timeout, slice_name)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        while queue and len(report.tasks) < max_tasks and report.tried < max_tries:
            batch: list[Mutation] = []
            while queue and len(batch) < workers and report.tried + len(batch) < max_tries:
                mutation = queue.pop(0)
                where = (mutation.path, mutation.function)
                if where in done_functions or any((m.path, m.function) == where for m in batch):
                    continue  # one bug per function: skipped, not tried
                if mutation.path not in relevant:
                    relevant[mutation.path] = relevant_tests(mutation.path, test_sources)
                batch.append(mutation)
            if not batch:
                break
            report.tried += len(batch)
            for mutation, (verdict, task) in zip(batch, pool.map(evaluate, batch), strict=True):
                if task is None or len(report.tasks) >= max_tasks:
                    report.rejected[verdict if task is None else "over_max"] += 1
                    continue
                done_functions.add((mutation.path, mutation.function))
                gitrepo.tag(pkg.path, TASK_TAG + task.instance_id, task.base_commit)
                report.tasks.append(task)
                say(
                    f"  kept {task.instance_id}: {len(task.fail_to_pass)} fail, {len(task.pass_to_pass)} pass"
                )
    report.rejected = Counter({k: v for k, v in report.rejected.items() if v})


def _evaluate(
    pkg, box, mutation, sources, tests, baseline_passed, timeout, slice_name
) -> tuple[str, Task | None]:
    buggy = mutation.apply(sources[mutation.path])
    instance_id = instance_id_for(pkg, mutation)
    commit = gitrepo.commit_files(
        pkg.path, pkg.pristine, {mutation.path: buggy}, f"vtforge task {instance_id}"
    )
    prepared = prepare(box, pkg.path, commit, instance_id)
    measured = box.run(
        prepared, RunRequest(tests=tests, timeout_s=timeout, label="measure", env=dict(TEST_ENV))
    )
    if measured.status != "completed":
        return f"run_{measured.status}", None
    f2p, p2p = split_outcomes(None, measured, baseline_passed)
    if not f2p:
        return "no_test_fails", None
    if not p2p:
        return "no_test_passes", None
    gold = gitrepo.diff(pkg.path, commit, pkg.pristine)
    statement = problem_statement(
        pkg.name, pkg.version, f2p, {n: measured.tests[n].message for n in f2p}, len(p2p)
    )
    task = Task(
        instance_id=instance_id,
        repo=f"pypi/{pkg.name.lower()}",
        base_commit=commit,
        problem_statement=statement,
        patch=gold,
        test_patch="",
        fail_to_pass=f2p,
        pass_to_pass=p2p,
        version=pkg.version,
        environment_setup_commit=pkg.pristine,
        repo_dir=str(pkg.path),
        source="synth",
        split="train",
        provenance={
            "dataset_slice": slice_name,
            "origin": f"pypi:{pkg.name}=={pkg.version}",
            "license": pkg.license,
            "commit": pkg.pristine,
            "created_at": FIXED_CREATED_AT,
            "importer_version": IMPORTER_VERSION,
            "sdist": pkg.sdist.name,
            "sdist_sha256": pkg.sdist_sha256,
            "mutation": mutation.describe(),
            "tests_run": tests if tests is not None else "all",
            "test_env": dict(TEST_ENV),
        },
    )
    gold_run = box.run(
        prepared,
        RunRequest(
            patches=[gold],
            tests=sorted(set(f2p) | set(p2p)),
            timeout_s=timeout,
            label="gold",
            env=dict(TEST_ENV),
        ),
    )
    if not resolved_by(task, gold_run):
        return "gold_does_not_resolve", None
    if resolved_by(task, measured):
        return "empty_patch_resolves", None
    validation = {
        "gold_resolved": True,
        "empty_resolved": False,
        "backend": box.name,
        "gold_status": gold_run.status,
        "empty_status": measured.status,
    }
    return "kept", task.replace(provenance={**task.provenance, "validation": validation})
