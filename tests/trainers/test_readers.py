"""Readers: filters, Arrow batches, the answer-only mask and the recorded truncation."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from vtforge.fixtures.warehouse import build_warehouse
from vtforge.trainers.readers import (
    ReaderError,
    ReadFilter,
    TruncationLog,
    WarehouseReader,
    connect,
    iter_replay,
    iter_rl_prompts,
    iter_sft_examples,
    to_tensors,
)
from vtforge.trainers.tiny import IM_END, train_tokenizer


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = build_warehouse(
        tmp_path_factory.mktemp("wh") / "w.duckdb", sft=12, rl={"easy": 2, "medium": 3, "hard": 2}, replay=4
    )
    con = duckdb.connect(str(path))
    con.execute(
        "UPDATE sft_examples SET split = 'eval', policy_version = 'v2' WHERE example_id >= 'ex000009'"
    )
    con.execute("UPDATE replay_buffer SET reward = 0.0 WHERE rollout_id = 'r00001'")
    con.close()
    return path


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(["Issue parse config value"])


def test_filters_by_split_slice_and_version(warehouse: Path) -> None:
    reader = WarehouseReader(connect(warehouse), batch_rows=2)
    rows = list(
        reader.rows("sft_examples", ReadFilter(split="train", slice={"role": ["bugfixer", "localizer"]}))
    )
    assert {r["role"] for r in rows} == {"bugfixer", "localizer"}
    assert all(r["split"] == "train" for r in rows) and len(rows) == 6
    eval_rows = list(reader.rows("sft_examples", ReadFilter(policy_version="v2")))
    assert [r["example_id"] for r in eval_rows] == ["ex000009", "ex000010", "ex000011"]
    batches = list(reader.batches("sft_examples", ReadFilter(split="train")))
    assert [b.num_rows for b in batches] == [2, 2, 2, 2, 1]  # streamed, not materialised at once


def test_unknown_columns_and_tables_are_clear_errors(warehouse: Path, tmp_path: Path) -> None:
    reader = WarehouseReader(connect(warehouse))
    with pytest.raises(ReaderError, match="no column 'colour'"):
        list(reader.rows("sft_examples", ReadFilter(slice={"colour": "red"})))
    with pytest.raises(ReaderError, match="unknown table"):
        reader.columns("users; DROP TABLE x")
    with pytest.raises(ReaderError, match="warehouse not found"):
        connect(tmp_path / "missing.duckdb")
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    with pytest.raises(ReaderError, match="sft_examples is missing"):
        WarehouseReader(connect(empty)).columns("sft_examples")


def test_mask_covers_exactly_the_answer_and_its_end_token(warehouse: Path, tok) -> None:
    reader = WarehouseReader(connect(warehouse))
    rows = list(iter_sft_examples(reader, tok, budget=4096, policy="skip", filt=ReadFilter(limit=1)))
    (row,) = rows
    answer = tok.decode([t for t, m in zip(row["input_ids"], row["assistant_masks"], strict=True) if m])
    assert answer.startswith("<think>The bug is in module_0.py")
    assert IM_END in answer and "You are the" not in answer
    prompt = tok.decode([t for t, m in zip(row["input_ids"], row["assistant_masks"], strict=True) if not m])
    assert prompt.endswith("<|im_start|>assistant\n")
    tensors = to_tensors(rows, tok.pad_token_id)
    labels = tensors["labels"][0]
    assert int((labels != -100).sum()) == sum(row["assistant_masks"])


def test_truncation_is_recorded_not_silent(warehouse: Path, tok, tmp_path: Path) -> None:
    reader = WarehouseReader(connect(warehouse))
    log = TruncationLog()
    kept = list(iter_sft_examples(reader, tok, budget=120, policy="drop_oldest_context", log=log))
    summary = log.summary()
    assert summary["kept"] + summary["dropped_turns"] == len(kept)
    assert summary["skipped"] == len(log.records) - summary["dropped_turns"] > 0
    assert all(len(r["input_ids"]) <= 120 for r in kept)
    log.write_jsonl(tmp_path / "t.jsonl")
    assert len((tmp_path / "t.jsonl").read_text().splitlines()) == len(log.records)


def test_rl_prompts_and_replay(warehouse: Path, tok) -> None:
    reader = WarehouseReader(connect(warehouse))
    prompts = list(
        iter_rl_prompts(
            reader,
            tok,
            budget=4096,
            policy="skip",
            reserve=64,
            filt=ReadFilter(slice={"difficulty_bucket": "medium"}),
        )
    )
    assert [p["difficulty_bucket"] for p in prompts] == ["medium"] * 3
    assert prompts[0]["prompt"][0]["role"] == "user" and prompts[0]["fail_to_pass"]
    assert all(p["prompt"][-1]["role"] != "assistant" for p in prompts)
    replay = list(iter_replay(reader))
    assert [r["rollout_id"] for r in replay] == [
        "r00000",
        "r00002",
        "r00003",
    ]  # only successes, best rank first
