"""Data checks over the warehouse, as plain functions (Dagster's asset checks wrap them).

Each returns a :class:`CheckOutcome`: passed or not, a one-line description and numbers for the
UI. The Dagster layer decides which are blocking (a downstream dataset would be wrong) and which
only warn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from vtforge.schemas import default_catalog
from vtforge.schemas.catalog import SchemaCatalog
from vtforge.transport.landing import landing_files
from vtforge.warehouse.connection import scalar
from vtforge.warehouse.incremental import STATE_TABLE
from vtforge.warehouse.load import pending_files
from vtforge.warehouse.models import CURATED, MODELS

CURATED_TABLES = tuple(m.name for m in MODELS if m.group == CURATED)


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    return scalar(con, sql, params or None)


def unique_event_ids(con: duckdb.DuckDBPyConnection) -> CheckOutcome:
    """``events`` has each event_id once, and no event_id arrived with two different payloads.

    A re-delivery of the same event (same payload) is normal at-least-once transport and is
    dropped on ingest; two *different* events sharing an id would make every table built on
    them wrong.
    """
    repeated = _one(con, "SELECT count(*) FROM (SELECT event_id FROM events GROUP BY 1 HAVING count(*) > 1)")
    conflicts = con.execute(
        "SELECT DISTINCT event_id FROM _duplicate_events "
        "WHERE payload_hash IS DISTINCT FROM kept_payload_hash "
        "ORDER BY 1 LIMIT 5"
    ).fetchall()
    n_conflicts = _one(
        con,
        "SELECT count(DISTINCT event_id) FROM _duplicate_events "
        "WHERE payload_hash IS DISTINCT FROM kept_payload_hash",
    )
    redelivered = _one(con, "SELECT count(*) FROM _duplicate_events")
    passed = repeated == 0 and n_conflicts == 0
    description = (
        "every event_id is unique"
        if passed
        else f"{n_conflicts} event_id(s) carry different payloads, e.g. {', '.join(r[0] for r in conflicts)}"
        if n_conflicts
        else f"{repeated} event_id(s) appear more than once in events"
    )
    return CheckOutcome(
        passed,
        description,
        {"repeated_in_events": repeated, "conflicting_ids": n_conflicts, "redeliveries_dropped": redelivered},
    )


def known_schema_versions(
    con: duckdb.DuckDBPyConnection, catalog: SchemaCatalog | None = None
) -> CheckOutcome:
    """Every event was written with an (event_type, schema_version) the catalog knows."""
    catalog = catalog or default_catalog()
    known = [(s.event_type, s.version) for s in catalog.all()]
    con.execute("CREATE OR REPLACE TEMP TABLE _known_versions (event_type VARCHAR, schema_version INTEGER)")
    con.executemany("INSERT INTO _known_versions VALUES (?, ?)", known)
    unknown = con.execute(
        "SELECT e.event_type, e.schema_version, count(*) FROM events e "
        "ANTI JOIN _known_versions k USING (event_type, schema_version) GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    if not unknown:
        return CheckOutcome(True, "every event has a known schema version", {"unknown_events": 0})
    listed = ", ".join(f"{t}.v{v} ({n})" for t, v, n in unknown[:5])
    return CheckOutcome(
        False,
        f"events with unknown schema versions: {listed}",
        {"unknown_events": sum(r[2] for r in unknown)},
    )


def raw_events_fresh(con: duckdb.DuckDBPyConnection, max_age: timedelta) -> CheckOutcome:
    """The newest event is younger than ``max_age`` (a stalled producer or transport shows here)."""
    newest = _one(con, "SELECT max(occurred_at) FROM events")
    if newest is None:
        return CheckOutcome(False, "no events yet", {"events": 0})
    age = datetime.now(UTC) - newest
    hours = round(age.total_seconds() / 3600, 3)
    passed = age <= max_age
    verdict = "fresh" if passed else "stale"
    return CheckOutcome(
        passed,
        f"{verdict}: newest event {newest.isoformat()} is {hours} h old "
        f"(limit {max_age.total_seconds() / 3600} h)",
        {"newest_event": newest.isoformat(), "age_hours": hours},
    )


def curated_lag(
    con: duckdb.DuckDBPyConnection, landing: Path, target_s: float, now: datetime | None = None
) -> CheckOutcome:
    """The curated tables trail the landing zone by at most ``forge.warehouse.freshness_target_s``.

    The lag is the age of the oldest landing file the curated tables do not reflect yet: one not
    ingested (new, or rewritten since), or ingested after the stalest curated table's watermark
    (``_model_state``: the newest ingest its last build saw). Zero when nothing waits. It is read
    from file mtimes (one ``stat`` per file, like the landing sensor), not from ``occurred_at``: a
    producer's clock or a replay of old events says nothing about how far the warehouse is behind.
    """
    now = now or datetime.now(UTC)
    tables = {
        r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()
    }
    event_types = default_catalog().event_types
    if "_ingested_files" not in tables:  # nothing ingested yet: every visible landing file waits
        waiting = [path.stat().st_mtime_ns for path in landing_files(landing, event_types)]
        built_mark = None
    else:
        waiting = [mtime for t in event_types for _path, _size, mtime in pending_files(con, landing, t)]
        built_mark = _curated_watermark(con) if STATE_TABLE in tables else None
        late = con.execute(
            "SELECT mtime_ns FROM _ingested_files WHERE $mark IS NULL OR ingested_at > $mark",
            {"mark": built_mark},
        ).fetchall()
        waiting += [row[0] for row in late]
    lag_s = max(0.0, now.timestamp() - min(waiting) / 1e9) if waiting else 0.0
    metadata = {
        "lag_s": round(lag_s, 3),
        "target_s": target_s,
        "files_waiting": len(waiting),
        "curated_up_to": built_mark.isoformat() if built_mark else "nothing built",
    }
    if not waiting:
        return CheckOutcome(True, "fresh: the curated tables hold every landed file", metadata)
    passed = lag_s <= target_s
    return CheckOutcome(
        passed,
        f"{'fresh' if passed else 'stale'}: {len(waiting)} landed file(s) not in the curated tables yet, "
        f"the oldest for {lag_s:.1f} s (target {target_s:g} s)",
        metadata,
    )


def _curated_watermark(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The newest ingest every curated table has seen; None if one was never built (or saw none)."""
    row = con.execute(
        f"SELECT count(watermark), min(watermark) FROM {STATE_TABLE} WHERE model IN (SELECT unnest($names))",
        {"names": list(CURATED_TABLES)},
    ).fetchone()
    count, mark = row if row is not None else (0, None)
    return mark if count == len(CURATED_TABLES) else None


