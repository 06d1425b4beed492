"""``KafkaSink``: the emitter API on an idempotent Kafka producer.

One topic per event type (``forge.events.topic_prefix + event_type``), created with the
configured partitions, replication and min.insync.replicas the first time a type is emitted. The
key is the task id, so one task's events stay in order on one partition. Values are the codec's bytes (Avro
single-object encoding), exactly what the landing sink would write. ``emit`` only enqueues;
``flush()`` waits for every enqueued event and raises ``SinkError`` if any was not acknowledged
by all in-sync replicas — an event is acknowledged when ``flush``/``close`` returns.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from vtforge.kafka import client
from vtforge.schemas.codec import Codec
from vtforge.transport.sink import EventSink, SinkError, codec_for

if TYPE_CHECKING:
    from vtforge.config import Config


FLUSH_GRACE_S = 10.0


class KafkaSink(EventSink):
    """Events → Kafka. Nothing is dropped silently: failures surface from ``flush``/``close``."""

    def __init__(
        self,
        connection: client.Connection,
        *,
        topic_for: Any,
        partitions: int = 3,
        replication: int = 1,
        min_insync: int | None = None,
        codec: Codec | None = None,
        producer_options: dict[str, Any] | None = None,
        producer: str = "vtforge",
    ) -> None:
        self.connection = connection
        self.topic_for = topic_for
        self.partitions = partitions
        self.replication = replication
        self.min_insync = min_insync
        self.codec = codec or Codec()
        self._known_topics: set[str] = set()
        self._pending: list[tuple[str, Any]] = []  # (event_id, delivery)
        self._closed = False
        self._timeout_ms = int((producer_options or {}).get("max_block_ms", 60_000))
        self._client_id = producer
        self._producer_options = producer_options or {}
        # every send settles (acknowledged or failed) within delivery_timeout_ms; the grace covers
        # a client that never expires its batches (kafka-python's idempotent producer can wait
        # forever for a new producer id while a broker is down)
        delivery_s = int(self._producer_options.get("delivery_timeout_ms", 120_000)) / 1000
        self._flush_timeout_s = delivery_s + FLUSH_GRACE_S
        self._producer = self._new_producer()

    @classmethod
    def from_config(cls, config: Config, *, producer: str = "vtforge") -> KafkaSink:
        events = config.forge.events
        k = events.kafka
        return cls(
            client.Connection.from_config(config),
            codec=codec_for(config),  # the Confluent framing when a schema registry is set
            topic_for=events.topic,
            partitions=k.partitions,
            replication=k.replication_factor,
            min_insync=k.min_insync_replicas,
            producer=producer,
            producer_options={
                "acks": k.acks,
                "linger_ms": k.linger_ms,
                "batch_size": k.batch_size,
                "compression": k.compression,
                "delivery_timeout_ms": k.delivery_timeout_ms,
                "max_block_ms": k.max_block_ms,
            },
        )

    def emit(self, event: dict[str, Any]) -> None:
        if self._closed:
            raise SinkError("emit on a closed KafkaSink")
        payload = self.codec.encode(event)  # raises SchemaViolationError naming the field
        envelope = event["envelope"]
        topic = self.topic_for(envelope["event_type"])
        if topic not in self._known_topics:
            self._ensure_topic(topic)
        task_id = envelope.get("task_id")
        try:
            delivery = self._producer.send(topic, payload, key=task_id.encode() if task_id else None)
        except client.KafkaError as exc:  # metadata or buffer wait ran past max_block_ms
            raise SinkError(
                f"could not enqueue {envelope['event_type']} event {envelope['event_id']}: {exc}"
            ) from exc
        self._pending.append((envelope["event_id"], delivery))

    def flush(self) -> int:
        pending, self._pending = self._pending, []
        if not pending:
            return 0
        stuck = ""
        try:
            self._producer.flush(timeout_s=self._flush_timeout_s)
        except client.KafkaError as exc:  # some sends were still unsettled when the time ran out
            stuck = f"unsettled after {self._flush_timeout_s:.0f}s ({exc})"
        failed = [(event_id, d) for event_id, d in pending if not d.is_done or d.failed()]
        if failed:
            # kafka-python's idempotent producer stays failed after a fatal error (or stuck); start
            # afresh (new producer id) so the caller can re-emit, as the error tells it to.
            _discard(self._producer)
            self._producer = self._new_producer()
            event_id, delivery = failed[0]
            reason = delivery.exception if delivery.is_done else stuck or "not acknowledged"
            raise SinkError(
                f"{len(failed)} of {len(pending)} events were not acknowledged by "
                f"{self.connection.bootstrap} (first: {event_id}: {reason}){self._why(failed)}"
            )
        return len(pending)

    def _why(self, failed: list[tuple[str, Any]]) -> str:
        """What the retries hid: the producer reports only that time ran out, while the brokers
        kept refusing writes to partitions with too few in-sync replicas (NotEnoughReplicas)."""
        if not any(not d.is_done or client.is_timeout(d.exception) for _, d in failed):
            return ""
        parts = {p for _, d in failed if (p := client.delivery_partition(d)) is not None}
        try:
            admin = client.Admin(self.connection, request_timeout_ms=5000)
        except client.KafkaError:
            return ""
        try:
            short = admin.below_min_insync(parts)
        except client.KafkaError:
            return ""
        finally:
            admin.close()
        if not short:
            return ""
        shown = ", ".join(f"{p.topic}/{p.partition} has {isr} < {need}" for p, isr, need in short[:3])
        more = f" and {len(short) - 3} more" if len(short) > 3 else ""
        return f"; NotEnoughReplicas: in-sync replicas below min.insync.replicas ({shown}{more})"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.flush()
        finally:
            try:
                self._producer.close(timeout_s=self._flush_timeout_s)
            except client.KafkaError:  # still unsettled: the flush above said so already
                _discard(self._producer)

    def _new_producer(self) -> client.Producer:
        try:
            return client.Producer(self.connection, client_id=self._client_id, **self._producer_options)
        except client.KafkaError as exc:
            raise SinkError(f"cannot reach Kafka at {self.connection.bootstrap}: {exc}") from exc

    def _ensure_topic(self, topic: str) -> None:
        try:
            admin = client.Admin(self.connection, request_timeout_ms=self._timeout_ms)
        except client.KafkaError as exc:
            raise SinkError(f"cannot reach Kafka at {self.connection.bootstrap}: {exc}") from exc
        # every event type's topic in one round trip: producers usually emit several types
        wanted = {topic} | {self.topic_for(t) for t in self.codec.catalog.event_types}
        try:
            admin.ensure_topics(
                wanted, partitions=self.partitions, replication=self.replication, min_insync=self.min_insync
            )
        except client.KafkaError as exc:
            raise SinkError(f"cannot create topic {topic}: {exc}") from exc
        finally:
            admin.close()
        self._known_topics.update(wanted)


def _discard(producer: client.Producer) -> None:
    """Close a failed or stuck producer without letting its close raise: kafka-python's close
    flushes first and raises a timeout when batches never settle (the reason it is replaced)."""
    try:
        producer.close(timeout_s=5)
    except client.KafkaError:
        with contextlib.suppress(client.KafkaError):
            producer.close(timeout_s=0)  # no wait: the sender thread is told to stop
