"""A real three-broker KRaft cluster (plus its controller): failover, restarts and refused writes.

The module starts its own cluster through ``vtforge.kafka.LocalCluster`` (what ``vtforge kafka
start --brokers 3`` runs) on ports of its own (``VTFORGE_TEST_KAFKA_CLUSTER_PORT``, default
39292..39295) with data in a temporary directory, so it coexists with the session's single
broker, and stops it when the module ends. Topics get replication 3 and min.insync.replicas 2
(the cluster defaults of the levers). Each test gets its own topic prefix and consumer group and
starts with every node running.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.cli import invoke
from tests.kafka.conftest import write_kafka_config
from tests.kafka.helpers import ingest_process, landed_ids, produce, rollout, wait_until
from tests.support import require_service
from vtforge.config import Config, load_config
from vtforge.ingest import Ingestor
from vtforge.ingest.stats import read_members
from vtforge.kafka import BrokerError, JarsError, LocalCluster, client
from vtforge.transport import SinkError, sink_from_config
from vtforge.transport.kafka import KafkaSink

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CLUSTER_PORT = int(os.environ.get("VTFORGE_TEST_KAFKA_CLUSTER_PORT", "39292"))
BROKERS = 3


@dataclass
class ClusterHandle:
    cluster: LocalCluster
    cli_config: Path  # points `vtforge kafka …` at this cluster's data dir (with --config)


@pytest.fixture(scope="module")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHandle]:
    require_service(
        bool(shutil.which("java") and shutil.which("mvn")), "Java and Maven (for the Apache Kafka cluster)"
    )
    data = tmp_path_factory.mktemp("kafka-cluster")
    ports = [CLUSTER_PORT + i for i in range(BROKERS)]
    cluster = LocalCluster(data / "kafka", ports=ports, heap_mb=384)
    cli_config = data / "cluster.toml"
    cli_config.write_text(
        f'[forge.events]\nbootstrap_servers = "{cluster.bootstrap}"\n\n'
        f"[forge.events.kafka]\nbrokers = {BROKERS}\nbroker_heap_mb = 384\n\n"
        f'[forge.warehouse]\ndata_dir = "{data}"\n'
    )
    try:
        cluster.start(wait_s=180)
    except (BrokerError, JarsError) as exc:
        require_service(False, f"a local Apache Kafka cluster on ports {ports[0]}..{ports[-1] + 1} ({exc})")
    try:
        yield ClusterHandle(cluster, cli_config)
    finally:
        cluster.stop()


@dataclass
class ClusterWorkspace:
    root: Path
    tag: str
    handle: ClusterHandle

    @property
    def cluster(self) -> LocalCluster:
        return self.handle.cluster

    def config(self) -> Config:
        return load_config(cwd=self.root)

    def cli(self, *args: str) -> Any:
        """``vtforge kafka ARGS`` on this cluster, with this workspace's topics."""
        return invoke("kafka", *args, "--config", str(self.handle.cli_config))


@pytest.fixture
def make_cluster_workspace(workspace: Path, kafka_cluster: ClusterHandle) -> Callable[..., ClusterWorkspace]:
    """A workspace on the cluster (every node running) with fresh topics; extra tables override."""
    kafka_cluster.cluster.start(wait_s=180)  # a node an earlier test left down comes back

    def make(**extra: dict[str, Any]) -> ClusterWorkspace:
        tag = f"c{uuid.uuid4().hex[:10]}"
        tables = {name.replace("__", "."): values for name, values in extra.items()}
        tables.setdefault("forge.events.kafka", {}).update(brokers=BROKERS)
        write_kafka_config(workspace, kafka_cluster.cluster.bootstrap, tag, tables)
        return ClusterWorkspace(workspace, tag, kafka_cluster)

    return make


# --- helpers -------------------------------------------------------------------------------------


def partition_states(cfg: Config, topic: str) -> list[client.PartitionState]:
    admin = client.Admin(client.Connection.from_config(cfg), request_timeout_ms=10_000)
    try:
        return admin.describe_partitions([topic])
    finally:
        admin.close()


