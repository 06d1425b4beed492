"""Per-run cgroups for the local backend: a hard pids and memory ceiling, OOM detection, and a
reliable way to kill everything a run left behind.

Used when we may write to the cgroup tree (root, v1 or v2); otherwise the local backend relies on
rlimits alone (``RLIMIT_NPROC`` then counts every process of the sandbox user, not one run).
"""

from __future__ import annotations

import os
import shlex
import signal
import time
import uuid
from contextlib import suppress
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PARENT = "vtforge-sandbox"


class RunCgroup:
    """The cgroup(s) of one run; ``procs_files`` are written by the child before it execs."""

    def __init__(self, name: str, *, memory_bytes: int, pids: int) -> None:
        self.dirs: list[Path] = []
        self.memory_dir: Path | None = None
        self.cpu_dir: Path | None = None
        self.v2 = (ROOT / "cgroup.controllers").exists()
        if self.v2:
            parent = ROOT / PARENT
            parent.mkdir(exist_ok=True)
            with suppress(OSError):
                (parent / "cgroup.subtree_control").write_text("+pids +memory")
            here = parent / name
            here.mkdir()
            self.dirs = [here]
            (here / "pids.max").write_text(str(pids))
            (here / "memory.max").write_text(str(memory_bytes))
            with suppress(OSError):
                (here / "memory.swap.max").write_text("0")
            self.memory_dir = here
            self.cpu_dir = here
        else:
            pids_dir = ROOT / "pids" / PARENT / name
            mem_dir = ROOT / "memory" / PARENT / name
            pids_dir.mkdir(parents=True)
            self.dirs.append(pids_dir)
            (pids_dir / "pids.max").write_text(str(pids))
            mem_dir.mkdir(parents=True)
            self.dirs.append(mem_dir)
            (mem_dir / "memory.limit_in_bytes").write_text(str(memory_bytes))
            self.cpu_dir = None
            cpu_dir = ROOT / "cpuacct" / PARENT / name
            with suppress(OSError):
                cpu_dir.mkdir(parents=True)
                self.dirs.append(cpu_dir)
                self.cpu_dir = cpu_dir
            with suppress(OSError):
                (mem_dir / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
            self.memory_dir = mem_dir

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def exec_prefix(self) -> list[str]:
        """An argv prefix that moves the process into this cgroup, then execs the rest."""
        moves = "; ".join(f"echo $$ > {shlex.quote(p)}" for p in self.procs_files)
        return ["sh", "-c", f'{moves}; exec "$@"', "sh"]

    def add(self, pid: int) -> None:
        """Move a running process (and what it forks from now on) into this cgroup."""
        for procs in self.procs_files:
            Path(procs).write_text(f"{pid}\n")

    def finish(self) -> tuple[bool, float | None, float | None]:
        """Kill what is left inside, then (oom hit, peak MB, CPU seconds) of the run."""
        self.kill_all()
        return self.oom_hit(), self.peak_mb(), self.cpu_s()

    def pids(self) -> set[int]:
        out: set[int] = set()
        for d in self.dirs:
            with suppress(OSError):
                out.update(int(p) for p in (d / "cgroup.procs").read_text().split())
        return out

    def oom_hit(self) -> bool:
        """Whether the memory ceiling was reached (an allocation refused or a process OOM-killed)."""
        if self.memory_dir is None:
            return False
        with suppress(OSError):
            if self.v2:
                events = dict(
                    line.split() for line in (self.memory_dir / "memory.events").read_text().splitlines()
                )
                return int(events.get("oom_kill", 0)) > 0 or int(events.get("oom", 0)) > 0
            return int((self.memory_dir / "memory.failcnt").read_text()) > 0
        return False

    def peak_mb(self) -> float | None:
        if self.memory_dir is None:
            return None
        name = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        with suppress(OSError, ValueError):
            return int((self.memory_dir / name).read_text()) / 1e6
        return None

    def cpu_s(self) -> float | None:
        """CPU time used by everything that ran in the cgroup."""
        if self.cpu_dir is None:
            return None
        with suppress(OSError, ValueError):
            if self.v2:
                stat = dict(line.split() for line in (self.cpu_dir / "cpu.stat").read_text().splitlines())
                return int(stat["usage_usec"]) / 1e6
            return int((self.cpu_dir / "cpuacct.usage").read_text()) / 1e9
        return None

    def kill_all(self) -> int:
        """SIGKILL whatever is still inside; returns how many were left."""
        left = self.pids()
        for _ in range(50):
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                with suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
        return len(left)

    def remove(self) -> None:
        self.kill_all()
        for d in self.dirs:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def open_run(prefix: str, *, memory_mb: int, pids: int) -> RunCgroup | None:
    """A new run cgroup named ``<prefix>-<random>``, or None when one cannot be made here."""
    try:
        return RunCgroup(f"{prefix}-{uuid.uuid4().hex[:12]}", memory_bytes=memory_mb << 20, pids=pids)
    except OSError:
        return None


def available() -> bool:
    """Whether per-run cgroups can be made here (root and a writable pids + memory hierarchy)."""
    if os.geteuid() != 0:
        return False
    if (ROOT / "cgroup.controllers").exists():
        return os.access(ROOT, os.W_OK)
    return os.access(ROOT / "pids", os.W_OK) and os.access(ROOT / "memory", os.W_OK)
