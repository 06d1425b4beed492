"""A single-node Apache Kafka broker in KRaft mode for development and tests.

It runs the official jars (see ``jars``) on the machine's Java, combined broker+controller, bound
to 127.0.0.1, with everything under ``<data_dir>/kafka/``: ``server.properties``, the log
directory ``data/``, the broker's own logs in ``logs/``, and ``broker.pid``. Starting formats the
storage once (what ``kafka-storage.sh format`` does, via ``kafka.tools.StorageTool``), launches
the JVM detached from the caller, and waits until the broker answers metadata requests.
The controller listens on the client port + 1.
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
from typing import TYPE_CHECKING

from vtforge.kafka import jars

if TYPE_CHECKING:
    from vtforge.config import Config

LOCAL_HOSTS = ("127.0.0.1", "localhost")


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
    """One KRaft broker whose state lives in ``home`` (``<data_dir>/kafka``)."""

    def __init__(
        self,
        home: Path,
        *,
        port: int = 9092,
        host: str = "127.0.0.1",
        version: str = "4.4.0",
        heap_mb: int = 512,
        partitions: int = 3,
    ) -> None:
        if host not in LOCAL_HOSTS:
            raise BrokerError(f"the local broker binds 127.0.0.1, but bootstrap_servers names {host!r}")
        self.home = Path(home)
        self.host = "127.0.0.1"
        self.port = port
        self.controller_port = port + 1
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
    def status(self) -> BrokerStatus:
        pid = self._live_pid()
        return BrokerStatus(
            running=pid is not None,
            pid=pid,
            reachable=port_open(self.host, self.port),
            bootstrap=self.bootstrap,
            version=self.version,
            home=self.home,
        )

    def start(self, *, wait_s: float = 90.0) -> bool:
        """Start the broker unless it already runs; returns True when this call started it."""
        if self._live_pid() is not None:
            self.wait_ready(wait_s)
            return False
        if port_open(self.host, self.port) or port_open(self.host, self.controller_port):
            raise BrokerError(
                f"port {self.port} or {self.controller_port} on 127.0.0.1 is taken by another process; "
                "stop it or change forge.events.bootstrap_servers"
            )
        jars.resolve(self.version)
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(exist_ok=True)
        self.properties_file.write_text(self._properties())
        if not (self.log_dir / "meta.properties").is_file():
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
        try:
            self.wait_ready(wait_s)
        except BrokerError:
            self.stop()
            raise
        return True

    def wait_ready(self, wait_s: float) -> None:
        """Block until the broker serves metadata, or raise with the end of its log."""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            # our own child: ask the process handle (reading /proc while the JVM starts can race)
            exited = (
                self._process.poll() is not None if self._process is not None else self._live_pid() is None
            )
            if exited:
                raise BrokerError(f"the broker exited during start-up; last log lines:\n{self.log_tail()}")
            if port_open(self.host, self.port) and self._serves_metadata():
                return
            time.sleep(0.25)
        raise BrokerError(f"the broker did not answer on {self.bootstrap} within {wait_s:.0f}s")

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

    def log_tail(self, lines: int = 20) -> str:
        chunks = []
        for path in (self.console_log, self.home / "logs" / "server.log"):
            if path.is_file():
                chunks.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(chunks[-lines:])

    # --- internals -----------------------------------------------------------------------------
    def _java(self, main: str, *args: str) -> list[str]:
        logs = self.home / "logs"
        return [
            "java",
            f"-Xmx{self.heap_mb}m",
            f"-Xms{min(self.heap_mb, 256)}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={logs}",
            f"-Dlog4j2.configurationFile={jars.log4j_config(self.version)}",
            "-cp",
            jars.classpath(self.version),
            main,
            *args,
        ]

    def _format(self) -> None:
        cluster_id = "-"
        while cluster_id.startswith("-"):  # as Kafka's own Uuid: a leading dash reads as an option
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        command = self._java(
            "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.properties_file)
        )
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=self.home)
        if result.returncode != 0:
            raise BrokerError(f"formatting {self.log_dir} failed: {(result.stdout + result.stderr).strip()}")

    def _properties(self) -> str:
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.log_dir),
            "num.partitions": str(self.partitions),
            "auto.create.topics.enable": "false",  # topics are created by vtforge with explicit settings
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "5",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "5",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
            "log.retention.hours": "168",
        }
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


def ensure_local_broker(config: Config, *, wait_s: float = 120.0) -> bool:
    """Start the local broker when ``bootstrap_servers`` is local and nothing answers there.

    Returns True when this call started it. A remote cluster is never touched (it must run).
    """
    host, port = parse_bootstrap(config.forge.events.bootstrap_servers)
    if host not in LOCAL_HOSTS or port_open("127.0.0.1", port):
        return False
    return LocalBroker.from_config(config).start(wait_s=wait_s)
