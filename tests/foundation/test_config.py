"""Config: defaults, vtcode's precedence plus env overrides, errors with file and line, write-back."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.cli import invoke
from vtforge import constants as C
from vtforge.config import ConfigError, effective_items, load_config, set_value, write_target

REPO_TOML = Path(__file__).resolve().parents[2] / "vtcode.toml"


def test_defaults_come_from_the_constants_module(workspace: Path) -> None:
    cfg = load_config()
    assert cfg.forge.selfplay.bugfixer_rollouts == C.BUGFIXER_ROLLOUTS == 40
    assert cfg.forge.selfplay.testwriter_rollouts == 40
    assert cfg.forge.selfplay.first_temperature == 0.0 and cfg.forge.selfplay.temperature == 1.0
    assert cfg.forge.curriculum.medium_min_success == 0.10
    assert cfg.forge.curriculum.gates.fail_before_fix_rate == 0.80
    assert cfg.forge.context.train_tokens == 65536 and cfg.forge.context.inference_tokens == 131072
    assert cfg.forge.sandbox.network is False
    assert cfg.data_dir == (workspace / ".forge").resolve()
    assert cfg.origin("selfplay.bugfixer_rollouts").kind == "default"


def test_repository_vtcode_toml_is_valid_and_keeps_vtcode_tables() -> None:
    document = tomllib.loads(REPO_TOML.read_text())
    assert {"agent", "telemetry", "forge"} <= set(document)
    assert "sandbox" not in document  # vtcode's own [sandbox] is never reused by us
    cfg = load_config(REPO_TOML)
    assert cfg.forge.selfplay.bugfixer_rollouts == 40


def test_precedence_workspace_then_explicit_then_env(
    workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    (workspace / "vtcode.toml").write_text("[forge.sandbox]\ncpus = 2.0\nmemory_mb = 1024\n")
    other = tmp_path_factory.mktemp("other") / "custom.toml"
    other.write_text("[forge.sandbox]\nmemory_mb = 4096\n")
    env = {"VTFORGE_SANDBOX__BACKEND": "docker", "VTFORGE_CURRICULUM__GATES__PATCH_ACCEPTANCE": "0.7"}
    cfg = load_config(other, env=env)
    assert cfg.forge.sandbox.cpus == 2.0  # workspace file
    assert cfg.forge.sandbox.memory_mb == 4096  # explicit file wins over workspace
    assert cfg.forge.sandbox.backend == "docker"  # environment wins over files
    assert cfg.forge.curriculum.gates.patch_acceptance == 0.7
    assert str(cfg.origin("sandbox.memory_mb")).endswith("custom.toml:2")
    assert str(cfg.origin("sandbox.backend")) == "env VTFORGE_SANDBOX__BACKEND"
    # VTCODE_CONFIG_PATH is vtcode's own variable for the explicit file
    assert load_config(env={"VTCODE_CONFIG_PATH": str(other)}).forge.sandbox.memory_mb == 4096


def test_bad_value_names_key_file_and_line(workspace: Path) -> None:
    (workspace / "vtcode.toml").write_text(
        '[agent]\nprovider = "openai"\n\n[forge.selfplay]\ntemperature = 1.0\nbugfixer_rollouts = -3\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config()
    assert str(info.value) == "forge.selfplay.bugfixer_rollouts must be >= 1, got -3 (vtcode.toml:6)"


def test_unknown_lever_and_bad_choice_are_errors(workspace: Path) -> None:
    (workspace / "vtcode.toml").write_text('[forge.sandbox]\nbackend = "podx"\nnetwrok = false\n')
    with pytest.raises(ConfigError) as info:
        load_config()
    lines = str(info.value).splitlines()
    assert any(
        line.startswith("forge.sandbox.backend must be one of") and "vtcode.toml:2" in line for line in lines
    )
    assert "forge.sandbox.netwrok is not a known setting (vtcode.toml:3)" in lines


def test_bad_env_value_names_the_variable(workspace: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"forge.sandbox.pids must be >= 8, got 1 \(env VTFORGE_SANDBOX__PIDS\)"
    ):
        load_config(env={"VTFORGE_SANDBOX__PIDS": "1"})


def test_broken_toml_is_one_error(workspace: Path) -> None:
    (workspace / "vtcode.toml").write_text("[forge.selfplay\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config()


def test_set_preserves_comments_and_vtcode_tables(workspace: Path) -> None:
    (workspace / "vtcode.toml").write_text(
        '# my vtcode config\n[agent]\nprovider = "anthropic"  # keep me\n\n'
        "[forge.selfplay]\n# forty is the paper's number\nbugfixer_rollouts = 40\n"
    )
    set_value(write_target(), "forge.selfplay.bugfixer_rollouts", "8")
    set_value(write_target(), "forge.sandbox.backend", '"docker"')
    text = (workspace / "vtcode.toml").read_text()
    assert "# my vtcode config" in text and 'provider = "anthropic"  # keep me' in text
    assert "# forty is the paper's number" in text
    cfg = load_config()
    assert cfg.forge.selfplay.bugfixer_rollouts == 8 and cfg.forge.sandbox.backend == "docker"


def test_set_rejects_a_bad_value_and_leaves_the_file_alone(workspace: Path) -> None:
    before = (workspace / "vtcode.toml").read_text()
    with pytest.raises(ConfigError, match="must be >= 1"):
        set_value(write_target(), "forge.selfplay.testwriter_rollouts", "0")
    assert (workspace / "vtcode.toml").read_text() == before


def test_show_lists_every_lever_with_its_origin(workspace: Path) -> None:
    items = {key: (value, str(origin)) for key, value, origin in effective_items(load_config())}
    assert items["forge.selfplay.bugfixer_rollouts"] == (40, "default")
    assert items["forge.warehouse.data_dir"] == (".forge", "vtcode.toml:5")


def test_cli_config_errors_are_one_line_and_non_zero(workspace: Path) -> None:
    (workspace / "vtcode.toml").write_text("[forge.selfplay]\nbugfixer_rollouts = -3\n")
    result = invoke("config", "show")
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == "error: forge.selfplay.bugfixer_rollouts must be >= 1, got -3 (vtcode.toml:2)"
    )
    result = invoke("config", "set", "forge.selfplay.bugfixer_rollouts", "12")
    assert result.exit_code == 0, result.stderr
    assert "bugfixer_rollouts = 12" in (workspace / "vtcode.toml").read_text()


def test_kafka_replication_and_bootstrap_follow_the_cluster_size(workspace: Path) -> None:
    kafka = load_config().forge.events.kafka
    assert (kafka.brokers, kafka.replication_factor, kafka.min_insync_replicas) == (1, 1, 1)
    assert load_config().forge.events.bootstrap_servers == "127.0.0.1:9092"
    (workspace / "vtcode.toml").write_text("[forge.events.kafka]\nbrokers = 3\n")
    cfg = load_config()
    k = cfg.forge.events.kafka
    assert (k.replication_factor, k.min_insync_replicas) == (3, 2)
    assert cfg.forge.events.bootstrap_servers == "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094"
    assert cfg.origin("events.kafka.replication_factor").kind == "default"
    k = load_config(env={"VTFORGE_EVENTS__KAFKA__BROKERS": "2"}).forge.events.kafka
    assert (k.replication_factor, k.min_insync_replicas) == (2, 1)  # 2 of 2 would stop at one death
    # an explicit lever wins; replication 3 on someone else's cluster still gets min.insync 2
    (workspace / "vtcode.toml").write_text(
        '[forge.events]\nbootstrap_servers = "kafka.example.com:9092"\n\n'
        "[forge.events.kafka]\nbrokers = 3\nreplication_factor = 3\n"
    )
    cfg = load_config()
    assert cfg.forge.events.bootstrap_servers == "kafka.example.com:9092"  # remote: left as written
    assert (cfg.forge.events.kafka.replication_factor, cfg.forge.events.kafka.min_insync_replicas) == (3, 2)
    (workspace / "vtcode.toml").write_text(
        '[forge.events]\nbootstrap_servers = "127.0.0.1:19092"\n\n[forge.events.kafka]\nbrokers = 2\n'
        "min_insync_replicas = 2\n"
    )
    cfg = load_config()
    assert cfg.forge.events.bootstrap_servers == "127.0.0.1:19092,127.0.0.1:19093"
    assert cfg.forge.events.kafka.min_insync_replicas == 2


def test_min_insync_above_replication_names_the_lever_and_line(workspace: Path) -> None:
    (workspace / "vtcode.toml").write_text(
        "[forge.events.kafka]\nreplication_factor = 2\nmin_insync_replicas = 3\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config()
    assert str(info.value) == (
        "forge.events.kafka.min_insync_replicas must be <= forge.events.kafka.replication_factor (2), "
        "got 3 (vtcode.toml:3)"
    )
