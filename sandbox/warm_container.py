"""Warm workers for the container backend: long-lived containers per prepared repository, one
``exec`` per candidate run.

A cold container run creates, starts, waits for and removes a container per candidate. A warm run
takes an idle container of the prepared repository (task + base commit), started once with the same
image, quotas and mounts as a cold run's container (network none, memory = memory+swap, cpus, pids,
read-only root, no capabilities, no-new-privileges, user 65534), and ``exec``s the runner in it.

- **One run at a time per container.** A container serves one exec at a time, so its memory and
  pids limits are exactly one run's, as in the cold path; concurrent runs of one repository get a
  container each (up to the callers' concurrency), kept for the next runs.
- **Fresh workspace per run.** The container's ``/tmp`` is a host folder that is emptied and laid
  out anew before every run (``out`` with the spec and patches, ``home``, ``tmp``, an empty
  ``workspace``); the exec first copies the prepared checkout from the read-only ``/tmp/base`` into
  ``/tmp/workspace`` (``cp -a``), then starts the runner there with the run's own environment. The
  paths are the cold run's, so outcomes are the same; runs never see each other's files.
- **Nothing survives a run.** After the runner the exec kills every process of the sandbox user
  in the container (``kill -KILL -1``; the container's first process is immune), so a background
  process cannot reach into the next run. A run that timed out (the per-exec wall clock: the
  container is killed) or ended by a signal (an OOM kill, a pids-limit casualty) throws its
  container away; the next run starts a fresh one.
- **Lifetime.** Containers idle ``idle_s`` are removed, and all of them on ``close``. Each is
  labelled with its owner (pid and start time) and host: ``sweep_containers`` (called when a
  docker backend starts) removes those of owners that are gone. Without anyone sweeping, a
  container whose owner died stops by itself: its first process is a loop that exits when the
  owner's heartbeat file (touched every second by the pool, mounted read-only) is older than
  ``ORPHAN_AFTER_S``; containers are created with auto-remove.

``WarmContainers.run`` returns ``None`` when no warm container could be had (create/start/exec
failed): the caller then runs the candidate cold, as the local backend's warm workers do.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vtforge.sandbox.api import Limits, PreparedRepo, RunRequest, RunResult
from vtforge.sandbox.layout import IN_BASE, IN_ROOT, IN_WORKSPACE, base_env
from vtforge.sandbox.results import Outcome, build_result, effective_limits, tail
from vtforge.sandbox.rundir import RunDir, mount_quota, owner_alive, owner_tag, remove_tree

if TYPE_CHECKING:
    from vtforge.sandbox.docker_backend import DockerSandbox

OWNER_LABEL = "vtforge.sandbox.owner"  # "<pid>.<start time>" of the process that made the container
HOST_LABEL = "vtforge.sandbox.host"
WARM_LABEL = "vtforge.sandbox.warm"
IN_OWNER = f"{IN_ROOT}/.vtforge-owner"  # the owner's heartbeat folder, read-only
ORPHAN_AFTER_S = 60  # a warm container whose owner's heartbeat is older than this stops itself
COPY_FAILED = "@@VTFORGE-WORKSPACE-COPY-FAILED@@"
MOUNT_POINTS = ("base", "env", ".vtforge", ".vtforge-owner")  # mounted over inside: kept


def owner_labels() -> dict[str, str]:
    return {OWNER_LABEL: owner_tag(), HOST_LABEL: socket.gethostname()}


def sweep_containers(client: Any) -> list[str]:
    """Remove this host's labelled containers whose owner process is gone; their ids."""
    import docker.errors

    removed = []
    host = socket.gethostname()
    found: list[dict[str, Any]] = []
    with contextlib.suppress(docker.errors.DockerException):  # one listing: no inspect that can race
        found = client.api.containers(all=True, filters={"label": OWNER_LABEL})
    for container in found:
        labels = container.get("Labels") or {}
        if labels.get(HOST_LABEL) != host or owner_alive(labels.get(OWNER_LABEL, "")):
            continue
        with contextlib.suppress(docker.errors.DockerException):
            client.api.remove_container(container["Id"], force=True)
            removed.append(container["Id"])
    return removed


def keeper_command(orphan_after_s: int) -> list[str]:
    """The container's first process: wait while the owner's heartbeat is fresh."""
    beat = f"{IN_OWNER}/beat"
    loop = (
        f"while [ $(( $(date +%s) - $(stat -c %Y {beat} 2>/dev/null || echo 0) )) -lt {orphan_after_s} ]; "
        "do sleep 2; done"
    )
    return ["sh", "-c", loop]


