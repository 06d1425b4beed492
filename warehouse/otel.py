"""Events as OpenTelemetry spans, sent over OTLP to a trace store (Phoenix, Langfuse, Jaeger, a collector).

Every event whose envelope carries a ``trace_id`` and a ``span_id`` is one span (a rollout's sampled
and final events share their span: the latest wins). A parent that has no event of its own (a
self-play round) becomes a span too, named after the trace's producer and task and spanning its
children. A span's end is its event's ``occurred_at``; its start is earlier by the work's own
duration where the event has one (a rollout's ``latency_ms``, an execution's ``duration_s``).

Attributes follow the OpenTelemetry GenAI semantic conventions for model calls
(``gen_ai.operation.name``, ``gen_ai.request.model``, ``gen_ai.usage.input_tokens`` …) with the
OpenInference names Phoenix reads beside them (``openinference.span.kind``, ``llm.model_name``,
``llm.token_count.*``); prompts and completions go in only when ``capture_content`` is set
(``forge.otel.capture_content``), as ``gen_ai.input.messages`` / ``gen_ai.output.messages``.
Everything else of the envelope is under ``vtforge.*``.

We build the spans ourselves (``ReadableSpan``) and hand them to the OpenTelemetry SDK's OTLP/HTTP
exporter: the events already hold finished spans, with their own ids and times, which a tracer
(that starts spans now, with fresh ids) cannot replay.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb

ROOT = "root"  # span kind of a parent made from its children
_EVENTS = """
SELECT e.event_id, e.event_type, e.occurred_at, e.producer, e.run_id, e.session_id, e.task_id,
       e.stage, e.trace_id, e.span_id, e.parent_span_id, e.synthetic, e.attributes,
       r.rollout_id, r.role, r.model, r.engine, r.policy_version, r.prompt_tokens, r.completion_tokens,
       r.latency_ms, r.messages, r.outcome AS rollout_outcome,
       x.execution_id, x.status AS execution_status, x.duration_s, x.backend,
       w.reward, w.outcome AS reward_outcome, w.subject_kind
FROM events e
LEFT JOIN raw_rollout r USING (event_id)
LEFT JOIN raw_execution_result x USING (event_id)
LEFT JOIN raw_reward_assigned w USING (event_id)
WHERE e.trace_id IS NOT NULL AND e.span_id IS NOT NULL AND ($since IS NULL OR e.occurred_at >= $since)
QUALIFY row_number() OVER (PARTITION BY e.trace_id, e.span_id ORDER BY e.occurred_at DESC, e.event_id) = 1
ORDER BY e.trace_id, e.occurred_at
"""


@dataclass
class SpanRecord:
    """One span, as the events describe it (hex ids, aware datetimes)."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    start: datetime
    end: datetime
    attributes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def span_records(
    con: duckdb.DuckDBPyConnection, *, since: datetime | None = None, capture_content: bool = False
) -> list[SpanRecord]:
    """Every traced event (at or after ``since``) as a span, plus the parents that have no event."""
    cursor = con.execute(_EVENTS, {"since": since})
    names = [d[0] for d in cursor.description]
    spans = [_span(dict(zip(names, row, strict=True)), capture_content) for row in cursor.fetchall()]
    return spans + _missing_parents(spans)


def _span(row: dict[str, Any], capture_content: bool) -> SpanRecord:
    event_type = row["event_type"]
    end: datetime = row["occurred_at"]
    seconds = (row["latency_ms"] or 0) / 1000 if event_type == "rollout" else row["duration_s"] or 0
    attributes: dict[str, Any] = {
        "vtforge.event_type": event_type,
        "vtforge.event_id": row["event_id"],
        "vtforge.producer": row["producer"],
        "vtforge.stage": row["stage"],
        "vtforge.synthetic": bool(row["synthetic"]),
    }
    for key in ("run_id", "session_id", "task_id"):
        if row[key]:
            attributes[f"vtforge.{key}"] = row[key]
    attributes.update({f"vtforge.attributes.{k}": v for k, v in (row["attributes"] or {}).items()})
    error = None
    if event_type == "rollout":
        name = f"chat {row['model'] or row['engine'] or 'model'}"
        attributes.update(_genai(row, capture_content))
    elif event_type == "execution_result":
        name = f"execute {row['execution_id']}"
        attributes.update(
            {
                "openinference.span.kind": "TOOL",
                "vtforge.execution.status": row["execution_status"],
                "vtforge.execution.backend": row["backend"],
            }
        )
        if row["execution_status"] == "infra_failure":
            error = "infra_failure"
    elif event_type == "reward_assigned":
        name = f"reward {row['subject_kind']}"
        attributes.update(
            {
                "openinference.span.kind": "EVALUATOR",
                "vtforge.reward": row["reward"],
                "vtforge.reward.outcome": row["reward_outcome"],
            }
        )
    else:
        name = event_type
        attributes["openinference.span.kind"] = "CHAIN"
    return SpanRecord(
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        parent_span_id=row["parent_span_id"],
        name=name,
        start=end - timedelta(seconds=float(seconds)),
        end=end,
        attributes={k: v for k, v in attributes.items() if v is not None},
        error=error,
    )


