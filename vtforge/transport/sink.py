"""The emitter API every producer uses.

    with sink_from_config(cfg) as sink:
        sink.emit(event)

``emit`` validates the event against its schema at once (a bad event raises
``SchemaViolationError`` in the producer, naming the field) and hands it to the transport. An
event is *acknowledged* when ``flush()`` (or ``close()``) returns without raising: from then on it
is durable — in a landing file that was fsynced and renamed, or acknowledged by every Kafka
in-sync replica. Delivery failures raise ``SinkError`` from ``flush``/``close``; nothing is
dropped silently.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vtforge.config import Config
    from vtforge.schemas.codec import Codec


class SinkError(RuntimeError):
    """Events could not be delivered; the message says which and why."""


class EventSink(ABC):
    """Where events go. Subclasses: ``LandingSink`` (embedded default), ``KafkaSink``."""

    @abstractmethod
    def emit(self, event: dict[str, Any]) -> None:
        """Validate and enqueue one event (not yet acknowledged)."""

    def emit_many(self, events: Iterable[dict[str, Any]]) -> int:
        count = 0
        for event in events:
            self.emit(event)
            count += 1
        return count

    @abstractmethod
    def flush(self) -> int:
        """Make every enqueued event durable; returns how many were acknowledged by this call."""

    @abstractmethod
    def close(self) -> None:
        """Flush, then release resources. Idempotent."""

    def __enter__(self) -> EventSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def codec_for(config: Config) -> Codec:
    """The wire codec: single-object encoding, or the Confluent format when a registry is set."""
    from vtforge.schemas.codec import Codec

    events = config.forge.events
    if not events.schema_registry_url:
        return Codec()
    from vtforge.schemas.registry import SchemaRegistryClient

    registry = SchemaRegistryClient(
        events.schema_registry_url, subject_for=lambda event_type: f"{events.topic(event_type)}-value"
    )
    return Codec(registry=registry)


def sink_from_config(config: Config, *, producer: str = "vtforge") -> EventSink:
    """The sink ``forge.events.sink`` names."""
    events = config.forge.events
    if events.sink == "kafka":
        from vtforge.transport.kafka import KafkaSink  # the Kafka slot (issue: Kafka transport)

        return KafkaSink.from_config(config)
    from vtforge.transport.landing import LandingSink

    return LandingSink(
        config.landing_dir,
        max_events=events.flush_max_events,
        max_bytes=events.flush_max_bytes,
        interval_s=events.flush_interval_s,
        compression=events.parquet_compression,
        producer=producer,
    )
