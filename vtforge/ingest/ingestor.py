"""The Kafka → landing-zone ingestor (``vtforge ingest``; also the Dagster ingestion asset).

One member of a consumer group. Per partition it buffers records into a batch, then:

1. decodes the batch into Arrow (``vtforge.schemas.batch``, on a writer thread or in a worker process,
   see ``writer``); a record that fails goes to the quarantine (raw bytes, the codec's typed
   reason, ``topic/partition@offset``);
2. writes the good events as landing Parquet named after the batch's Kafka coordinates
   (``naming.BatchName``): fsync, rename, fsync of the folder;
3. sends the rejected records to the dead-letter topic and waits for their acknowledgements;
4. only then commits ``last offset + 1`` for the partition.

Batches are committed in the order they were cut, so a partition's committed offset never
passes a batch that is not durable. A crash anywhere before 4 leaves files of an *uncommitted*
batch: before writing its first batch for a partition after an assignment (or after a failed
write), the ingestor removes that partition's files that start at or after the committed offset
— they belong to attempts that never committed and are about to be rewritten. So the landing
zone holds every consumed offset exactly once, even when batch boundaries differ between
attempts. See docs/KAFKA.md for what is and is not guaranteed.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import socket
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vtforge.ingest.stats import MemberStats
from vtforge.ingest.writer import BatchJob, BatchResult, warm_up, worker_init, write_batch
from vtforge.kafka import client
from vtforge.schemas.codec import Codec

if TYPE_CHECKING:
    from vtforge.config import Config

log = logging.getLogger(__name__)

ONCE_IDLE_S = 60.0  # --once gives up when the group assigns it nothing for this long
STOP_GRACE_S = 30.0  # on stop, how long to keep trying to commit the last batches
DLQ_FLUSH_GRACE_S = 10.0  # beyond delivery_timeout_ms, how long a dead-letter flush may wait
MAX_IN_FLIGHT = 3  # batches handed to the worker and not yet committed
EAGER_BATCH = 1000  # smallest batch cut early for an idle worker
# While it runs, the ingestor holds tens of thousands of fetched records; with the default
# first threshold (700 allocations) the collector kept rescanning them (a quarter of the run
# time in bench/ingest.py).
GC_GEN0_THRESHOLD = 50_000


class IngestError(RuntimeError):
    """The ingestor cannot work (no broker at start-up, bad settings)."""


@dataclass
class IngestReport:
    """What one run did (also returned by the Dagster asset)."""

    member: str
    events: int = 0
    rejected: int = 0
    files: int = 0
    commits: int = 0
    partitions: dict[str, int] = field(default_factory=dict)  # "topic/p" -> events + rejected
    seconds: float = 0.0


@dataclass
class _Buffer:
    records: list[Any] = field(default_factory=list)
    size: int = 0
    since: float = field(default_factory=time.monotonic)


@dataclass
class _InFlight:
    part: client.Partition
    first: int
    last: int
    records: list[Any]
    future: Future[BatchResult]


class Ingestor:
    """Consume every event-type topic of the config into the landing zone."""

    def __init__(
        self,
        config: Config,
        *,
        once: bool = False,
        member: str | None = None,
        instance_id: str | None = None,
        max_events: int | None = None,
        max_bytes: int | None = None,
        interval_s: float | None = None,
        workers: int | None = None,
        codec: Codec | None = None,
    ) -> None:
        events = config.forge.events
        self.config = config
        self.once = once
        self.codec = codec or Codec()
        self.connection = client.Connection.from_config(config)
        self.group = events.kafka.consumer_group
        self.member = member or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"
        self.instance_id = instance_id
        self.topics = {events.topic(t): t for t in self.codec.catalog.event_types}
        self.dead_letter_topic = events.dead_letter_topic
        self.registry_url = events.schema_registry_url or None
        self.max_events = max_events or events.flush_max_events
        self.max_bytes = max_bytes or events.flush_max_bytes
        self.interval_s = interval_s if interval_s is not None else events.flush_interval_s
        self.workers = events.kafka.ingest_workers if workers is None else workers
        self.compression = events.parquet_compression
        self.landing = config.landing_dir
        self.quarantine_root = config.quarantine_dir
        self.stats = MemberStats(config.data_dir / "ingest" / "members", self.member, self.group)
        self.report = IngestReport(self.member)
        self._stop = threading.Event()
        self._buffers: dict[client.Partition, _Buffer] = {}
        self._in_flight: deque[_InFlight] = deque()
        self._dirty: set[client.Partition] = set()  # sweep uncommitted files before the next write
        self._assigned: set[client.Partition] = set()
        self._ends: dict[client.Partition, int] = {}  # --once: where each partition's data ended
        self._uncommitted_from: dict[client.Partition, int] = {}  # consumed, dropped on revoke
        self._consumer: client.Consumer | None = None
        self._dlq: client.Producer | None = None
        self._pools: list[Executor] = []

    # --- control -------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to finish its current batches, commit, leave the group and return."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> IngestReport:
        with fewer_collections():
            return self._run()

    def _run(self) -> IngestReport:
        started = time.monotonic()
        self._connect()
        idle_since = time.monotonic()
        try:
            while not self._stop.is_set():
                polled = self._poll()
                now = time.monotonic()
                for part, records in polled.items():
                    if part not in self._assigned or not records:
                        continue
                    buf = self._buffers.setdefault(part, _Buffer(since=now))
                    buf.records.extend(records)
                    buf.size += sum(len(r.value or b"") for r in records)
                reached = self.once and self._reached_ends()
                drained = not polled or reached
                # An idle worker gets work early (batches of at least EAGER_BATCH), so decoding
                # overlaps with fetching; a busy one lets batches grow up to the limits.
                idle = len(self._in_flight) < len(self._pools)
                due = [
                    p
                    for p, b in self._buffers.items()
                    if len(b.records) >= self.max_events
                    or b.size >= self.max_bytes
                    or now - b.since >= self.interval_s
                    or (drained and self.once)
                    or (idle and len(b.records) >= min(self.max_events, EAGER_BATCH))
                ]
                if due:
                    self._submit(due)
                self._complete(block=drained and self.once)
                self.stats.owned = [f"{p.topic}/{p.partition}" for p in self._assigned]
                self.stats.publish()
                if self.once:
                    if self._assigned:
                        idle_since = now
                    elif now - idle_since > ONCE_IDLE_S:
                        break
                    if reached and not self._buffers and not self._in_flight:
                        break
            self._submit(list(self._buffers))
            self._complete(block=True, deadline=time.monotonic() + STOP_GRACE_S)
        finally:
            self._close()
            self.report.seconds = time.monotonic() - started
        return self.report

    # --- set-up and tear-down ------------------------------------------------------------------
    def _connect(self) -> None:
        k = self.config.forge.events.kafka
        # One single-process pool per worker; a partition always goes to the same worker, so its
        # batches are written in the order they were cut (the sweep of a batch never races a
        # later batch of the same partition). Forked before this ingestor starts any Kafka
        # client thread: the worker inherits the imported modules and starts at once.
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        for _ in range(self.workers):
            pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context(method), initializer=worker_init
            )
            pool.submit(warm_up)  # imports overlap with joining the group
            self._pools.append(pool)
        if not self._pools:
            # 0 workers: one writer thread. The native decoder and Parquet release the GIL, so
            # decoding and writing overlap with the client's fetch parsing without any copying.
            self._pools.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer"))
        try:
            admin = client.Admin(self.connection)
        except client.KafkaError as exc:
            self._shutdown_pool()
            raise IngestError(f"no Kafka broker at {self.connection.bootstrap}: {exc}") from exc
        try:
            admin.ensure_topics(
                [*self.topics, self.dead_letter_topic],
                partitions=k.partitions,
                replication=k.replication_factor,
                min_insync=k.min_insync_replicas,
            )
        finally:
            admin.close()
        self._consumer = client.Consumer(
            self.connection,
            group=self.group,
            client_id=self.member,
            instance_id=self.instance_id,
            session_timeout_ms=k.session_timeout_ms,
            max_poll_records=min(self.max_events, 10_000),
        )
        self._consumer.subscribe(
            sorted(self.topics), on_assigned=self._on_assigned, on_revoked=self._on_revoked
        )

    def _close(self) -> None:
        self._shutdown_pool()
        for closer in (self._consumer, self._dlq):
            if closer is None:
                continue
            try:
                closer.close()
            except Exception as exc:  # closing must not hide the real outcome
                log.warning("closing %s failed: %s", type(closer).__name__, exc)
        self.stats.retire()

    def _shutdown_pool(self) -> None:
        for pool in self._pools:
            pool.shutdown(wait=True, cancel_futures=True)
        self._pools = []

    # --- group membership (called from inside poll) ---------------------------------------------
    def _on_assigned(self, parts: list[client.Partition]) -> None:
        assert self._consumer is not None
        self._assigned.update(parts)
        self._dirty.update(parts)
        # The client keeps its fetch position for a partition that is revoked and assigned back
        # (eager rebalance); the records we dropped on revoke must be read again.
        for part in parts:
            if part in self._uncommitted_from:
                self._consumer.seek(part, self._uncommitted_from[part])
        self._uncommitted_from.clear()
        log.info("%s assigned %d partitions", self.member, len(parts))

    def _on_revoked(self, parts: list[client.Partition]) -> None:
        # Let the worker finish what it has (its files must be complete before the next owner
        # sweeps them), commit nothing, drop the buffers: the next owner reads them again.
        revoked = set(parts)
        for job in self._in_flight:
            if job.part in revoked:
                _wait_quietly(job.future)
                self._note_uncommitted(job.part, job.first)
        self._in_flight = deque(j for j in self._in_flight if j.part not in revoked)
        for part in parts:
            buf = self._buffers.pop(part, None)
            if buf is not None and buf.records:
                self._note_uncommitted(part, buf.records[0].offset)
            self._assigned.discard(part)
            self._dirty.discard(part)
            self._ends.pop(part, None)

    def _note_uncommitted(self, part: client.Partition, offset: int) -> None:
        self._uncommitted_from[part] = min(offset, self._uncommitted_from.get(part, offset))

    # --- the work ------------------------------------------------------------------------------
    def _poll(self) -> dict[client.Partition, list[Any]]:
        assert self._consumer is not None
        try:
            return self._consumer.poll(0.2 if self._in_flight else 0.5)
        except client.KafkaError as exc:
            if not client.is_retriable(exc):
                raise
            log.warning("poll failed (%s); retrying", exc)
            time.sleep(1.0)
            return {}

    def _reached_ends(self) -> bool:
        """``--once``: every assigned partition is read up to its end offset when it was assigned."""
        assert self._consumer is not None
        if not self._assigned:
            return False
        try:
            missing = [p for p in self._assigned if p not in self._ends]
            if missing:
                self._ends.update(self._consumer.end_offsets(missing))
            return all(self._consumer.position(p) >= self._ends.get(p, 0) for p in self._assigned)
        except client.KafkaError as exc:
            log.warning("could not read end offsets (%s)", exc)
            return False

    def _submit(self, parts: list[client.Partition]) -> None:
        """Cut the buffers of ``parts`` into batches and hand them to the writer."""
        for part in parts:
            buf = self._buffers.pop(part, None)
            if buf is None or not buf.records:
                continue
            records = buf.records
            first, last = records[0].offset, records[-1].offset
            sweep_from = first if part in self._dirty else None
            self._dirty.discard(part)
            job = BatchJob(
                str(self.landing),
                str(self.quarantine_root),
                self.compression,
                part.topic,
                part.partition,
                first,
                last,
                [r.offset for r in records],
                [r.value for r in records],
                self.topics.get(part.topic),
                self.registry_url,
                sweep_from,
            )
            self._in_flight.append(_InFlight(part, first, last, records, self._start(job)))
            while len(self._in_flight) > MAX_IN_FLIGHT * len(self._pools):
                self._complete(block=True, limit=1)

    def _start(self, job: BatchJob) -> Future[BatchResult]:
        pool = self._pools[zlib.crc32(f"{job.topic}/{job.partition}".encode()) % len(self._pools)]
        return pool.submit(write_batch, job)

    def _complete(self, *, block: bool, limit: int | None = None, deadline: float | None = None) -> None:
        """Commit finished batches, oldest first; a failed one rewinds its partition."""
        done: list[tuple[_InFlight, BatchResult]] = []
        failed: list[_InFlight] = []
        while self._in_flight and (block or self._in_flight[0].future.done()):
            if limit is not None and len(done) + len(failed) >= limit:
                break
            job = self._in_flight.popleft()
            try:
                done.append((job, job.future.result()))
            except Exception as exc:
                log.error(
                    "writing %s@%d-%d failed (%s); it will be read again", job.part, job.first, job.last, exc
                )
                failed.append(job)
                break
        if failed:
            # Later batches of the same partition must not be committed past the failed one.
            bad_parts = {j.part for j in failed}
            later = [j for j in self._in_flight if j.part in bad_parts]
            for job in later:
                _wait_quietly(job.future)
            self._in_flight = deque(j for j in self._in_flight if j.part not in bad_parts)
            self._rewind({j.part: j.first for j in failed})
        if not done:
            if failed:
                time.sleep(1.0)
            return
        try:
            self._dead_letters(done)
        except client.KafkaError as exc:
            log.error("dead-letter topic unavailable (%s); the batches will be read again", exc)
            self._rewind_jobs([j for j, _ in done])
            return
        offsets = {job.part: job.last + 1 for job, _ in done}
        if self._commit(offsets, deadline):
            for job, result in done:
                self._count(job, result)
        else:
            self._rewind_jobs([j for j, _ in done])

    def _dead_letter_producer(self) -> client.Producer:
        """Created at the first rejected record: most runs never need one."""
        if self._dlq is None:
            k = self.config.forge.events.kafka
            self._dlq = client.Producer(
                self.connection,
                client_id=f"{self.member}-dlq",
                linger_ms=5,
                delivery_timeout_ms=k.delivery_timeout_ms,
                max_block_ms=k.max_block_ms,
            )
        return self._dlq

    def _dead_letters(self, done: list[tuple[_InFlight, BatchResult]]) -> None:
        if not any(result.rejected for _, result in done):
            return
        dlq = self._dead_letter_producer()
        deliveries = []
        for job, result in done:
            if not result.rejected:
                continue
            by_offset = {r.offset: r for r in job.records}
            for offset, reason, error in result.rejected:
                record = by_offset[offset]
                headers = [
                    ("vtforge.reason", reason.encode()),
                    ("vtforge.error", error.encode()[:1000]),
                    ("vtforge.source", f"{record.topic}/{record.partition}@{offset}".encode()),
                ]
                deliveries.append(
                    dlq.send(self.dead_letter_topic, record.value or b"", key=record.key, headers=headers)
                )
        if not deliveries:
            return
        # bounded like KafkaSink.flush: kafka-python's idempotent producer can wait for ever for a
        # producer id while a broker is down; a stuck or failed producer is replaced
        timeout_s = self.config.forge.events.kafka.delivery_timeout_ms / 1000 + DLQ_FLUSH_GRACE_S
        try:
            dlq.flush(timeout_s=timeout_s)
        except client.KafkaError:
            self._drop_dead_letter_producer()
            raise
        failed = [d for d in deliveries if not d.is_done or d.failed()]
        if failed:
            self._drop_dead_letter_producer()
            raise client.KafkaError(
                f"{len(failed)} dead-letter records not acknowledged: {failed[0].exception}"
            )

    def _drop_dead_letter_producer(self) -> None:
        if self._dlq is not None:
            try:
                self._dlq.close(timeout_s=5)
            except Exception as exc:  # a stuck producer: it is dropped either way
                log.warning("closing the dead-letter producer failed: %s", exc)
            self._dlq = None

    def _commit(self, offsets: dict[client.Partition, int], deadline: float | None) -> bool:
        assert self._consumer is not None
        while True:
            try:
                self._consumer.commit(offsets)
                self.report.commits += 1
                return True
            except client.CommitFailedError as exc:
                # The group moved on (we were too slow, or a rebalance fenced us). The files stay;
                # the new owner sweeps or rewrites them, and the warehouse dedups by event_id.
                log.warning("commit rejected by the group (%s)", exc)
                return False
            except client.KafkaError as exc:
                if not client.is_retriable(exc):
                    raise
                if (deadline is not None and time.monotonic() > deadline) or (
                    deadline is None and self._stop.is_set()
                ):
                    log.warning("giving up on a commit while stopping (%s)", exc)
                    return False
                log.warning("commit failed (%s); retrying", exc)
                time.sleep(1.0)

    def _rewind_jobs(self, jobs: list[_InFlight]) -> None:
        firsts: dict[client.Partition, int] = {}
        for job in jobs:
            firsts[job.part] = min(job.first, firsts.get(job.part, job.first))
        # later in-flight batches of these partitions are not committed either
        for job in self._in_flight:
            if job.part in firsts:
                _wait_quietly(job.future)
        self._in_flight = deque(j for j in self._in_flight if j.part not in firsts)
        self._rewind(firsts)

    def _rewind(self, firsts: dict[client.Partition, int]) -> None:
        """Read these partitions again from the given offsets; their files will be swept first."""
        assert self._consumer is not None
        for part, first in firsts.items():
            self._buffers.pop(part, None)
            if part not in self._assigned:
                continue
            try:
                self._consumer.seek(part, first)
            except Exception as exc:  # the partition may have been revoked meanwhile
                log.warning("could not rewind %s: %s", part, exc)
            self._dirty.add(part)

    def _count(self, job: _InFlight, result: BatchResult) -> None:
        key = f"{job.part.topic}/{job.part.partition}"
        bad = len(result.rejected)
        self.report.events += result.good
        self.report.rejected += bad
        self.report.files += result.files
        self.report.partitions[key] = self.report.partitions.get(key, 0) + result.good + bad
        self.stats.record(key, result.good, bad, result.files, job.last + 1)


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Freeze what exists (never garbage here) and collect young objects less often; restore after."""
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(previous[0], GC_GEN0_THRESHOLD), *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


def _wait_quietly(future: Future[Any]) -> None:
    try:
        future.result()
    except Exception as exc:
        log.info("an abandoned batch failed too (%s)", exc)
