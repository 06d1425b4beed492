"""The life of one candidate run, shared by the backends that copy the prepared checkout.

Both the local (bubblewrap) and the docker backend run a candidate the same way: limits for the
request, a run folder, a cheap copy of the prepared checkout, the backend's own launch, one result
built from what came back, and everything removed afterwards. Only the launch differs, so that is
the one method a backend supplies.
"""

from __future__ import annotations

import abc
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from sandbox.api import Limits, PreparedRepo, RunRequest, RunResult, Sandbox, SandboxUnavailable
from sandbox.common import Outcome, RunDir, build_result, effective_limits, infra_result
from sandbox.workspace import make_copy

Launch = Callable[[], Outcome]


class CopyPerCandidate(Sandbox):
    """A backend whose candidates each run in a fresh copy of the prepared checkout."""

    owner: tuple[int, int] | None = None

    @abc.abstractmethod
    def _launch(
        self, run: RunDir, workspace: Path, prepared: PreparedRepo, request: RunRequest, limits: Limits
    ) -> tuple[list[str], Launch]:
        """Get ready to run ``request`` in ``workspace``: the command shown in the result, and a
        call that runs it. Raise OSError/SandboxUnavailable for what is the sandbox's fault."""

    def run(self, prepared: PreparedRepo, request: RunRequest) -> RunResult:
        limits = effective_limits(self.limits, request)
        if not prepared.ok:
            return infra_result(
                self.name, request, limits, prepared, f"set-up failed: {prepared.setup_log[-500:]}"
            )
        started = time.monotonic()
        run = RunDir.create(self.work_dir)
        copy = None
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
