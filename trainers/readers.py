"""Readers: warehouse tables → Arrow record batches → tokenized examples and tensors.

Rows stream from DuckDB in Arrow record batches (``fetch_record_batch``), so a large table is never
materialised in Python at once. Filters are by split, slice (equality or IN on any of the table's
own columns, e.g. ``role`` or ``difficulty_bucket``) and policy version; column names are checked
against the table and values are bound as parameters, never pasted into SQL.

The context budget is enforced with the run's tokenizer through ``vtforge.trainers.context``; what the
truncation policy did to each row is kept in a ``TruncationLog``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from vtforge.trainers.context import Fit, Message, fit_messages, render

TABLES = ("sft_examples", "rl_prompts", "replay_buffer", "curriculum_gates")
DEFAULT_BATCH_ROWS = 1024


class ReaderError(RuntimeError):
    """A table or column the reader cannot use; the message names it and the warehouse file."""


@dataclass(frozen=True)
class ReadFilter:
    """Which rows to read. ``slice`` maps a column to a value or a list of values."""

    split: str | None = None
    policy_version: str | None = None
    slice: Mapping[str, Any] = field(default_factory=dict)
    limit: int | None = None


@dataclass
class TruncationLog:
    """What the truncation policy did: counts by action, and one record per row it changed."""

    counts: Counter = field(default_factory=Counter)
    records: list[dict[str, Any]] = field(default_factory=list)
    shortest_skipped: int | None = None  # fewest tokens any skipped row could have been cut to

    def add(self, row_id: str, fit: Fit) -> None:
        self.counts[fit.action] += 1
        needed = fit.extra.get("min_tokens")
        if needed is not None and (self.shortest_skipped is None or needed < self.shortest_skipped):
            self.shortest_skipped = int(needed)
        if fit.action != "kept":
            self.records.append(
                {
                    "id": row_id,
                    "action": fit.action,
                    "tokens_before": fit.tokens_before,
                    "tokens_after": fit.tokens_after,
                    "turns_dropped": fit.turns_dropped,
                    "reason": fit.reason,
                }
            )

    def skip(self, row_id: str, reason: str, tokens: int = 0) -> None:
        self.counts["skipped"] += 1
        self.records.append(
            {
                "id": row_id,
                "action": "skipped",
                "tokens_before": tokens,
                "tokens_after": 0,
                "turns_dropped": 0,
                "reason": reason,
            }
        )

    def summary(self) -> dict[str, int]:
        return {k: int(self.counts.get(k, 0)) for k in ("kept", "dropped_turns", "skipped")}

    def write_jsonl(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as fh:
            for record in self.records:
                fh.write(json.dumps(record) + "\n")


def connect(path: str | Path) -> duckdb.DuckDBPyConnection:
    """Open a snapshot of the warehouse read-only, so a long training read never blocks the
    pipeline's single DuckDB writer (and never fails while a run is writing); a missing file is a
    clear error, not an empty database."""
    from vtforge.warehouse.connection import snapshot

    path = Path(path)
    if not path.is_file():
        raise ReaderError(f"warehouse not found: {path} (run `vtforge materialize` first)")
    try:
        snap = snapshot(path)
        if snap is None:
            raise ReaderError(f"warehouse not found: {path} (run `vtforge materialize` first)")
        return duckdb.connect(str(snap), read_only=True)
    except duckdb.IOException as exc:
        raise ReaderError(f"cannot open {path} read-only: {exc}") from None


class WarehouseReader:
    """Streams filtered rows of one warehouse table as Arrow record batches."""

    def __init__(self, con: duckdb.DuckDBPyConnection, *, batch_rows: int = DEFAULT_BATCH_ROWS) -> None:
        self.con = con
        self.batch_rows = batch_rows

    def columns(self, table: str) -> list[str]:
        if table not in TABLES:
            raise ReaderError(f"unknown table {table!r}; readers know {', '.join(TABLES)}")
        rows = self.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position",
            [table],
        ).fetchall()
        if not rows:
            raise ReaderError(f"table {table} is missing from the warehouse (run `vtforge materialize`)")
        return [r[0] for r in rows]

    def query(
        self, table: str, filt: ReadFilter, columns: Sequence[str] | None = None, order_by: str | None = None
    ) -> tuple[str, list[Any]]:
        known = self.columns(table)
        wanted = list(columns) if columns else known
        for name in [*wanted, *filt.slice]:
            if name not in known:
                raise ReaderError(f"table {table} has no column {name!r} (has: {', '.join(known)})")
        where, params = [], []
        if filt.split is not None:
            if "split" not in known:
                raise ReaderError(f"table {table} has no split column")
            where.append("split = ?")
            params.append(filt.split)
        if filt.policy_version is not None:
            if "policy_version" not in known:
                raise ReaderError(f"table {table} has no policy_version column")
            where.append("policy_version = ?")
            params.append(filt.policy_version)
        for name, value in filt.slice.items():
            if isinstance(value, list | tuple | set | frozenset):
                values = list(value)
                where.append(f'"{name}" IN ({", ".join("?" for _ in values)})')
                params.extend(values)
            else:
                where.append(f'"{name}" = ?')
                params.append(value)
        sql = f'SELECT {", ".join(f"{chr(34)}{c}{chr(34)}" for c in wanted)} FROM "{table}"'
        if where:
            sql += " WHERE " + " AND ".join(where)
        if order_by:
            if order_by.split()[0] not in known:
                raise ReaderError(f"table {table} has no column {order_by.split()[0]!r} to order by")
            sql += f" ORDER BY {order_by}"
        if filt.limit is not None:
            sql += f" LIMIT {int(filt.limit)}"
        return sql, params

    def batches(
        self,
        table: str,
        filt: ReadFilter = ReadFilter(),
        columns: Sequence[str] | None = None,
        order_by: str | None = None,
    ) -> Iterator[pa.RecordBatch]:
        sql, params = self.query(table, filt, columns, order_by)
        relation = self.con.sql(sql, params=params)
        # duckdb 2.x names it to_arrow_reader, 1.x fetch_arrow_reader; both stream record batches
        open_reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
        yield from open_reader(self.batch_rows)

    def rows(
        self,
        table: str,
        filt: ReadFilter = ReadFilter(),
        columns: Sequence[str] | None = None,
        order_by: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        for batch in self.batches(table, filt, columns, order_by):
            yield from batch.to_pylist()


# --- SFT -------------------------------------------------------------------------------------------


def row_messages(row: Mapping[str, Any]) -> list[Message]:
    """The chat of an ``sft_examples`` row; prompt/completion when ``messages`` is empty."""
    messages = row.get("messages")
    if messages:
        return [{"role": m["role"], "content": m["content"] or ""} for m in messages]
    return [
        {"role": "user", "content": row.get("prompt") or ""},
        {"role": "assistant", "content": row.get("completion") or ""},
    ]


def tokenize_chat(tokenizer: Any, messages: list[Message]) -> tuple[list[int], list[int]] | None:
    """``input_ids`` and a mask that is 1 on the answer's tokens only (its end-of-turn included).

    The prompt is what inference sees (the chat up to the answer plus the generation prompt); the
    answer is the rest of the rendered chat. None when the template does not render the prompt as
    a prefix of the whole chat (then the answer's tokens cannot be told apart safely).
    """
    prompt_text = render(tokenizer, messages[:-1], add_generation_prompt=True)
    full_text = render(tokenizer, messages)
    if not full_text.startswith(prompt_text):
        return None
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(full_text[len(prompt_text) :], add_special_tokens=False)["input_ids"]
    return prompt_ids + answer_ids, [0] * len(prompt_ids) + [1] * len(answer_ids)


SFT_COLUMNS = (
    "example_id",
    "task_id",
    "role",
    "messages",
    "prompt",
    "completion",
    "source",
    "synthetic",
    "upsample_index",
    "policy_version",
)


def tokenize_sft_row(
    tokenizer: Any, row: Mapping[str, Any], *, budget: int, policy: str, log: TruncationLog
) -> dict[str, Any] | None:
    """One ``sft_examples`` row fitted to ``budget`` and tokenized; None (and a log record) if skipped."""
    row_id = str(row.get("example_id"))
    messages = row_messages(row)
    if not messages or messages[-1]["role"] != "assistant" or not messages[-1]["content"]:
        log.skip(row_id, "no assistant answer as the last turn")
        return None
    tokenized = tokenize_chat(tokenizer, messages)
    if tokenized is not None and len(tokenized[0]) <= budget:  # the common case: one pass
        fit = Fit(messages, "kept", len(tokenized[0]), len(tokenized[0]))
    else:
        fit = fit_messages(tokenizer, messages, budget=budget, policy=policy, has_answer=True)
        if fit.messages is None:
            log.add(row_id, fit)
            return None
        tokenized = tokenize_chat(tokenizer, fit.messages)
    if tokenized is None:
        log.skip(row_id, "chat template does not render the prompt as a prefix of the chat")
        return None
    input_ids, mask = tokenized
    if len(input_ids) > budget:  # the two-part encoding can differ by a token at the seam
        log.skip(row_id, f"{len(input_ids)} tokens > budget {budget} after encoding", len(input_ids))
        return None
    log.add(row_id, fit)
    return {
        "input_ids": input_ids,
        "assistant_masks": mask,
        "example_id": row_id,
        "task_id": row.get("task_id"),
        "role": row.get("role"),
        "policy_version": row.get("policy_version"),
    }


def iter_sft_examples(
    reader: WarehouseReader,
    tokenizer: Any,
    *,
    budget: int,
    policy: str,
    filt: ReadFilter = ReadFilter(),
    log: TruncationLog | None = None,
) -> Iterator[dict[str, Any]]:
    """Tokenized SFT rows: ``input_ids``, ``assistant_masks`` and the row's identifying columns."""
    log = log if log is not None else TruncationLog()
    known = reader.columns("sft_examples")
    columns = [c for c in SFT_COLUMNS if c in known]
    for batch in reader.batches("sft_examples", filt, columns, order_by="example_id"):
        for row in batch.to_pylist():
            example = tokenize_sft_row(tokenizer, row, budget=budget, policy=policy, log=log)
            if example is not None:
                yield example


# --- RL prompts and replay ---------------------------------------------------------------------------

# repo_dir and test_patch are what the sandbox reward runs the patch with; the localization and
# baseline columns say where the prompt's files and bucket came from (older tables may lack some).
RL_COLUMNS = (
    "task_id",
    "prompt",
    "prompt_text",
    "repo",
    "base_commit",
    "repo_dir",
    "test_patch",
    "fail_to_pass",
    "pass_to_pass",
    "localized_files",
    "localized_from",
    "localization_policy",
    "baseline_success_rate",
    "baseline_samples",
    "baseline_source",
    "difficulty_bucket",
    "split",
)


def prompt_messages(row: Mapping[str, Any]) -> list[Message]:
    """The chat to generate from: ``prompt`` (chat messages, as TRL and verl take a prompt) without a
    trailing assistant turn, else ``prompt_text`` as one user turn."""
    prompt = row.get("prompt")
    chat = prompt if isinstance(prompt, list) else []
    messages = [{"role": m["role"], "content": m["content"] or ""} for m in chat]
    while messages and messages[-1]["role"] == "assistant":
        messages.pop()
    text = row.get("prompt_text") or (prompt if isinstance(prompt, str) else "")
    return messages or [{"role": "user", "content": text}]


def iter_rl_prompts(
    reader: WarehouseReader,
    tokenizer: Any,
    *,
    budget: int,
    policy: str,
    reserve: int,
    filt: ReadFilter = ReadFilter(),
    log: TruncationLog | None = None,
) -> Iterator[dict[str, Any]]:
    """RL prompts fitted to ``budget - reserve`` tokens (room left for the completion)."""
    log = log if log is not None else TruncationLog()
    known = reader.columns("rl_prompts")
    columns = [c for c in RL_COLUMNS if c in known]
    for batch in reader.batches("rl_prompts", filt, columns, order_by="task_id"):
        for row in batch.to_pylist():
            fit = fit_messages(
                tokenizer,
                prompt_messages(row),
                budget=budget,
                policy=policy,
                has_answer=False,
                reserve=reserve,
            )
            log.add(str(row["task_id"]), fit)
            if fit.messages is None:
                continue
            out = {k: row.get(k) for k in columns if k not in ("prompt", "prompt_text")}
            out["prompt"] = fit.messages
            out["prompt_text"] = row.get("prompt_text") or ""
            yield out


REPLAY_COLUMNS = (
    "task_id",
    "rollout_id",
    "policy_version",
    "prompt",
    "completion",
    "reward",
    "rank",
    "staleness",
)


def iter_replay(
    reader: WarehouseReader,
    *,
    filt: ReadFilter = ReadFilter(),
    min_reward: float = 1.0,
    max_staleness: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Successful samples from ``replay_buffer``, best rank first."""
    known = reader.columns("replay_buffer")
    columns = [c for c in REPLAY_COLUMNS if c in known]
    order = "rank" if "rank" in known else None
    for row in reader.rows("replay_buffer", filt, columns, order_by=order):
        if row.get("reward") is None or row["reward"] < min_reward or not row.get("completion"):
            continue
        if max_staleness is not None and (row.get("staleness") or 0) > max_staleness:
            continue
        yield row


# --- tensors --------------------------------------------------------------------------------------------


def to_tensors(examples: Sequence[Mapping[str, Any]], pad_token_id: int) -> dict[str, Any]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (-100 off the answer) as tensors."""
    import torch

    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e["input_ids"])
        row = torch.tensor(e["input_ids"], dtype=torch.long)
        ids[i, :n] = row
        attention[i, :n] = 1
        mask = torch.tensor(e["assistant_masks"], dtype=torch.bool)
        labels[i, :n] = torch.where(mask, row, torch.tensor(-100))
    return {"input_ids": ids, "attention_mask": attention, "labels": labels}
