"""VT Code's session events → vtforge events (``rollout`` and ``agent_step``, stage agentic).

A session is one ``rollout`` (role ``agent``): a snapshot is emitted when the thread starts, after
every turn (completed or failed) and when the thread completes, so the rollout shows up turn by
turn; every snapshot carries the cumulative token counts, ``num_turns`` and the messages so far,
and ``envelope.attributes["final"]`` is ``"true"`` only on the last one (latest snapshot wins).

Everything a turn does is an ``agent_step``: tool invocations (edit tools parsed into files and
lines changed), tool outputs, command executions with exit codes, file changes, messages,
reasoning, plans, permission prompts, harness verification results (test outcomes) and errors.
Event types and item types we do not know, and known ones written by a newer schema version, are
kept verbatim (``raw``) as ``kind = "other"`` (counted in the state), never dropped. Only the
streaming ``item.started``/``item.updated``/``plan.delta`` records are skipped (counted): the
``item.completed`` that follows carries their final state.

Event ids are deterministic: ``<session>/<turn>/<line within turn>/<content hash>``, so reading
the same file again (after a restart, a lost cursor or an in-place rewrite) yields the same ids.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from vtforge.schemas import derived_span_id, derived_trace_id, new_event, stable_id
from vtforge.vtcode.formats import (
    ThreadRecord,
    TrajectoryRecord,
    as_json_text,
    canonical_hash,
    is_newer_schema,
    trailing_int,
)
from vtforge.vtcode.patches import edits_from_tool_call

PRODUCER = "vtforge.vtcode"
STAGE = "agentic"
INT32_MAX = 2**31 - 1
TRANSIENT_TYPES = frozenset({"item.started", "item.updated", "plan.delta"})
HARNESS_OUTCOMES = ("passed", "failed", "started")  # the suffixes of harness events that are a status


def rollout_id_for(session_id: str) -> str:
    """The rollout of a vtcode session: the same from the tailer, exec, hooks and notify."""
    return stable_id("vtcode-session", session_id)


def _int32(value: Any, default: int | None = None) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return max(-INT32_MAX - 1, min(INT32_MAX, int(value)))


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


@dataclass(frozen=True)
class MappingContext:
    """What the events themselves do not say: the model, where they came from, caps."""

    model: str = "unknown"
    temperature: float = 0.0
    policy_version: str = "vtcode-live"
    engine: str = "vtcode"
    source: str = "tail"  # tail | exec | stream | hook | notify | trajectory
    max_message_chars: int = 32_768
    created_at: str | None = None  # the session manifest's timestamps, when there is one
    updated_at: str | None = None

    def clip(self, text: str) -> str:
        if len(text) <= self.max_message_chars:
            return text
        return text[: self.max_message_chars] + f"\n…[{len(text) - self.max_message_chars} chars clipped]"


@dataclass
class SessionState:
    """Everything the mapping accumulates for one session; persisted with the tailer's cursor."""

    session_id: str
    thread_id: str | None = None
    turn: int = 0  # absolute number of the current turn (count of turn.started)
    line_in_turn: int = 0  # records since the current turn started (0 = the turn.started line)
    lines: int = 0
    steps: int = 0
    turns_completed: int = 0
    turns_failed: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_creation_tokens: int = 0
    output_tokens: int = 0
    num_turns: int | None = None
    outcome: str | None = None
    stop_reason: str | None = None
    subtype: str | None = None  # thread.completed's own words (0.16: success, error_max_turns …)
    outcome_code: str | None = None  # … and its code (stopped_no_action, loop_detected, exit …)
    completed: bool = False
    turns_blocked: int = 0
    snapshots: int = 0
    verifications_passed: int = 0
    verifications_failed: int = 0
    last_verification: str | None = None
    unknown_records: int = 0
    newer_schema_records: int = 0
    skipped_transient: int = 0
    unknown_types: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class SessionMapper:
    """Folds one session's thread events into vtforge events."""

    def __init__(self, state: SessionState, context: MappingContext | None = None) -> None:
        self.state = state
        self.context = context or MappingContext()
        self.rollout_id = rollout_id_for(state.session_id)
        self.messages: list[dict[str, Any]] = []
        self.reasoning: list[str] = []
        self._last_at: datetime | None = None

    # --- positions and keys ----------------------------------------------------------------------
    def _advance(self, record: ThreadRecord) -> str:
        """Move to this record's position; its natural key."""
        state = self.state
        if record.type == "turn.started":
            state.turn += 1
            state.line_in_turn = 0
        else:
            state.line_in_turn += 1
        state.lines += 1
        return f"vtcode/{state.session_id}/{state.turn}/{state.line_in_turn}/{record.content_hash}"

    def replay(self, records: list[ThreadRecord]) -> None:
        """Rebuild the in-memory messages from records already ingested (after a restart)."""
        for record in records:
            if record.type == "item.completed" and isinstance(record.event.get("item"), dict):
                self._collect_message(record.event["item"])

    # --- the fold ----------------------------------------------------------------------------------
    def feed(self, record: ThreadRecord, *, occurred_at: datetime | None = None) -> list[dict[str, Any]]:
        """The vtforge events one thread event maps to (often one, sometimes none)."""
        key = self._advance(record)
        state = self.state
        at = occurred_at or datetime.now(UTC)
        if self._last_at is not None and at <= self._last_at:  # strictly increasing: latest snapshot wins
            at = self._last_at + timedelta(microseconds=1)
        self._last_at = at
        newer = is_newer_schema(record.schema_version)
        if newer:
            state.newer_schema_records += 1
        kind = record.type
        event = record.event
        out: list[dict[str, Any]] = []

        if kind in TRANSIENT_TYPES:
            state.skipped_transient += 1
            return out
        if kind == "thread.started":
            state.thread_id = str(event.get("thread_id") or state.thread_id or "")
            out.append(self._rollout(f"{key}/rollout", at))
        elif kind == "turn.started":
            pass
        elif kind == "turn.blocked":  # a guard (loop detection, a cap) stopped the turn; 0.169
            state.turns_blocked += 1  # follows it with turn.failed, which closes the turn
            message = _str(event.get("message", event.get("reason"))) or ""
            out.append(self._step(key, at, record, "error", status="turn_blocked", output=message))
        elif kind in ("turn.completed", "turn.failed"):
            self._add_usage(event.get("usage"))
            if kind == "turn.failed":
                state.turns_failed += 1
                out.append(
                    self._step(
                        key, at, record, "error", status="turn_failed", output=str(event.get("message", ""))
                    )
                )
            else:
                state.turns_completed += 1
            out.append(self._rollout(f"{key}/rollout", at))
        elif kind == "thread.completed":
            self._complete(event)
            out.append(self._rollout(f"{key}/rollout", at))
        elif kind == "item.completed" and isinstance(event.get("item"), dict):
            out.append(self._item(key, at, record, event["item"], newer))
        elif kind in ("permission.requested", "permission.resolved"):
            decision = event.get("decision")
            out.append(
                self._step(
                    key,
                    at,
                    record,
                    "permission",
                    tool_name=_str(event.get("tool_name")),
                    status=_str(decision) if decision is not None else "requested",
                    duration_ms=_float(event.get("wait_ms")),
                )
            )
        elif kind == "error":
            out.append(
                self._step(key, at, record, "error", status="error", output=_str(event.get("message")))
            )
        else:
            out.append(self._other(key, at, record, kind))
        if newer and out:
            for produced in out:
                produced["envelope"]["attributes"]["schema_newer"] = "true"
        return out

    def _item(
        self, key: str, at: datetime, record: ThreadRecord, item: dict[str, Any], newer: bool
    ) -> dict[str, Any]:
        item_type = str(item.get("type", ""))
        self._collect_message(item)
        status = _str(item.get("status"))
        if item_type == "agent_message":
            return self._step(key, at, record, "agent_message", output=_str(item.get("text")), status=status)
        if item_type in ("reasoning", "plan"):
            return self._step(
                key, at, record, item_type, output=_str(item.get("text")), status=_str(item.get("stage"))
            )
        if item_type in ("tool_invocation", "mcp_tool_call"):
            tool = _str(item.get("tool_name"))
            edits = edits_from_tool_call(tool, item.get("arguments"))
            outcome = item.get("outcome")
            return self._step(
                key,
                at,
                record,
                "tool_invocation",
                tool_name=tool,
                arguments=as_json_text(item.get("arguments")),
                output=_str(item.get("result")),
                status=_str(outcome) if outcome is not None else status,
                files_changed=edits.files,
                lines_added=edits.added,
                lines_removed=edits.removed,
                call_id=_str(item.get("tool_call_id")),
            )
        if item_type == "tool_output":
            return self._step(
                key,
                at,
                record,
                "tool_output",
                output=_str(item.get("output")),
                status=status,
                exit_code=_int32(item.get("exit_code")),
                call_id=_str(item.get("tool_call_id") or item.get("call_id")),
            )
        if item_type == "command_execution":
            return self._step(
                key,
                at,
                record,
                "command_execution",
                tool_name="command",
                arguments=as_json_text({"command": item.get("command"), "arguments": item.get("arguments")}),
                output=_str(item.get("aggregated_output")),
                status=status,
                exit_code=_int32(item.get("exit_code")),
            )
        if item_type == "file_change":
            changes = item.get("changes") if isinstance(item.get("changes"), list) else []
            paths = [str(c.get("path")) for c in changes if isinstance(c, dict) and c.get("path")]
            kinds = sorted({str(c.get("kind")) for c in changes if isinstance(c, dict) and c.get("kind")})
            return self._step(
                key,
                at,
                record,
                "file_change",
                files_changed=list(dict.fromkeys(paths)),
                status=status,
                arguments=as_json_text({"kinds": kinds}) if kinds else None,
            )
        if item_type == "web_search":
            return self._step(
                key,
                at,
                record,
                "tool_invocation",
                tool_name="web_search",
                arguments=as_json_text({"query": item.get("query")}),
                output=as_json_text(item.get("results")),
                status=status,
            )
        if item_type == "harness":
            return self._harness(key, at, record, item)
        if item_type == "error":
            return self._step(key, at, record, "error", output=_str(item.get("message")), status="error")
        return self._other(key, at, record, f"item.{item_type or '?'}")

    def _harness(self, key: str, at: datetime, record: ThreadRecord, item: dict[str, Any]) -> dict[str, Any]:
        """A harness event; verification_* and evaluation_* are test outcomes."""
        name = str(item.get("event", ""))
        suffix = name.rsplit("_", 1)[-1]
        status = suffix if suffix in HARNESS_OUTCOMES else name
        if name.startswith("verification_") and suffix in ("passed", "failed"):
            state = self.state
            state.last_verification = suffix
            if suffix == "passed":
                state.verifications_passed += 1
            else:
                state.verifications_failed += 1
        return self._step(
            key,
            at,
            record,
            "harness",
            tool_name=name or None,
            arguments=_str(item.get("command")),
            output=_str(item.get("message")),
            status=status,
            exit_code=_int32(item.get("exit_code")),
            duration_ms=_float(item.get("duration_ms")),
        )

    def _other(self, key: str, at: datetime, record: ThreadRecord, type_name: str) -> dict[str, Any]:
        state = self.state
        state.unknown_records += 1
        state.unknown_types[type_name] = state.unknown_types.get(type_name, 0) + 1
        return self._step(key, at, record, "other", tool_name=type_name, status="kept")

    def _step(
        self,
        key: str,
        at: datetime,
        record: ThreadRecord,
        kind: str,
        *,
        tool_name: str | None = None,
        arguments: str | None = None,
        output: str | None = None,
        status: str | None = None,
        exit_code: int | None = None,
        files_changed: list[str] | None = None,
        lines_added: int = 0,
        lines_removed: int = 0,
        duration_ms: float | None = None,
        call_id: str | None = None,
    ) -> dict[str, Any]:
        state = self.state
        state.steps += 1
        attributes = {"source": self.context.source, "record_type": record.type}
        if call_id:
            attributes["tool_call_id"] = call_id
        if state.thread_id:
            attributes["thread_id"] = state.thread_id
        payload = {
            "step_id": stable_id(self.rollout_id, state.turn, state.line_in_turn),
            "rollout_id": self.rollout_id,
            "turn": _int32(state.turn, 0),
            "step_index": _int32(state.line_in_turn, 0),
            "kind": kind,
            "tool_name": tool_name,
            "arguments": arguments,
            "output": output,
            "status": status,
            "exit_code": exit_code,
            "files_changed": files_changed or [],
            "lines_added": _int32(lines_added, 0),
            "lines_removed": _int32(lines_removed, 0),
            "duration_ms": duration_ms,
            "raw": record.raw,
            "source_schema_version": record.schema_version,
        }
        return new_event(
            "agent_step",
            payload,
            producer=PRODUCER,
            stage=STAGE,
            key=key,
            task_id=self.task_id,
            session_id=state.session_id,
            occurred_at=at,
            attributes=attributes,
            **trace_context(state.session_id, key),
        )

    # --- the rollout ------------------------------------------------------------------------------
    @property
    def task_id(self) -> str:
        return f"vtcode:{self.state.session_id}"

    def _add_usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        state = self.state
        state.input_tokens += int(usage.get("input_tokens") or 0)
        state.cached_input_tokens += int(usage.get("cached_input_tokens") or 0)
        state.cache_creation_tokens += int(usage.get("cache_creation_tokens") or 0)
        state.output_tokens += int(usage.get("output_tokens") or 0)

    def _complete(self, event: dict[str, Any]) -> None:
        state = self.state
        usage = event.get("usage")
        if isinstance(usage, dict):  # the thread's own totals win over our per-turn sums
            state.input_tokens = int(usage.get("input_tokens") or 0)
            state.cached_input_tokens = int(usage.get("cached_input_tokens") or 0)
            state.cache_creation_tokens = int(usage.get("cache_creation_tokens") or 0)
            state.output_tokens = int(usage.get("output_tokens") or 0)
        if isinstance(event.get("num_turns"), int):
            state.num_turns = event["num_turns"]
        # 0.16 has no `outcome`: `outcome_code` (stopped_no_action, loop_detected …) says more than
        # `subtype` (success, error_max_turns …), which is "success" for most of them
        state.subtype = _str(event.get("subtype"))
        state.outcome_code = _str(event.get("outcome_code"))
        state.outcome = _str(event.get("outcome") or state.outcome_code or state.subtype)
        state.stop_reason = _str(event.get("stop_reason") or state.subtype or "completed")
        state.completed = True

    def abandon(self, outcome: str, stop_reason: str) -> list[dict[str, Any]]:
        """The final snapshot of a run that ended without ``thread.completed`` (killed, crashed):
        what its producer knows (vtcode's exit status) instead of the event it never wrote."""
        state = self.state
        if state.completed or state.lines == 0:
            return []
        state.outcome, state.stop_reason, state.completed = outcome, stop_reason, True
        key = f"vtcode/{state.session_id}/{state.turn}/{state.line_in_turn}/abandoned/{outcome}/{stop_reason}"
        at = datetime.now(UTC)
        if self._last_at is not None and at <= self._last_at:
            at = self._last_at + timedelta(microseconds=1)
        self._last_at = at
        rollout = self._rollout(f"{key}/rollout", at)
        rollout["envelope"]["attributes"]["abandoned"] = "true"
        return [rollout]

    def _collect_message(self, item: dict[str, Any]) -> None:
        clip = self.context.clip
        item_type = item.get("type")
        if item_type == "agent_message" and isinstance(item.get("text"), str):
            self.messages.append(
                {"role": "assistant", "content": clip(item["text"]), "name": None, "tool_call_id": None}
            )
        elif item_type == "reasoning" and isinstance(item.get("text"), str):
            self.reasoning.append(clip(item["text"]))
        elif item_type in ("tool_invocation", "mcp_tool_call"):
            self.messages.append(
                {
                    "role": "assistant",
                    "content": clip(as_json_text(item.get("arguments")) or ""),
                    "name": _str(item.get("tool_name")),
                    "tool_call_id": _str(item.get("tool_call_id")),
                }
            )
        elif item_type == "tool_output":
            self.messages.append(
                {
                    "role": "tool",
                    "content": clip(str(item.get("output") or "")),
                    "name": None,
                    "tool_call_id": _str(item.get("tool_call_id") or item.get("call_id")),
                }
            )
        elif item_type == "command_execution" and item.get("status") != "in_progress":
            text = f"$ {item.get('command', '')}\n{item.get('aggregated_output') or ''}"
            self.messages.append(
                {"role": "tool", "content": clip(text), "name": "command", "tool_call_id": None}
            )

    def _rollout(self, key: str, at: datetime) -> dict[str, Any]:
        state = self.state
        state.snapshots += 1
        ctx = self.context
        turns = state.num_turns if state.num_turns is not None else state.turns_completed + state.turns_failed
        attributes = {
            "source": ctx.source,
            "final": "true" if state.completed else "false",
            "snapshot": str(state.snapshots),
            "turns_failed": str(state.turns_failed),
            "verifications_passed": str(state.verifications_passed),
            "verifications_failed": str(state.verifications_failed),
            "cache_creation_tokens": str(state.cache_creation_tokens),
        }
        if state.last_verification:
            attributes["last_verification"] = state.last_verification
        for name in ("subtype", "outcome_code"):
            if getattr(state, name):
                attributes[name] = getattr(state, name)
        if state.turns_blocked:
            attributes["turns_blocked"] = str(state.turns_blocked)
        if state.thread_id:
            attributes["thread_id"] = state.thread_id
        if ctx.created_at:
            attributes["session_created_at"] = ctx.created_at
        payload = {
            "rollout_id": self.rollout_id,
            "role": "agent",
            "model": ctx.model,
            "policy_version": ctx.policy_version,
            "engine": ctx.engine,
            "sample_index": 0,
            "temperature": float(ctx.temperature),
            "prompt_tokens": _int32(state.input_tokens, 0),
            "completion_tokens": _int32(state.output_tokens, 0),
            "latency_ms": _latency_ms(ctx.created_at, ctx.updated_at),
            "stop_reason": state.stop_reason or "in_progress",
            "messages": list(self.messages),
            "reasoning": "\n\n".join(self.reasoning) or None,
            "parse_status": "ok",
            "retry_index": 0,
            "outcome": state.outcome,
            "cached_prompt_tokens": _int32(state.cached_input_tokens, 0),
            "num_turns": _int32(turns, 0),
        }
        return new_event(
            "rollout",
            payload,
            producer=PRODUCER,
            stage=STAGE,
            key=key,
            task_id=self.task_id,
            session_id=state.session_id,
            occurred_at=at,
            attributes=attributes,
            **trace_context(state.session_id, None),
        )


