"""A stand-in Confluent schema registry for tests: the two REST calls our client uses.

It speaks ``POST /subjects/{s}/versions`` and ``GET /schemas/ids/{id}`` with Confluent's status
codes. No real Confluent-compatible registry is installable from this machine's registries in
reasonable time (Confluent's jars are not on Maven Central; Karapace/Apicurio need more than a
test can start), so this stands in for the server, not for our client. The ``registry_url``
fixture (tests/conftest.py) serves it on a free port.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar


class StandInRegistry(BaseHTTPRequestHandler):
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


@contextmanager
def serve() -> Iterator[str]:
    """A fresh, empty registry on a free port; yields its URL."""
    StandInRegistry.schemas, StandInRegistry.subjects = {}, {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandInRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
