"""Self-play on a real model: SmolLM2-135M-Instruct on llama.cpp, and batched transformers generation.

The real model is loaded once per session (``real_llamacpp``); generations stay short (≤ 96 tokens)
and the round runs on the sandbox tests' toy repository, so the whole file takes about a minute.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from vtforge import constants as C
from vtforge.config import load_config
from vtforge.sandbox.api import Sandbox
from vtforge.selfplay import prompts
from vtforge.selfplay.engines.base import Request
from vtforge.selfplay.loop import Options, run_task
from vtforge.selfplay.sampling import Schedule
from vtforge.selfplay.selection import Weights
from vtforge.selfplay.task import SelfplayTask
from vtforge.transport import sink_from_config

pytestmark = pytest.mark.slow

ADD = [{"role": "user", "content": "Write a Python function add(a, b) that returns a + b."}]
COLOURS = [{"role": "user", "content": "Name three colours."}]


def test_llamacpp_greedy_is_deterministic_batches_come_back_in_order_and_overlong_is_refused(
    real_llamacpp,
) -> None:
    engine = real_llamacpp
    overlong = [{"role": "user", "content": "word " * 5000}]
    requests = [
        Request(ADD, 0.0, 16),
        Request(COLOURS, 0.0, 16),
        Request(ADD, 1.0, 16, seed=7),
        Request(ADD, 0.0, 16),
        Request(overlong, 0.0, 16),
    ]
    assert engine.order(requests) == [0, 2, 3, 1, 4]  # equal prompts back to back
    out = engine.generate(requests)

    assert out[0].text and out[0].text == out[3].text  # greedy: the same request, the same text
    assert engine.generate([requests[1]])[0].text == out[1].text  # order restored after regrouping
    assert engine.generate([requests[2]])[0].text == out[2].text  # a seeded sample is reproducible
    # the repeated prompt came from the KV cache (all but its last token, which llama.cpp re-evaluates)
    assert out[3].cached_prompt_tokens == out[3].prompt_tokens - 1
    assert out[0].prompt_tokens == engine.count_tokens(ADD)  # our count is llama.cpp's own
    for c in out[:4]:
        assert c.error is None and not c.synthetic and c.model == C.DEFAULT_MODEL
        assert 0 < c.completion_tokens <= 16 and c.stop_reason in ("stop", "length")
    refused = out[4]
    assert refused.text == "" and refused.stop_reason == "error" and refused.prompt_tokens > 4096
    assert refused.error == (
        f"prompt of {refused.prompt_tokens} tokens + max_tokens 16 exceed the context window of 4096"
    )


def test_prompts_are_trimmed_to_the_budget_with_the_real_tokenizer(real_llamacpp) -> None:
    engine = real_llamacpp
    module = "\n\n".join(f"def function_{i}(x):\n    return x + {i}\n" for i in range(2000))  # ~57k chars
    budget = 4096 - 512
    messages = prompts.bugfixer_messages(
        "function_3 adds the wrong number.",
        {"pkg/functions.py": module},
        budget_tokens=budget,
        count=engine.count_tokens,
    )
    used = engine.count_tokens(messages)
    assert budget - 64 <= used <= budget  # as much of the file as fits, and no more
    assert "# ... (file clipped to fit the context)" in messages[1]["content"]
    assert "def function_0(x):" in messages[1]["content"]  # a clipped file keeps its head

    # without a tokenizer the estimate (2 characters a token) is conservative for this model
    estimated = prompts.bugfixer_messages(
        "function_3 adds the wrong number.", {"pkg/functions.py": module}, budget_tokens=budget
    )
    assert prompts.estimate_tokens(estimated) <= budget
    assert engine.count_tokens(estimated) <= budget

    # a file list too long for the budget is cut, and says how many paths it left out
    tree = [f"pkg/module_{i:05d}.py" for i in range(3000)]
    located = prompts.localization_messages(
        "Which file?", tree, kind="source", limit=5, budget_tokens=1024, count=engine.count_tokens
    )
    shown = [line for line in located[1]["content"].splitlines() if line.startswith("pkg/module_")]
    assert engine.count_tokens(located) <= 1024 and 0 < len(shown) < 3000
    assert f"... and {3000 - len(shown)} more files" in located[1]["content"]


def test_llamacpp_completions_are_capped_and_a_window_too_small_for_a_prompt_is_named(
    workspace: Path, real_llamacpp
) -> None:
    from vtforge.cli._common import CliError
    from vtforge.cli.selfplay import request_window
    from vtforge.selfplay.engines.replay_engine import ReplayEngine

    sp = load_config().forge.selfplay
    assert Schedule.for_engine(sp, real_llamacpp).max_tokens == 512  # llamacpp_max_new_tokens
    assert Schedule.for_engine(sp, real_llamacpp, 1000).max_tokens == 1000  # --max-new-tokens wins
    assert Schedule.for_engine(sp, ReplayEngine([])).max_tokens == 4096  # other engines: max_new_tokens
    cfg = load_config()
    assert request_window(cfg, real_llamacpp, 512) == 4096  # the model's window caps context_tokens
    with pytest.raises(CliError) as err:
        request_window(cfg, real_llamacpp, 3500, lever="--max-new-tokens")
    assert str(err.value) == (
        "--max-new-tokens = 3500 leaves 596 of the 4096-token window (min of forge.selfplay.context_tokens, "
        "forge.context.inference_tokens and the model) for prompts; self-play needs at least 1024: "
        "lower it to ≤ 3072"
    )


def _rollout_rows(landing: Path) -> list[tuple[Any, ...]]:
    con = duckdb.connect()
    try:
        return con.execute(
            "SELECT envelope.run_id, rollout_id, envelope.attributes['phase'], envelope.synthetic, role, "
            "parse_status, outcome, messages[len(messages)].content, completion_tokens, model "
            f"FROM read_parquet('{landing}/rollout/**/*.parquet')"
        ).fetchall()
    finally:
        con.close()


def test_a_round_on_the_real_model_archives_each_sample_as_it_finishes(
    workspace: Path, toy_task: SelfplayTask, box: Sandbox, real_llamacpp
) -> None:
    cfg = load_config()
    schedule = Schedule(0.0, 1.0, 0, 96)  # no retries: one attempt per sample keeps it short
    log: list[tuple[str, Any]] = []

    # 1. interrupted when the matrix starts: the samples drawn so far are in the landing zone
    class Interrupted(Exception):
        pass

    def stop_at_matrix(step: str) -> None:
        log.append(("step", step))
        if step.startswith("base run"):
            raise Interrupted

    with sink_from_config(cfg, producer="test") as sink:

        def stream(events: list[dict]) -> None:
            log.append(("events", [e["envelope"]["event_type"] for e in events]))
            sink.emit_many(events)

        with pytest.raises(Interrupted):
            run_task(
                toy_task,
                real_llamacpp,
                box,
                Options(patches=1, tests=1, run_id="cut", policy_version="smollm2", synthesis=False),
                schedule=schedule,
                weights=Weights(),
                progress=stop_at_matrix,
                stream=stream,
            )
    cut = [r for r in _rollout_rows(cfg.landing_dir) if r[0] == "cut"]
    # two localizations, one BugFixer and one TestWriter sample, each archived as it was parsed
    assert sorted(r[4] for r in cut) == ["bugfixer", "localizer", "localizer", "testwriter"]
    assert all(r[2] == "sampled" and r[3] is False and r[7] for r in cut)  # real, with the raw text
    streamed = [kinds for what, kinds in log if what == "events"]
    assert streamed == [["rollout"]] * 4

    # 2. a whole round: the same samples stream first, the final events follow at the end
    log.clear()
    with sink_from_config(cfg, producer="test") as sink:

        def stream_all(events: list[dict]) -> None:
            log.append(("events", [e["envelope"]["event_type"] for e in events]))
            sink.emit_many(events)

        report = run_task(
            toy_task,
            real_llamacpp,
            box,
            Options(patches=2, tests=2, run_id="real", policy_version="smollm2", synthesis=False),
            schedule=schedule,
            weights=Weights(),
            progress=lambda step: log.append(("step", step)),
            stream=stream_all,
        )
        sink.emit_many(report.events)
    assert report.error is None and report.matrix is not None
    base_at = next(i for i, (what, step) in enumerate(log) if what == "step" and step.startswith("base run"))
    streamed_at = [i for i, (what, _) in enumerate(log) if what == "events"]
    assert len(streamed_at) == len(report.rollouts) == 6 and max(streamed_at) < base_at
    assert [e["envelope"]["event_type"] for e in report.events].count("execution_result") >= 1

    # real completions: not synthetic, raw text kept; a parse failure is data, rewarded 0
    rewards = {e["rollout_id"]: e for e in report.events if e["envelope"]["event_type"] == "reward_assigned"}
    for r in report.rollouts:
        assert not r.completion.synthetic and r.completion.model == C.DEFAULT_MODEL
        assert r.completion.text and 0 < r.completion.completion_tokens <= 96
        if r.role in ("bugfixer", "testwriter") and not r.ok:
            assert rewards[r.rollout_id]["reward"] == 0.0
            assert rewards[r.rollout_id]["subject_kind"] == "rollout"
    rows = [r for r in _rollout_rows(cfg.landing_dir) if r[0] == "real"]
    texts = {r.rollout_id: r.completion.text for r in report.rollouts}
    assert sorted(r[2] or "final" for r in rows) == ["final"] * 6 + ["sampled"] * 6
    assert all(r[3] is False and r[7] == texts[r[1]] and r[9] == C.DEFAULT_MODEL for r in rows)
    failures = [r for r in report.rollouts if not r.ok]
    assert sum(1 for r in rows if r[2] == "sampled" and r[5] != "ok") == len(failures)

    # the warehouse keeps one rollout per sample (the final one), and no event id is reused
    from vtforge.warehouse.checks import unique_event_ids
    from vtforge.warehouse.refresh import refresh

    refresh(cfg, exports=False)
    db = duckdb.connect(str(cfg.duckdb_path), read_only=True)
    try:
        kept = db.execute(
            "SELECT rollout_id, outcome, synthetic FROM rollouts WHERE run_id = 'real'"
        ).fetchall()
        assert unique_event_ids(db).passed
    finally:
        db.close()
    assert len(kept) == 6 and not any(synthetic for _, _, synthetic in kept)
    finals = {
        e["rollout_id"]: e["outcome"] for e in report.events if e["envelope"]["event_type"] == "rollout"
    }
    assert {rid: outcome for rid, outcome, _ in kept} == finals


def test_transformers_batches_equal_one_at_a_time(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="needs the train extra (torch)")
    pytest.importorskip("transformers", reason="needs the train extra (transformers)")
    from vtforge.selfplay.engines.local_engines import TransformersEngine
    from vtforge.trainers.tiny import tiny_model, train_tokenizer

    tokenizer = train_tokenizer(["def add(a, b):\n    return a + b\n", "<<<<<<< SEARCH\n=======\n"])
    model = tiny_model(tokenizer, seed=0)
    with torch.no_grad():  # larger weights: a random model whose greedy text depends on its prompt
        for p in model.parameters():
            p.mul_(8.0)
    engine = TransformersEngine("tiny", model=model, tokenizer=tokenizer, device="cpu", batch_size=4)
    batch_rows: list[int] = []
    generate = engine.lm.generate

    def counting(**kwargs: Any) -> Any:
        batch_rows.append(int(kwargs["input_ids"].shape[0]))
        return generate(**kwargs)

    engine.lm.generate = counting
    prompts_ = ["Fix add", "def add(a, b): return a - b is wrong, please fix the function", "x"]
    requests = [Request([{"role": "user", "content": p}], 0.0, 12) for p in prompts_]
    requests.append(Request([{"role": "user", "content": "Fix add"}], 1.0, 12, seed=3))
    requests.append(Request([{"role": "user", "content": "ab " * 5000}], 0.0, 12))  # over 4,096 positions
    out = engine.generate(requests)
    assert sorted(batch_rows) == [1, 3]  # the three greedy requests in one call, the sampled one apart
    assert len(out) == 5 and out[4].error is not None and "context window of 4096" in out[4].error

    batch_rows.clear()
    single = [engine.generate([r])[0] for r in requests[:3]]
    assert batch_rows == [1, 1, 1]
    assert [c.text for c in out[:3]] == [c.text for c in single]
    assert len({c.text for c in single}) == 3  # the prompts really lead to different texts
    assert [c.completion_tokens for c in out[:3]] == [c.completion_tokens for c in single]
    assert [c.prompt_tokens for c in out[:3]] == [engine.count_tokens(r.messages) for r in requests[:3]]


def test_cli_model_option_errors_are_one_line(workspace: Path) -> None:
    (workspace / "tasks.jsonl").write_text("")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vtforge", "selfplay", "--tasks", "tasks.jsonl", *args],
            cwd=workspace,
            capture_output=True,
            text=True,
            timeout=120,
        )

    unknown = run("--model", "no-such-model")
    assert unknown.returncode == 1
    assert "--model no-such-model: not a known model (smollm2-135m) and no such path" in unknown.stderr
    replay = run("--model", "smollm2-135m", "--engine", "replay")
    assert replay.returncode == 1 and "--model does not apply to --engine replay" in replay.stderr
