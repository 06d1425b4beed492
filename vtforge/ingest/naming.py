"""Deterministic names of ingested files: the Kafka coordinates of the batch they hold.

``<topic>.p<partition>.o<first offset>-<last offset>`` (zero-padded so names sort by offset).
Replaying the same offsets rewrites the same file, and a partition's files can be found by
name alone when an uncommitted attempt has to be cleared (see ``Ingestor._sweep``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

_NAME = re.compile(
    r"^(?P<topic>[A-Za-z0-9._-]+)\.p(?P<partition>\d{5})\.o(?P<first>\d{20})-(?P<last>\d{20})$"
)


class BatchName(NamedTuple):
    topic: str
    partition: int
    first: int
    last: int

    def __str__(self) -> str:
        return f"{self.topic}.p{self.partition:05d}.o{self.first:020d}-{self.last:020d}"


def parse(stem: str) -> BatchName | None:
    match = _NAME.match(stem)
    if match is None:
        return None
    return BatchName(match["topic"], int(match["partition"]), int(match["first"]), int(match["last"]))


def partition_glob(topic: str, partition: int) -> str:
    """A glob for every file of one partition (visible files and hidden temporary ones)."""
    return f"*{topic}.p{partition:05d}.o*"


def files_of_partition(roots: list[Path], topic: str, partition: int) -> list[Path]:
    """Every file (any event type, any day) written for ``topic``/``partition`` under ``roots``."""
    pattern = partition_glob(topic, partition)
    found: list[Path] = []
    for root in roots:
        if root.exists():
            found.extend(root.glob(f"*/date=*/{pattern}"))
    return found
