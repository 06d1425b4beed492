"""Avro as other Avro tools expect it: stand-alone schema files, container files in every codec
(a damaged block quarantined at its offset, the rest loaded), and events exported from landing."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import fastavro
import pyarrow.parquet as pq
import pytest
from fastavro.schema import fingerprint, load_schema, to_parsing_canonical_form

from tests.cli import invoke
from vtforge.config import load_config
from vtforge.fixtures.events import generate_events
from vtforge.schemas.catalog import default_catalog
from vtforge.schemas.jsonform import to_jsonable
from vtforge.transport import sink_from_config
from vtforge.transport.landing import landing_files

CODECS = ["null", "deflate", "snappy", "zstandard"]


def _landed_ids(root: Path) -> list[str]:
    files = landing_files(root)
    if not files:
        return []
    listing = ", ".join(f"'{f}'" for f in files)
    query = f"SELECT envelope.event_id FROM read_parquet([{listing}], union_by_name=true)"
    return sorted(r[0] for r in duckdb.sql(query).fetchall())


def _rollouts() -> list[dict]:
    return [e for e in generate_events(3, 0) if e["envelope"]["event_type"] == "rollout"]


def _container(path: Path, events: list[dict], codec: str) -> list[tuple[int, int, int]]:
    """Write ``events`` as a container file of small blocks; returns (offset, size, records) each."""
    schema = default_catalog().current("rollout").parsed
    with path.open("wb") as handle:
        fastavro.writer(handle, schema, events, codec=codec, sync_interval=1500)
    with path.open("rb") as handle:
        return [(b.offset, b.size, b.num_records) for b in fastavro.block_reader(handle)]


def test_exported_schemas_parse_alone_with_the_catalogs_fingerprints(workspace: Path) -> None:
    result = invoke("schemas", "export", "avsc")
    assert result.exit_code == 0, result.stderr
    catalog = default_catalog()
    files = sorted((workspace / "avsc").glob("*.avsc"))
    assert [f.name for f in files] == sorted(f"{s.name}.avsc" for s in catalog.all())
    for path in files:
        schema = catalog.version(*_type_and_version(path))
        text = path.read_text()
        assert '"type": "vtforge.Envelope"' not in text  # defined inline, not referenced
        parsed = fastavro.parse_schema(json.loads(text))  # no named_schemas: nothing else known
        assert fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO") == schema.fingerprint.hex()
        loaded = load_schema(path)  # fastavro's file loader, without the envelope's file beside it
        assert fingerprint(to_parsing_canonical_form(loaded), "CRC-64-AVRO") == schema.fingerprint.hex()


def _type_and_version(path: Path) -> tuple[str, int]:
    event_type, version, _ = path.name.split(".")
    return event_type, int(version[1:])


@pytest.mark.parametrize("codec", CODECS)
def test_container_files_load_in_every_codec(workspace: Path, codec: str) -> None:
    events = _rollouts()
    _container(workspace / "r.avro", events, codec)
    validated = invoke("events", "validate", "r.avro")
    assert validated.exit_code == 0, validated.stderr
    assert f"{len(events)} valid, 0 invalid" in validated.stdout
    loaded = invoke("events", "load", "r.avro")
    assert loaded.exit_code == 0, loaded.stderr
    assert _landed_ids(workspace / ".forge" / "landing") == sorted(e["envelope"]["event_id"] for e in events)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("damage", ["data", "framing"])
def test_a_damaged_block_is_quarantined_at_its_offset_and_the_rest_loads(
    workspace: Path, codec: str, damage: str
) -> None:
    events = _rollouts()
    blocks = _container(workspace / "r.avro", events, codec)
    assert len(blocks) >= 4
    offset, size, count = blocks[1]
    data = bytearray((workspace / "r.avro").read_bytes())
    # inside the compressed data, or the block's record count and length at its very start
    at = offset + size // 3 if damage == "data" else offset
    for i in range(at, at + 8 if damage == "data" else at + 2):
        data[i] ^= 0xFF
    (workspace / "r.avro").write_bytes(bytes(data))

    result = invoke("events", "load", "r.avro")
    assert result.exit_code == 1  # bad input is reported, the good records still land
    assert "Traceback" not in result.stderr
    first = sum(n for _, _, n in blocks[:1])
    lost = {e["envelope"]["event_id"] for e in events[first : first + count]}
    expected = sorted(e["envelope"]["event_id"] for e in events if e["envelope"]["event_id"] not in lost)
    assert _landed_ids(workspace / ".forge" / "landing") == expected
    assert f"loaded {len(expected)}, quarantined 1" in result.stdout

    [row] = pq.read_table(next((workspace / ".forge" / "quarantine").rglob("*.parquet"))).to_pylist()
    assert row["source"] == "events-load" and row["reason"] == "corrupt_block"
    assert row["location"] == f"r.avro@{offset}"
    assert f"r.avro: Avro block at byte {offset} does not decode" in row["error"]
    assert row["raw"] == bytes(data[offset : offset + size])  # the damaged block, sync marker included


def test_validate_reports_a_damaged_block_in_one_line(workspace: Path) -> None:
    events = _rollouts()
    blocks = _container(workspace / "r.avro", events, "deflate")
    offset, size, _ = blocks[1]
    data = bytearray((workspace / "r.avro").read_bytes())
    data[offset + size // 2 : offset + size // 2 + 8] = b"\xff" * 8
    (workspace / "r.avro").write_bytes(bytes(data))
    result = invoke("events", "validate", "r.avro")
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"r.avro: Avro block at byte {offset} does not decode")


def test_an_unknown_codec_is_one_line(workspace: Path) -> None:
    _container(workspace / "r.avro", _rollouts(), "null")
    data = (workspace / "r.avro").read_bytes()
    # rename the codec in the header to one no implementation knows, same length ("null" -> "nope")
    (workspace / "r.avro").write_bytes(data.replace(b"\x08null", b"\x08nope", 1))
    result = invoke("events", "validate", "r.avro")
    assert result.exit_code == 1
    assert "Avro codec 'nope' is not supported" in result.stderr
    assert "Traceback" not in result.stderr


def _land_the_stream(workspace: Path) -> list[str]:
    events = [to_jsonable(e) for e in generate_events(2, 0)]
    (workspace / "s.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    assert invoke("events", "load", "s.jsonl").exit_code == 0
    return sorted(e["envelope"]["event_id"] for e in events)


@pytest.mark.parametrize("codec", CODECS)
def test_export_avro_round_trips_through_load(workspace: Path, codec: str) -> None:
    ids = _land_the_stream(workspace)
    result = invoke("events", "export", "--format", "avro", "--codec", codec, "--out", "out/all.avro")
    assert result.exit_code == 0, result.stderr
    with (workspace / "out" / "all.avro").open("rb") as handle:
        reader = fastavro.reader(handle)
        assert reader.codec == codec
        assert sorted(r["envelope"]["event_id"] for r in reader) == ids  # a plain Avro reader
    assert invoke("events", "validate", "out/all.avro").exit_code == 0
    again = invoke("events", "load", "out/all.avro", env={"VTFORGE_WAREHOUSE__DATA_DIR": "other"})
    assert again.exit_code == 0, again.stderr
    assert _landed_ids(workspace / "other" / "landing") == ids


def test_export_one_type_has_its_record_schema_and_parquet_and_jsonl_read_back(workspace: Path) -> None:
    _land_the_stream(workspace)
    rollout = default_catalog().current("rollout")
    assert invoke("events", "export", "--type", "rollout", "--out", "r.avro").exit_code == 0
    with (workspace / "r.avro").open("rb") as handle:
        reader = fastavro.reader(handle)
        canonical = to_parsing_canonical_form(reader.writer_schema)
        assert fingerprint(canonical, "CRC-64-AVRO") == rollout.fingerprint.hex()
        avro_ids = [r["envelope"]["event_id"] for r in reader]

    parquet = invoke(
        "events", "export", "-f", "parquet", "--type", "rollout", "--codec", "snappy", "-o", "r.parquet"
    )
    assert parquet.exit_code == 0, parquet.stderr
    table = pq.read_table(workspace / "r.parquet")
    assert [e["event_id"] for e in table.column("envelope").to_pylist()] == avro_ids

    assert invoke("events", "export", "-f", "jsonl", "-o", "all.jsonl").exit_code == 0
    validated = invoke("events", "validate", "all.jsonl")
    assert validated.exit_code == 0 and "77 valid, 0 invalid" in validated.stdout


def test_export_refuses_what_it_cannot_write_in_one_line(workspace: Path) -> None:
    empty = invoke("events", "export", "-o", "x.avro")
    assert empty.exit_code == 2 and "no events" in empty.stderr
    _land_the_stream(workspace)
    mixed = invoke("events", "export", "-f", "parquet", "-o", "x.parquet")
    assert mixed.exit_code == 2
    [line] = mixed.stderr.strip().splitlines()
    assert "a Parquet file holds one event type" in line and "--type" in line
    assert not (workspace / "x.parquet").exists()
    codec = invoke("events", "export", "--codec", "lzo", "-o", "x.avro")
    assert codec.exit_code == 2 and "--codec must be one of" in codec.stderr


def test_export_from_the_warehouse_is_what_was_ingested_once(workspace: Path) -> None:
    """`--from warehouse` writes the warehouse's events: a landing file not ingested yet is not in
    it, and a re-delivered copy is there once; the same rows as the landing export otherwise."""
    ids = _land_the_stream(workspace)
    copy = landing_files(workspace / ".forge" / "landing", ["rollout"])[0]
    copy.with_name("again-" + copy.name).write_bytes(copy.read_bytes())  # a re-delivery
    assert invoke("materialize").exit_code == 0
    late = [e for e in generate_events(1, 7) if e["envelope"]["event_type"] == "task_registered"]
    with sink_from_config(load_config(), producer="late") as sink:
        sink.emit_many(late)  # landed after the warehouse was built

    result = invoke("events", "export", "--from", "warehouse", "-f", "jsonl", "-o", "wh.jsonl")
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in (workspace / "wh.jsonl").read_text().splitlines()]
    assert sorted(r["envelope"]["event_id"] for r in rows) == ids
    one = invoke(
        "events", "export", "--from", "warehouse", "-f", "parquet", "--type", "rollout", "-o", "r.parquet"
    )
    assert one.exit_code == 0, one.stderr
    landed = invoke("events", "export", "-f", "parquet", "--type", "rollout", "-o", "l.parquet")
    assert landed.exit_code == 0
    assert pq.read_table(workspace / "r.parquet").equals(pq.read_table(workspace / "l.parquet"))
    assert pq.read_table(workspace / "r.parquet").schema.equals(
        default_catalog().current("rollout").arrow_schema
    )
