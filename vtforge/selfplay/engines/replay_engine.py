"""Recorded completions played back: for demos, tests, and re-running selection on old rollouts.

A record is ``{"task_id", "role", "sample_index", "completion", ...}`` (optional ``reasoning``,
``retry_index``, ``synthetic``, ``labels``). A request gets the record with its task, role and
sample index; a retry takes the next unused record of that task and role; when none is left the
records of that task and role are reused in order, and with none at all the completion is an
error (``no recorded completion``). Sources: a JSONL file, or the warehouse's ``rollouts`` table.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from vtforge.selfplay.engines.base import Completion, Engine, Request
from vtforge.selfplay.reasoning import split_reasoning


class ReplayEngine(Engine):
    name = "replay"

    def __init__(self, records: Iterable[Mapping[str, Any]], *, model: str = "replay") -> None:
        self.model = model
        self._by_key: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
        for record in records:
            self._by_key[(str(record["task_id"]), str(record["role"]))].append(record)
        for items in self._by_key.values():
            items.sort(key=lambda r: (int(r.get("sample_index", 0)), int(r.get("retry_index", 0))))
        self._used: dict[tuple[str, str], set[int]] = defaultdict(set)
        self._lock = threading.Lock()

    @classmethod
    def from_jsonl(cls, path: str | Path) -> ReplayEngine:
        records = []
        for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not valid JSON: {exc.msg}") from None
        return cls(records, model=f"replay:{Path(path).name}")

    @classmethod
    def from_warehouse(cls, duckdb_path: str | Path, *, policy_version: str | None = None) -> ReplayEngine:
        """Completions of earlier self-play rollouts, from the warehouse's ``rollouts`` table."""
        import duckdb

        con = duckdb.connect(str(duckdb_path), read_only=True)
        try:
            sql = (
                "SELECT task_id, role, sample_index, retry_index, messages, reasoning, synthetic, "
                "policy_version FROM rollouts WHERE role IN ('localizer','bugfixer','testwriter','synthesis')"
            )
            params: list[Any] = []
            if policy_version is not None:
                sql += " AND policy_version = ?"
                params.append(policy_version)
            rows = con.execute(sql, params).fetchall()
        finally:
            con.close()
        records = []
        for task_id, role, sample, retry, messages, reasoning, synthetic, _policy in rows:
            answers = [m for m in messages or [] if m["role"] == "assistant"]
            if not answers:
                continue
            text = answers[-1]["content"]
            if reasoning and split_reasoning(text).reasoning is None:
                text = f"<think>{reasoning}</think>\n{text}"
            records.append(
                {
                    "task_id": task_id,
                    "role": role,
                    "sample_index": sample,
                    "retry_index": retry,
                    "completion": text,
                    "synthetic": bool(synthetic),
                }
            )
        return cls(records, model=f"replay:{Path(duckdb_path).name}")

    def _pick(self, request: Request) -> Mapping[str, Any] | None:
        key = (request.task_id, request.role)
        items = self._by_key.get(key)
        if not items:
            return None
        with self._lock:
            used = self._used[key]
            if request.retry_index == 0:
                for i, record in enumerate(items):
                    if int(record.get("sample_index", 0)) == request.sample_index and i not in used:
                        used.add(i)
                        return record
            for i, record in enumerate(items):
                if i not in used:
                    used.add(i)
                    return record
            return items[(request.sample_index + request.retry_index) % len(items)]

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        out = []
        for request in requests:
            record = self._pick(request)
            if record is None:
                out.append(
                    Completion(
                        text="",
                        stop_reason="error",
                        model=self.model,
                        error=f"no recorded completion for {request.task_id}/{request.role}",
                    )
                )
                continue
            text = str(record.get("completion") or "")
            labels = {str(k): str(v) for k, v in (record.get("labels") or {}).items()}
            out.append(
                Completion(
                    text=text,
                    reasoning=record.get("reasoning"),
                    completion_tokens=len(text.split()),
                    prompt_tokens=sum(len(m["content"].split()) for m in request.messages),
                    model=self.model,
                    synthetic=bool(record.get("synthetic", False)),
                    labels=labels,
                )
            )
        return out