def no_orphan_executions(con: duckdb.DuckDBPyConnection) -> CheckOutcome:
    """Every execution's patch_id and test_id name a proposed patch / generated test."""
    rows = con.execute(
        """
        SELECT e.execution_id,
               CASE WHEN p.patch_id IS NULL AND e.patch_id IS NOT NULL THEN 'patch ' || e.patch_id
                                    ELSE 'test ' || e.test_id END
        FROM executions e
        LEFT JOIN patches p ON p.patch_id = e.patch_id
        LEFT JOIN tests t ON t.test_id = e.test_id
        WHERE (e.patch_id IS NOT NULL AND p.patch_id IS NULL) OR (e.test_id IS NOT NULL AND t.test_id IS NULL)
        ORDER BY 1
        """
    ).fetchall()
    return _orphans("executions", rows)


def no_orphan_rewards(con: duckdb.DuckDBPyConnection) -> CheckOutcome:
    """Every reward names an existing subject (a patch, a test, or — for a sample whose output
    could not be parsed into either — its rollout), execution and rollout."""
    rows = con.execute(
        """
        SELECT w.reward_id,
               CASE WHEN w.subject_kind = 'patch' AND p.patch_id IS NULL THEN 'patch ' || w.subject_id
                    WHEN w.subject_kind = 'test' AND t.test_id IS NULL THEN 'test ' || w.subject_id
                    WHEN w.subject_kind = 'rollout' AND rs.rollout_id IS NULL THEN 'rollout ' || w.subject_id
                    WHEN w.subject_kind NOT IN ('patch', 'test', 'rollout')
                        THEN 'subject kind ' || w.subject_kind
                    WHEN w.execution_id IS NOT NULL AND e.execution_id IS NULL
                        THEN 'execution ' || w.execution_id
                    ELSE 'rollout ' || w.rollout_id END
        FROM rewards w
        LEFT JOIN patches p ON w.subject_kind = 'patch' AND p.patch_id = w.subject_id
        LEFT JOIN tests t ON w.subject_kind = 'test' AND t.test_id = w.subject_id
        LEFT JOIN executions e ON e.execution_id = w.execution_id
        LEFT JOIN rollouts r ON r.rollout_id = w.rollout_id
        LEFT JOIN rollouts rs ON w.subject_kind = 'rollout' AND rs.rollout_id = w.subject_id
        WHERE (w.subject_kind = 'patch' AND p.patch_id IS NULL)
           OR (w.subject_kind = 'test' AND t.test_id IS NULL)
           OR (w.subject_kind = 'rollout' AND rs.rollout_id IS NULL)
           OR w.subject_kind NOT IN ('patch', 'test', 'rollout')
           OR (w.execution_id IS NOT NULL AND e.execution_id IS NULL)
           OR (w.rollout_id IS NOT NULL AND r.rollout_id IS NULL)
        ORDER BY 1
        """
    ).fetchall()
    return _orphans("rewards", rows)


def _orphans(table: str, rows: list[tuple[str, str]]) -> CheckOutcome:
    if not rows:
        return CheckOutcome(True, f"no orphan {table}", {"orphans": 0})
    sample = "; ".join(f"{row_id} → missing {what}" for row_id, what in rows[:5])
    return CheckOutcome(False, f"{len(rows)} orphan {table}: {sample}", {"orphans": len(rows)})