def fully_replicated(cfg: Config, topic: str) -> bool:
    try:
        states = partition_states(cfg, topic)
    except client.KafkaError:
        return False
    return bool(states) and all(len(s.isr) == BROKERS and s.leader >= 0 for s in states)


def leader_of(cfg: Config, topic: str, partition: int) -> int:
    return next(s.leader for s in partition_states(cfg, topic) if s.partition == partition)


@dataclass
class Stream:
    """A producer thread: chunks of rollouts through its own KafkaSink until stopped.

    Every emitted event ends in exactly one of ``acked`` (the flush returned) or ``failed`` (the
    sink raised SinkError for it); ``errors`` keeps the sink's messages.
    """

    cfg: Config
    name: str
    chunk: int = 25
    acked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    halt: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    crash: BaseException | None = None  # anything but SinkError: the test must see it

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.halt.set()
        assert self.thread is not None
        self.thread.join(timeout=180)
        assert not self.thread.is_alive(), f"{self.name} did not stop"
        assert self.crash is None, f"{self.name} crashed: {self.crash!r}"

    def _run(self) -> None:
        try:
            self._stream()
        except BaseException as exc:
            self.crash = exc
            raise

    def _stream(self) -> None:
        i = 0
        with sink_from_config(self.cfg, producer=self.name) as sink:
            while not self.halt.is_set():
                chunk = [rollout(i + j, tag=self.name) for j in range(self.chunk)]
                i += self.chunk
                enqueued: list[str] = []
                for event in chunk:
                    try:
                        sink.emit(event)
                        enqueued.append(event["envelope"]["event_id"])
                    except SinkError as exc:  # not even enqueued: the caller is told at once
                        self.failed.append(event["envelope"]["event_id"])
                        self.errors.append(str(exc))
                try:
                    sink.flush()
                    self.acked.extend(enqueued)
                except SinkError as exc:
                    self.failed.extend(enqueued)
                    self.errors.append(str(exc))
                self.halt.wait(0.1)  # steady load, leaving the nodes CPU to restart with


def assert_exactly_once(cfg: Config, streams: list[Stream]) -> list[str]:
    """Acknowledged → landed exactly once; the rest reported; nothing landed that was not sent."""
    acked = [e for s in streams for e in s.acked]
    failed = [e for s in streams for e in s.failed]
    assert not set(acked) & set(failed)
    landed = landed_ids(cfg)
    counts = Counter(landed)
    missing = set(acked) - set(landed)
    assert not missing, f"{len(missing)} acknowledged events lost"
    twice = [e for e in acked if counts[e] != 1]
    assert not twice, f"{len(twice)} acknowledged events landed more than once"
    assert set(landed) <= set(acked) | set(failed)  # nothing that was never sent
    return landed


def partition_rows(out: str, topic: str) -> list[dict[str, str]]:
    """The rows of ``topic`` in the partitions table of ``vtforge kafka status``, by column."""
    columns = ["topic", "part", "leader", "replicas", "in-sync", "state"]
    rows = []
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) == len(columns) and cells[0] == topic:
            rows.append(dict(zip(columns, cells, strict=True)))
    return rows


def stop_service(proc: Any) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    return out


def drain(ws: ClusterWorkspace) -> None:
    final = ingest_process(ws.root, "--once")
    out, _ = final.communicate(timeout=180)
    assert final.returncode == 0, out


# --- the tests -----------------------------------------------------------------------------------


def test_cluster_layout_comes_from_the_levers(workspace: Path) -> None:
    (workspace / "vtcode.toml").write_text(
        '[forge.events]\nbootstrap_servers = "127.0.0.1:19092"\n\n[forge.events.kafka]\nbrokers = 3\n'
    )
    cfg = load_config()
    cluster = LocalCluster.from_config(cfg)
    assert cluster.bootstrap == "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"
    assert {i: (n.role, n.port) for i, n in cluster.nodes.items()} == {
        0: ("controller", 19095),
        1: ("broker", 19092),
        2: ("broker", 19093),
        3: ("broker", 19094),
    }
    assert {n.home for n in cluster.nodes.values()} == {
        cfg.data_dir / "kafka" / "cluster" / f"node-{i}" for i in range(4)
    }
    assert {n.quorum for n in cluster.nodes.values()} == {"0@127.0.0.1:19095"}
    single = LocalCluster.from_config(load_config(env={"VTFORGE_EVENTS__KAFKA__BROKERS": "1"}))
    assert [(n.role, n.port, n.home) for n in single.nodes.values()] == [
        ("combined", 19092, cfg.data_dir / "kafka")  # the single broker keeps its layout
    ]


