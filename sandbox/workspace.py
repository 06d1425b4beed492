"""Per-candidate copies of a prepared checkout, made cheaply.

With root and kernel overlayfs (the usual case for a sandbox host), a candidate's workspace is an
overlay: the prepared checkout is the read-only lower layer and only the files a candidate writes
are stored, so 40 candidates cost 40 small upper layers, not 40 copies. Otherwise ``cp -a
--reflink=auto`` (a reflink on btrfs/xfs, a plain copy elsewhere).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from vtforge.sandbox import mounts

_overlay_ok: bool | None = None
_probe_lock = threading.Lock()


@dataclass
class Copy:
    path: Path
    method: str  # "overlay" | "copy"
    _mounted: bool = False

    def release(self) -> None:
        if self._mounted:
            if not mounts.unmount(self.path):
                mounts.unmount(self.path, lazy=True)
            self._mounted = False


def _mount_overlay(lower: Path, layers: Path, target: Path) -> bool:
    upper, work = layers / "upper", layers / "work"
    upper.mkdir(parents=True, exist_ok=True)
    work.mkdir(exist_ok=True)
    stat = lower.stat()
    os.chown(upper, stat.st_uid, stat.st_gid)
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    try:
        mounts.mount("overlay", target, "overlay", data=options)
    except OSError:
        return False
    return True


def overlay_supported(scratch: Path) -> bool:
    """Probe once per process: root, and an overlay mount that works under ``scratch``."""
    global _overlay_ok
    with _probe_lock:
        if _overlay_ok is None:
            _overlay_ok = False
            if os.geteuid() == 0:
                probe = scratch / f".overlay-probe-{os.getpid()}"
                try:
                    (probe / "lower").mkdir(parents=True, exist_ok=True)
                    (probe / "merged").mkdir(exist_ok=True)
                    if _mount_overlay(probe / "lower", probe, probe / "merged"):
                        mounts.unmount(probe / "merged")
                        _overlay_ok = True
                finally:
                    shutil.rmtree(probe, ignore_errors=True)
        return _overlay_ok


def layers_dir(run_dir: Path) -> Path:
    return run_dir.with_name(run_dir.name + ".host") / "layers"


def make_copy(source: Path, run_dir: Path, *, owner: tuple[int, int] | None = None) -> Copy:
    """``run_dir/workspace``: an overlay on ``source``, else a (reflinked) copy owned by ``owner``."""
    target = run_dir / "workspace"
    target.mkdir(exist_ok=True)
    # the layers live beside the run folder, never inside what the sandbox can see
    if overlay_supported(run_dir.parent) and _mount_overlay(source, layers_dir(run_dir), target):
        return Copy(target, "overlay", _mounted=True)
    target.rmdir()
    subprocess.run(["cp", "-a", "--reflink=auto", str(source), str(target)], check=True)
    if owner is not None and os.geteuid() == 0:
        subprocess.run(["chown", "-R", f"{owner[0]}:{owner[1]}", str(target)], check=True)
    return Copy(target, "copy")
