"""The replay engine, and the openai engine against a local OpenAI-compatible server it starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vtforge.selfplay.engines.base import Request
from vtforge.selfplay.engines.openai_engine import OpenAIEngine
from vtforge.selfplay.engines.replay_engine import ReplayEngine
from vtforge.selfplay.parsing import ParseFailure, parse_edit
from vtforge.selfplay.sampling import Schedule, sample


def _req(role: str, index: int, retry: int = 0, task: str = "t1") -> Request:
    return Request(
        messages=[{"role": "user", "content": "fix"}],
        temperature=0.0,
        max_tokens=8,
        task_id=task,
        role=role,
        sample_index=index,
        retry_index=retry,
    )


def test_replay_from_jsonl_matches_task_role_and_index(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    rows = [
        {
            "task_id": "t1",
            "role": "bugfixer",
            "sample_index": i,
            "completion": f"c{i}",
            "synthetic": True,
            "labels": {"kind": "gold"},
        }
        for i in range(3)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    engine = ReplayEngine.from_jsonl(path)
    out = engine.generate([_req("bugfixer", 2), _req("bugfixer", 0)])
    assert [c.text for c in out] == ["c2", "c0"] and out[0].synthetic and out[0].labels == {"kind": "gold"}
    assert engine.generate([_req("bugfixer", 0, retry=1)])[0].text == "c1"  # the next unused record
    missing = engine.generate([_req("testwriter", 0)])[0]
    assert missing.error and missing.text == ""
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:1"):
        ReplayEngine.from_jsonl(tmp_path / "bad.jsonl")


def test_schedule_and_retries_until_a_diff() -> None:
    files = {"m.py": "x = 1\n"}
    good = "### m.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE"
    records = [
        {"task_id": "t", "role": "bugfixer", "sample_index": 0, "completion": good},
        {"task_id": "t", "role": "bugfixer", "sample_index": 1, "completion": "no diff here"},
        {"task_id": "t", "role": "bugfixer", "sample_index": 2, "completion": "<think>unfinished"},
        {"task_id": "t", "role": "bugfixer", "sample_index": 3, "completion": good.replace("x = 2", "x = 3")},
    ]

    def parse(text: str):
        edit = parse_edit(text, files.get, list(files))
        return edit.status, edit

    rollouts = sample(
        ReplayEngine(records),
        run_id="r",
        task_id="t",
        role="bugfixer",
        messages=[{"role": "user", "content": "fix"}],
        n=2,
        parse=parse,
        schedule=Schedule(0.0, 1.0, 2, 16),
    )
    by = {(r.sample_index, r.retry_index): r for r in rollouts}
    assert by[(0, 0)].temperature == 0.0 and by[(0, 0)].ok
    assert by[(1, 0)].temperature == 1.0 and by[(1, 0)].status == ParseFailure.NO_EDIT_BLOCKS
    assert by[(1, 1)].status == ParseFailure.UNTERMINATED_REASONING and by[(1, 1)].temperature == 1.0
    assert by[(1, 2)].ok and "x = 3" in by[(1, 2)].parsed.diff
    assert len(rollouts) == 4 and len({r.rollout_id for r in rollouts}) == 4


def test_openai_engine_reports_an_unreachable_server() -> None:
    engine = OpenAIEngine("http://127.0.0.1:9/v1", "m", retries=1, timeout_s=2, backoff_s=0.01)
    (out,) = engine.generate([_req("bugfixer", 0)])
    assert out.error and out.text == "" and out.stop_reason == "error"
    engine.close()


@pytest.mark.slow
def test_openai_engine_against_a_local_server_with_a_tiny_model(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="needs the train extra (torch)")
    pytest.importorskip("transformers", reason="needs the train extra (transformers)")
    from vtforge.selfplay.engines.local_engines import TransformersEngine
    from vtforge.serve import ModelServer
    from vtforge.trainers.tiny import tiny_model, train_tokenizer

    tokenizer = train_tokenizer(
        ["def add(a, b):\n    return a + b\n", "<<<<<<< SEARCH\n=======\n>>>>>>> REPLACE"]
    )
    model = tiny_model(tokenizer, seed=0)
    model_dir = tmp_path / "tiny"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    server = ModelServer(TransformersEngine(str(model_dir), device="cpu"), model_name="tiny").start()
    try:
        engine = OpenAIEngine(server.base_url, "tiny", api_key="local", concurrency=2, retries=1)
        requests = [
            Request(messages=[{"role": "user", "content": "Fix add"}], temperature=t, max_tokens=12, seed=i)
            for i, t in enumerate((0.0, 0.0, 1.0))
        ]
        out = engine.generate(requests)
        engine.close()
    finally:
        server.stop()
    assert all(c.error is None for c in out), [c.error for c in out]
    assert out[0].text == out[1].text  # greedy is deterministic
    assert all(c.completion_tokens > 0 and c.prompt_tokens > 0 and c.model == "tiny" for c in out)
    assert all(c.stop_reason in ("stop", "length") for c in out)
    assert server.requests == 3