def test_cli_refuses_a_bootstrap_list_that_does_not_match_brokers_and_unknown_nodes(workspace: Path) -> None:
    (workspace / "vtcode.toml").write_text(
        '[forge.events]\nbootstrap_servers = "127.0.0.1:19092,127.0.0.1:19093"\n\n'
        "[forge.events.kafka]\nbrokers = 3\n"
    )
    result = invoke("kafka", "status")
    assert result.exit_code == 1
    assert (
        result.stderr.count("\n") == 1 and "forge.events.bootstrap_servers lists 2 servers" in result.stderr
    )
    assert (
        "vtcode.toml:2" in result.stderr and "forge.events.kafka.brokers = 3 (vtcode.toml:5)" in result.stderr
    )
    result = invoke("kafka", "stop", "--node", "7", "--brokers", "2")
    assert result.exit_code == 1
    assert "no node 7: this cluster's nodes are 0, 1, 2 (0 is the controller)" in result.stderr


def test_cli_status_shows_nodes_leaders_and_in_sync_replicas(make_cluster_workspace) -> None:
    ws = make_cluster_workspace()
    cfg = ws.config()
    assert cfg.forge.events.kafka.replication_factor == 3
    assert cfg.forge.events.kafka.min_insync_replicas == 2
    produce(cfg, [rollout(i, tag=ws.tag) for i in range(30)])
    result = ws.cli("status")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for node_id, st in enumerate(ws.cluster.status()):
        assert f"node {node_id} " in out and st.bootstrap in out
    assert out.count("; answers") == BROKERS + 1
    rows = partition_rows(out, cfg.forge.events.topic("rollout"))
    assert sorted(int(r["part"]) for r in rows) == [0, 1, 2]
    for row in rows:
        assert int(row["leader"]) in (1, 2, 3)
        assert sorted(row["replicas"].split(",")) == sorted(row["in-sync"].split(",")) == ["1", "2", "3"]
        assert row["state"] == "ok"
    assert ", 0 under-replicated" in out


@contextlib.contextmanager
def under_load(ws: ClusterWorkspace, cfg: Config, topic: str) -> Iterator[list[Stream]]:
    """An ingestor (it creates the topics: replication 3, min.insync.replicas 2) and two producing
    streams, started once the topic is on three in-sync replicas; stopped cleanly when the block
    ends, and halted and killed when it fails."""
    service = ingest_process(ws.root)
    streams = [Stream(cfg, f"{ws.tag}-p{n}") for n in range(2)]
    try:
        wait_until(lambda: fully_replicated(cfg, topic), 60, "the topic on three in-sync replicas", 0.5)
        for stream in streams:
            stream.start()
        yield streams
        for stream in streams:
            stream.stop()
        stop_service(service)
    finally:
        for stream in streams:
            stream.halt.set()
        if service.poll() is None:
            service.kill()


def test_leader_killed_mid_stream_every_acknowledged_event_lands_once(make_cluster_workspace) -> None:
    ws = make_cluster_workspace(forge__events__kafka={"delivery_timeout_ms": 90_000, "max_block_ms": 20_000})
    cfg = ws.config()
    topic = cfg.forge.events.topic("rollout")
    with under_load(ws, cfg, topic) as streams:
        wait_until(lambda: all(len(s.acked) >= 200 for s in streams), 60, "acknowledged events", 0.1)
        victim = leader_of(cfg, topic, 0)
        ws.cluster.kill_node(victim)  # SIGKILL: no controlled shutdown
        marks = [len(s.acked) for s in streams]
        wait_until(
            lambda: leader_of(cfg, topic, 0) not in (victim, -1), 60, "a new leader for partition 0", 0.5
        )
        wait_until(
            lambda: all(len(s.acked) >= m + 200 for s, m in zip(streams, marks, strict=True)),
            90,
            "acknowledged events after the leader died",
            0.1,
        )
    drain(ws)
    landed = assert_exactly_once(cfg, streams)
    for stream in streams:
        assert all("were not acknowledged" in e or "could not enqueue" in e for e in stream.errors)
    print(
        f"leader kill: node {victim}; acknowledged {sum(len(s.acked) for s in streams)}, "
        f"reported failed {sum(len(s.failed) for s in streams)}, landed {len(landed)}"
    )


