"""Advisory file locks (``flock``): the one helper behind every lock vtforge takes on disk.

Used for the warehouse's reader/writer lock (shared or exclusive, with a timeout), the sandbox's
prepare cache, the demo bank build, the vtcode tailer (held for its lifetime) and the vtcode spool's
drainer. ``flock`` locks belong to the open file, so closing it releases the lock, also when the
holder dies. The ``filelock`` package has no shared mode, which the warehouse needs; this is ~50 lines.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

POLL_S = 0.05


class LockTimeout(TimeoutError):
    """The lock was not free within the timeout."""


class FileLock:
    """One ``flock`` on ``path`` (created if missing); ``shared`` for a reader's lock."""

    def __init__(self, path: Path, *, shared: bool = False) -> None:
        self.path = Path(path)
        self.shared = shared
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, timeout_s: float | None = None) -> bool:
        """Take the lock: wait forever (``None``), try once (``0``) or poll up to ``timeout_s``.
        False when it was not free in time."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        mode = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        try:
            if timeout_s is None:
                fcntl.flock(fd, mode)
            else:
                deadline = time.monotonic() + timeout_s
                while True:
                    try:
                        fcntl.flock(fd, mode | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            os.close(fd)
                            return False
                        time.sleep(POLL_S)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None


@contextlib.contextmanager
def locked(path: Path, *, shared: bool = False, timeout_s: float | None = None) -> Iterator[FileLock]:
    """Hold the lock on ``path`` for a ``with`` block; ``LockTimeout`` when not free in time."""
    lock = FileLock(path, shared=shared)
    if not lock.acquire(timeout_s):
        kind = "shared" if shared else "exclusive"
        raise LockTimeout(f"{path}: the {kind} lock was not free within {timeout_s:.0f}s")
    try:
        yield lock
    finally:
        lock.release()