class TraceContext(TypedDict, total=False):
    trace_id: str | None
    span_id: str | None
    parent_span_id: str | None


def trace_context(session_id: str | None, span: str | None) -> TraceContext:
    """A vtcode session is one trace: its rollout (the whole conversation) is the root span
    (``span`` None) and every step a child of it. Derived from the session id, so the tailer, the
    hooks and a re-read trajectory file agree."""
    if not session_id:
        return TraceContext()
    trace_id = derived_trace_id("vtcode", session_id)
    root = derived_span_id(trace_id, "session")
    if span is None:
        return TraceContext(trace_id=trace_id, span_id=root, parent_span_id=None)
    return TraceContext(trace_id=trace_id, span_id=derived_span_id(trace_id, span), parent_span_id=root)


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _latency_ms(created_at: str | None, updated_at: str | None) -> float:
    try:
        start = datetime.fromisoformat(str(created_at).replace("Z", "+00:00"))
        end = datetime.fromisoformat(str(updated_at).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(0.0, (end - start).total_seconds() * 1000.0)


# --- trajectory log, lifecycle hooks, notify ---------------------------------------------------------


def trajectory_step(
    record: TrajectoryRecord,
    *,
    file_identity: str,
    line_no: int,
    session_id: str | None,
    source_name: str,
) -> dict[str, Any]:
    """One trajectory record as an agent_step of kind ``trajectory_<kind>`` (raw kept)."""
    rec = record.record
    kind = record.kind
    rollout = rollout_id_for(session_id) if session_id else stable_id("vtcode-trajectory", file_identity)
    tool = rec.get("name") if kind == "tool" else rec.get("selected_model") if kind == "route" else None
    ok = rec.get("ok")
    edits = edits_from_tool_call(_str(tool), rec.get("args")) if kind == "tool" else None
    ts = rec.get("ts")
    at = (
        datetime.fromtimestamp(ts, UTC) if isinstance(ts, (int, float)) and not isinstance(ts, bool) else None
    )
    payload = {
        "step_id": stable_id("vtcode-trajectory", file_identity, line_no),
        "rollout_id": rollout,
        "turn": _int32(rec.get("turn"), 0),
        "step_index": _int32(line_no, 0),
        "kind": f"trajectory_{kind}",
        "tool_name": _str(tool),
        "arguments": as_json_text(rec.get("args") if kind == "tool" else rec.get("class")),
        "output": _str(rec.get("input_preview")) if kind == "route" else None,
        "status": ("ok" if ok else "failed") if isinstance(ok, bool) else None,
        "exit_code": None,
        "files_changed": edits.files if edits else [],
        "lines_added": edits.added if edits else 0,
        "lines_removed": edits.removed if edits else 0,
        "duration_ms": _float(rec.get("duration_ms")),
        "raw": record.raw,
        "source_schema_version": None,
    }
    attributes = {"source": "trajectory", "trajectory_file": source_name}
    return new_event(
        "agent_step",
        payload,
        producer=PRODUCER,
        stage=STAGE,
        key=f"vtcode-trajectory/{file_identity}/{line_no}/{record.content_hash}",
        task_id=f"vtcode:{session_id}" if session_id else None,
        session_id=session_id,
        occurred_at=at,
        attributes=attributes,
        **trace_context(session_id, f"trajectory/{file_identity}/{line_no}"),
    )


def hook_step(payload: dict[str, Any], *, occurred_at: datetime | None = None) -> dict[str, Any]:
    """A lifecycle-hook payload (session_id, hook_event_name, tool_name, tool_input …) as an agent_step."""
    session_id = str(payload.get("session_id") or "unknown")
    hook_name = str(payload.get("hook_event_name") or "unknown")
    tool = _str(payload.get("tool_name"))
    edits = edits_from_tool_call(tool, payload.get("tool_input")) if tool else None
    response = payload.get("tool_response")
    exit_code = response.get("exit_code") if isinstance(response, dict) else None
    call_id = _str(payload.get("tool_call_id"))
    turn = trailing_int(payload.get("turn_id"))
    content = canonical_hash(payload)
    attributes = {"source": "hook", "hook_event_name": hook_name}
    for name in ("cwd", "transcript_path", "source", "reason"):
        if isinstance(payload.get(name), str):
            attributes[name if name not in ("source",) else "session_source"] = payload[name]
    if call_id:
        attributes["tool_call_id"] = call_id
    rollout = rollout_id_for(session_id)
    body = {
        "step_id": stable_id(rollout, "hook", hook_name, call_id or "", content),
        "rollout_id": rollout,
        "turn": _int32(turn, 0),
        "step_index": 0,
        "kind": "hook",
        "tool_name": tool or hook_name,
        "arguments": as_json_text(payload.get("tool_input", payload.get("prompt"))),
        "output": as_json_text(response if response is not None else payload.get("last_assistant_message")),
        "status": hook_name,
        "exit_code": _int32(exit_code),
        "files_changed": edits.files if edits else [],
        "lines_added": edits.added if edits else 0,
        "lines_removed": edits.removed if edits else 0,
        "duration_ms": None,
        "raw": json.dumps(payload, ensure_ascii=False, sort_keys=True),
        "source_schema_version": None,
    }
    return new_event(
        "agent_step",
        body,
        producer=PRODUCER,
        stage=STAGE,
        key=f"vtcode-hook/{session_id}/{hook_name}/{call_id or ''}/{content}",
        task_id=f"vtcode:{session_id}",
        session_id=session_id,
        occurred_at=occurred_at or datetime.now(UTC),
        attributes=attributes,
        **trace_context(session_id, f"hook/{hook_name}/{call_id or ''}/{content}"),
    )


def notify_step(payload: dict[str, Any], *, occurred_at: datetime | None = None) -> dict[str, Any]:
    """A ``notify`` payload (type agent-turn-complete, thread-id, turn-id, cwd …) as an agent_step."""
    thread = str(payload.get("thread-id") or payload.get("thread_id") or "unknown")
    turn_id = payload.get("turn-id") or payload.get("turn_id")
    content = canonical_hash(payload)
    rollout = rollout_id_for(thread)
    attributes = {"source": "notify", "notify_type": str(payload.get("type") or "unknown")}
    if isinstance(payload.get("cwd"), str):
        attributes["cwd"] = payload["cwd"]
    if turn_id is not None:
        attributes["turn_id"] = str(turn_id)
    body = {
        "step_id": stable_id(rollout, "notify", str(turn_id), content),
        "rollout_id": rollout,
        "turn": _int32(trailing_int(turn_id), 0),
        "step_index": 0,
        "kind": "notification",
        "tool_name": _str(payload.get("type")),
        "arguments": as_json_text(payload.get("input-messages")),
        "output": _str(payload.get("last-assistant-message")),
        "status": _str(payload.get("status")),
        "exit_code": None,
        "files_changed": [],
        "lines_added": 0,
        "lines_removed": 0,
        "duration_ms": None,
        "raw": json.dumps(payload, ensure_ascii=False, sort_keys=True),
        "source_schema_version": None,
    }
    return new_event(
        "agent_step",
        body,
        producer=PRODUCER,
        stage=STAGE,
        key=f"vtcode-notify/{thread}/{turn_id}/{content}",
        task_id=f"vtcode:{thread}",
        session_id=thread,
        occurred_at=occurred_at or datetime.now(UTC),
        attributes=attributes,
        **trace_context(thread, f"notify/{turn_id}/{content}"),
    )
