"""The real model in the trainers: SmolLM2-135M-Instruct named by the registry (``--model smollm2-135m``).

The session fixture ``real_model_folder`` converts the package's GGUF file once; each workspace here
points the registry name at that folder (``[forge.models.smollm2-135m] path = …``), so the name is
resolved exactly as ``vtforge train --model smollm2-135m`` resolves it, without converting again.
Generation is bounded: one prompt, two samples, at most 48 new tokens.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from tests.support import require_service
from vtforge import constants as C
from vtforge.config import load_config
from vtforge.fixtures.warehouse import create_tables
from vtforge.gitrepo import commit_all, init_repo
from vtforge.trainers.context import count_tokens
from vtforge.trainers.grpo import GrpoOptions, run_grpo
from vtforge.trainers.sft import TrainingDataError

pytestmark = pytest.mark.slow

BUGGY = "def add(a, b):\n    return a - b\n"
TEST = "from tools import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
SYSTEM = (
    "You fix a one-line bug in a Python file. Reply with one SEARCH/REPLACE edit and nothing else: "
    "the SEARCH part is the buggy line copied exactly, the REPLACE part is the fixed line."
)


def _user(path: str, source: str, issue: str, line: str) -> str:
    return f"File {path}:\n```python\n{source}```\nBug: {issue}\nBuggy line:\n{line}"


def _edit(path: str, search: str, replace: str) -> str:
    return f"### {path}\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE"


# two worked examples in self-play's SEARCH/REPLACE format (what SandboxReward parses), then the task
MESSAGES = [
    {"role": "system", "content": SYSTEM},
    {
        "role": "user",
        "content": _user(
            "shapes.py",
            "def area(width, height):\n    return width + height\n",
            "area(3, 4) returns 7, expected 12.",
            "    return width + height",
        ),
    },
    {
        "role": "assistant",
        "content": _edit("shapes.py", "    return width + height", "    return width * height"),
    },
    {
        "role": "user",
        "content": _user(
            "lists.py",
            "def is_empty(items):\n    return len(items) > 0\n",
            "is_empty([]) returns False, expected True.",
            "    return len(items) > 0",
        ),
    },
    {
        "role": "assistant",
        "content": _edit("lists.py", "    return len(items) > 0", "    return len(items) == 0"),
    },
    {
        "role": "user",
        "content": _user("tools.py", BUGGY, "add(2, 3) returns -1, expected 5.", "    return a - b"),
    },
]


def _workspace(root: Path, model_folder: Path) -> Path:
    """A workspace whose registry name ``smollm2-135m`` is the session's converted folder."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "vtcode.toml").write_text(
        '[forge.warehouse]\ndata_dir = ".forge"\n\n'
        "[forge.train]\nnum_generations = 2\ngrpo_prompts_per_step = 1\ngrpo_temperature = 0.3\n"
        "save_steps = 100\n\n"
        "[forge.curriculum]\nreplay_mix_fraction = 0.0\n\n"
        f'[forge.models.{C.DEFAULT_MODEL}]\npath = "{model_folder}"\n'
    )
    return root


def _calc_repo(root: Path) -> tuple[Path, str]:
    repo = root / "calc"
    (repo / "tests").mkdir(parents=True)
    (repo / "tools.py").write_text(BUGGY)
    (repo / "tests" / "test_calc.py").write_text(TEST)
    init_repo(repo)
    return repo, commit_all(repo, "buggy")


