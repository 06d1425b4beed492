"""What every backend shares: the layout inside the sandbox, task preparation (export + set-up,
cached), per-run folders, and turning what a run left behind into a ``RunResult``.

Inside every sandbox the same paths are used, so commands and set-up scripts are portable::

    /tmp            the run's own folder (writable, on disk, removed afterwards)
    /tmp/workspace  the candidate's copy of the repository (cwd)
    /tmp/env        the task's environment ($VTFORGE_ENV), read-only during runs
    /tmp/.vtforge   our runner and pytest plugin, read-only
    /tmp/out        patches, the run spec, result.json and per-test reports
    /tmp/base       the prepared checkout itself, read-only (to reset files a patch touched)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vtforge.locks import locked
from vtforge.sandbox.api import Limits, PreparedRepo, RepoSpec, RunRequest, RunResult, RunStatus, TestOutcome
from vtforge.schemas import stable_id

SANDBOX_UID = 65534  # nobody: what untrusted code runs as when we are root
IN_ROOT = "/tmp"
IN_WORKSPACE = "/tmp/workspace"
IN_ENV = "/tmp/env"
IN_TOOLS = "/tmp/.vtforge"
IN_OUT = "/tmp/out"
IN_BASE = "/tmp/base"  # the prepared checkout, read-only: the source of reset_before
IN_HOME = "/tmp/home"
IN_TMP = "/tmp/tmp"
RUNNER = f"{IN_TOOLS}/runner.py"
APPLY_FAILED = 97
TAIL_CHARS = 8000

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


class SetupFailed(RuntimeError):
    pass


def sandbox_owner() -> tuple[int, int] | None:
    """The uid/gid untrusted code runs as, when we can switch to it (we are root)."""
    return (SANDBOX_UID, SANDBOX_UID) if os.geteuid() == 0 else None


def chown_tree(path: Path, owner: tuple[int, int] | None) -> None:
    if owner is not None:
        subprocess.run(["chown", "-R", f"{owner[0]}:{owner[1]}", str(path)], check=True)


def base_env(extra: dict[str, str] | None = None, path_prefix: str = "") -> dict[str, str]:
    """A clean environment for sandboxed processes (nothing of the host's leaks in)."""
    env = {
        "HOME": IN_HOME,
        "TMPDIR": IN_TMP,
        "PATH": f"{path_prefix}{IN_ENV}/bin:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "VTFORGE_ENV": IN_ENV,
        "GIT_CEILING_DIRECTORIES": IN_ROOT,
        "PIP_NO_INPUT": "1",
    }
    env.update(extra or {})
    return env


def setup_python(spec: RepoSpec, default: str) -> str:
    """``$PYTHON`` during set-up: the task's interpreter, unless the set-up is what creates it."""
    if spec.python and not spec.python.startswith(IN_ENV + "/"):
        return spec.python
    return default


def resolve_commit(repo_dir: Path, rev: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo_dir), "rev-parse", "--verify", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SetupFailed(f"{repo_dir}: cannot resolve commit {rev!r}: {done.stderr.strip()}")
    return done.stdout.strip()


def export_commit(repo_dir: Path, commit: str, target: Path) -> None:
    """The tree of ``commit`` as plain files (no .git): what every candidate starts from."""
    target.mkdir(parents=True)
    archive = subprocess.Popen(
        ["git", "-C", str(repo_dir), "archive", "--format=tar", commit],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    untar = subprocess.run(["tar", "-x", "-C", str(target)], stdin=archive.stdout, capture_output=True)
    assert archive.stdout is not None
    archive.stdout.close()
    err = archive.stderr.read().decode() if archive.stderr else ""
    if archive.wait() != 0 or untar.returncode != 0:
        raise SetupFailed(f"git archive {commit} failed: {err.strip() or untar.stderr.decode().strip()}")


SetupRunner = Callable[[Path, Path, RepoSpec, float], tuple[bool, str]]


def prepare_cached(
    spec: RepoSpec,
    work_dir: Path,
    *,
    backend: str,
    image: str | None,
    image_digest: str | None,
    timeout_s: float,
    run_setup: SetupRunner,
) -> PreparedRepo:
    """Export ``spec`` at its commit and run its set-up once; later calls reuse the cache."""
    try:
        commit = resolve_commit(spec.repo_dir, spec.base_commit)
    except SetupFailed as exc:
        return _failed_prepare(spec, work_dir, backend, image, image_digest, str(exc))
    key = stable_id(
        "prepared",
        spec.repo_dir,
        commit,
        "\n".join(spec.setup_commands),
        spec.python,
        backend,
        image_digest or image,
    )
    cache = work_dir / "repos" / key
    meta_path = cache / "meta.json"
    owner = sandbox_owner()

    def prepared_as(setup_s: float, setup_log: str) -> PreparedRepo:
        return PreparedRepo(
            spec=spec,
            key=key,
            commit=commit,
            source_dir=cache / "source",
            cache_dir=cache,
            env_dir=cache / "env",
            backend=backend,
            image=image,
            image_digest=image_digest,
            setup_s=setup_s,
            setup_log=setup_log,
        )

    with locked(work_dir / "repos" / f"{key}.lock"):
        if meta_path.exists():
            meta = json.loads(meta_path.read_text())
            return prepared_as(meta["setup_s"], meta.get("setup_log", ""))
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        os.chmod(cache, 0o755)
        started = time.monotonic()
        try:
            export_commit(spec.repo_dir, commit, cache / "source")
            (cache / "env").mkdir()
            chown_tree(cache / "source", owner)
            chown_tree(cache / "env", owner)
            ok, log = (True, "")
            if spec.setup_commands:
                ok, log = run_setup(cache / "source", cache / "env", spec, timeout_s)
        except (SetupFailed, OSError, subprocess.SubprocessError) as exc:
            ok, log = False, str(exc)
        setup_s = time.monotonic() - started
        prepared = prepared_as(setup_s, log[-TAIL_CHARS:])
        if not ok:
            shutil.rmtree(cache, ignore_errors=True)
            return replace(prepared, setup_status="infra_failure")
        meta_path.write_text(
            json.dumps({"commit": commit, "setup_s": setup_s, "setup_log": log[-TAIL_CHARS:]})
        )
        return prepared


def _failed_prepare(
    spec: RepoSpec, work_dir: Path, backend: str, image: str | None, digest: str | None, log: str
) -> PreparedRepo:
    return PreparedRepo(
        spec=spec,
        key="",
        commit="",
        source_dir=work_dir / "missing",
        cache_dir=work_dir,
        env_dir=work_dir / "missing",
        backend=backend,
        image=image,
        image_digest=digest,
        setup_status="infra_failure",
        setup_log=log,
    )


@dataclass
class RunDir:
    """One run's folder on the host, mounted at /tmp inside."""

    path: Path

    @classmethod
    def create(cls, work_dir: Path) -> RunDir:
        path = work_dir / "runs" / uuid.uuid4().hex[:16]
        for sub in ("out", "home", "tmp", "env", ".vtforge", "workspace", "base"):
            (path / sub).mkdir(parents=True)
        path.with_name(path.name + ".host").mkdir()
        return cls(path)

    @property
    def host(self) -> Path:
        """Beside the run folder, invisible inside: logs and overlay layers."""
        return self.path.with_name(self.path.name + ".host")

    @property
    def out(self) -> Path:
        return self.path / "out"

    def write_spec(self, request: RunRequest, python_inside: str) -> list[str]:
        """Patches and the runner's spec; returns the argv that starts the runner inside."""
        patch_files = []
        for index, patch in enumerate(request.patches):
            name = f"patch-{index:03d}.diff"
            text = patch if patch.endswith("\n") else patch + "\n"
            (self.out / name).write_text(text, encoding="utf-8")
            patch_files.append(f"{IN_OUT}/{name}")
        spec: dict[str, Any] = {
            "patches": patch_files,
            "mode": "command" if request.command is not None else "pytest",
            "command": list(request.command or []),
            "tests": list(request.tests) if request.tests is not None else None,
            "pytest_args": list(request.pytest_args),
            "flaky_reruns": request.flaky_reruns,
            "reset_before": {str(i): list(paths) for i, paths in request.reset_before.items()},
            "base_dir": IN_BASE,
            "out_dir": IN_OUT,
        }
        (self.out / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
        return [python_inside, RUNNER, f"{IN_OUT}/spec.json"]

    def chown(self) -> None:
        owner = sandbox_owner()
        if owner is not None:
            for sub in ("", "out", "home", "tmp"):
                os.chown(self.path / sub, *owner)
            for child in self.out.iterdir():
                os.chown(child, *owner)

    def remove(self) -> None:
        workspace = self.path / "workspace"
        if os.path.ismount(workspace):  # never delete through a live overlay or bind
            subprocess.run(["umount", "-l", str(workspace)], capture_output=True)
            if os.path.ismount(workspace):
                return
        shutil.rmtree(self.path, ignore_errors=True)
        shutil.rmtree(self.host, ignore_errors=True)


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
