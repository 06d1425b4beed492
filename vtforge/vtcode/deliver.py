"""How ``hook`` and ``notify`` emit without ever holding VT Code up.

VT Code waits for a lifecycle hook (a ``PreToolUse`` hook holds the tool call) and for the
``notify`` program, so these commands must return in well under a second. Building a sink and
writing a Parquet file costs more than that in a fresh process (pyarrow imports pandas on its
first array), and a Kafka broker may be slow or down. So the default is an *outbox*:

1. the event is written to the local spool (one small fsynced file; milliseconds);
2. a detached ``python -m vtforge.vtcode drain`` process is started and the command returns;
3. that process hands the spool to the configured sink and deletes what was acknowledged.

If the sink is unavailable the events simply stay spooled: the next hook, a running
``vtforge vtcode tail`` (it drains on every poll) or ``vtforge vtcode drain`` delivers them.
``--inline`` instead drives the sink in-process within ``forge.vtcode.hook_timeout_s`` and spools
only what it could not deliver in time. Either way a late or repeated delivery is harmless: the
event id is deterministic.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vtforge.vtcode.spool import Spool

if TYPE_CHECKING:
    from vtforge.config import Config

PRODUCER = "vtforge.vtcode"
DRAIN_LOCK_WAIT_S = 30.0


@dataclass
class Delivery:
    outcome: str  # "delivered" | "spooled"
    error: str | None = None
    still_running: bool = False  # the sink thread is stuck: the caller should exit hard


def spool_for(cfg: Config) -> Spool:
    return Spool(cfg.data_dir / "vtcode" / "spool", quarantine_dir=cfg.quarantine_dir)


def spool_and_kick(cfg: Config, events: list[dict[str, Any]], *, config_path: Path | None = None) -> Delivery:
    """Spool ``events`` durably, then start a detached drainer; returns at once."""
    spool_for(cfg).put(events)
    command = [sys.executable, "-m", "vtforge.vtcode", "drain"]
    if config_path is not None:
        command += ["--config", str(config_path)]
    log = cfg.data_dir / "vtcode" / "drain.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        subprocess.Popen(  # detached: it outlives us and vtcode never waits for it
            command,
            cwd=cfg.root,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            close_fds=True,
            env=os.environ.copy(),
        )
    return Delivery("spooled")


def drain_spool(cfg: Config, *, wait_s: float = DRAIN_LOCK_WAIT_S) -> int:
    """Deliver everything spooled to the configured sink; raises SinkError when it is unavailable."""
    from vtforge.transport import sink_from_config

    spool = spool_for(cfg)
    if not spool.pending():
        return 0
    sent = 0
    with sink_from_config(cfg, producer=PRODUCER) as sink:
        for _ in range(100):  # more may arrive while we drain: go on until the spool is empty
            batch = spool.drain(sink, wait_s=wait_s)
            sent += batch
            if batch == 0 or not spool.pending():
                break
    return sent


def deliver_or_spool(cfg: Config, events: list[dict[str, Any]], *, timeout_s: float) -> Delivery:
    """Hand ``events`` to the configured sink within ``timeout_s``; spool them otherwise."""
    result: dict[str, Any] = {}

    def send() -> None:
        from vtforge.transport import sink_from_config

        try:
            sink = sink_from_config(cfg, producer=PRODUCER)
            try:
                sink.emit_many(events)
                sink.flush()
            finally:
                sink.close()
            result["ok"] = True
        except BaseException as exc:  # any failure means: spool
            result["error"] = f"{type(exc).__name__}: {exc}"

    worker = threading.Thread(target=send, name="vtcode-deliver", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if result.get("ok"):
        return Delivery("delivered")
    error = result.get("error") or f"sink did not acknowledge within {timeout_s:g}s"
    spool_for(cfg).put(events)
    return Delivery("spooled", error=error, still_running=worker.is_alive())