def _genai(row: dict[str, Any], capture_content: bool) -> dict[str, Any]:
    """The GenAI (and OpenInference) attributes of a model call."""
    out: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": row["engine"],
        "gen_ai.request.model": row["model"],
        "gen_ai.response.model": row["model"],
        "gen_ai.usage.input_tokens": row["prompt_tokens"],
        "gen_ai.usage.output_tokens": row["completion_tokens"],
        "gen_ai.agent.name": row["role"],
        "openinference.span.kind": "LLM",
        "llm.model_name": row["model"],
        "llm.token_count.prompt": row["prompt_tokens"],
        "llm.token_count.completion": row["completion_tokens"],
        "vtforge.rollout_id": row["rollout_id"],
        "vtforge.policy_version": row["policy_version"],
        "vtforge.rollout.outcome": row["rollout_outcome"],
    }
    if capture_content and row["messages"]:
        messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
        *prompt, last = messages
        out["gen_ai.input.messages"] = json.dumps(prompt)
        out["gen_ai.output.messages"] = json.dumps([last])
        out["input.value"] = prompt[-1]["content"] if prompt else ""
        out["output.value"] = last["content"]
    return out


def _missing_parents(spans: list[SpanRecord]) -> list[SpanRecord]:
    """A span for each parent id no event has: it spans its children, named after their trace."""
    known = {(s.trace_id, s.span_id) for s in spans}
    children: dict[tuple[str, str], list[SpanRecord]] = {}
    for s in spans:
        if s.parent_span_id and (s.trace_id, s.parent_span_id) not in known:
            children.setdefault((s.trace_id, s.parent_span_id), []).append(s)
    made = []
    for (trace_id, span_id), kids in children.items():
        first = kids[0].attributes
        producer = str(first.get("vtforge.producer", "vtforge"))
        task = first.get("vtforge.task_id")
        made.append(
            SpanRecord(
                trace_id=trace_id,
                span_id=span_id,
                parent_span_id=None,
                name=f"{producer} {task}" if task else producer,
                start=min(k.start for k in kids),
                end=max(k.end for k in kids),
                attributes={
                    "openinference.span.kind": "CHAIN",
                    "vtforge.span": ROOT,
                    **{k: v for k, v in first.items() if k in ("vtforge.run_id", "vtforge.task_id")},
                },
            )
        )
    return made


def export(
    spans: Iterable[SpanRecord], endpoint: str, *, service_name: str = "vtforge", project: str = "vtforge"
) -> int:
    """Send ``spans`` to an OTLP/HTTP ``endpoint`` (the base URL: ``/v1/traces`` is added when
    missing); returns how many were sent. Raises ``RuntimeError`` when the receiver refuses them."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExportResult
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    resource = Resource.create({"service.name": service_name, "openinference.project.name": project})
    scope = InstrumentationScope("vtforge.warehouse.otel")

    def context(trace_id: str, span_id: str) -> SpanContext:
        return SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=False, trace_flags=TraceFlags(1))

    built = [
        ReadableSpan(
            name=s.name,
            context=context(s.trace_id, s.span_id),
            parent=context(s.trace_id, s.parent_span_id) if s.parent_span_id else None,
            resource=resource,
            attributes=s.attributes,
            kind=SpanKind.CLIENT if s.attributes.get("gen_ai.operation.name") else SpanKind.INTERNAL,
            status=Status(StatusCode.ERROR, s.error) if s.error else Status(StatusCode.OK),
            start_time=_ns(s.start),
            end_time=_ns(s.end),
            instrumentation_scope=scope,
        )
        for s in spans
    ]
    url = endpoint.rstrip("/")
    exporter = OTLPSpanExporter(endpoint=url if url.endswith("/v1/traces") else f"{url}/v1/traces")
    try:
        for start in range(0, len(built), 512):
            if exporter.export(built[start : start + 512]) is not SpanExportResult.SUCCESS:
                raise RuntimeError(f"the OTLP receiver at {endpoint} refused the spans (see the log above)")
    finally:
        exporter.shutdown()
    return len(built)


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)
