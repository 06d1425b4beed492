"""The RL reward: the execution outcome of the generated patch, 1.0 or 0.0, and nothing else.

An ``OutcomeReward`` is a callable ``(completion, row) -> 1.0 | 0.0 | None`` where ``row`` holds the
prompt's columns (``task_id``, ``repo``, ``base_commit``, ``fail_to_pass``, ``pass_to_pass`` …).
``None`` means the sandbox itself failed (``infra_failure``): TRL leaves such a sample out of its
group's baseline, so it never counts against the model. ``as_trl_reward`` adapts one to TRL's
reward-function signature (TRL passes the dataset's extra columns as keyword lists).

- ``SandboxReward`` turns the answer into a patch (a unified diff, else SEARCH/REPLACE edits
  applied to the base files with self-play's parser), applies it in the sandbox
  (``sandbox.open_sandbox``), runs the task's FAIL_TO_PASS and PASS_TO_PASS tests and grades the
  run as SWE-bench does (``vtforge.sandbox.grading``). An answer with no usable edit is 0.0 without
  running anything. Failing tests are rerun ``forge.selfplay.flaky_reruns`` times; a test whose
  outcome changes is flaky and is left out of FAIL_TO_PASS / PASS_TO_PASS for that sample's
  judgement, so it decides nothing; when every FAIL_TO_PASS test is flaky nothing is left to judge
  by and the reward is ``None`` (outcome ``flaky``), out of the group like an infra failure.
- ``BanditReward`` is a deterministic toy reward (the first character of the answer is one of
  ``arms``) for tests and for smoke runs where no sandbox task exists.

The answer is the completion without its reasoning, cut by self-play's splitter
(``vtforge.selfplay.reasoning.split_reasoning``: ``<think>``, ``<thinking>``, ``<reasoning>``,
``◁think▷``, ``<|begin_of_thought|>``), so an edit drafted while thinking is never applied here
either.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from vtforge import constants as C
from vtforge.selfplay.reasoning import split_reasoning
from vtforge.selfplay.task import RepoView

if TYPE_CHECKING:
    from vtforge.config import Config

_FENCE = re.compile(r"```(?:diff|patch)?[ \t]*\n(.*?)```", re.DOTALL)


class OutcomeReward(Protocol):
    def __call__(self, completion: str, row: Mapping[str, Any]) -> float | None: ...


def answer_text(completion: str) -> str:
    """The completion without its reasoning, as self-play parses it (one splitter for both)."""
    return split_reasoning(completion).answer.strip()


def extract_patch(completion: str) -> str | None:
    """The unified diff in a completion: fenced ```diff blocks, else from the first diff header on."""
    answer = answer_text(completion)
    blocks = [b for b in _FENCE.findall(answer) if "--- " in b and "+++ " in b]
    if blocks:
        patch = "\n".join(b.strip("\n") for b in blocks)
    else:
        starts = [i for i in (answer.find("diff --git "), answer.find("--- ")) if i >= 0]
        if not starts:
            return None
        patch = answer[min(starts) :]
    if "+++ " not in patch or "@@" not in patch:
        return None
    return patch.rstrip("\n") + "\n"


def diff_line_counts(patch: str) -> tuple[int, int]:
    """(lines added, lines removed) of a unified diff."""
    added = sum(1 for ln in patch.splitlines() if ln.startswith("+") and not ln.startswith("+++ "))
    removed = sum(1 for ln in patch.splitlines() if ln.startswith("-") and not ln.startswith("--- "))
    return added, removed


class BanditReward:
    """1.0 when the answer's first character is one of ``arms`` (case-insensitive), else 0.0."""

    def __init__(self, arms: str = "abcdefghijklm") -> None:
        self.arms = arms.lower()

    def __call__(self, completion: str, row: Mapping[str, Any]) -> float:
        answer = answer_text(completion)
        return 1.0 if answer and answer[0].lower() in self.arms else 0.0


@dataclass(frozen=True)
class Judgement:
    """What the sandbox made of one completion (kept for the sample's events)."""

    reward: float | None
    patch: str | None
    outcome: str  # resolved | unresolved | infra_failure | no_edit | flaky
    error: str | None = None
    apply_status: str = "not_tried"  # applied | applied_with_fuzz | failed | not_tried
    flaky: tuple[str, ...] = ()  # tests whose outcome changed on a rerun: left out of the judgement
    parse_status: str | None = None  # self-play's typed parse failure when the answer held no usable edit


# The reward reads each test's status, never its traceback: pytest then formats only the exception
# line of a failure, not the source around every frame (a tenth of a second and more per failing
# run, the wrong half of a GRPO batch). Outcomes are the same; the repository's own addopts come first,
# so this wins over a --tb there.
REWARD_PYTEST_ARGS = ("--tb=no",)


class SandboxReward:
    """Execution outcome of the completion's patch in the configured sandbox (SWE-bench grading).

    ``judgements`` keeps, per (task id, completion), what happened, for the GRPO sample events.
    ``flaky_reruns`` defaults to ``forge.selfplay.flaky_reruns`` of ``cfg``.
    """

    def __init__(
        self,
        cfg: Config,
        *,
        repo_dir: Callable[[Mapping[str, Any]], Path | None] | None = None,
        flaky_reruns: int | None = None,
    ) -> None:
        if flaky_reruns is None:
            selfplay = getattr(getattr(cfg, "forge", None), "selfplay", None)
            flaky_reruns = getattr(selfplay, "flaky_reruns", C.FLAKY_RERUNS)
        if flaky_reruns < 0:
            raise ValueError(f"forge.selfplay.flaky_reruns must be >= 0, got {flaky_reruns}")
        self.flaky_reruns = int(flaky_reruns)
        try:
            from vtforge.sandbox import open_sandbox
        except ImportError as exc:  # the sandbox package is part of vtforge; this is an install problem
            raise RuntimeError(
                f"the sandbox API is not importable ({exc}); use --reward bandit for a toy run"
            ) from exc
        self.box = open_sandbox(cfg)
        self.repo_dir = repo_dir or default_repo_dir
        self._prepared: dict[tuple[str, str], Any] = {}
        self.judgements: dict[tuple[str, str], Judgement] = {}
        self._lock = threading.Lock()

    def _prepare(self, row: Mapping[str, Any]) -> Any | None:
        from vtforge.sandbox import RepoSpec

        repo = self.repo_dir(row)
        if repo is None:
            return None
        key = (str(repo), str(row.get("base_commit") or "HEAD"))
        with self._lock:
            if key not in self._prepared:
                spec = RepoSpec(repo, base_commit=key[1], task_id=row.get("task_id"))
                self._prepared[key] = self.box.prepare(spec)
            return self._prepared[key]

    def patch_of(self, completion: str, row: Mapping[str, Any]) -> str | None:
        """The completion's patch: a unified diff, else SEARCH/REPLACE edits applied to the base files."""
        return self.parse(completion, row)[0]

    def parse(self, completion: str, row: Mapping[str, Any]) -> tuple[str | None, str]:
        """``(patch, parse_status)``: the patch or None, and self-play's typed reason when None."""
        patch = extract_patch(completion)
        if patch is not None:
            return patch, "ok"
        repo = self.repo_dir(row)
        if repo is None:
            return None, "no_edit"
        from vtforge.selfplay.parsing import parse_edit

        view = _repo_view(str(repo), str(row.get("base_commit") or "HEAD"))
        try:
            tree, read = view.tree_set, view.read
        except ValueError:  # the commit is not in the repository: no file can be edited
            tree, read = frozenset(), lambda path: None
        edit = parse_edit(completion, read, tree, scope=str(row.get("task_id") or ""))
        if edit.ok and edit.diff:
            return edit.diff, "ok"
        return None, str(edit.status) if not edit.ok else "no_change"

    def __call__(self, completion: str, row: Mapping[str, Any]) -> float | None:
        judgement = self.judge(completion, row)
        with self._lock:
            self.judgements[(str(row.get("task_id")), completion)] = judgement
        return judgement.reward

    def judge(self, completion: str, row: Mapping[str, Any]) -> Judgement:
        """Everything about one completion's execution: the patch, how it applied, the outcome."""
        from vtforge.sandbox import RunRequest
        from vtforge.sandbox.grading import grade, test_ids
        from vtforge.selfplay.matrix import flaky_nodes, without_flaky

        if self.repo_dir(row) is None:  # an edit with nowhere to run it is not the model's failure
            if extract_patch(completion) or "SEARCH" in answer_text(completion):
                return Judgement(None, None, "infra_failure", "the task's repository is not on this machine")
            return Judgement(0.0, None, "no_edit")
        patch, parse_status = self.parse(completion, row)
        if patch is None:
            return Judgement(0.0, None, "no_edit", parse_status=parse_status)
        prepared = self._prepare(row)
        if prepared is None or not prepared.ok:
            return Judgement(None, patch, "infra_failure", getattr(prepared, "setup_log", "")[-2000:] or None)
        f2p, p2p = test_ids(row.get("fail_to_pass")), test_ids(row.get("pass_to_pass"))
        patches = [patch] + ([row["test_patch"]] if row.get("test_patch") else [])
        result = self.box.run(
            prepared,
            RunRequest(
                patches=patches,
                tests=[*f2p, *p2p] or None,
                pytest_args=REWARD_PYTEST_ARGS,
                flaky_reruns=self.flaky_reruns,
                label=row.get("task_id"),
            ),
        )
        if result.status == "patch_apply_failed" and not result.applied_with:
            apply_status, error = "failed", "; ".join(result.apply_errors)[:2000] or result.error
        elif result.infra_failure:
            return Judgement(None, patch, "infra_failure", result.error, "not_tried")
        elif result.applied_with and result.applied_with[0] == "patch --fuzz":
            apply_status, error = "applied_with_fuzz", None
        else:
            apply_status, error = "applied", None
        flaky = flaky_nodes(result)
        kept_f2p, kept_p2p = without_flaky(f2p, flaky), without_flaky(p2p, flaky)
        if f2p and not kept_f2p and result.status == "completed":  # a clean run nothing may judge
            why = "every FAIL_TO_PASS test is flaky: " + ", ".join(sorted(flaky))
            return Judgement(None, patch, "flaky", why[:2000], apply_status, tuple(sorted(flaky)))
        task = str(row.get("task_id") or "task")
        instance = {"instance_id": task, "FAIL_TO_PASS": kept_f2p, "PASS_TO_PASS": kept_p2p}
        report = grade(instance, result, patch)[task]
        resolved = bool(report["resolved"])
        return Judgement(
            1.0 if resolved else 0.0,
            patch,
            "resolved" if resolved else "unresolved",
            error,
            apply_status,
            tuple(sorted(flaky)),
        )

    def many(self, completions: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> list[float | None]:
        """Rewards in the given order, run ``concurrency`` at a time, the tasks taken in turn: a
        GRPO batch groups a prompt's samples, and running them back to back would have every
        worker wait on one task's warm worker starting while the other tasks' could start too."""
        workers = max(1, getattr(self.box, "concurrency", 1))
        order = interleaved([str(row.get("task_id") or "") for row in rows])
        rewards: list[float | None] = [None] * len(rows)

        def reward_of(index: int) -> float | None:
            return self(completions[index], rows[index])

        with ThreadPoolExecutor(max_workers=workers) as pool:
            judged = pool.map(reward_of, order)
            for index, reward in zip(order, judged, strict=True):
                rewards[index] = reward
        return rewards

    def close(self) -> None:
        self.box.close()


def interleaved(keys: Sequence[str]) -> list[int]:
    """Indices of ``keys`` taken one per key in turn (first-seen key order, then position)."""
    groups: dict[str, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    order: list[int] = []
    for turn in range(max((len(g) for g in groups.values()), default=0)):
        order.extend(g[turn] for g in groups.values() if turn < len(g))
    return order


@functools.cache
def _repo_view(repo: str, commit: str) -> RepoView:
    """One cached view of ``repo`` at ``commit`` (self-play's ``RepoView``) per process."""
    return RepoView(Path(repo), commit)


def default_repo_dir(row: Mapping[str, Any]) -> Path | None:
    """``repo_dir`` when the row has one, else ``repo`` when it names a local git repository."""
    for key in ("repo_dir", "repo"):
        value = row.get(key)
        if value and Path(str(value)).expanduser().is_dir():
            return Path(str(value)).expanduser()
    return None


def _text(completion: Any) -> str:
    if isinstance(completion, list):  # conversational: [{"role": "assistant", "content": ...}]
        return "".join(str(m.get("content") or "") for m in completion)
    return str(completion)


def as_trl_reward(
    reward: OutcomeReward,
    *,
    observe: Callable[[list[float | None], list[dict], list[bool], list[str]], None] | None = None,
):
    """TRL's reward-function signature around an ``OutcomeReward``.

    ``observe(values, rows, replayed, texts)`` sees every batch; ``replayed`` marks samples whose
    reward came from the replay buffer rather than from running ``reward``.
    """

    def outcome_reward(prompts: list, completions: list, **columns: Any) -> list[float | None]:
        columns.pop("trainer_state", None)
        columns.pop("completion_ids", None)
        rows = [
            {k: v[i] for k, v in columns.items() if isinstance(v, list) and len(v) == len(completions)}
            for i in range(len(completions))
        ]
        for row, prompt in zip(rows, prompts, strict=True):
            row.setdefault("prompt", prompt)
        texts = [_text(c) for c in completions]
        cached = [
            row.get("replay_reward") if row.get("replay_completion") == text else None
            for text, row in zip(texts, rows, strict=True)
        ]
        todo = [i for i, c in enumerate(cached) if c is None]
        many = getattr(reward, "many", None)
        fresh = (
            many([texts[i] for i in todo], [rows[i] for i in todo])
            if many
            else [reward(texts[i], rows[i]) for i in todo]
        )
        values: list[float | None] = list(cached)
        for i, value in zip(todo, fresh, strict=True):
            values[i] = value
        if observe is not None:
            observe(values, rows, [c is not None for c in cached], texts)
        return values

    outcome_reward.__name__ = "execution_outcome"
    return outcome_reward
