"""Kafka's own command-line tools, run from the cached jars (what ``bin/kafka-*.sh`` would run).

Operators check a cluster with these, not with vtforge: ``kafka-consumer-groups --describe`` must
report the ingestor's group and lag as ``vtforge ingest status`` does, and ``kafka-console-consumer``
must read the event topics. Both run on the machine's Java with the broker's class path (the
``kafka-tools`` jar is resolved next to the broker's, see ``jars``).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from vtforge.kafka import jars

CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"
CONSUMER_GROUPS = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"


class ToolError(RuntimeError):
    """A Kafka tool exited with an error; the message holds its last lines."""


@dataclass(frozen=True)
class GroupOffset:
    """One row of ``kafka-consumer-groups --describe``: a partition's committed offset and lag."""

    group: str
    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int | None
    consumer_id: str | None


def run_tool(version: str, main: str, *args: str, timeout_s: float = 120.0, heap_mb: int = 256) -> str:
    """Run one tool's main class on the cached jars of ``version``; its standard output."""
    jars.resolve(version)
    logs = jars.version_dir(version) / "tool-logs"  # its log4j file, not stdout
    command = jars.java_command(version, main, *args, heap_mb=heap_mb, logs_dir=logs, quick_compiler=True)
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-5:])
        raise ToolError(f"{main.rsplit('.', 1)[-1]} exited with {done.returncode}: {tail}")
    return done.stdout


def describe_group(version: str, bootstrap: str, group: str) -> list[GroupOffset]:
    """``kafka-consumer-groups --describe --group`` parsed: one row per partition it reports."""
    out = run_tool(version, CONSUMER_GROUPS, "--bootstrap-server", bootstrap, "--describe", "--group", group)
    rows: list[GroupOffset] = []
    header: list[str] | None = None
    for line in out.splitlines():
        cells = line.split()
        if not cells:
            continue
        if cells[0] == "GROUP":
            header = cells
            continue
        if header is None or len(cells) != len(header):
            continue
        row = dict(zip(header, cells, strict=True))
        rows.append(
            GroupOffset(
                group=row["GROUP"],
                topic=row["TOPIC"],
                partition=int(row["PARTITION"]),
                committed=_number(row["CURRENT-OFFSET"]),
                end=int(row["LOG-END-OFFSET"]),
                lag=_number(row["LAG"]),
                consumer_id=None if row["CONSUMER-ID"] == "-" else row["CONSUMER-ID"],
            )
        )
    return rows


def console_keys(
    version: str, bootstrap: str, topic: str, *, messages: int, timeout_s: float = 60.0
) -> list[str]:
    """The keys of the first ``messages`` records of ``topic``, read by ``kafka-console-consumer``
    from the beginning (values are Avro bytes: the key, the task id, is what a shell shows)."""
    out = run_tool(
        version,
        CONSOLE_CONSUMER,
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--from-beginning",
        "--max-messages",
        str(messages),
        "--timeout-ms",
        str(int(timeout_s * 1000)),
        "--formatter-property",
        "print.key=true",
        "--formatter-property",
        "print.value=false",
        "--formatter-property",
        "key.separator=",
        timeout_s=timeout_s + 60,
    )
    return [line.strip() for line in out.splitlines() if line.strip()]


def _number(cell: str) -> int | None:
    return None if cell == "-" else int(cell)
