"""A client for a Confluent-compatible schema registry (for the Confluent wire format).

Used only when ``forge.events.schema_registry_url`` is set. It registers each event type's
current schema under the subject ``<topic>-value`` (Confluent's TopicNameStrategy) and resolves
ids seen on the wire back to catalog schemas by their canonical-form fingerprint, so a payload
written with any catalogued version decodes. Ids are cached both ways; the registry is asked once
per schema per process. Speaks the REST API that Confluent Schema Registry, Karapace and
Apicurio's ``ccompat`` endpoint share: ``POST /subjects/{subject}/versions`` and
``GET /schemas/ids/{id}``.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

from vtforge.schemas.catalog import EventSchema, SchemaCatalog, default_catalog

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryError(RuntimeError):
    """The registry refused or could not be reached; the message has its answer."""


class SchemaRegistryClient:
    """Schema ids for the Confluent framing, from a registry over HTTP."""

    def __init__(
        self,
        url: str,
        *,
        subject_for: Callable[[str], str],
        catalog: SchemaCatalog | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.subject_for = subject_for
        self.catalog = catalog or default_catalog()
        self.timeout_s = timeout_s
        self._ids: dict[bytes, int] = {}
        self._schemas: dict[int, EventSchema] = {}
        self._lock = threading.Lock()

    def id_for(self, schema: EventSchema) -> int:
        with self._lock:
            if schema.fingerprint in self._ids:
                return self._ids[schema.fingerprint]
        subject = self.subject_for(schema.event_type)
        body = json.dumps({"schema": json.dumps(schema.parsed)}).encode()
        answer = self._call("POST", f"/subjects/{subject}/versions", body)
        schema_id = int(answer["id"])
        with self._lock:
            self._ids[schema.fingerprint] = schema_id
            self._schemas[schema_id] = schema
        return schema_id

    def schema_for(self, schema_id: int) -> EventSchema:
        with self._lock:
            if schema_id in self._schemas:
                return self._schemas[schema_id]
        try:
            answer = self._call("GET", f"/schemas/ids/{schema_id}")
        except RegistryError as exc:
            if "404" in str(exc):
                raise KeyError(schema_id) from None
            raise
        parsed = parse_schema(json.loads(answer["schema"]))
        fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))
        schema = self.catalog.by_fingerprint(fp)
        if schema is None:
            raise KeyError(schema_id)
        with self._lock:
            self._schemas[schema_id] = schema
            self._ids[fp] = schema_id
        return schema

    def _call(self, method: str, path: str, body: bytes | None = None) -> dict:
        request = urllib.request.Request(
            self.url + path,
            data=body,
            method=method,
            headers={"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:200]
            raise RegistryError(f"schema registry {method} {path}: HTTP {exc.code} {detail}") from None
        except (urllib.error.URLError, TimeoutError) as exc:
            raise RegistryError(f"schema registry at {self.url} unreachable: {exc}") from None
