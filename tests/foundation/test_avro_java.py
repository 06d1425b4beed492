"""Apache Avro's Java reference (avro-tools, tests/avro_tools.py) reads what vtforge writes, and
vtforge reads what it writes: container files in every codec, with the exported schemas; Java's
parsing fingerprint of every schema version; single-object messages both ways (tests/avro_java.py
runs Java's side for all schemas in one JVM start)."""

from __future__ import annotations

import base64
import io
import json
import random
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.schema import to_parsing_canonical_form

from tests.avro_java import Task, run_tasks, sample_record
from tests.cli import invoke
from tests.foundation.test_avro_files import _landed_ids
from tests.support import require_service
from vtforge.fixtures.events import generate_events
from vtforge.schemas.catalog import EventSchema, default_catalog, export_resolved
from vtforge.schemas.codec import SINGLE_OBJECT_MAGIC, Codec
from vtforge.schemas.jsonform import to_jsonable

CODECS = ["null", "deflate", "snappy", "zstandard"]


@pytest.fixture(scope="module")
def avro_tools() -> Path:
    from tests.avro_tools import resolve

    require_service(shutil.which("java") is not None, "Java (scripts/setup.sh installs it)")
    try:
        return resolve()
    except RuntimeError as exc:
        require_service(False, f"avro-tools ({exc})")
        raise


