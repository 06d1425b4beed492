"""The Kafka test session: one real Apache Kafka broker (KRaft) for every test in this package.

The broker is started through ``vtforge.kafka.LocalBroker`` (the same code as ``vtforge kafka
start``) on a non-default port, so it never clashes with a developer's own broker on 9092. A
broker already answering on that port is reused and left running; one this session started is
stopped at the end. Each test gets its own topic prefix and consumer group, so tests never see
each other's events.
"""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():  # kafka-python 3.0 loads its protocol schemas with a deprecated API
    warnings.simplefilter("ignore", DeprecationWarning)
    import kafka  # noqa: F401

from tests.support import require_service
from vtforge.config import Config, load_config
from vtforge.kafka import BrokerError, JarsError, LocalBroker
from vtforge.kafka.broker import port_open
from vtforge.kafka.client import cluster_ready

TEST_PORT = int(os.environ.get("VTFORGE_TEST_KAFKA_PORT", "39192"))


@dataclass
class BrokerHandle:
    broker: LocalBroker
    owned: bool  # started by this session (so tests may stop and restart it)

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    home = tmp_path_factory.mktemp("kafka-broker") / "kafka"
    broker = LocalBroker(home, port=TEST_PORT, heap_mb=512)
    if port_open("127.0.0.1", TEST_PORT):
        require_service(cluster_ready(broker.bootstrap), f"the Kafka broker on {broker.bootstrap}")
        yield BrokerHandle(broker, owned=False)
        return
    require_service(
        bool(shutil.which("java") and shutil.which("mvn")), "Java and Maven (for the Apache Kafka broker)"
    )
    try:
        broker.start(wait_s=180)
    except (BrokerError, JarsError) as exc:
        require_service(False, f"the local Apache Kafka broker ({exc})")
    try:
        yield BrokerHandle(broker, owned=True)
    finally:
        broker.stop()


@dataclass
class KafkaWorkspace:
    root: Path
    tag: str
    broker: BrokerHandle

    def config(self) -> Config:
        return load_config(cwd=self.root)


def write_kafka_config(root: Path, bootstrap: str, tag: str, extra: dict[str, dict[str, Any]]) -> None:
    tables: dict[str, dict[str, Any]] = {
        "forge.events": {
            "sink": "kafka",
            "bootstrap_servers": bootstrap,
            "topic_prefix": f"{tag}.",
            "dead_letter_topic": f"{tag}.dead-letter",
            "flush_interval_s": 1.0,
        },
        "forge.events.kafka": {"consumer_group": f"{tag}-ingest", "linger_ms": 5},
        "forge.warehouse": {"data_dir": ".forge"},
    }
    for table, values in extra.items():
        tables.setdefault(table, {}).update(values)
    lines = ['[agent]\nprovider = "openai"\n']
    for table, values in tables.items():
        lines.append(f"\n[{table}]\n")
        for key, value in values.items():
            shown = (
                f'"{value}"'
                if isinstance(value, str)
                else str(value).lower()
                if isinstance(value, bool)
                else value
            )
            lines.append(f"{key} = {shown}\n")
    (root / "vtcode.toml").write_text("".join(lines))


@pytest.fixture
def make_kafka_workspace(workspace: Path, kafka_broker: BrokerHandle) -> Callable[..., KafkaWorkspace]:
    """Point the test workspace at the session broker with fresh topics; extra tables override."""

    def make(**extra: dict[str, Any]) -> KafkaWorkspace:
        tag = f"t{uuid.uuid4().hex[:10]}"
        tables = {name.replace("__", "."): values for name, values in extra.items()}
        write_kafka_config(workspace, kafka_broker.bootstrap, tag, tables)
        return KafkaWorkspace(workspace, tag, kafka_broker)

    return make


@pytest.fixture
def kafka_ws(make_kafka_workspace: Callable[..., KafkaWorkspace]) -> KafkaWorkspace:
    return make_kafka_workspace()
