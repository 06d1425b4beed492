"""The layout inside every sandbox, and who and what runs there.

Inside every sandbox the same paths are used, so commands and set-up scripts are portable::

    /tmp            the run's own folder (writable, on disk, removed afterwards)
    /tmp/workspace  the candidate's copy of the repository (cwd)
    /tmp/env        the task's environment ($VTFORGE_ENV), read-only during runs
    /tmp/.vtforge   our runner and pytest plugin, read-only
    /tmp/out        patches, the run spec, result.json and per-test reports
    /tmp/base       the prepared checkout itself, read-only (to reset files a patch touched)

Untrusted code runs as ``nobody`` when we are root, with a clean environment (``base_env``).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from vtforge.sandbox.api import RepoSpec

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
