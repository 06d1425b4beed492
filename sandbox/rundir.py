"""One run's folder on the host (mounted at /tmp inside): created, filled with the run's spec,
handed to the sandbox user, removed afterwards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vtforge.sandbox.api import RunRequest
from vtforge.sandbox.layout import IN_BASE, IN_OUT, RUNNER, sandbox_owner


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