def test_rolling_restart_under_load_loses_and_duplicates_nothing(make_cluster_workspace) -> None:
    ws = make_cluster_workspace(forge__events__kafka={"delivery_timeout_ms": 90_000, "max_block_ms": 20_000})
    cfg = ws.config()
    topic = cfg.forge.events.topic("rollout")
    with under_load(ws, cfg, topic) as streams:
        for node_id in range(1, BROKERS + 1):
            mark = sum(len(s.acked) for s in streams)
            result = ws.cli("stop", "--node", str(node_id))
            assert result.exit_code == 0 and f"node {node_id} stopped" in result.stdout, result.stderr
            wait_until(
                lambda m=mark: sum(len(s.acked) for s in streams) >= m + 100,
                90,
                f"acknowledged events while node {node_id} is down",
                0.1,
            )
            result = ws.cli("start", "--node", str(node_id))
            assert result.exit_code == 0 and f"node {node_id} started" in result.stdout, result.stderr
            # a rolling restart moves on only once the restarted node is back in every ISR
            wait_until(lambda: fully_replicated(cfg, topic), 120, f"node {node_id} back in sync", 0.5)
    drain(ws)
    landed = assert_exactly_once(cfg, streams)
    assert len(landed) == len(set(landed))  # 0 duplicates in landing
    print(
        f"rolling restart: acknowledged {sum(len(s.acked) for s in streams)}, "
        f"reported failed {sum(len(s.failed) for s in streams)}, landed {len(landed)}"
    )


