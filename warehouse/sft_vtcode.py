"""Curated SFT examples in VT Code's tool format: ``trl/sft_vtcode.parquet``.

``sft_examples`` answers are SEARCH/REPLACE blocks; ``rollout_record`` turns one into a renderer
record and ``vtforge.vtcode.render`` (the renderer the Stage 1 corpus uses too) writes it as VT
Code ``apply_patch`` / ``exec_command`` calls. The file is TRL's conversational layout: ``messages``
(OpenAI shape, ``tool_calls`` with JSON-string arguments, ``tool`` turns) and ``tools`` (the pinned
vtcode tool schema as a JSON string, which TRL parses per row). Upsampled copies of a rollout are
rendered once.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from vtforge.selfplay.parsing import parse_blocks
from vtforge.selfplay.prompts import EDIT_FORMAT
from vtforge.selfplay.reasoning import split_reasoning
from vtforge.vtcode.render import RENDER_FORMAT, RenderError, chatml, messages_for, tools_json, verify

SFT_VTCODE = "trl/sft_vtcode.parquet"
QUERY = """
    SELECT e.example_id, e.task_id, e.role, e.source, e.stage, e.synthetic, e.rollout_id, e.messages,
           t.repo, t.license, t.fail_to_pass
    FROM sft_examples e LEFT JOIN tasks t USING (task_id)
    WHERE e.split = 'train' ORDER BY e.example_id"""


def rollout_record(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """A curated SFT example (``sft_examples`` row: ``messages`` with a SEARCH/REPLACE answer,
    optionally the task's ``repo``, ``license``, ``fail_to_pass``) as a renderer record; None when
    its answer holds neither an edit block nor a unified diff (test writers answer with one). The
    FAIL_TO_PASS run is shown for every role but the test writer's (an accepted fix passes them; a
    written test is not those tests)."""
    messages = list(row.get("messages") or [])
    users = [m for m in messages if m.get("role") == "user"]
    answers = [m for m in messages if m.get("role") == "assistant"]
    if not users or not answers:
        return None
    split = split_reasoning(answers[-1].get("content") or "")
    _, blocks = parse_blocks(split.answer)
    diff = _unified_diff(split.answer) if not blocks else None
    if not blocks and not diff:
        return None
    f2p = [str(t) for t in row.get("fail_to_pass") or []]
    tests = None
    if f2p and row.get("role") != "testwriter":
        tests = {
            "command": "python -m pytest -q " + " ".join(f2p),
            "outcome": f"{len(f2p)} passed (FAIL_TO_PASS: {', '.join(f2p)})",
            "exit_code": 0,
        }
    return {
        "id": f"warehouse:{row.get('example_id') or row.get('rollout_id')}",
        "source": "warehouse",
        "synthetic": bool(row.get("synthetic")),
        "repo": str(row.get("repo") or ""),
        "origin": f"rollout:{row.get('rollout_id')}",
        "license": row.get("license"),
        "instruction": str(users[-1].get("content") or "").replace(EDIT_FORMAT, "").strip(),
        "reasoning": split.reasoning,
        "blocks": [
            {
                "path": b.path,
                "search": "".join(f"{line}\n" for line in b.search),
                "replace": "".join(f"{line}\n" for line in b.replace),
            }
            for b in blocks
        ],
        "diff": diff,
        "tests": tests,
    }


def _unified_diff(answer: str) -> str | None:
    """The unified diff an answer holds (test writers answer with one), from its first header."""
    lines = answer.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.startswith(("diff --git ", "--- ")) and any(
            x.startswith("+++ ") for x in lines[index : index + 3]
        ):
            return "".join(lines[index:])
    return None


def _schema() -> Any:
    import pyarrow as pa

    call = pa.struct(
        [
            ("id", pa.string()),
            ("type", pa.string()),
            ("function", pa.struct([("name", pa.string()), ("arguments", pa.string())])),
        ]
    )
    message = pa.struct(
        [
            ("role", pa.string()),
            ("content", pa.string()),
            ("tool_calls", pa.list_(call)),
            ("tool_call_id", pa.string()),
            ("name", pa.string()),
        ]
    )
    return pa.schema(
        [
            ("example_id", pa.string()),
            ("task_id", pa.string()),
            ("role", pa.string()),
            ("source", pa.string()),
            ("messages", pa.list_(message)),
            ("tools", pa.string()),
        ]
    )


@dataclass
class Rendered:
    """What ``write_sft_vtcode`` wrote: rows, their breakdown, and the examples it left out, by reason;
    ``rendered``: the distinct inputs it had to render (the others came from the render cache)."""

    rows: int = 0
    breakdown: dict[str, Counter] = field(default_factory=dict)
    dropped: Counter = field(default_factory=Counter)
    rendered: int = 0


CACHE_DIR = ".render-cache"  # beside the exports: rendered chats by input hash, one folder per format
MAX_CACHE_PARTS = 16  # past this many part files the cache is rewritten with only the inputs in use
# what a rendering depends on (upsampled copies of a rollout share it, so they are rendered once)
_INPUT_HASH = "hash(e.rollout_id, e.role, e.messages, e.synthetic, t.repo, t.license, t.fail_to_pass)"


def write_sft_vtcode(con: duckdb.DuckDBPyConnection, target: Path) -> Rendered:
    """Render the train split's SFT examples into ``target`` (temp file, then rename).

    Rendering is Python (``vtforge.vtcode.render``: a few thousand chats a second), so each distinct
    input is rendered once and kept in a cache beside the exports, keyed by a hash of what the
    rendering reads and by the renderer's format: a refresh that added 1 % of the examples renders
    1 %; the file itself is then written by DuckDB from the cache."""
    cache = target.parent.parent / CACHE_DIR / _cache_name()
    cache.mkdir(parents=True, exist_ok=True)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _sft_vtcode_in AS "
        + QUERY.replace("SELECT e.example_id", f"SELECT {_INPUT_HASH} AS input_hash, e.example_id", 1)
    )
    try:
        out = Rendered(rendered=_render_missing(con, cache))
        parts = f"read_parquet('{cache}/*.parquet')"
        joined = f"_sft_vtcode_in i JOIN {parts} c USING (input_hash)"
        out.breakdown = {name: Counter() for name in ("source", "stage", "role")}
        groups = con.execute(
            f"SELECT i.source, i.stage, i.role, c.dropped, count(*) FROM {joined} GROUP BY ALL"
        ).fetchall()
        for source, stage, role, dropped, n in groups:  # one pass over the join for every count
            if dropped is not None:
                out.dropped[str(dropped)] += int(n)
                continue
            for name, value in (("source", source), ("stage", stage), ("role", role)):
                out.breakdown[name][str(value)] += int(n)
        out.rows = sum(out.breakdown["role"].values())
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        con.execute(
            # the tools column (one constant JSON) is added after the sort: sorted along, it is
            # copied into every row (2.4 GB at 1M events; 10 s instead of 2.4 s)
            "COPY (SELECT *, ?::VARCHAR AS tools FROM ("
            "SELECT i.example_id, i.task_id, i.role, i.source, c.messages "
            f"FROM {joined} WHERE c.dropped IS NULL ORDER BY i.example_id)) "
            f"TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)",
            [tools_json()],
        )
        os.replace(tmp, target)
        _compact(con, cache)
    finally:
        con.execute("DROP TABLE IF EXISTS _sft_vtcode_in")
    return out


def _cache_name() -> str:
    """One cache folder per renderer format and DuckDB version (whose ``hash`` keys the entries)."""
    return f"{RENDER_FORMAT}-duckdb{duckdb.__version__}".replace("/", "_")


def _render_missing(con: duckdb.DuckDBPyConnection, cache: Path) -> int:
    """Render the inputs the cache lacks into a new part file; how many."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    have = f"read_parquet('{cache}/*.parquet')" if any(cache.glob("*.parquet")) else None
    missing = "SELECT * FROM _sft_vtcode_in" + (
        f" WHERE input_hash NOT IN (SELECT input_hash FROM {have})" if have else ""
    )
    cursor = con.execute(f"SELECT * FROM ({missing}) QUALIFY row_number() OVER (PARTITION BY input_hash) = 1")
    names = [d[0] for d in cursor.description]
    hashes: list[int] = []
    chats: list[list[dict[str, Any]] | None] = []
    dropped: list[str | None] = []
    while batch := cursor.fetchmany(2048):
        for values in batch:
            row = dict(zip(names, values, strict=True))
            rendered = _render(row)
            hashes.append(int(row["input_hash"]))
            chats.append(None if isinstance(rendered, str) else rendered)
            dropped.append(rendered if isinstance(rendered, str) else None)
    if hashes or not any(cache.glob("*.parquet")):  # an empty part too: the join needs one file
        messages = _schema().field("messages").type
        table = pa.table(
            {
                "input_hash": pa.array(hashes, pa.uint64()),
                "messages": pa.array(chats, messages),
                "dropped": dropped,
            }
        )
        _add_part(cache, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
    return len(hashes)


def _add_part(cache: Path, write: Callable[[Path], object]) -> None:
    """A new part file of the cache: ``write`` fills a hidden temp file, renamed into place."""
    tmp = cache / f".part-{uuid.uuid4().hex}.tmp"
    write(tmp)
    os.replace(tmp, cache / f"part-{time.time_ns()}-{uuid.uuid4().hex[:8]}.parquet")


def _compact(con: duckdb.DuckDBPyConnection, cache: Path) -> None:
    """Past ``MAX_CACHE_PARTS`` part files, keep one file of the entries still in use."""
    parts = sorted(cache.glob("*.parquet"))
    if len(parts) <= MAX_CACHE_PARTS:
        return
    _add_part(
        cache,
        lambda tmp: con.execute(
            f"COPY (SELECT c.* FROM read_parquet('{cache}/*.parquet') c "
            "SEMI JOIN _sft_vtcode_in i USING (input_hash)) "
            f"TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)"
        ),
    )
    for part in parts:
        part.unlink()


def _render(row: Mapping[str, Any]) -> list[dict[str, Any]] | str:
    record = rollout_record(row)
    if record is None:
        return "no_edit"
    try:
        messages = messages_for(record)
        verify(record, chatml(messages))
    except RenderError:
        return "render_mismatch"
    return [{"tool_calls": None, "tool_call_id": None, "name": None, **m} for m in messages]
