"""``vtforge kafka start|stop|status``: the local Apache Kafka (KRaft), one broker or a cluster."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from vtforge.cli._common import CliError, ConfigOption, config_from, console
from vtforge.config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from vtforge.kafka import BrokerStatus, LocalCluster

BROKERS_ENV = "VTFORGE_EVENTS__KAFKA__BROKERS"

BrokersOption = Annotated[
    int | None,
    typer.Option(
        "--brokers", min=1, help="Brokers (default forge.events.kafka.brokers); >1 adds a controller."
    ),
]
NodeOption = Annotated[
    int | None, typer.Option("--node", min=0, help="Only this node (1..N: brokers, 0: the controller).")
]


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Run the local Apache Kafka (KRaft, 127.0.0.1): one broker or a cluster.", no_args_is_help=True
    )
    app.add_typer(group, name="kafka")

    @group.command("start")
    def start(
        config: ConfigOption = None,
        brokers: BrokersOption = None,
        node: NodeOption = None,
        wait: float = typer.Option(120.0, help="Seconds to wait for the nodes to answer."),
    ) -> None:
        """Resolve the jars (once), format the storage (once) and start the nodes (or one node)."""
        from vtforge.kafka import BrokerError, JarsError

        cfg, cluster = _cluster(config, brokers)
        try:
            if node is not None:
                started = cluster.start_node(node, wait_s=wait)
                console.print(f"node {node} {'started' if started else 'already running'}")
                return
            started_ids = cluster.start(wait_s=wait)
        except (BrokerError, JarsError) as exc:
            raise CliError(str(exc)) from None
        verb = "started" if started_ids else "already running"
        if len(cluster.brokers) == 1:
            console.print(f"kafka {cluster.version} {verb} on {cluster.bootstrap} (data {cluster.home})")
        else:
            controller = cluster.node(0)
            console.print(
                f"kafka {cluster.version} cluster {verb}: {len(cluster.brokers)} brokers on "
                f"{cluster.bootstrap}, controller on {controller.bootstrap} (data {cluster.home / 'cluster'})"
            )
        if brokers is not None and brokers != cfg.forge.events.kafka.brokers:
            console.print(
                f"note: producers and the ingestor read forge.events.kafka.brokers = "
                f"{cfg.forge.events.kafka.brokers} ({cfg.origin('events.kafka.brokers')}); "
                f"`vtforge config set forge.events.kafka.brokers {brokers}` makes them use this cluster"
            )

    @group.command("stop")
    def stop(config: ConfigOption = None, brokers: BrokersOption = None, node: NodeOption = None) -> None:
        """Stop the nodes (or one node) cleanly: SIGTERM, then SIGKILL after 60 s."""
        from vtforge.kafka import BrokerError

        _, cluster = _cluster(config, brokers)
        if node is not None:
            try:
                stopped = cluster.stop_node(node)
            except BrokerError as exc:
                raise CliError(str(exc)) from None
            console.print(f"node {node} {'stopped' if stopped else 'was not running'}")
            return
        console.print("kafka stopped" if cluster.stop() else "kafka was not running")

    @group.command("status")
    def status(config: ConfigOption = None, brokers: BrokersOption = None) -> None:
        """Each node, and the leader and in-sync replicas of this config's topics; exit 1 when
        no broker answers."""
        cfg, cluster = _cluster(config, brokers)
        nodes = cluster.status()
        if len(nodes) == 1:
            st = nodes[0]
            console.print(f"kafka {st.version}: {_state(st)}; data {st.home}")
        else:
            console.print(
                f"kafka {cluster.version}: {len(cluster.brokers)} brokers and a controller; "
                f"data {cluster.home / 'cluster'}"
            )
            for st in nodes:
                console.print(f"  node {st.node_id} {st.role:<10} {_state(st)}")
        if not any(st.reachable for st in nodes if st.role != "controller"):
            raise typer.Exit(1)
        _print_partitions(cfg)


def _state(st: BrokerStatus) -> str:
    running = f"running (pid {st.pid})" if st.running else "not running"
    return f"{st.bootstrap}  {running}; {'answers' if st.reachable else 'does not answer'}"


def _cluster(config_path: Path | None, brokers: int | None) -> tuple[Config, LocalCluster]:
    """The config (with ``--brokers`` applied as the lever would be) and its local nodes."""
    from vtforge.kafka import BrokerError, LocalCluster

    if brokers is None:
        cfg = config_from(config_path)
    else:
        try:
            cfg = load_config(config_path, env={**os.environ, BROKERS_ENV: str(brokers)})
        except ConfigError as exc:
            raise CliError(str(exc), code=2) from None
    try:
        return cfg, LocalCluster.from_config(cfg)
    except BrokerError as exc:
        raise CliError(str(exc)) from None


def _print_partitions(cfg: Config) -> None:
    """Leader, replicas and in-sync replicas of every partition of this config's topics."""
    from vtforge.kafka import client

    events = cfg.forge.events
    try:
        admin = client.Admin(client.Connection.from_config(cfg), request_timeout_ms=5000)
    except client.KafkaError as exc:
        console.print(f"partitions: no broker answers metadata requests ({exc})")
        return
    try:
        topics = sorted(t for t in admin.topics() if t.startswith(events.topic_prefix))
        states = admin.describe_partitions(topics) if topics else []
    except client.KafkaError as exc:
        console.print(f"partitions: the brokers did not describe the topics ({exc})")
        return
    finally:
        admin.close()
    if not states:
        console.print(f"no topics named {events.topic_prefix}* yet")
        return
    table = Table(title=f"partitions of {events.topic_prefix}*")
    for col in ("topic", "part", "leader", "replicas", "in-sync", "state"):
        table.add_column(col, justify="right" if col in ("part", "leader") else "left")
    for st in states:
        state = "offline" if st.leader < 0 else "under-replicated" if len(st.isr) < len(st.replicas) else "ok"
        table.add_row(
            st.topic,
            str(st.partition),
            "-" if st.leader < 0 else str(st.leader),
            ",".join(map(str, st.replicas)),
            ",".join(map(str, st.isr)),
            state,
        )
    console.print(table)
    under = sum(1 for st in states if len(st.isr) < len(st.replicas))
    console.print(f"{len(states)} partitions, {under} under-replicated")
