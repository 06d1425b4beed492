"""The one file-lock helper: readers share, a writer excludes, timeouts say so, closing releases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vtforge.locks import FileLock, LockTimeout, locked


def test_readers_share_and_a_writer_waits_for_them(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "w.lock"
    first, second = FileLock(path, shared=True), FileLock(path, shared=True)
    assert first.acquire(0) and second.acquire(0)
    writer = FileLock(path)
    assert not writer.acquire(0.1) and not writer.held
    first.release()
    assert not writer.acquire(0)
    second.release()
    assert writer.acquire(0) and writer.held
    assert not FileLock(path, shared=True).acquire(0)  # a writer excludes readers too
    writer.release()


def test_locked_raises_with_the_path_when_not_free(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with locked(path), pytest.raises(LockTimeout, match=r"x\.lock"), locked(path, timeout_s=0.1):
        pass
    with locked(path, timeout_s=0):  # released on leaving the block
        pass


def test_a_dead_holder_releases_its_lock(tmp_path: Path) -> None:
    path = tmp_path / "held.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from vtforge.locks import FileLock;"
            f"FileLock(__import__('pathlib').Path({str(path)!r})).acquire(); print('held', flush=True);"
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert not FileLock(path).acquire(0)
    finally:
        holder.kill()
        holder.wait()
    assert FileLock(path).acquire(5)