def _rl_prompts(cfg, rows: list[tuple]) -> None:
    """``rl_prompts`` with the columns the sandbox reward runs on (``repo_dir``, ``test_patch``)."""
    cfg.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(cfg.duckdb_path))
    create_tables(con)
    con.execute("ALTER TABLE rl_prompts ADD COLUMN repo_dir VARCHAR")
    con.execute("ALTER TABLE rl_prompts ADD COLUMN test_patch VARCHAR")
    con.executemany("INSERT INTO rl_prompts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.close()


def test_the_registry_model_and_tokenizer_round_trip_a_chat_template(
    tmp_path: Path, real_model_folder
) -> None:
    from vtforge.trainers.common import starting_policy

    cfg = load_config(cwd=_workspace(tmp_path, real_model_folder))
    policy = starting_policy(C.DEFAULT_MODEL, corpus=lambda: [], seed=0, cfg=cfg)
    assert (policy.source, policy.is_tiny) == (str(real_model_folder.resolve()), False)
    assert policy.model.config.max_position_embeddings == 8192
    tok = policy.tokenizer
    chat = [{"role": "system", "content": "Fix bugs."}, {"role": "user", "content": "add() subtracts."}]
    assert tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) == (
        "<|im_start|>system\nFix bugs.<|im_end|>\n<|im_start|>user\nadd() subtracts.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert (tok.eos_token, tok.pad_token) == ("<|im_end|>", "<|im_end|>")  # the assistant turn's end
    snippet = 'def add(a, b):\n\t"""Sum — ünïcode, tabs and  spaces."""\n    return a + b  # 2 + 3 == 5\n'
    assert tok.decode(tok.encode(snippet, add_special_tokens=False)) == snippet


def test_one_grpo_step_on_the_real_model_is_judged_in_the_sandbox(tmp_path: Path, real_model_folder) -> None:
    require_service(shutil.which("bwrap") is not None, "bubblewrap (bwrap)")
    cfg = load_config(cwd=_workspace(tmp_path / "ws", real_model_folder))
    repo, commit = _calc_repo(tmp_path)
    prompt = "\n\n".join(m["content"] for m in MESSAGES)
    _rl_prompts(
        cfg,
        [
            (
                "calc-1",
                MESSAGES,
                prompt,
                "local/calc",
                commit,
                ["tests/test_calc.py::test_add"],
                [],
                ["tools.py"],
                0.3,
                "medium",
                "train",
                str(repo),
                None,
            )
        ],
    )
    summary = run_grpo(
        cfg, GrpoOptions(model=C.DEFAULT_MODEL, max_steps=1, max_completion_tokens=48, num_generations=2)
    )
    assert (summary["steps"], summary["prompts"], summary["reward"]) == (1, 1, "SandboxReward")
    assert (summary["budget_tokens"], summary["max_completion_tokens"]) == (8192, 48)
    landing = cfg.landing_dir
    steps = duckdb.sql(
        f"SELECT trainer, step, reward_mean, samples, policy_version, envelope.stage "
        f"FROM '{landing}/training_step/*/*.parquet'"
    ).fetchall()
    assert len(steps) == 1
    trainer, step, reward_mean, samples, version, stage = steps[0]
    assert (trainer, step, samples, version, stage) == ("grpo", 1, 2, summary["policy_version"], "rl")
    rollouts = duckdb.sql(
        f"SELECT rollout_id, outcome, parse_status, model, messages[-1].content "
        f"FROM '{landing}/rollout/*/*.parquet' ORDER BY 1"
    ).fetchall()
    assert len(rollouts) == 2 and {r[3] for r in rollouts} == {str(real_model_folder.resolve())}
    edited = [(r[0], r[1]) for r in rollouts if r[2] == "ok"]
    assert len(edited) >= 1, rollouts  # the two worked examples get the format across
    # every sample whose answer held an edit was run in the sandbox and got a reward_assigned event
    rewards = duckdb.sql(
        f"SELECT rollout_id, outcome, reward, subject_kind, policy_version "
        f"FROM '{landing}/reward_assigned/*/*.parquet' ORDER BY 1"
    ).fetchall()
    assert [(r[0], r[1]) for r in rewards] == edited
    assert all(r[3] == "patch" and r[4] == summary["policy_version"] for r in rewards)
    assert all(r[2] == (1.0 if r[1] == "resolved" else 0.0) for r in rewards)
    assert reward_mean == sum(r[2] for r in rewards) / 2  # samples without an edit earned 0.0


def test_the_real_model_keeps_the_whole_completion_budget_in_its_8192_window(
    tmp_path: Path, real_model_folder
) -> None:
    from transformers import AutoTokenizer

    cfg = load_config(cwd=_workspace(tmp_path, real_model_folder))
    module = "\n\n".join(f"def f_{i}(x):\n    return x * {i} + {i * 7} - {i % 5}\n" for i in range(290))
    messages = [{"role": "user", "content": f"File big.py:\n```python\n{module}```\nFix f_7."}]
    tok = AutoTokenizer.from_pretrained(real_model_folder, local_files_only=True)
    need = count_tokens(tok, messages, add_generation_prompt=True)
    assert 8192 - C.MAX_COMPLETION_TOKENS < need < 8192  # fits the window, not beside 1024 answer tokens
    _rl_prompts(
        cfg,
        [
            (
                "big-1",
                messages,
                "",
                "local/big",
                "0" * 40,
                ["t::t"],
                [],
                ["big.py"],
                0.3,
                "medium",
                "train",
                None,
                None,
            )
        ],
    )
    with pytest.raises(TrainingDataError) as err:
        run_grpo(cfg, GrpoOptions(model=C.DEFAULT_MODEL, max_steps=1))
    # no tiny-model clamp: the lever's 1024 positions are reserved as they are
    lever = C.MAX_COMPLETION_TOKENS
    assert (
        f"forge.train.max_completion_tokens={lever} leaves {8192 - lever} of 8192 positions (the model's "
        f"8192-position window) for prompts; the shortest prompt needs {need}: lower it to ≤ {8192 - need} "
        f"or use a model with ≥ {need + lever} positions"
    ) in str(err.value)
