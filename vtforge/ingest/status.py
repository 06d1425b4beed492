"""Lag and throughput per partition for ``vtforge ingest status`` and the Dagster lag sensor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vtforge.ingest.stats import read_members
from vtforge.kafka import client
from vtforge.schemas.catalog import default_catalog

if TYPE_CHECKING:
    from vtforge.config import Config


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    end: int
    committed: int | None
    lag: int
    events_per_s: float = 0.0
    owner: str | None = None


def topic_lags(config: Config, topics: list[str] | None = None) -> list[PartitionLag]:
    """End offset, committed offset and lag of every partition of the event topics (brokers only)."""
    events = config.forge.events
    names = topics or [events.topic(t) for t in default_catalog().event_types]
    admin = client.Admin(client.Connection.from_config(config))
    try:
        existing = admin.topics()
        parts = admin.partitions([n for n in names if n in existing])
        ends = admin.end_offsets(parts)
        committed = admin.committed(events.kafka.consumer_group)
    finally:
        admin.close()
    out = []
    for part in parts:
        end = ends.get(part, 0)
        done = committed.get(part)
        out.append(PartitionLag(part.topic, part.partition, end, done, max(0, end - (done or 0))))
    return out


def group_status(config: Config) -> tuple[list[PartitionLag], list[dict[str, Any]]]:
    """Lags joined with the throughput and owner the live ingestors publish."""
    members = read_members(config.data_dir / "ingest" / "members", config.forge.events.kafka.consumer_group)
    rates: dict[str, tuple[float, str]] = {}
    for member in members:
        if not member["live"]:
            continue
        for key in member.get("owned", []):
            stats = member.get("partitions", {}).get(key, {})
            rates[key] = (stats.get("events_per_s", 0.0), member["member"])
    rows = []
    for lag in topic_lags(config):
        rate, owner = rates.get(f"{lag.topic}/{lag.partition}", (0.0, None))
        rows.append(PartitionLag(lag.topic, lag.partition, lag.end, lag.committed, lag.lag, rate, owner))
    return rows, members


def progress_events(config: Config, rows: list[PartitionLag]) -> list[dict[str, Any]]:
    """The numbers ``ingest status`` shows, as ``ingest_progress`` events (one per partition)."""
    from vtforge.schemas.envelope import new_event

    group = config.forge.events.kafka.consumer_group
    return [
        new_event(
            "ingest_progress",
            {
                "group": group,
                "topic": row.topic,
                "partition": row.partition,
                "end_offset": row.end,
                "committed_offset": row.committed,
                "lag": row.lag,
                "events_per_s": float(row.events_per_s),
                "owner": row.owner,
            },
            producer="vtforge.ingest-status",
            stage="agentless",
            key=f"{group}:{row.topic}:{row.partition}:{row.end}:{row.committed}:{row.owner}",
        )
        for row in rows
    ]
