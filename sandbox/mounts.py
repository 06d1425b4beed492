"""mount(2) and umount2(2) for the sandbox host, without a mount(8) process per call.

A run as root mounts its quota tmpfs folders (and, cold, its overlay workspace) and unmounts them
afterwards. Forking ``mount``/``umount`` from a large parent costs about 2 ms each, ~8 ms of a warm
run that takes a few tenths of a second; the system calls take microseconds. The mount options
are the kernel's (``nosuid``/``nodev`` are flags here, not part of the option string).
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_BIND = 0x1000
MS_SHARED = 1 << 20
MNT_DETACH = 0x2

_libc = ctypes.CDLL(None, use_errno=True)  # the C library CPython is linked against
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def mount(source: str, target: Path | str, fstype: str, *, flags: int = 0, data: str | None = None) -> None:
    """Mount ``source`` (a device or a name like ``tmpfs``) on ``target``; OSError says why not."""
    done = _libc.mount(
        source.encode(), os.fsencode(target), fstype.encode(), flags, data.encode() if data else None
    )
    if done != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount -t {fstype} on {target}: {os.strerror(errno)}")


def unmount(target: Path | str, *, lazy: bool = False) -> bool:
    """Unmount ``target`` (``lazy``: detach it now, free it when no longer busy); whether it went."""
    return _libc.umount2(os.fsencode(target), MNT_DETACH if lazy else 0) == 0


def bind_shared(folder: Path | str) -> None:
    """Make ``folder`` a mount of its own whose later sub-mounts reach every copy of it (a sandbox
    that binds it sees mounts made afterwards on the host): ``mount --bind`` + ``--make-shared``."""
    mount(str(folder), folder, "none", flags=MS_BIND)
    mount("none", folder, "none", flags=MS_SHARED)
