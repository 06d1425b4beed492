"""What a run left behind, turned into a ``RunResult``: the backend's ``Outcome`` (exit code,
timeouts, OOM, output) and the runner's result.json, classified into one ``RunStatus``; also the
output tails a result keeps and the limits a request is held to."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vtforge.sandbox.api import Limits, PreparedRepo, RunRequest, RunResult, RunStatus, TestOutcome
from vtforge.sandbox.rundir import RunDir

TAIL_CHARS = 8000

_DISK_MARKERS = ("No space left on device", "Disk quota exceeded")
_OOM_MARKERS = ("MemoryError", "Cannot allocate memory", "out of memory", "std::bad_alloc")
_DENIED_MARKERS = (
    "Permission denied",
    "Read-only file system",
    "Network is unreachable",
    "Operation not permitted",
    "Temporary failure in name resolution",
    "Name or service not known",
    "No route to host",
    "Connection refused",
    "File too large",
    "Resource temporarily unavailable",
)


# a hidden host folder reads as missing inside; a run that tripped on one was denied
_HIDDEN_MISS = re.compile(
    r"(?:/root|/home)\S*?['\"]?: No such file or directory|"
    r"No such file or directory: ['\"]?(?:/root|/home)"
)


def tail(text: str, chars: int = TAIL_CHARS) -> str:
    return text[-chars:]


def read_tail(path: Path, chars: int = TAIL_CHARS) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - chars * 4))
            return tail(handle.read().decode("utf-8", errors="replace"), chars)
    except OSError:
        return ""


@dataclass
class Outcome:
    """What the backend observed from outside."""

    exit_code: int | None
    timed_out: bool = False
    oom: bool = False
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    cpu_s: float | None = None
    max_rss_mb: float | None = None
    start_error: str | None = None


def _signal_of(exit_code: int | None, inner: dict[str, Any]) -> int | None:
    if inner.get("signal"):
        return int(inner["signal"])
    if exit_code is not None and exit_code < 0:
        return -exit_code
    if exit_code is not None and exit_code > 128 and exit_code - 128 < 65:
        return exit_code - 128
    return None


def build_result(
    *,
    backend: str,
    request: RunRequest,
    limits: Limits,
    run_dir: RunDir,
    outcome: Outcome,
    prepared: PreparedRepo,
    command: list[str],
) -> RunResult:
    """Classify a finished run; see ``vtforge.sandbox.api.RunStatus`` for the vocabulary."""
    inner: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        inner = json.loads((run_dir.out / "result.json").read_text())
    tests = {
        name: TestOutcome(
            name=name,
            status=rec["status"],
            duration_s=rec.get("duration_s"),
            reruns=int(rec.get("reruns", 0)),
            flaky=bool(rec.get("flaky", False)),
            message=rec.get("message"),
        )
        for name, rec in (inner.get("tests") or {}).items()
    }
    if not tests and request.command is None:  # killed before result.json: read the live reports
        for report in sorted(run_dir.out.glob("report-0.jsonl")):
            for line in report.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError, KeyError):
                    rec = json.loads(line)
                    tests[rec["name"]] = TestOutcome(rec["name"], rec["status"], rec.get("duration_s"))
    exit_code = (
        inner.get("exit_code", outcome.exit_code) if inner.get("exit_code") is not None else outcome.exit_code
    )
    text = outcome.stdout + "\n" + outcome.stderr
    status: RunStatus
    error: str | None = None
    sig = _signal_of(outcome.exit_code, inner)
    failures = any(t.status in ("FAILED", "ERROR") for t in tests.values())
    if outcome.start_error:
        status, error = "infra_failure", outcome.start_error
    elif outcome.timed_out:
        status, error = "timeout", f"wall-clock limit of {request.timeout_s or limits.timeout_s:g}s reached"
    elif inner.get("apply_failed_index") is not None:
        status = "patch_apply_failed"
        error = f"patch {inner['apply_failed_index']} does not apply"
    elif outcome.oom or (
        exit_code not in (0, None) and not failures and any(m in text for m in _OOM_MARKERS)
    ):
        status, error = "oom", f"memory limit of {limits.memory_mb} MB reached"
    elif exit_code not in (0, None) and not failures and any(m in text for m in _DISK_MARKERS):
        status, error = "disk_quota", "the run's disk quota is full"
    elif sig == signal.SIGXCPU:
        status, error = "timeout", "CPU-time limit reached"
    elif sig is not None and not failures:
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        status, error = "killed", f"killed by {name}"
    elif not inner and exit_code not in (0, None):
        status, error = "infra_failure", f"the runner did not start (exit {exit_code})"
    elif exit_code not in (0, None) and not failures and any(m in text for m in _DENIED_MARKERS):
        status, error = "denied", next(m for m in _DENIED_MARKERS if m in text)
    elif exit_code not in (0, None) and not failures and _HIDDEN_MISS.search(text):
        status, error = "denied", "host folder hidden from the sandbox"
    elif request.command is None and exit_code not in (0, 5, None) and not failures:
        status, error = "invalid", f"pytest exited {exit_code} with no failed test"
    else:
        status = "completed"
    return RunResult(
        status=status,
        backend=backend,
        command=command,
        limits=limits,
        exit_code=exit_code,
        tests=tests,
        stdout_tail=tail(outcome.stdout),
        stderr_tail=tail(outcome.stderr),
        duration_s=outcome.duration_s,
        setup_s=prepared.setup_s,
        cpu_s=outcome.cpu_s,
        max_rss_mb=outcome.max_rss_mb,
        image=prepared.image,
        image_digest=prepared.image_digest,
        apply_errors=[inner["apply_error"]] if inner.get("apply_error") else [],
        applied_with=list(inner.get("applied_with") or []),
        error=error,
        label=request.label,
    )


def infra_result(
    backend: str, request: RunRequest, limits: Limits, prepared: PreparedRepo | None, error: str
) -> RunResult:
    return RunResult(
        status="infra_failure",
        backend=backend,
        command=[],
        limits=limits,
        error=error,
        image=prepared.image if prepared else None,
        image_digest=prepared.image_digest if prepared else None,
        setup_s=prepared.setup_s if prepared else None,
        label=request.label,
    )


def effective_limits(limits: Limits, request: RunRequest) -> Limits:
    return replace(limits, timeout_s=request.timeout_s) if request.timeout_s else limits
