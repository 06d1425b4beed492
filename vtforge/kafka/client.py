"""The only module that imports the Kafka client library (kafka-python 3.x).

Everything else in vtforge talks to ``Producer``, ``Consumer`` and ``Admin`` below, so the client
could be swapped (e.g. for confluent-kafka) by rewriting this file alone. Records handed out by
``Consumer.poll`` only need ``topic``, ``partition``, ``offset``, ``key``, ``value`` and
``headers`` attributes (kafka-python's ``ConsumerRecord`` has them; we pass it through instead of
copying each record, which matters at tens of thousands of records per second).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import kafka.errors as kerrors
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata

if TYPE_CHECKING:
    from vtforge.config import Config

log = logging.getLogger(__name__)

KafkaError = kerrors.KafkaError
CommitFailedError = kerrors.CommitFailedError


class Partition(NamedTuple):
    topic: str
    partition: int


class PartitionState(NamedTuple):
    """Who leads a partition and which replicas are in sync (``leader`` -1: none)."""

    topic: str
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


class Record(Protocol):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True)
class Connection:
    """How to reach a cluster: bootstrap servers plus optional TLS/SASL settings."""

    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    @classmethod
    def from_config(cls, config: Config) -> Connection:
        """From a ``vtforge.config.Config`` (the password is read from the named variable)."""
        events = config.forge.events
        k = events.kafka
        password = os.environ.get(k.sasl_password_env) if k.sasl_password_env else None
        return cls(
            bootstrap=events.bootstrap_servers,
            security_protocol=k.security_protocol,
            sasl_mechanism=k.sasl_mechanism,
            sasl_username=k.sasl_username,
            sasl_password=password,
            ssl_cafile=_path(config, k.ssl_cafile),
            ssl_certfile=_path(config, k.ssl_certfile),
            ssl_keyfile=_path(config, k.ssl_keyfile),
        )

    def settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "bootstrap_servers": [s.strip() for s in self.bootstrap.split(",") if s.strip()],
            "security_protocol": self.security_protocol,
            "reconnect_backoff_max_ms": 2000,  # a restarted broker is found again within 2 s
        }
        if self.sasl_mechanism:
            out["sasl_mechanism"] = self.sasl_mechanism
            out["sasl_plain_username"] = self.sasl_username
            out["sasl_plain_password"] = self.sasl_password
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


def _path(config: Config, value: str | None) -> str | None:
    if not value:
        return None
    return str((config.root / value).resolve()) if not os.path.isabs(value) else value


def is_retriable(exc: BaseException) -> bool:
    """Errors worth retrying after a pause (broker restarting, leader moving, timeouts)."""
    if isinstance(exc, CommitFailedError):
        return False
    return isinstance(exc, (kerrors.KafkaTimeoutError, kerrors.KafkaConnectionError)) or (
        isinstance(exc, KafkaError) and bool(getattr(exc, "retriable", False))
    )


def cluster_ready(bootstrap: str, timeout_s: float = 3.0) -> bool:
    """True when a broker at ``bootstrap`` answers a metadata request."""
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000), bootstrap_timeout_ms=2000
        )
    except Exception:
        return False
    try:
        admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        admin.close()


# --- producer ------------------------------------------------------------------------------------


class Delivery(Protocol):
    """A pending send: ``is_done``, ``failed()``, ``exception``."""

    is_done: bool
    exception: BaseException | None

    def failed(self) -> bool: ...


def delivery_partition(delivery: Delivery) -> Partition | None:
    """The partition a pending send was batched for (None when the client does not say)."""
    tp = getattr(getattr(delivery, "_produce_future", None), "topic_partition", None)
    return None if tp is None else Partition(tp.topic, tp.partition)


def is_timeout(exc: BaseException | None) -> bool:
    """A send that ran out of time (retries exhausted), as opposed to one the broker refused outright."""
    return isinstance(exc, kerrors.KafkaTimeoutError)


class Producer:
    """An idempotent producer (acks=all unless told otherwise): sends bytes, flushes, reports."""

    def __init__(
        self,
        connection: Connection,
        *,
        acks: str = "all",
        linger_ms: int = 20,
        batch_size: int = 256 * 1024,
        compression: str = "none",
        delivery_timeout_ms: int = 120_000,
        max_block_ms: int = 60_000,
        client_id: str = "vtforge",
    ) -> None:
        acks_value: Any = "all" if acks == "all" else int(acks)
        self._producer = KafkaProducer(
            **connection.settings(),
            client_id=client_id,
            acks=acks_value,
            enable_idempotence=acks == "all",  # idempotence needs acks=all
            linger_ms=linger_ms,
            batch_size=batch_size,
            compression_type=None if compression == "none" else compression,
            delivery_timeout_ms=delivery_timeout_ms,
            request_timeout_ms=min(30_000, delivery_timeout_ms - linger_ms),
            max_block_ms=max_block_ms,
            bootstrap_timeout_ms=max_block_ms,
            allow_auto_create_topics=False,
            max_request_size=8 * 1024 * 1024,
        )

    def send(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Delivery:
        return self._producer.send(topic, value=value, key=key, headers=headers)

    def flush(self, timeout_s: float | None = None) -> None:
        self._producer.flush(timeout=timeout_s)

    def close(self, timeout_s: float | None = None) -> None:
        self._producer.close(timeout=timeout_s)


# --- consumer ------------------------------------------------------------------------------------


class _Listener(ConsumerRebalanceListener):
    def __init__(
        self,
        on_assigned: Callable[[list[Partition]], None],
        on_revoked: Callable[[list[Partition]], None],
    ) -> None:
        self._assigned = on_assigned
        self._revoked = on_revoked

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self._revoked([Partition(tp.topic, tp.partition) for tp in revoked])

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self._assigned([Partition(tp.topic, tp.partition) for tp in assigned])

    def on_partitions_lost(self, lost: Iterable[TopicPartition]) -> None:
        self._revoked([Partition(tp.topic, tp.partition) for tp in lost])


class Consumer:
    """A group member with manual commits, reading from the committed offset (else the earliest)."""

    def __init__(
        self,
        connection: Connection,
        *,
        group: str,
        client_id: str = "vtforge-ingest",
        max_poll_records: int = 5000,
        instance_id: str | None = None,
        session_timeout_ms: int = 10_000,
        max_poll_interval_ms: int = 300_000,
    ) -> None:
        self._consumer = KafkaConsumer(
            **connection.settings(),
            group_id=group,
            group_instance_id=instance_id,  # static membership: a restart takes over at once
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=max_poll_records,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=max(1000, session_timeout_ms // 10),
            max_poll_interval_ms=max_poll_interval_ms,
            allow_auto_create_topics=False,
        )

    def subscribe(
        self,
        topics: list[str],
        *,
        on_assigned: Callable[[list[Partition]], None],
        on_revoked: Callable[[list[Partition]], None],
    ) -> None:
        self._consumer.subscribe(topics=topics, listener=_Listener(on_assigned, on_revoked))

    def poll(self, timeout_s: float, max_records: int | None = None) -> dict[Partition, list[Record]]:
        batches = self._consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        return {Partition(tp.topic, tp.partition): records for tp, records in batches.items()}

    def commit(self, offsets: dict[Partition, int], *, timeout_s: float = 30.0) -> None:
        """Commit ``next offset to read`` per partition; raises CommitFailedError when fenced."""
        self._consumer.commit(
            {TopicPartition(*p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()},
            timeout_ms=int(timeout_s * 1000),
        )

    def committed(self, partition: Partition) -> int | None:
        return self._consumer.committed(TopicPartition(*partition))

    def assignment(self) -> set[Partition]:
        return {Partition(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def position(self, partition: Partition) -> int:
        return self._consumer.position(TopicPartition(*partition))

    def seek(self, partition: Partition, offset: int) -> None:
        self._consumer.seek(TopicPartition(*partition), offset)

    def end_offsets(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        ends = self._consumer.end_offsets([TopicPartition(*p) for p in partitions])
        return {Partition(tp.topic, tp.partition): o for tp, o in ends.items()}

    def close(self) -> None:
        self._consumer.close(autocommit=False)


# --- admin ---------------------------------------------------------------------------------------


class Admin:
    """Topic creation and group-offset queries.

    Each request is retried on a retriable error until ``request_timeout_ms``: on a cluster, the
    client may pick a node that just died and is still in the metadata, and a second try reaches
    a live one (kafka-python's admin client does not fail over by itself).
    """

    def __init__(self, connection: Connection, *, request_timeout_ms: int = 30_000) -> None:
        self.connection = connection
        self._timeout_s = request_timeout_ms / 1000
        try:
            self._admin = KafkaAdminClient(
                **connection.settings(),
                client_id="vtforge-admin",
                request_timeout_ms=request_timeout_ms,
                bootstrap_timeout_ms=request_timeout_ms,
            )
        except KafkaError as exc:
            raise kerrors.KafkaConnectionError(
                f"no Kafka broker answers at {connection.bootstrap}: {exc}"
            ) from None

    def _retrying(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + self._timeout_s
        while True:
            try:
                return call(*args, **kwargs)
            except KafkaError as exc:
                if not is_retriable(exc) or time.monotonic() > deadline:
                    raise
                log.info("admin request failed (%s); retrying", exc)
                time.sleep(0.3)

    def topics(self) -> set[str]:
        return set(self._retrying(self._admin.list_topics))

    def ensure_topics(
        self, names: Iterable[str], *, partitions: int, replication: int, min_insync: int | None = None
    ) -> list[str]:
        """Create the missing topics (racing creators are fine); returns the ones this call created.

        ``min_insync`` becomes the topics' ``min.insync.replicas``: with acks=all, a write is
        refused (not half-acknowledged) while fewer replicas are in sync.
        """
        wanted = sorted(set(names) - self.topics())
        if not wanted:
            return []
        configs = {} if min_insync is None else {"min.insync.replicas": str(min_insync)}
        spec = {
            n: {"num_partitions": partitions, "replication_factor": replication, "configs": configs}
            for n in wanted
        }
        result: dict[str, Any] = {}
        with contextlib.suppress(kerrors.TopicAlreadyExistsError):
            result = self._retrying(
                self._admin.create_topics, spec, raise_errors=False, wait_for_metadata=True
            )
        missing = self._await_topics(wanted, failed=bool(_topic_errors(result)))
        if missing:
            reasons = {
                t.get("error_message") or kerrors.for_code(t.get("error_code", -1)).__name__
                for t in _topic_errors(result)
            }
            why = f": {'; '.join(sorted(reasons))}" if reasons else ""
            raise KafkaError(f"could not create topics {missing} on {self.connection.bootstrap}{why}")
        return wanted

    def _await_topics(self, wanted: list[str], *, failed: bool, wait_s: float = 15.0) -> list[str]:
        """The topics of ``wanted`` still missing from the metadata. Created topics can take a moment
        to show on the broker this client asks (a fresh cluster's brokers learn them from the
        controller), so a creation that reported no error is waited for."""
        deadline = time.monotonic() + (0.0 if failed else wait_s)
        while True:
            missing = sorted(set(wanted) - self.topics())
            if not missing or time.monotonic() >= deadline:
                return missing
            time.sleep(0.2)

    def partitions(self, topics: Iterable[str]) -> list[Partition]:
        described = self._retrying(self._admin.describe_topics, sorted(topics))
        out = []
        for topic in described:
            name = topic.get("topic") or topic.get("name")
            for part in topic.get("partitions", []):
                out.append(
                    Partition(name, part.get("partition") if "partition" in part else part["partition_index"])
                )
        return sorted(out)

    def describe_partitions(self, topics: Iterable[str]) -> list[PartitionState]:
        """Leader, replicas and in-sync replicas of every partition of ``topics``, sorted."""
        out = []
        for topic in self._retrying(self._admin.describe_topics, sorted(topics)):
            name = topic.get("name") or topic.get("topic")
            for part in topic.get("partitions", []):
                out.append(
                    PartitionState(
                        name,
                        part["partition_index"],
                        part["leader_id"],
                        tuple(part["replica_nodes"]),
                        tuple(part["isr_nodes"]),
                    )
                )
        return sorted(out)

    def below_min_insync(self, partitions: Iterable[Partition]) -> list[tuple[Partition, int, int]]:
        """``(partition, in-sync replicas, min.insync.replicas)`` for those of ``partitions`` that
        have fewer in-sync replicas than their topic requires: acks=all writes to them are refused."""
        from kafka.admin import ConfigResource, ConfigResourceType

        wanted = set(partitions)
        topics = sorted({p.topic for p in wanted})
        if not topics:
            return []
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, t, configs={"min.insync.replicas": ""}) for t in topics
        ]
        configs = self._retrying(self._admin.describe_configs, resources, config_filter="all").get(
            "topic", {}
        )
        out = []
        for state in self.describe_partitions(topics):
            part = Partition(state.topic, state.partition)
            required = int(configs.get(state.topic, {}).get("min.insync.replicas", {}).get("value", 1))
            if part in wanted and len(state.isr) < required:
                out.append((part, len(state.isr), required))
        return out

    def committed(self, group: str, *, wait_s: float = 15.0) -> dict[Partition, int]:
        """The group's committed offsets (empty for a group that never committed).

        On a fresh cluster the offsets topic is created by the first group request, and the
        coordinator answers "not available" until it exists: retried for up to ``wait_s``.
        """
        deadline = time.monotonic() + wait_s
        while True:
            try:
                result = self._admin.list_group_offsets({group: None}).get(group, {})
                break
            except kerrors.GroupIdNotFoundError:
                return {}
            except KafkaError as exc:
                if not is_retriable(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        return {Partition(tp.topic, tp.partition): om.offset for tp, om in result.items() if om.offset >= 0}

    def end_offsets(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        from kafka.admin import OffsetSpec

        specs = {TopicPartition(*p): OffsetSpec.LATEST for p in partitions}
        if not specs:
            return {}
        lookup = self._admin.list_partition_offsets  # in kafka-python 3.0, not in its stubs
        result = self._retrying(lookup, specs)
        return {Partition(tp.topic, tp.partition): info.offset for tp, info in result.items()}

    def delete_topics(self, names: Iterable[str]) -> None:
        self._retrying(self._admin.delete_topics, list(names), raise_errors=False)

    def close(self) -> None:
        self._admin.close()


def _topic_errors(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-topic errors of a CreateTopics response (``raise_errors=False``)."""
    return [t for t in result.get("topics", []) if t.get("error_code")]
