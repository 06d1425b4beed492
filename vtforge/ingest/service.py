"""Running the ingestor as a process: signals, logging, exit codes (CLI and ``python -m``)."""

from __future__ import annotations

import logging
import signal
from typing import TYPE_CHECKING

from vtforge.ingest.ingestor import Ingestor, IngestReport

if TYPE_CHECKING:
    from vtforge.config import Config


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # kafka-python warns about every reconnect and metadata gap; the ingestor logs what matters.
    logging.getLogger("kafka").setLevel(logging.INFO if verbose else logging.ERROR)


def run_service(config: Config, *, once: bool = False, instance_id: str | None = None) -> IngestReport:
    """Run until drained (``once``) or until SIGTERM/SIGINT, which finish the batch and commit."""
    ingestor = Ingestor(config, once=once, instance_id=instance_id)
    previous = {s: signal.signal(s, lambda *_: ingestor.stop()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return ingestor.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def describe(report: IngestReport) -> str:
    return (
        f"ingested {report.events} events ({report.rejected} quarantined) into {report.files} files, "
        f"{report.commits} commits, {len(report.partitions)} partitions, {report.seconds:.1f}s "
        f"[member {report.member}]"
    )
