"""The host's mount helpers: system calls, as root (how the sandbox runs its quota tmpfs folders)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import require_service
from vtforge.sandbox import mounts
from vtforge.sandbox.rundir import mount_quota, mounts_under, remove_tree


@pytest.fixture
def as_root() -> None:
    require_service(os.geteuid() == 0, "root (mounting)")


def test_a_quota_tmpfs_is_mounted_with_its_size_and_flags_and_removed(tmp_path: Path, as_root: None) -> None:
    target = tmp_path / "run"
    target.mkdir()
    assert mount_quota(target, 3)
    line = next(
        line
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4] == str(target)
    )
    assert "nosuid" in line and "nodev" in line and "tmpfs" in line
    assert os.statvfs(target).f_blocks * os.statvfs(target).f_frsize == 3 * 1024 * 1024
    (target / "file").write_text("x")
    assert remove_tree(target)
    assert not mounts_under(target) and not target.exists()


def test_a_failed_mount_names_the_target_and_an_unmount_of_nothing_is_false(
    tmp_path: Path, as_root: None
) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(OSError, match=str(missing)):
        mounts.mount("tmpfs", missing, "tmpfs")
    assert not mounts.unmount(tmp_path)  # not a mount point


def test_a_shared_bind_is_a_mount_of_its_own_that_propagates(tmp_path: Path, as_root: None) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    mounts.bind_shared(folder)
    try:
        line = next(
            ln for ln in Path("/proc/self/mountinfo").read_text().splitlines() if ln.split()[4] == str(folder)
        )
        assert "shared:" in line
    finally:
        assert remove_tree(folder)
