"""The local broker: official jars cached once, KRaft storage under the data dir, CLI control."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.kafka.conftest import BrokerHandle, KafkaWorkspace
from vtforge.cli import app
from vtforge.config import load_config
from vtforge.kafka import BrokerError, LocalBroker, jars

pytestmark = pytest.mark.kafka


def test_jars_are_official_and_cached(kafka_broker: BrokerHandle) -> None:
    version = kafka_broker.broker.version
    assert jars.is_resolved(version)
    started = time.monotonic()
    libs = jars.resolve(version)  # cached: no Maven run
    assert time.monotonic() - started < 1.0
    names = {p.name for p in libs.glob("*.jar")}
    assert f"kafka_2.13-{version}.jar" in names
    assert f"kafka-clients-{version}.jar" in names
    assert any(re.fullmatch(r"log4j-core-.*\.jar", n) for n in names)


def test_broker_runs_kraft_with_data_under_its_home(kafka_broker: BrokerHandle) -> None:
    broker = kafka_broker.broker
    status = broker.status()
    assert status.reachable
    if not kafka_broker.owned:
        pytest.skip("the broker on this port was started outside this test session")
    assert status.running and status.pid
    props = broker.properties_file.read_text()
    assert "process.roles=broker,controller" in props
    assert f"log.dirs={broker.home / 'data'}" in props
    assert (broker.home / "data" / "meta.properties").is_file()  # formatted once


def test_from_config_puts_data_under_data_dir_and_refuses_remote_hosts(workspace: Path) -> None:
    cfg = load_config(cwd=workspace)
    broker = LocalBroker.from_config(cfg)
    assert broker.home == cfg.data_dir / "kafka"
    assert broker.bootstrap == "127.0.0.1:9092"
    assert broker.controller_port == 9093
    (workspace / "vtcode.toml").write_text('[forge.events]\nbootstrap_servers = "kafka.example.com:9092"\n')
    with pytest.raises(BrokerError, match=r"kafka\.example\.com"):
        LocalBroker.from_config(load_config(cwd=workspace))


def test_cli_status_and_idempotent_start(kafka_ws: KafkaWorkspace) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["kafka", "status"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "answers" in result.output and kafka_ws.broker.bootstrap in result.output


def test_cli_status_fails_when_nothing_listens(workspace: Path) -> None:
    (workspace / "vtcode.toml").write_text('[forge.events]\nbootstrap_servers = "127.0.0.1:1"\n')
    result = CliRunner().invoke(app, ["kafka", "status"])
    assert result.exit_code == 1
    assert "does not answer" in result.output
