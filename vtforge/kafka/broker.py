"""One Apache Kafka node in KRaft mode for development and tests.

It runs the official jars (see ``jars``) on the machine's Java, bound to 127.0.0.1, with
everything under its home (``<data_dir>/kafka/`` for the single broker): ``server.properties``,
the log directory ``data/``, the node's own logs in ``logs/``, and ``broker.pid``. Starting
formats the storage once (what ``kafka-storage.sh format`` does, via ``kafka.tools.StorageTool``),
launches the JVM detached from the caller, and waits until the node answers.

By default the node is combined broker+controller, the controller on the client port + 1: the
single local broker. ``cluster`` builds a multi-broker cluster from broker-only and
controller-only nodes of this class.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from vtforge import constants as C
from vtforge.kafka import jars

if TYPE_CHECKING:
    from vtforge.config import Config

LOCAL_HOSTS = C.LOCAL_HOSTS

Role = Literal["combined", "broker", "controller"]


class BrokerError(RuntimeError):
    """The local broker could not be started, stopped or reached; the message says why."""


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    reachable: bool
    bootstrap: str
    version: str
    home: Path
    node_id: int = 1
    role: Role = "combined"


def parse_bootstrap(bootstrap: str) -> tuple[str, int]:
    """``host:port`` of the first bootstrap server."""
    first = bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        raise BrokerError(f"forge.events.bootstrap_servers must be host:port, got {bootstrap!r}")
    return host, int(port)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class LocalBroker:
    """One KRaft node whose state lives in ``home`` (``<data_dir>/kafka`` for the single broker).

    ``role`` "combined" (the default) is broker and controller, the controller on ``port + 1``;
    "broker" serves clients on ``port`` and follows the controllers in ``quorum``; "controller"
    listens on ``port`` for the quorum only. ``internal_replication`` is the replication factor
    of Kafka's own topics (consumer offsets …), which must not exceed the number of brokers.
    """

    def __init__(
        self,
        home: Path,
        *,
        port: int = 9092,
        host: str = "127.0.0.1",
        version: str = "4.4.0",
        heap_mb: int = 512,
        partitions: int = 3,
        role: Role = "combined",
        node_id: int = 1,
        quorum: str | None = None,
        internal_replication: int = 1,
        cluster_id: str | None = None,
    ) -> None:
        if host not in LOCAL_HOSTS:
            raise BrokerError(f"the local broker binds 127.0.0.1, but bootstrap_servers names {host!r}")
        self.home = Path(home)
        self.host = "127.0.0.1"
        self.port = port
        self.role: Role = role
        self.node_id = node_id
        self.controller_port: int | None = {"combined": port + 1, "controller": port, "broker": None}[role]
        if quorum is None and self.controller_port is None:
            raise BrokerError("a broker-only node needs the controller quorum (node@host:port)")
        self.quorum = quorum or f"{node_id}@{self.host}:{self.controller_port}"
        self.internal_replication = internal_replication
        self.cluster_id = cluster_id
        self.version = version
        self.heap_mb = heap_mb
        self.partitions = partitions
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_config(cls, config: Config) -> LocalBroker:
        events = config.forge.events
        host, port = parse_bootstrap(events.bootstrap_servers)
        return cls(
            config.data_dir / "kafka",
            host=host,
            port=port,
            version=events.kafka.broker_version,
            heap_mb=events.kafka.broker_heap_mb,
            partitions=events.kafka.partitions,
        )

    # --- paths ---------------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def properties_file(self) -> Path:
        return self.home / "server.properties"

    @property
    def log_dir(self) -> Path:
        return self.home / "data"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def console_log(self) -> Path:
        return self.home / "logs" / "console.log"

    # --- lifecycle -----------------------------------------------------------------------------
    @property
    def ports(self) -> list[int]:
        """Every port this node listens on."""
        return sorted({self.port} | ({self.controller_port} if self.controller_port else set()))

    def status(self) -> BrokerStatus:
        pid = self._live_pid()
        return BrokerStatus(
            running=pid is not None,
            pid=pid,
            reachable=port_open(self.host, self.port),
            bootstrap=self.bootstrap,
            version=self.version,
            home=self.home,
            node_id=self.node_id,
            role=self.role,
        )

    def start(self, *, wait_s: float = 90.0) -> bool:
        """Start the node unless it already runs; returns True when this call started it."""
        started = self.launch()
        try:
            self.wait_ready(wait_s)
        except BrokerError:
            if started:
                self.stop()
            raise
        return started

    def launch(self) -> bool:
        """Start the JVM without waiting for it to answer (a cluster launches its nodes together)."""
        pid = self._live_pid()
        if pid is not None:
            if self._process is not None and self._process.pid != pid:
                self._process = None  # restarted by another process (the CLI): follow the pid file
            return False
        taken = [p for p in self.ports if port_open(self.host, p)]
        if taken:
            raise BrokerError(
                f"port {taken[0]} on 127.0.0.1 is taken by another process; "
                "stop it or change forge.events.bootstrap_servers"
            )
        jars.resolve(self.version)
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(exist_ok=True)
        self.properties_file.write_text(self._properties())
        if not self.formatted:
            self._format()
        with open(self.console_log, "ab") as console:
            self._process = subprocess.Popen(
                self._java("kafka.Kafka", str(self.properties_file)),
                stdout=console,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the caller's terminal does not reach it
                cwd=self.home,
            )
        self.pid_file.write_text(str(self._process.pid))
        return True

    @property
    def formatted(self) -> bool:
        return (self.log_dir / "meta.properties").is_file()

    def stored_cluster_id(self) -> str | None:
        """The cluster id this node's storage was formatted with (None before the first start)."""
        try:
            lines = (self.log_dir / "meta.properties").read_text().splitlines()
        except OSError:
            return None
        ids = [line.split("=", 1)[1].strip() for line in lines if line.startswith("cluster.id=")]
        return ids[0] if ids else None

    def wait_ready(self, wait_s: float) -> None:
        """Block until the node answers (a broker: metadata; a controller: its port), or raise."""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            # our own child: ask the process handle (reading /proc while the JVM starts can race)
            exited = (
                self._process.poll() is not None if self._process is not None else self._live_pid() is None
            )
            if exited:
                raise BrokerError(f"the broker exited during start-up; last log lines:\n{self.log_tail()}")
            if port_open(self.host, self.port) and (self.role == "controller" or self._serves_metadata()):
                return
            time.sleep(0.25)
        raise BrokerError(f"node {self.node_id} did not answer on {self.bootstrap} within {wait_s:.0f}s")

    def stop(self, *, timeout_s: float = 60.0) -> bool:
        """Stop cleanly (SIGTERM: the broker flushes and closes its logs); SIGKILL after timeout."""
        pid = self._live_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        if not self._wait_exit(pid, timeout_s):
            os.kill(pid, signal.SIGKILL)
            self._wait_exit(pid, 10.0)
        self.pid_file.unlink(missing_ok=True)
        self._process = None
        return True

    def kill(self) -> None:
        """SIGKILL (for crash tests): no clean shutdown."""
        pid = self._live_pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            self._wait_exit(pid, 10.0)
        self.pid_file.unlink(missing_ok=True)
        self._process = None

    def log_tail(self, lines: int = 20) -> str:
        chunks = []
        for path in (self.console_log, self.home / "logs" / "server.log"):
            if path.is_file():
                chunks.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(chunks[-lines:])

    # --- internals -----------------------------------------------------------------------------
    def _java(self, main: str, *args: str) -> list[str]:
        # cluster nodes share the cores with each other: the quick compiler alone restarts a node
        # ~30% sooner (failure drills restart them often); the single broker keeps C2
        return jars.java_command(
            self.version,
            main,
            *args,
            heap_mb=self.heap_mb,
            logs_dir=self.home / "logs",
            quick_compiler=self.role != "combined",
        )

    def _format(self) -> None:
        cluster_id = self.cluster_id or new_cluster_id()
        command = self._java(
            "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.properties_file)
        )
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=self.home)
        if result.returncode != 0:
            raise BrokerError(f"formatting {self.log_dir} failed: {(result.stdout + result.stderr).strip()}")

    def _properties(self) -> str:
        client = f"PLAINTEXT://{self.host}:{self.port}"
        controller = f"CONTROLLER://{self.host}:{self.controller_port}"
        listeners = {"combined": f"{client},{controller}", "broker": client, "controller": controller}
        internal = str(self.internal_replication)
        internal_isr = str(min(2, self.internal_replication))
        settings = {
            "process.roles": {"combined": "broker,controller"}.get(self.role, self.role),
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.quorum,
            "listeners": listeners[self.role],
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.log_dir),
        }
        if self.role != "broker":  # a controller setting (a broker-only node warns about it)
            settings["num.partitions"] = str(self.partitions)
        if self.role != "controller":
            settings |= {
                "advertised.listeners": client,
                "inter.broker.listener.name": "PLAINTEXT",
                "auto.create.topics.enable": "false",  # topics are created by vtforge with explicit settings
                "offsets.topic.replication.factor": internal,
                "offsets.topic.num.partitions": "5",
                "transaction.state.log.replication.factor": internal,
                "transaction.state.log.min.isr": internal_isr,
                "transaction.state.log.num.partitions": "5",
                "share.coordinator.state.topic.replication.factor": internal,
                "share.coordinator.state.topic.min.isr": internal_isr,
                "group.initial.rebalance.delay.ms": "0",
                "num.network.threads": "2",
                "num.io.threads": "4",
                "num.recovery.threads.per.data.dir": "1",
                "log.retention.hours": "168",
            }
        if self.role != "combined":
            # a dead broker is fenced (and leaves every ISR) after 6 s instead of 9
            settings |= {"broker.session.timeout.ms": "6000", "broker.heartbeat.interval.ms": "1000"}
        header = "# written by `vtforge kafka start`; edits are overwritten on the next start\n"
        return header + "".join(f"{k}={v}\n" for k, v in settings.items())

    def _serves_metadata(self) -> bool:
        from vtforge.kafka.client import cluster_ready

        return cluster_ready(self.bootstrap)

    def _live_pid(self) -> int | None:
        """The broker's pid when it runs with our config (a reused pid is not mistaken for it)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if not _alive(pid):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        if b"kafka.Kafka" not in cmdline or str(self.properties_file).encode() not in cmdline:
            return None
        return pid

    def _wait_exit(self, pid: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.pid == pid:
                try:
                    self._process.wait(timeout=0.2)
                    return True
                except subprocess.TimeoutExpired:
                    continue
            if not _alive(pid):
                return True
            time.sleep(0.2)
        return False


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie child is reaped and counts as gone)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def new_cluster_id() -> str:
    """A random KRaft cluster id (base64 of a UUID, as Kafka's own ``Uuid``)."""
    cluster_id = "-"
    while cluster_id.startswith("-"):  # a leading dash reads as an option
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    return cluster_id
