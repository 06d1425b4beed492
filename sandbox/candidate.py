"""The life of a task's set-up and of one candidate run, shared by the copying backends.

Both the local (bubblewrap) and the docker backend prepare a task and run a candidate the same
way: a run folder, (for a candidate) limits for the request and a cheap copy of the prepared
checkout, the backend's own launch, one result built from what came back, and everything removed
afterwards. Only the launches differ, so those are what a backend supplies.
"""

from __future__ import annotations

import abc
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from vtforge.sandbox.api import (
    Limits,
    PreparedRepo,
    RepoSpec,
    RunRequest,
    RunResult,
    Sandbox,
    SandboxUnavailable,
)
from vtforge.sandbox.prepare import bound_cache, drop_prepared, prepare_cached
from vtforge.sandbox.results import Outcome, build_result, effective_limits, infra_result
from vtforge.sandbox.rundir import RunDir
from vtforge.sandbox.workspace import make_copy

Launch = Callable[[], Outcome]
SetupLaunch = Callable[[float], Outcome]  # takes the set-up's timeout in seconds


class CopyPerCandidate(Sandbox):
    """A backend whose candidates each run in a fresh copy of the prepared checkout."""

    owner: tuple[int, int] | None = None
    disk_mb: int | None = None  # per-run disk quota (tmpfs run folder and layers; as root)
    prepared_cache_gb: float | None = None  # LRU bound on the prepared checkouts

    @abc.abstractmethod
    def _image_of(self, repo: RepoSpec) -> tuple[str | None, str | None]:
        """The image (and digest) a prepared checkout is tied to; part of the cache key."""

    @abc.abstractmethod
    def _launch_setup(
        self, run: RunDir, source: Path, env_dir: Path, spec: RepoSpec, command: list[str]
    ) -> SetupLaunch:
        """A call that runs the task's set-up ``command`` in ``source`` with a writable env dir."""

    @abc.abstractmethod
    def _launch(
        self, run: RunDir, workspace: Path, prepared: PreparedRepo, request: RunRequest, limits: Limits
    ) -> tuple[list[str], Launch]:
        """Get ready to run ``request`` in ``workspace``: the command shown in the result, and a
        call that runs it. Raise OSError/SandboxUnavailable for what is the sandbox's fault."""

    def prepare(self, repo: RepoSpec) -> PreparedRepo:
        image, digest = self._image_of(repo)
        prepared = prepare_cached(
            repo,
            self.work_dir,
            backend=self.name,
            image=image,
            image_digest=digest,
            timeout_s=self.limits.timeout_s,
            run_setup=self._setup,
        )
        if self.prepared_cache_gb and prepared.key:
            for key in bound_cache(self.work_dir, self.prepared_cache_gb, keep=prepared.key):
                self._forget(key)
        return prepared

    def drop(self, prepared: PreparedRepo) -> None:
        """Free a prepared repository: its warm worker, if any, and its cached checkout."""
        if prepared.key:
            self._forget(prepared.key)
            drop_prepared(self.work_dir, prepared.key)

    def _forget(self, key: str) -> None:
        """A prepared checkout is going away: drop what the backend holds for it."""

    def _setup(self, source: Path, env_dir: Path, spec: RepoSpec, timeout_s: float) -> tuple[bool, str]:
        run = RunDir.create(self.work_dir / "setup")
        run.chown()
        try:
            script = " && ".join(f"( {c} )" for c in spec.setup_commands)
            outcome = self._launch_setup(run, source, env_dir, spec, ["sh", "-c", script])(timeout_s)
            log = outcome.stdout + outcome.stderr
            if outcome.timed_out:
                return False, f"set-up timed out after {timeout_s:g}s\n{log}"
            return outcome.exit_code == 0 and not outcome.start_error, log or (outcome.start_error or "")
        finally:
            run.remove()

    def run(self, prepared: PreparedRepo, request: RunRequest) -> RunResult:
        limits = effective_limits(self.limits, request)
        if not prepared.ok:
            return infra_result(
                self.name, request, limits, prepared, f"set-up failed: {prepared.setup_log[-500:]}"
            )
        started = time.monotonic()
        copy = None
        try:
            run = RunDir.create(self.work_dir, disk_mb=self.disk_mb)
        except (OSError, subprocess.SubprocessError) as exc:
            return infra_result(self.name, request, limits, prepared, f"run folder: {exc}")
        try:
            try:
                copy = make_copy(prepared.source_dir, run.path, owner=self.owner)
                command, launch = self._launch(run, copy.path, prepared, request, limits)
            except (OSError, subprocess.SubprocessError, SandboxUnavailable) as exc:
                return infra_result(self.name, request, limits, prepared, f"workspace: {exc}")
            outcome = launch()
            outcome.duration_s = time.monotonic() - started
            return build_result(
                backend=self.name,
                request=request,
                limits=limits,
                run_dir=run,
                outcome=outcome,
                prepared=prepared,
                command=command,
            )
        finally:
            if copy is not None:
                copy.release()
            run.remove()
