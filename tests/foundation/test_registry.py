"""Confluent wire format through the registry client (the registry is ``tests.registry_standin``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.registry_standin import StandInRegistry
from vtforge.config import load_config
from vtforge.schemas import Codec, UnknownSchemaError, new_event
from vtforge.schemas.registry import RegistryError, SchemaRegistryClient
from vtforge.transport.sink import codec_for


def _event() -> dict:
    payload = {"reward_id": "r", "subject_kind": "patch", "subject_id": "p", "reward": 0.0}
    payload["outcome"] = "unresolved"
    return new_event("reward_assigned", payload, producer="t", key="1")


def test_register_then_decode_with_a_fresh_client(registry_url: str) -> None:
    writer = Codec(registry=SchemaRegistryClient(registry_url, subject_for=lambda t: f"vtforge.{t}-value"))
    payload = writer.encode(_event())
    assert payload[0] == 0
    assert StandInRegistry.subjects == {"vtforge.reward_assigned-value": [1]}
    reader = Codec(registry=SchemaRegistryClient(registry_url, subject_for=lambda t: t))
    assert reader.decode(payload)["reward_id"] == "r"  # the id is resolved over HTTP, then cached


def test_unknown_id_is_an_unknown_schema(registry_url: str) -> None:
    reader = Codec(registry=SchemaRegistryClient(registry_url, subject_for=lambda t: t))
    with pytest.raises(UnknownSchemaError, match="registry id 42"):
        reader.decode(b"\x00\x00\x00\x00\x2a" + b"\x00")


def test_unreachable_registry_is_a_clear_error() -> None:
    codec = Codec(registry=SchemaRegistryClient("http://127.0.0.1:9", subject_for=lambda t: t, timeout_s=1))
    with pytest.raises(RegistryError, match="unreachable"):
        codec.encode(_event())


def test_codec_for_config_picks_the_framing(workspace: Path, registry_url: str) -> None:
    assert codec_for(load_config()).registry is None
    (workspace / "vtcode.toml").write_text(f'[forge.events]\nschema_registry_url = "{registry_url}"\n')
    codec = codec_for(load_config())
    assert codec.encode(_event())[0] == 0
    assert "vtforge.reward_assigned-value" in StandInRegistry.subjects