def test_ingestor_killed_and_replaced_partitions_move_totals_exact(make_cluster_workspace) -> None:
    partitions = 6
    ws = make_cluster_workspace(
        forge__events__kafka={"partitions": partitions, "session_timeout_ms": 6000},
        forge__events={"flush_max_events": 100, "flush_interval_s": 0.3},
    )
    cfg = ws.config()
    topic = cfg.forge.events.topic("rollout")
    everything = {f"{topic}/{p}" for p in range(partitions)}
    n = 2400
    ids = produce(cfg, [rollout(i, tag=ws.tag, tasks=60) for i in range(n // 2)])
    members_dir = cfg.data_dir / "ingest" / "members"

    def owned_by(procs: list[Any]) -> dict[int, set[str]]:
        """Current rollout partitions of each running process, by pid (from its member file)."""
        out: dict[int, set[str]] = {}
        for member in read_members(members_dir):
            for proc in procs:
                if f"-{proc.pid}-" in member["member"] and not member.get("stopped"):
                    out[proc.pid] = {k for k in member["owned"] if k.startswith(f"{topic}/")}
        return out

    def split_among(procs: list[Any]) -> bool:
        owned = owned_by(procs)
        parts = [owned.get(p.pid, set()) for p in procs]
        return all(parts) and sum(map(len, parts)) == partitions and set().union(*parts) == everything

    procs = [ingest_process(ws.root) for _ in range(3)]
    try:
        wait_until(lambda: split_among(procs), 90, "three ingestors sharing the partitions", 0.2)
        wait_until(lambda: len(set(landed_ids(cfg))) >= n // 4, 60, "some events to land", 0.1)
        victim = procs[0]
        lost = owned_by(procs)[victim.pid]
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        newcomer = ingest_process(ws.root)
        survivors = [*procs[1:], newcomer]
        wait_until(lambda: split_among(survivors), 90, "the partitions to move to the survivors", 0.2)
        moved = owned_by(survivors)
        assert lost <= set().union(*moved.values())  # the dead member's partitions have new owners
        assert moved[newcomer.pid]
        ids += produce(cfg, [rollout(i, tag=ws.tag, tasks=60) for i in range(n // 2, n)])
        wait_until(lambda: len(set(landed_ids(cfg))) >= n, 120, "every event to land", 0.2)
        for proc in survivors:
            stop_service(proc)
    finally:
        for proc in procs + ([newcomer] if "newcomer" in locals() else []):
            if proc.poll() is None:
                proc.kill()
    landed = landed_ids(cfg)
    assert len(landed) == n, f"{len(landed) - len(set(landed))} duplicates, {n - len(set(landed))} missing"
    assert set(landed) == set(ids)
    newcomer_totals = next(
        m["totals"]["events"] for m in read_members(members_dir) if f"-{newcomer.pid}-" in m["member"]
    )
    assert newcomer_totals > 0  # the replacement really ingested part of the stream


def test_min_insync_replicas_unmet_is_a_sink_error_and_nothing_lands(make_cluster_workspace) -> None:
    ws = make_cluster_workspace(forge__events__kafka={"delivery_timeout_ms": 10_000, "max_block_ms": 10_000})
    cfg = ws.config()
    topic = cfg.forge.events.topic("rollout")
    before = produce(cfg, [rollout(i, tag=ws.tag) for i in range(20)])  # topics: rf 3, min.insync 2
    wait_until(lambda: fully_replicated(cfg, topic), 60, "the topic on three in-sync replicas", 0.5)
    for node_id in (2, 3):
        result = ws.cli("stop", "--node", str(node_id))
        assert result.exit_code == 0 and f"node {node_id} stopped" in result.stdout, result.stderr
    wait_until(
        lambda: all(s.isr == (1,) for s in partition_states(cfg, topic)), 60, "broker 1 alone in sync", 0.5
    )
    status = ws.cli("status")
    assert status.exit_code == 0, status.stderr  # one broker answers: usable, degraded
    assert status.stdout.count("not running; does not answer") == 2
    rows = partition_rows(status.stdout, topic)
    assert rows and all(r["in-sync"] == "1" and r["state"] == "under-replicated" for r in rows)

    sink = sink_from_config(cfg, producer=f"{ws.tag}-refused")
    assert isinstance(sink, KafkaSink)
    refused = [rollout(100 + i, tag=ws.tag) for i in range(30)]
    for event in refused:
        sink.emit(event)
    with pytest.raises(SinkError) as info:
        sink.flush()
    message = str(info.value)
    assert "\n" not in message  # one line
    assert message.startswith(f"{len(refused)} of {len(refused)} events were not acknowledged"), message
    assert "NotEnoughReplicas" in message, message

    result = ws.cli("start")  # the two stopped nodes, together
    assert result.exit_code == 0, result.stderr
    wait_until(lambda: fully_replicated(cfg, topic), 120, "all three brokers back in sync", 0.5)
    after = [rollout(200 + i, tag=ws.tag) for i in range(20)]
    for event in after:
        sink.emit(event)
    assert sink.flush() == len(after)  # the same sink works again once the ISR is whole
    sink.close()
    Ingestor(cfg, once=True).run()
    landed = landed_ids(cfg)
    assert sorted(landed) == sorted(before + [e["envelope"]["event_id"] for e in after])
    assert not {e["envelope"]["event_id"] for e in refused} & set(landed)  # nothing half-acknowledged


def test_the_quick_demo_runs_through_the_cluster(make_cluster_workspace) -> None:
    """`vtforge demo` with sink = "kafka" on three brokers: the stream goes through replicated
    topics, one ingestion pass lands it, and the warehouse is filled from what landed."""
    ws = make_cluster_workspace()
    done = invoke("demo", "--quick", "--tasks", "5")
    assert done.exit_code == 0, done.stdout + done.stderr
    cfg = ws.config()
    states = partition_states(cfg, cfg.forge.events.topic("rollout"))
    assert states and all(len(s.replicas) == BROKERS and len(s.isr) == BROKERS for s in states)
    landed = landed_ids(cfg)
    assert landed and len(landed) == len(set(landed))
    con = duckdb.connect(str(cfg.duckdb_path), read_only=True)
    try:
        rollouts = con.execute("SELECT count(*) FROM rollouts").fetchall()[0][0]
    finally:
        con.close()
    assert rollouts == len(landed)