def exec_script(command: list[str]) -> str:
    """Copy the prepared checkout into the run's workspace, run, then kill what the run left."""
    return (
        f"cp -a {IN_BASE}/. {IN_WORKSPACE}/ && cd {IN_WORKSPACE} "
        f"|| {{ echo {COPY_FAILED} >&2; exit 96; }}; "
        f"{shlex.join(command)}; code=$?; "
        "kill -KILL -1 2>/dev/null; kill -KILL -1 2>/dev/null; exit $code"
    )


@dataclass
class Worker:
    """One warm container and its host folder (its ``/tmp``)."""

    key: str
    quotas: Limits  # the container's limits (timeout aside: that one is per exec)
    container_id: str
    folder: Path
    last_used: float = field(default_factory=time.monotonic)

    @property
    def run_dir(self) -> RunDir:
        return RunDir(self.folder / "run")

    def reset(self, owner: tuple[int, int] | None) -> RunDir:
        """Empty the container's /tmp (but the mount points) and lay out a fresh run folder."""
        run = self.run_dir
        for entry in run.path.iterdir():
            if entry.name in MOUNT_POINTS and entry.is_dir() and not entry.is_symlink():
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        for sub in ("out", "home", "tmp", "workspace"):
            (run.path / sub).mkdir()
            if owner is not None:
                os.chown(run.path / sub, *owner)
        return run


