"""The local Kafka that ``vtforge kafka start`` runs: one combined node, or N brokers and a controller.

With ``forge.events.kafka.brokers = 1`` this is the single combined broker of ``broker`` (home
``<data_dir>/kafka``). With N > 1 it is a real multi-broker KRaft cluster on 127.0.0.1: brokers
1..N on the ports of ``bootstrap_servers`` (the config lists one per broker), and node 0, a
controller-only node that holds the metadata quorum, on the port after the highest. Each node has
its own home ``<data_dir>/kafka/cluster/node-<id>`` (data, logs, pid) and all are formatted with
one cluster id. A dedicated controller keeps the quorum alive while brokers die, so the
controller can fence a dead broker and shrink in-sync replica sets — which is what makes
``min.insync.replicas`` and leader failover observable on one machine.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from vtforge.kafka.broker import (
    LOCAL_HOSTS,
    BrokerError,
    BrokerStatus,
    LocalBroker,
    new_cluster_id,
    port_open,
)

if TYPE_CHECKING:
    from vtforge.config import Config

CONTROLLER_ID = 0
CONTROLLER_HEAP_MB = 256  # the metadata quorum of a local cluster is small


class LocalCluster:
    """The local nodes behind ``bootstrap_servers``; node ids 1..N are brokers, 0 the controller."""

    def __init__(
        self,
        home: Path,
        *,
        ports: list[int],
        version: str = "4.4.0",
        heap_mb: int = 512,
        partitions: int = 3,
    ) -> None:
        if not ports or len(set(ports)) != len(ports):
            raise BrokerError(f"a local cluster needs distinct broker ports, got {ports}")
        self.home = Path(home)
        self.version = version
        common = {"version": version, "partitions": partitions}
        if len(ports) == 1:
            self.nodes = {1: LocalBroker(self.home, port=ports[0], heap_mb=heap_mb, **common)}
            return
        controller_port = max(ports) + 1
        quorum = f"{CONTROLLER_ID}@127.0.0.1:{controller_port}"
        self.nodes = {
            CONTROLLER_ID: LocalBroker(
                self._node_home(CONTROLLER_ID),
                port=controller_port,
                role="controller",
                node_id=CONTROLLER_ID,
                quorum=quorum,
                heap_mb=min(heap_mb, CONTROLLER_HEAP_MB),
                **common,
            )
        }
        for node_id, port in enumerate(ports, start=1):
            self.nodes[node_id] = LocalBroker(
                self._node_home(node_id),
                port=port,
                role="broker",
                node_id=node_id,
                quorum=quorum,
                internal_replication=min(3, len(ports)),
                heap_mb=heap_mb,
                **common,
            )

    @classmethod
    def from_config(cls, config: Config) -> LocalCluster:
        """The cluster of ``bootstrap_servers`` and ``forge.events.kafka.brokers``; local hosts only."""
        events = config.forge.events
        brokers = events.kafka.brokers
        servers = [s.strip() for s in events.bootstrap_servers.split(",") if s.strip()]
        where = config.origin("events.bootstrap_servers")
        ports = []
        for server in servers:
            host, _, port = server.rpartition(":")
            if not host or not port.isdigit():
                raise BrokerError(
                    f"forge.events.bootstrap_servers must be host:port, got {server!r} ({where})"
                )
            if host not in LOCAL_HOSTS:
                raise BrokerError(
                    f"the local broker binds 127.0.0.1, but bootstrap_servers names {host!r} ({where})"
                )
            ports.append(int(port))
        if brokers == 1:
            ports = ports[:1]  # the single broker binds the first server (its controller: port + 1)
        elif len(ports) != brokers:
            raise BrokerError(
                f"forge.events.bootstrap_servers lists {len(ports)} servers ({where}) but "
                f"forge.events.kafka.brokers = {brokers} ({config.origin('events.kafka.brokers')}): "
                "list one 127.0.0.1 port per broker, or only the first"
            )
        return cls(
            config.data_dir / "kafka",
            ports=ports,
            version=events.kafka.broker_version,
            heap_mb=events.kafka.broker_heap_mb,
            partitions=events.kafka.partitions,
        )

    # --- what it is ------------------------------------------------------------------------------
    @property
    def brokers(self) -> list[LocalBroker]:
        return [n for n in self.nodes.values() if n.role != "controller"]

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers)

    def node(self, node_id: int) -> LocalBroker:
        if node_id not in self.nodes:
            ids = ", ".join(str(i) for i in sorted(self.nodes))
            raise BrokerError(f"no node {node_id}: this cluster's nodes are {ids} (0 is the controller)")
        return self.nodes[node_id]

    def status(self) -> list[BrokerStatus]:
        return [self.nodes[i].status() for i in sorted(self.nodes)]

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self, *, wait_s: float = 120.0) -> list[int]:
        """Start every node that is not running (together) and wait for all; returns those started."""
        cluster_id = self._stored_cluster_id() or new_cluster_id()
        started: list[int] = []
        try:
            for node_id in sorted(self.nodes):  # the controller first: brokers register with it
                node = self.nodes[node_id]
                node.cluster_id = cluster_id
                if node.launch():
                    started.append(node_id)
            for node_id in sorted(self.nodes):
                self.nodes[node_id].wait_ready(wait_s)
        except BrokerError:
            for node_id in reversed(started):
                self.nodes[node_id].stop()
            raise
        return started

    def stop(self) -> list[int]:
        """Stop every node cleanly: the brokers together (each hands its leaderships over while
        the controller still runs), then the controller. Returns the nodes that were running."""
        brokers = [n for n in self.brokers if n.status().running]
        with ThreadPoolExecutor(max_workers=max(1, len(brokers))) as pool:
            results = list(pool.map(lambda n: n.stop(), brokers))
        stopped = [n.node_id for n, was in zip(brokers, results, strict=True) if was]
        controller = self.nodes.get(CONTROLLER_ID)
        if controller is not None and controller.stop():
            stopped.append(CONTROLLER_ID)
        return sorted(stopped)

    def start_node(self, node_id: int, *, wait_s: float = 120.0) -> bool:
        """Start (or restart after a stop or crash) one node; True when this call started it."""
        node = self.node(node_id)
        node.cluster_id = self._stored_cluster_id()
        return node.start(wait_s=wait_s)

    def stop_node(self, node_id: int) -> bool:
        """Stop one node cleanly (SIGTERM: a broker moves its leaderships away first)."""
        return self.node(node_id).stop()

    def kill_node(self, node_id: int) -> None:
        """SIGKILL one node (crash tests): no controlled shutdown, the controller fences it later."""
        self.node(node_id).kill()

    def _stored_cluster_id(self) -> str | None:
        """The id the nodes' storage was formatted with (None before the first start)."""
        return next((i for n in self.nodes.values() if (i := n.stored_cluster_id())), None)

    def _node_home(self, node_id: int) -> Path:
        return self.home / "cluster" / f"node-{node_id}"


def ensure_local_broker(config: Config, *, wait_s: float = 120.0) -> bool:
    """Start the local broker (or cluster) when ``bootstrap_servers`` is local and nothing answers.

    Returns True when this call started it. A remote cluster is never touched (it must run).
    """
    first = config.forge.events.bootstrap_servers.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if host not in LOCAL_HOSTS or not port.isdigit() or port_open("127.0.0.1", int(port)):
        return False
    return bool(LocalCluster.from_config(config).start(wait_s=wait_s))
