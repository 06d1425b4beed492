"""One run's folder on the host (mounted at /tmp inside): created, filled with the run's spec,
handed to the sandbox user, removed afterwards.

As root, ``disk_mb`` puts the run folder and the workspace's overlay layers each on a tmpfs of that
size, so a run cannot fill the host's disk with many small files (``RLIMIT_FSIZE`` only caps one
file). A folder's name starts with its creator's pid and start time: ``sweep_stale`` removes the
folders (and unmounts the mounts) of processes that are gone, e.g. a parent killed with SIGKILL."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vtforge.sandbox import mounts
from vtforge.sandbox.api import RunRequest
from vtforge.sandbox.layout import IN_BASE, IN_OUT, RUNNER, sandbox_owner


@dataclass
class RunDir:
    """One run's folder on the host, mounted at /tmp inside."""

    path: Path

    @classmethod
    def create(cls, work_dir: Path, *, disk_mb: int | None = None) -> RunDir:
        path = work_dir / "runs" / f"{owner_tag()}-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True)
        host = path.with_name(path.name + ".host")
        (host / "layers").mkdir(parents=True)
        for target in (path, host / "layers"):
            mount_quota(target, disk_mb)
        for sub in ("out", "home", "tmp", "env", ".vtforge", "workspace", "base"):
            (path / sub).mkdir(parents=True)
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
        if not remove_tree(self.path):
            return  # never delete through a live overlay or bind
        remove_tree(self.host)


def mount_quota(target: Path, disk_mb: int | None) -> bool:
    """Put ``target`` (an empty folder) on a tmpfs of ``disk_mb`` MB; only as root. Whether mounted."""
    if not disk_mb or os.geteuid() != 0:
        return False
    mounts.mount(
        "tmpfs",
        target,
        "tmpfs",
        flags=mounts.MS_NOSUID | mounts.MS_NODEV,
        data=f"size={int(disk_mb)}m,mode=0755",
    )
    return True


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: start time since boot, in ticks


def owner_tag() -> str:
    return f"{os.getpid()}.{_start_time(os.getpid())}"


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path``, deepest first (from /proc/self/mountinfo)."""
    root = str(path.resolve()) if path.exists() else str(path)
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point == root or point.startswith(root.rstrip("/") + "/"):
                found.append(point)
    return sorted(found, key=lambda p: p.count("/"), reverse=True)


def remove_tree(path: Path) -> bool:
    """Unmount whatever is mounted under ``path``, then delete it; False when a mount stays."""
    for point in mounts_under(path):
        if not mounts.unmount(point):
            mounts.unmount(point, lazy=True)
    if mounts_under(path):
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True


def owner_alive(tag: str) -> bool:
    """Whether the process ``<pid>.<start time>`` still runs (the same pid reused does not count)."""
    pid, _, start = tag.partition(".")
    return pid.isdigit() and _start_time(int(pid)) == start


def sweep_stale(work_dir: Path) -> list[Path]:
    """Remove the run folders (and their mounts) under ``work_dir`` left by processes that died:
    ``runs/<tag>-*``, ``<any>/runs/<tag>-*`` and the warm workers' ``warm/<tag>``."""
    removed: list[Path] = []
    if not work_dir.is_dir():
        return removed
    entries = [
        e for runs in [work_dir / "runs", *work_dir.glob("*/runs")] if runs.is_dir() for e in runs.iterdir()
    ]
    if (work_dir / "warm").is_dir():
        entries += list((work_dir / "warm").iterdir())
    for entry in entries:
        tag = entry.name.split("-", 1)[0]
        if "." in tag and not owner_alive(tag) and remove_tree(entry):
            removed.append(entry)
    return removed
