"""Apache Avro's Java reference (avro-tools, tests/avro_tools.py) reads what vtforge writes, and
vtforge reads what it writes: container files in every codec, with the exported schemas."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cli import invoke
from tests.foundation.test_avro_files import _landed_ids
from tests.support import require_service
from vtforge.fixtures.events import generate_events
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
