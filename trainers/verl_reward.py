"""verl's reward function for vtforge's verl exports: the sandbox execution outcome, nothing else.

verl scores a sample by calling ``compute_score(data_source, solution_str, ground_truth, extra_info)``
from the file named in ``custom_reward_function.path`` (``name``: ``compute_score``); its built-in
scorer knows only its own datasets and raises ``NotImplementedError`` for ours. Point verl here::

    custom_reward_function.path=$(python -c "import vtforge.trainers.verl_reward as m; print(m.__file__)")
    custom_reward_function.name=compute_score

The rows come from ``<data>/exports/verl/rl_*.parquet``: ``reward_model.ground_truth`` holds the
task's tests as JSON, ``extra_info`` the repository, base commit and test patch. The completion is
judged exactly as the GRPO trainer judges it (``SandboxReward``: the patch or SEARCH/REPLACE edits
applied in the configured sandbox, the tests graded the SWE-bench way). The sandbox follows the
``vtcode.toml`` found from the working directory, or ``VTFORGE_CONFIG`` (set it in verl's Ray
``runtime_env`` so every reward worker reads the same file); one sandbox per process is kept.

verl cannot leave a sample out of its group's baseline, so a run that says nothing about the patch
(the sandbox failed, or every FAIL_TO_PASS test was flaky) scores 0.0, with ``infra_failure`` or
``flaky`` set in the extra fields verl logs beside the score.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

from vtforge.trainers.rewards import SandboxReward

DATA_SOURCE = "vtforge"  # the exports' data_source when a task names no source of its own

_rewards: dict[str, SandboxReward] = {}
_lock = threading.Lock()


def task_row(ground_truth: str | Mapping[str, Any], extra_info: Mapping[str, Any] | None) -> dict[str, Any]:
    """The columns ``SandboxReward`` reads, from one verl row's ground truth and extra info."""
    tests = json.loads(ground_truth) if isinstance(ground_truth, str) else dict(ground_truth)
    extra = dict(extra_info or {})
    return {
        "task_id": extra.get("task_id"),
        "repo": extra.get("repo"),
        "repo_dir": extra.get("repo_dir"),
        "base_commit": extra.get("base_commit"),
        "test_patch": extra.get("test_patch"),
        "fail_to_pass": list(tests.get("fail_to_pass") or []),
        "pass_to_pass": list(tests.get("pass_to_pass") or []),
    }


def _reward() -> SandboxReward:
    from vtforge.config import load_config

    config = load_config()
    key = str(config.files[-1]) if config.files else ""
    with _lock:
        if key not in _rewards:
            _rewards[key] = SandboxReward(config)
        return _rewards[key]


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str | Mapping[str, Any],
    extra_info: Mapping[str, Any] | None = None,
    **_: Any,
) -> dict[str, float]:
    """verl's per-sample score: 1.0 when the completion's patch resolves the task, else 0.0."""
    del data_source  # every vtforge export row is judged the same way, whatever its source
    judgement = _reward().judge(solution_str, task_row(ground_truth, extra_info))
    return {
        "score": float(judgement.reward or 0.0),
        "resolved": float(judgement.outcome == "resolved"),
        "infra_failure": float(judgement.outcome == "infra_failure"),
        "flaky": float(judgement.outcome == "flaky"),
    }
