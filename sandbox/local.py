"""The ``local`` backend: bubblewrap on the host, the embedded default.

Isolation: a read-only view of the host root with /root, /home, the host's /tmp and our own work
folders hidden; a private writable /tmp (the run folder); own network, pid, ipc and uts
namespaces; ``--die-with-parent`` and ``--new-session``. As root, the command then drops to uid
65534 (``setpriv``, no capabilities, no-new-privs). Quotas: a per-run cgroup (pids and memory,
when we may create one) plus rlimits (address space, CPU time, file size, processes, no core
files) set by ``prlimit``; a wall-clock timer kills the whole tree.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import suppress
from functools import lru_cache
from pathlib import Path

from vtforge.sandbox import cgroups
from vtforge.sandbox.api import Limits, PreparedRepo, RepoSpec, RunRequest, RunResult, SandboxUnavailable
from vtforge.sandbox.candidate import CopyPerCandidate, Launch, SetupLaunch
from vtforge.sandbox.inside import INSIDE_DIR
from vtforge.sandbox.layout import (
    IN_BASE,
    IN_ENV,
    IN_ROOT,
    IN_TOOLS,
    IN_WORKSPACE,
    base_env,
    sandbox_owner,
    setup_python,
)
from vtforge.sandbox.results import Outcome, build_result, effective_limits, read_tail
from vtforge.sandbox.rundir import RunDir, sweep_stale
from vtforge.sandbox.warm import WarmPool
from vtforge.sandbox.warm import eligible as warm_eligible

HIDDEN = ("/root", "/home", "/var/tmp", "/mnt", "/media", "/srv")


@lru_cache(maxsize=16)
def python_prefixes(python: str) -> tuple[str, ...]:
    """Folders an interpreter needs (venv, its base install), resolved on the host."""
    exe = shutil.which(python) or python
    code = "import sys, json; print(json.dumps([sys.prefix, sys.base_prefix, sys.exec_prefix]))"
    done = subprocess.run([exe, "-c", code], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise SandboxUnavailable(f"python {python!r} does not run: {done.stderr.strip()[-300:]}")
    found = {str(Path(p).resolve()) for p in json.loads(done.stdout)}
    found.add(str(Path(exe).resolve().parent.parent))
    return tuple(sorted(found))


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


class LocalSandbox(CopyPerCandidate):
    name = "local"

    def __init__(
        self,
        limits: Limits,
        *,
        work_dir: Path,
        image: str | None = None,
        warm: bool = False,
        warm_idle_s: float = 60.0,
        warm_template: bool = True,
        disk_mb: int | None = None,
        prepared_cache_gb: float | None = None,
    ) -> None:
        super().__init__(limits, work_dir=work_dir, image=image)
        if shutil.which("bwrap") is None:
            raise SandboxUnavailable("bubblewrap (bwrap) is not installed: apt-get install bubblewrap")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir = self.work_dir.resolve()
        self.use_cgroups = cgroups.available()
        self.owner = sandbox_owner()
        self.disk_mb = disk_mb
        self.prepared_cache_gb = prepared_cache_gb
        sweep_stale(self.work_dir)  # what a parent killed with SIGKILL left: mounts and run folders
        self.warm: WarmPool | None = (
            WarmPool(self, idle_s=warm_idle_s, templates=warm_template) if warm else None  # pyright: ignore[reportArgumentType]
        )

    # --- warm runs -----------------------------------------------------------------------------

    def run(self, prepared: PreparedRepo, request: RunRequest) -> RunResult:
        """A warm run (a fork of the repository's zygote) when it can be, else a cold one."""
        if self.warm is None or not prepared.ok or not warm_eligible(request):
            return super().run(prepared, request)
        started = time.monotonic()
        zygote = self.warm.zygote_for(prepared)  # first: the zygote must see the run's mounts made after
        if zygote is None:
            return super().run(prepared, request)
        limits = effective_limits(self.limits, request)
        run = self.warm.run_dir(prepared, self.disk_mb)
        try:
            layers = run.host / "layers"
            for sub in ("upper", "work"):
                (layers / sub).mkdir()
            if self.owner is not None:
                for path in (layers, layers / "upper", layers / "work"):
                    os.chown(path, *self.owner)
            command = run.write_spec(request, self._python(prepared.spec))
            run.chown()
            outcome = zygote.execute(run, request, limits)
            if outcome is not None:
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
            run.remove()
        return super().run(prepared, request)  # the zygote could not: cold, from scratch

    def _forget(self, key: str) -> None:
        if self.warm is not None:
            self.warm.drop(key)

    def close(self) -> None:
        if self.warm is not None:
            self.warm.close()

    # --- command line --------------------------------------------------------------------------

    def _hidden(self) -> list[str]:
        hidden = [h for h in HIDDEN if os.path.isdir(h)]
        for extra in (str(Path.home().resolve()), str(self.work_dir)):
            if not _under(extra, "/tmp") and not any(_under(extra, h) for h in hidden) and extra != "/":
                hidden.append(extra)
        return hidden

    def bwrap_argv(
        self,
        run: RunDir,
        workspace: Path,
        env_dir: Path,
        *,
        python: str,
        network: bool,
        env_writable: bool,
        inner: list[str],
        base: Path | None = None,
        workspace_ro: bool = False,
        extra_binds: Sequence[tuple[Path, str]] = (),
        extra_ro_binds: Sequence[tuple[Path, str]] = (),
    ) -> list[str]:
        hidden = self._hidden()
        argv = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        for path in hidden:
            argv += ["--tmpfs", path]
        argv += [
            "--bind",
            str(run.path),
            IN_ROOT,
            "--ro-bind" if workspace_ro else "--bind",
            str(workspace),
            IN_WORKSPACE,
            "--bind" if env_writable else "--ro-bind",
            str(env_dir),
            IN_ENV,
            "--ro-bind",
            str(INSIDE_DIR),
            IN_TOOLS,
        ]
        if base is not None:
            argv += ["--ro-bind", str(base), IN_BASE]
        for host_path, inside in extra_binds:
            argv += ["--bind", str(host_path), inside]
        for host_path, inside in extra_ro_binds:
            argv += ["--ro-bind", str(host_path), inside]
        chmods: set[str] = set()
        # the interpreter's folders stay visible even under a hidden folder or under /tmp, which
        # the run folder replaces (a checkout in /tmp/… runs its venv's python from there)
        covered = [*hidden, IN_ROOT]
        for prefix in self._prefixes(python, env_dir):
            root = next((h for h in covered if _under(prefix, h)), None)
            if root is None:
                continue
            argv += ["--ro-bind", prefix, prefix]
            parent = Path(prefix).parent
            while _under(str(parent), root) and str(parent) != root:
                chmods.add(str(parent))
                parent = parent.parent
        for path in sorted(chmods):
            argv += ["--chmod", "0755", path]
        argv += [
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--new-session",
            "--chdir",
            IN_WORKSPACE,
        ]
        if not network:
            argv.append("--unshare-net")
        if self.owner is not None:
            uid, gid = self.owner
            argv += [
                "setpriv",
                f"--reuid={uid}",
                f"--regid={gid}",
                "--clear-groups",
                "--no-new-privs",
                "--bounding-set=-all",
                "--inh-caps=-all",
                "--",
            ]
        return argv + inner

    @staticmethod
    def _prefixes(python: str, env_dir: Path) -> tuple[str, ...]:
        """Host folders the interpreter needs; one inside $VTFORGE_ENV is probed at its host path."""
        if _under(python, IN_ENV):
            host = env_dir / python[len(IN_ENV) :].lstrip("/")
            if not host.exists():
                return ()  # not made yet (the set-up creates it)
            return tuple(p for p in python_prefixes(str(host)) if not _under(p, str(env_dir.resolve())))
        return python_prefixes(python)

    def _prlimit(self, limits: Limits, *, nproc: bool, cpu: bool = True) -> list[str]:
        """rlimits for the whole tree. ``RLIMIT_NPROC`` counts every process of the sandbox user
        on the host, so it is used only when no per-run pids cgroup can do the job; a long-lived
        warm worker gets no CPU-time limit (each of its runs sets its own)."""
        argv = ["prlimit", f"--as={limits.memory_mb << 20}", f"--fsize={limits.file_size_mb << 20}"]
        if cpu:
            argv.append(f"--cpu={math.ceil(limits.timeout_s) + 1}")
        if nproc:
            argv.append(f"--nproc={limits.pids}")
        return [*argv, "--core=0", "--"]

    # --- execution -----------------------------------------------------------------------------

    def _execute(
        self, argv: list[str], env: dict[str, str], limits: Limits, run: RunDir, timeout_s: float
    ) -> Outcome:
        group = None
        if self.use_cgroups:
            group = cgroups.open_run("run", memory_mb=limits.memory_mb, pids=limits.pids)
        prefix = group.exec_prefix() if group is not None else []
        full = prefix + self._prlimit(limits, nproc=group is None) + argv
        stdout_path, stderr_path = run.host / "stdout.txt", run.host / "stderr.txt"
        started = time.monotonic()
        timed_out = threading.Event()
        try:
            with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
                proc = subprocess.Popen(
                    full,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    env=env,
                    start_new_session=True,
                    close_fds=True,
                )
        except OSError as exc:
            if group:
                group.remove()
            return Outcome(exit_code=None, start_error=f"cannot start bwrap: {exc}")

        def on_timeout() -> None:
            timed_out.set()
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            if group:
                group.kill_all()

        timer = threading.Timer(timeout_s, on_timeout)
        timer.daemon = True
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        duration = time.monotonic() - started
        oom = False
        peak = usage.ru_maxrss / 1024.0
        cpu = usage.ru_utime + usage.ru_stime
        if group:
            oom, group_peak, cpu = group.finish()  # also kills what escaped the pid namespace's end
            peak = group_peak or peak
            group.remove()
        return Outcome(
            exit_code=proc.returncode,
            timed_out=timed_out.is_set(),
            oom=oom,
            stdout=read_tail(stdout_path),
            stderr=read_tail(stderr_path),
            duration_s=duration,
            cpu_s=cpu,
            max_rss_mb=peak,
        )

    def _python(self, spec: RepoSpec) -> str:
        return spec.python or sys.executable

    def _image_of(self, repo: RepoSpec) -> tuple[str | None, str | None]:
        return f"host:{self._python(repo)}", None

    def _launch_setup(
        self, run: RunDir, source: Path, env_dir: Path, spec: RepoSpec, command: list[str]
    ) -> SetupLaunch:
        python = setup_python(spec, sys.executable)
        argv = self.bwrap_argv(
            run, source, env_dir, python=python, network=spec.setup_network, env_writable=True, inner=command
        )
        return lambda timeout_s: self._execute(
            argv, base_env({"PYTHON": python}), self.limits, run, timeout_s
        )

    def _launch(
        self, run: RunDir, workspace: Path, prepared: PreparedRepo, request: RunRequest, limits: Limits
    ) -> tuple[list[str], Launch]:
        python = self._python(prepared.spec)
        inner = run.write_spec(request, python)
        run.chown()
        argv = self.bwrap_argv(
            run,
            workspace,
            prepared.env_dir,
            python=python,
            network=limits.network,
            env_writable=False,
            inner=inner,
            base=prepared.source_dir,
        )
        return inner, lambda: self._execute(argv, base_env(request.env), limits, run, limits.timeout_s)