def _java(jar: Path, *args: str) -> str:
    result = subprocess.run(["java", "-jar", str(jar), *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _land(workspace: Path) -> list[str]:
    events = [to_jsonable(e) for e in generate_events(2, 0)]
    (workspace / "s.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    assert invoke("events", "load", "s.jsonl").exit_code == 0
    return sorted(e["envelope"]["event_id"] for e in events)


@pytest.mark.parametrize("codec", CODECS)
def test_avro_tools_reads_vtforge_container_files(workspace: Path, avro_tools: Path, codec: str) -> None:
    ids = _land(workspace)
    assert invoke("events", "export", "--codec", codec, "--out", "all.avro").exit_code == 0
    assert _java(avro_tools, "getmeta", "all.avro", "--key", "avro.codec").strip() == codec
    lines = [json.loads(line) for line in _java(avro_tools, "tojson", "all.avro").splitlines()]
    # several event types: a union of records, which Avro's JSON encoding tags with the record name
    records = [next(iter(line.values())) for line in lines]
    assert sorted(r["envelope"]["event_id"] for r in records) == ids


@pytest.mark.parametrize("codec", CODECS)
def test_vtforge_loads_files_avro_tools_writes_with_the_exported_schema(
    workspace: Path, avro_tools: Path, codec: str
) -> None:
    _land(workspace)
    assert invoke("events", "export", "--type", "rollout", "--out", "r.avro").exit_code == 0
    assert invoke("schemas", "export", "avsc").exit_code == 0  # one stand-alone file per schema
    (workspace / "r.json").write_text(_java(avro_tools, "tojson", "r.avro"))
    schema = "avsc/rollout.v2.avsc"
    with (workspace / "java.avro").open("wb") as out:  # fromjson writes the binary file to stdout
        command = ["java", "-jar", str(avro_tools), "fromjson", "--codec", codec, "--schema-file", schema]
        subprocess.run([*command, "r.json"], stdout=out, check=True)
    lines = (workspace / "r.json").read_text().splitlines()
    ids = sorted(json.loads(line)["envelope"]["event_id"] for line in lines)
    result = invoke("events", "load", "java.avro", env={"VTFORGE_WAREHOUSE__DATA_DIR": "other"})
    assert result.exit_code == 0, result.stderr
    assert f"loaded {len(ids)}, quarantined 0" in result.stdout
    assert _landed_ids(workspace / "other" / "landing") == ids


# --- Java's library in one JVM start: fingerprints, single-object messages both ways ----------
SAMPLES_PER_SCHEMA = 6  # seeded random records per schema version, besides the synthetic events


@dataclass
class _JavaRuns:
    """Java's answer, (ok, result), to each task, with what the check needs to judge it."""

    fingerprints: list[tuple[EventSchema, tuple[bool, str]]] = field(default_factory=list)
    # the writer schema and the record Java encoded from Avro JSON
    encoded: list[tuple[EventSchema, dict[str, Any], tuple[bool, str]]] = field(default_factory=list)
    # the schema and the message vtforge's codec wrote for Java to decode
    decoded: list[tuple[EventSchema, bytes, tuple[bool, str]]] = field(default_factory=list)


def _avro_json(schema: EventSchema, record: dict[str, Any]) -> str:
    """The record in Avro's own JSON encoding (unions tagged), which Java's JsonDecoder reads."""
    out = io.StringIO()
    fastavro.json_writer(out, schema.parsed, [record])
    return out.getvalue().strip()


def _records(schema: EventSchema, codec: Codec, rng: random.Random) -> list[dict[str, Any]]:
    """Synthetic events of the type (current version only) and seeded random records."""
    records = []
    if schema is codec.catalog.current(schema.event_type):
        events = [e for e in generate_events(2, 0) if e["envelope"]["event_type"] == schema.event_type]
        records += [codec.decode(codec.encode(e)) for e in events[:4]]
    for _ in range(SAMPLES_PER_SCHEMA):
        record = sample_record(schema.parsed, rng)
        record["envelope"].update(event_type=schema.event_type, schema_version=schema.version)
        records.append(record)
    return records


def _python_single_object(schema: EventSchema, record: dict[str, Any]) -> bytes:
    """A single-object message written with any catalog version (vtforge's codec writes the
    current one only): the reference for what Java writes with an old version."""
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema.parsed, record)
    return SINGLE_OBJECT_MAGIC + schema.fingerprint + body.getvalue()


@pytest.fixture(scope="module")
def java_runs(avro_tools: Path, tmp_path_factory: pytest.TempPathFactory) -> _JavaRuns:
    folder = tmp_path_factory.mktemp("avro-java")
    codec, rng = Codec(), random.Random(18)
    schemas = codec.catalog.all()
    files = dict(zip((s.name for s in schemas), export_resolved(codec.catalog, folder / "avsc"), strict=True))
    jobs: list[tuple[Task, list[Any], tuple[Any, ...]]] = []  # task, where its answer goes, context
    runs = _JavaRuns()
    for schema in schemas:
        avsc = files[schema.name]
        jobs.append((Task("fingerprint", avsc), runs.fingerprints, (schema,)))
        current = schema is codec.catalog.current(schema.event_type)
        for record in _records(schema, codec, rng):
            jobs.append((Task("encode", avsc, _avro_json(schema, record)), runs.encoded, (schema, record)))
            if current:  # vtforge's codec writes the current version
                message = codec.encode(record)
                task = Task("decode", avsc, base64.b64encode(message).decode())
                jobs.append((task, runs.decoded, (schema, message)))
    answers = run_tasks(avro_tools, [task for task, _, _ in jobs], folder / "java")
    for (_, results, context), answer in zip(jobs, answers, strict=True):
        results.append((*context, answer))
    return runs


def test_java_parsing_fingerprint_matches_vtforge_for_every_schema_version(java_runs: _JavaRuns) -> None:
    assert [s.name for s, _ in java_runs.fingerprints] == [s.name for s in default_catalog().all()]
    for schema, (ok, answer) in java_runs.fingerprints:
        assert ok, f"{schema.name}: {answer}"
        java_fp, java_form = answer.split("\t", 1)
        assert java_form == to_parsing_canonical_form(schema.parsed), schema.name
        # SchemaNormalization.parsingFingerprint64 is a signed long; vtforge keeps its 8 LE bytes
        assert int(java_fp) == int.from_bytes(schema.fingerprint, "little", signed=True), schema.name


def test_vtforge_decodes_java_single_object_messages(java_runs: _JavaRuns) -> None:
    codec = Codec()
    assert {s.name for s, _, _ in java_runs.encoded} == {s.name for s in default_catalog().all()}
    for schema, record, (ok, answer) in java_runs.encoded:
        assert ok, f"{schema.name}: {answer}"
        message = base64.b64decode(answer)
        assert message[:10] == SINGLE_OBJECT_MAGIC + schema.fingerprint, schema.name
        current = schema is codec.catalog.current(schema.event_type)
        # an old version's message decodes resolved to the current one, whoever wrote it
        reference = codec.encode(record) if current else _python_single_object(schema, record)
        expected = codec.decode(reference)
        assert codec.decode(message) == expected, schema.name


def test_java_decodes_vtforge_single_object_messages(java_runs: _JavaRuns) -> None:
    codec = Codec()
    current = {codec.catalog.current(t).name for t in codec.catalog.event_types}
    assert {s.name for s, _, _ in java_runs.decoded} == current
    for schema, message, (ok, answer) in java_runs.decoded:
        assert ok, f"{schema.name}: {answer}"
        # BinaryMessageDecoder found the schema by vtforge's fingerprint; compare in Avro JSON
        assert json.loads(answer) == json.loads(_avro_json(schema, codec.decode(message))), schema.name
