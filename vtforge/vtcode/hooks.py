"""The bodies of ``vtforge vtcode hook`` / ``notify``: one payload in, one event out, exit 0 fast.

Shared by the Typer commands and the lighter ``python -m vtforge.vtcode hook|notify`` entry
(which skips loading every CLI module). Nothing here raises or writes to stdout: VT Code reads
a hook's stdout as extra context and may treat a non-zero exit as a veto, and this observer must
never change what the agent does.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from vtforge.config import Config, load_config


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")


def handle(which: str, text: str, *, config_path: Path | None = None, inline: bool = False) -> str:
    """Map and emit one hook/notify payload; returns what happened (for tests and logs)."""
    started = time.monotonic()
    try:
        from vtforge.vtcode.deliver import deliver_or_spool, spool_and_kick
        from vtforge.vtcode.mapping import hook_step, notify_step

        cfg = load_config(config_path)
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            return _quarantine(cfg, which, text, f"not JSON: {exc.msg}")
        if not isinstance(payload, dict):
            return _quarantine(cfg, which, text, "payload is not a JSON object")
        event = hook_step(payload) if which == "hook" else notify_step(payload)
        if not inline:
            return spool_and_kick(cfg, [event], config_path=config_path).outcome
        remaining = max(0.1, cfg.forge.vtcode.hook_timeout_s - (time.monotonic() - started))
        delivery = deliver_or_spool(cfg, [event], timeout_s=remaining)
        if delivery.outcome == "spooled":
            _say(f"vtforge {which}: spooled ({delivery.error})")
        if delivery.still_running:  # a sink stuck in I/O must not keep vtcode waiting
            sys.stderr.flush()
            os._exit(0)
        return delivery.outcome
    except Exception as exc:  # never block vtcode: report and carry on
        _say(f"vtforge {which}: {type(exc).__name__}: {exc}")
        return "failed"


def _quarantine(cfg: Config, which: str, text: str, why: str) -> str:
    from vtforge.transport.quarantine import Rejected, quarantine

    quarantine(cfg.quarantine_dir, f"vtcode-{which}", [Rejected(which, "bad_payload", why, text.encode())])
    _say(f"vtforge {which}: quarantined ({why})")
    return "quarantined"
