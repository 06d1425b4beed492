"""Run Apache Avro's Java library (the classes inside avro-tools) on a batch of tasks in one JVM
start: ``tests/AvroInterop.java``, launched as a single-file source program. Also a seeded
generator of records for any parsed Avro schema, so every schema version gets Java-side checks.
"""

from __future__ import annotations

import random
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

JAVA_SOURCE = Path(__file__).with_name("AvroInterop.java")


@dataclass(frozen=True)
class Task:
    op: str  # fingerprint | encode | decode (see AvroInterop.java)
    schema: Path  # a self-contained .avsc
    payload: str = ""  # one line: Avro JSON (encode) or base64 of a message (decode)


def run_tasks(jar: Path, tasks: list[Task], folder: Path) -> list[tuple[bool, str]]:
    """(ok, result) per task, in order, from one ``java`` start."""
    assert all("\n" not in t.payload for t in tasks)
    folder.mkdir(parents=True, exist_ok=True)
    inputs, outputs = folder / "tasks.tsv", folder / "results.tsv"
    inputs.write_text("".join(f"{t.op}\t{t.schema}\t{t.payload}\n" for t in tasks), encoding="utf-8")
    command = ["java", "-cp", str(jar), str(JAVA_SOURCE), str(inputs), str(outputs)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = outputs.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(tasks), f"{len(tasks)} tasks but {len(lines)} results"
    return [(status == "ok", value) for status, value in (line.split("\t", 1) for line in lines)]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TEXTS = [
    "",
    "a",
    "plain text",
    'quote " backslash \\ tab \t newline \n',
    "nul \x00 bell \x07",
    "é ß 漢字 ✓",
    "😀 𝄞",
]
_DOUBLES = [0.0, -0.0, 1.0, -1.5, 0.1, 1e-300, 5e-324, 1.7976931348623157e308, 123456789.125]
_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def sample_record(avro: Any, rng: random.Random) -> Any:
    """A value that conforms to ``avro`` (fastavro's parsed, self-contained schema), drawing edge
    cases often: extreme ints and longs, tiny and huge doubles, escapes and non-BMP text."""
    return _Sampler(rng).value(avro)


class _Sampler:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.named: dict[str, Any] = {}

    def text(self) -> str:
        rng = self.rng
        if rng.random() < 0.5:
            return rng.choice(_TEXTS)
        return "".join(rng.choice("abcxyz019 _-./\u00e9\u4e2d\U0001f600") for _ in range(rng.randrange(12)))

    def integer(self, bits: int) -> int:
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        return self.rng.choice([low, high, 0, -1, self.rng.randint(low, high), self.rng.randint(-1000, 1000)])

    def value(self, avro: Any) -> Any:
        rng = self.rng
        if isinstance(avro, list):  # a union: null a third of the time when it is a branch
            branches = [b for b in avro if b != "null"]
            if not branches or ("null" in avro and rng.random() < 1 / 3):
                return None
            return self.value(rng.choice(branches))
        if isinstance(avro, str):
            if avro not in _PRIMITIVES:
                return self.value(self.named[avro])
            return {
                "null": lambda: None,
                "boolean": lambda: rng.random() < 0.5,
                "int": lambda: self.integer(32),
                "long": lambda: self.integer(64),
                "float": lambda: rng.choice([0.0, 1.0, -2.5, 0.5]),  # exact in 32 bits
                "double": lambda: rng.choice([*_DOUBLES, rng.uniform(-1e6, 1e6)]),
                "bytes": lambda: rng.randbytes(rng.randrange(8)),
                "string": self.text,
            }[avro]()
        if avro.get("logicalType") in ("timestamp-micros", "timestamp-millis"):
            micros = rng.randrange(4_102_444_800_000_000)  # up to 2100
            if avro["logicalType"] == "timestamp-millis":
                micros -= micros % 1000
            return _EPOCH + timedelta(microseconds=micros)
        kind = avro["type"]
        if kind in ("record", "enum", "fixed"):
            self.named[avro["name"]] = avro
        if kind == "record":
            return {f["name"]: self.value(f["type"]) for f in avro["fields"]}
        if kind == "enum":
            return rng.choice(avro["symbols"])
        if kind == "fixed":
            return rng.randbytes(avro["size"])
        if kind == "array":
            return [self.value(avro["items"]) for _ in range(rng.randrange(4))]
        if kind == "map":
            # never the empty key: fastavro's Avro-JSON writer fails on it ("No key was set")
            return {self.text() or "k": self.value(avro["values"]) for _ in range(rng.randrange(4))}
        return self.value(kind)  # {"type": "long"} and the like