class WarmContainers:
    """The warm containers of one ``DockerSandbox``, by prepared repository."""

    def __init__(self, box: DockerSandbox, *, idle_s: float, orphan_after_s: int | None = None) -> None:
        self.box = box
        self.idle_s = idle_s
        self.orphan_after_s = orphan_after_s or ORPHAN_AFTER_S
        self.root = box.work_dir / "warm" / owner_tag()  # swept (rundir.sweep_stale) when we are gone
        self.alive = self.root / "docker-alive"
        self.alive.mkdir(parents=True, exist_ok=True)
        self._beat()
        self._idle: dict[tuple[str, Limits], list[Worker]] = {}
        self._busy: dict[str, Worker] = {}  # container id -> worker
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="vtforge-warm-containers", daemon=True)
        self._reaper.start()

    # --- containers ----------------------------------------------------------------------------

    def _beat(self) -> None:
        (self.alive / "beat").touch()

    def _start(self, prepared: PreparedRepo, quotas: Limits) -> Worker | None:
        import docker.errors

        box = self.box
        folder = self.root / f"docker-{prepared.key[:16]}-{uuid.uuid4().hex[:8]}"
        run = RunDir(folder / "run")
        run.path.mkdir(parents=True)
        mount_quota(run.path, box.disk_mb)  # each exec starts from an emptied /tmp: the quota is per run
        for sub in ("out", "home", "tmp", "workspace", *MOUNT_POINTS):
            (run.path / sub).mkdir(parents=True)
        run.chown()
        args = box._container_args(
            run,
            None,
            prepared.env_dir,
            limits=quotas,
            network=quotas.network,
            env_writable=False,
            env=base_env(),
            base=prepared.source_dir,
            extra_volumes={str(self.alive): {"bind": IN_OWNER, "mode": "ro"}},
            labels={WARM_LABEL: prepared.key},
        )
        try:
            container = box._client().containers.create(
                box.image, command=keeper_command(self.orphan_after_s), auto_remove=True, **args
            )
        except docker.errors.DockerException:
            remove_tree(folder)  # unmounting its quota first
            return None
        worker = Worker(prepared.key, quotas, container.id, folder)
        try:
            container.start()
        except docker.errors.DockerException:
            self._remove(worker)
            return None
        return worker

    def _remove(self, worker: Worker) -> None:
        import docker.errors

        with contextlib.suppress(docker.errors.DockerException):
            self.box._client().api.remove_container(worker.container_id, force=True)
        remove_tree(worker.folder)

    def _acquire(self, prepared: PreparedRepo, quotas: Limits) -> Worker | None:
        with self._lock:
            if self._closed.is_set():
                return None
            idle = self._idle.get((prepared.key, quotas)) or []
            worker = idle.pop() if idle else None
            if worker is not None:
                self._busy[worker.container_id] = worker
                return worker
        worker = self._start(prepared, quotas)
        if worker is not None:
            with self._lock:
                self._busy[worker.container_id] = worker
        return worker

    def _release(self, worker: Worker, *, keep: bool) -> None:
        with self._lock:
            self._busy.pop(worker.container_id, None)
            if keep and not self._closed.is_set():
                worker.last_used = time.monotonic()
                self._idle.setdefault((worker.key, worker.quotas), []).append(worker)
                return
        self._remove(worker)

    def containers(self) -> dict[str, list[str]]:
        """Container ids by prepared key, idle and busy."""
        with self._lock:
            found: dict[str, list[str]] = {}
            for worker in [*(w for ws in self._idle.values() for w in ws), *self._busy.values()]:
                found.setdefault(worker.key, []).append(worker.container_id)
        return {k: v for k, v in found.items() if v}

    # --- one run -------------------------------------------------------------------------------

    def _exec(
        self, worker: Worker, command: list[str], env: dict[str, str], limits: Limits
    ) -> Outcome | None:
        """Run ``command`` in the worker's container; None when the exec could not start."""
        import docker
        import docker.errors

        # reads wait for output up to past the run's wall clock, which is ours to enforce
        api = docker.APIClient(base_url=self.box.base_url, timeout=int(limits.timeout_s) + 120)
        try:
            user = f"{self.box.owner[0]}:{self.box.owner[1]}" if self.box.owner is not None else None
            try:
                exec_id = api.exec_create(
                    worker.container_id,
                    ["sh", "-c", exec_script(self.box._rlimits(limits) + command)],
                    user=user or "",
                    environment=env,
                    workdir=IN_ROOT,
                )["Id"]
            except docker.errors.DockerException:
                return None
            answer: dict[str, Any] = {}

            def pump() -> None:
                try:
                    answer["output"] = api.exec_start(exec_id, demux=True)
                except Exception as exc:  # the container was killed under it, the engine went away
                    answer["error"] = exc

            started = time.monotonic()
            thread = threading.Thread(target=pump, name="vtforge-warm-exec", daemon=True)
            thread.start()
            thread.join(limits.timeout_s)
            timed_out = thread.is_alive()
            if timed_out:
                with contextlib.suppress(docker.errors.DockerException):
                    api.kill(worker.container_id)
                thread.join(60)
            duration = time.monotonic() - started
            if "error" in answer and not timed_out:
                return None
            stdout, stderr = answer.get("output") or (None, None)
            out = (stdout or b"").decode("utf-8", "replace")
            err = (stderr or b"").decode("utf-8", "replace")
            exit_code: int | None = None
            with contextlib.suppress(docker.errors.DockerException):
                exit_code = api.exec_inspect(exec_id).get("ExitCode")
            if timed_out:
                exit_code = 128 + 9
            if exit_code is None:
                return None
            if exit_code == 96 and COPY_FAILED in err:
                return Outcome(exit_code=None, start_error=f"workspace copy failed: {tail(err, 1500)}")
            return Outcome(
                exit_code=int(exit_code),
                timed_out=timed_out,
                # SIGKILL from outside a run with a memory limit is the OOM killer (as cold runs count it)
                oom=not timed_out and exit_code == 128 + 9,
                stdout=tail(out),
                stderr=tail(err),
                duration_s=duration,
            )
        finally:
            api.close()

    def run(self, prepared: PreparedRepo, request: RunRequest) -> RunResult | None:
        """The candidate in a warm container of ``prepared``; None: run it cold instead."""
        started = time.monotonic()
        limits = effective_limits(self.box.limits, request)
        worker = self._acquire(prepared, replace(self.box.limits, timeout_s=0.0))
        if worker is None:
            return None
        keep = False
        try:
            run = worker.reset(self.box.owner)
            command = run.write_spec(request, self.box._python(prepared.spec))
            run.chown()
            outcome = self._exec(worker, command, base_env(request.env), limits)
            if outcome is None:
                return None
            keep = not outcome.timed_out and outcome.start_error is None and (outcome.exit_code or 0) < 128
            outcome.duration_s = time.monotonic() - started
            return build_result(
                backend=self.box.name,
                request=request,
                limits=limits,
                run_dir=run,
                outcome=outcome,
                prepared=prepared,
                command=command,
            )
        except OSError:
            return None
        finally:
            self._release(worker, keep=keep)

    # --- lifetime ------------------------------------------------------------------------------

    def drop(self, key: str) -> None:
        """Remove the idle containers of a prepared repository (busy ones go when their run ends)."""
        with self._lock:
            workers = [w for k in list(self._idle) if k[0] == key for w in self._idle.pop(k)]
        for worker in workers:
            self._remove(worker)

    def _reap(self) -> None:
        while not self._closed.wait(min(1.0, max(0.05, self.idle_s / 4))):
            with contextlib.suppress(OSError):
                self._beat()
            now = time.monotonic()
            stale: list[Worker] = []
            with self._lock:
                for key, workers in list(self._idle.items()):
                    keep = [w for w in workers if now - w.last_used < self.idle_s]
                    stale += [w for w in workers if now - w.last_used >= self.idle_s]
                    self._idle[key] = keep
            for worker in stale:
                self._remove(worker)

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            workers = [w for ws in self._idle.values() for w in ws]
            self._idle.clear()
        for worker in workers:
            self._remove(worker)
        shutil.rmtree(self.alive, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.root.rmdir()  # unless the local backend's warm workers share it
