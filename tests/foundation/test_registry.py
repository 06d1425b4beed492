"""Confluent wire format through the registry client.

The registry here is a small in-test HTTP server speaking the two REST calls the client uses
(``POST /subjects/{s}/versions``, ``GET /schemas/ids/{id}``), with Confluent's status codes. No
real Confluent-compatible registry is installable from this machine's registries in reasonable
time (Confluent's jars are not on Maven Central; Karapace/Apicurio need more than a test can
start), so this is a stand-in for the server, not for our client.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from schemas import Codec, UnknownSchemaError, new_event
from schemas.registry import RegistryError, SchemaRegistryClient
from vtforge.config import load_config
from vtforge.transport.sink import codec_for


class _Registry(BaseHTTPRequestHandler):
    schemas: ClassVar[dict[int, str]] = {}
    subjects: ClassVar[dict[str, list[int]]] = {}

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        subject = self.path.split("/")[2]
        schema = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["schema"]
        known = {text: number for number, text in self.schemas.items()}
        schema_id = known.get(schema) or len(self.schemas) + 1
        self.schemas[schema_id] = schema
        self.subjects.setdefault(subject, []).append(schema_id)
        self._send(200, {"id": schema_id})

    def do_GET(self) -> None:
        schema_id = int(self.path.rsplit("/", 1)[1])
        if schema_id not in self.schemas:
            self._send(404, {"error_code": 40403, "message": "Schema not found"})
        else:
            self._send(200, {"schema": self.schemas[schema_id]})


@pytest.fixture
def registry_url() -> Iterator[str]:
    _Registry.schemas, _Registry.subjects = {}, {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _event() -> dict:
    payload = {"reward_id": "r", "subject_kind": "patch", "subject_id": "p", "reward": 0.0}
    payload["outcome"] = "unresolved"
    return new_event("reward_assigned", payload, producer="t", key="1")


def test_register_then_decode_with_a_fresh_client(registry_url: str) -> None:
    writer = Codec(registry=SchemaRegistryClient(registry_url, subject_for=lambda t: f"vtforge.{t}-value"))
    payload = writer.encode(_event())
    assert payload[0] == 0
    assert _Registry.subjects == {"vtforge.reward_assigned-value": [1]}
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


def test_codec_for_config_picks_the_framing(workspace, registry_url: str) -> None:  # type: ignore[no-untyped-def]
    assert codec_for(load_config()).registry is None
    (workspace / "vtcode.toml").write_text(f'[forge.events]\nschema_registry_url = "{registry_url}"\n')
    codec = codec_for(load_config())
    assert codec.encode(_event())[0] == 0
    assert "vtforge.reward_assigned-value" in _Registry.subjects
