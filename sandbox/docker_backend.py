"""The ``docker`` backend: the ``docker`` SDK against any Docker-API engine.

Docker Engine for users; podman's compatible service in tests and CI (started on demand when
``forge.sandbox.docker_host`` is unset and no ``DOCKER_HOST`` is given). Each run is one
container of the base image: network none, memory (no swap), cpus and pids limits, read-only
root, all capabilities dropped, no-new-privileges, user 65534, and only the run folder (at /tmp),
the candidate's workspace and the task's environment (read-only) mounted.

With ``warm=True`` (``forge.sandbox.warm_workers``) a candidate runs as one ``exec`` in a long-lived
container of its prepared repository instead (``warm_container.py``), with the same quotas, mounts
and paths. Every container is labelled with its owner process; a backend that starts removes the
containers (and run folders) of owners that are gone.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

from vtforge.sandbox.api import Limits, PreparedRepo, RepoSpec, RunRequest, RunResult, SandboxUnavailable
from vtforge.sandbox.candidate import CopyPerCandidate, Launch, SetupLaunch
from vtforge.sandbox.inside import INSIDE_DIR
from vtforge.sandbox.layout import (
    IN_BASE,
    IN_ENV,
    IN_ROOT,
    IN_TOOLS,
    IN_WORKSPACE,
    SANDBOX_UID,
    base_env,
    sandbox_owner,
    setup_python,
)
from vtforge.sandbox.results import Outcome, tail
from vtforge.sandbox.rundir import RunDir, sweep_stale
from vtforge.sandbox.warm_container import WarmContainers, owner_labels, sweep_containers

LABEL = "vtforge.sandbox"


class DockerSandbox(CopyPerCandidate):
    name = "docker"

    def __init__(
        self,
        limits: Limits,
        *,
        work_dir: Path,
        image: str | None = None,
        docker_host: str | None = None,
        build_image: bool = True,
        warm: bool = False,
        warm_idle_s: float = 60.0,
        disk_mb: int | None = None,
    ) -> None:
        super().__init__(limits, work_dir=work_dir, image=image)
        self.disk_mb = disk_mb  # the host folders a container writes to sit on a tmpfs of this size
        try:
            import docker  # noqa: F401 - the optional extra "sandbox"
        except ImportError as exc:
            raise SandboxUnavailable("the docker SDK is missing: pip install 'vtforge[sandbox]'") from exc
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir = self.work_dir.resolve()
        self.base_url = docker_host or os.environ.get("DOCKER_HOST")
        if not self.base_url:
            from vtforge.sandbox.podman_service import ensure_podman_service

            self.base_url = ensure_podman_service()
        self._local = threading.local()
        self.owner = sandbox_owner()
        client = self._client()
        try:
            client.ping()
        except Exception as exc:
            raise SandboxUnavailable(f"no Docker-API engine answers at {self.base_url}: {exc}") from exc
        self.image = image or "localhost/vtforge-sandbox:bookworm"
        self.image_digest = self._digest(build_image)
        sweep_containers(client)  # containers of owners killed with SIGKILL, then their folders
        sweep_stale(self.work_dir)
        box: Any = self  # (the checker sees this module under two names)
        self.warm: WarmContainers | None = WarmContainers(box, idle_s=warm_idle_s) if warm else None

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            import docker

            client = docker.DockerClient(base_url=self.base_url, timeout=120)
            self._local.client = client
        return client

    def _digest(self, build: bool) -> str:
        import docker

        try:
            return self._client().images.get(self.image).id
        except docker.errors.ImageNotFound:
            if not build:
                raise SandboxUnavailable(f"image {self.image} is not in the engine") from None
        from vtforge.sandbox.image import ensure_image

        ensure_image(self.image)
        try:
            return self._client().images.get(self.image).id
        except docker.errors.ImageNotFound:
            raise SandboxUnavailable(f"image {self.image} could not be built") from None

    # --- containers ----------------------------------------------------------------------------

    def _container_args(
        self,
        run: RunDir,
        workspace: Path | None,
        env_dir: Path,
        *,
        limits: Limits,
        network: bool,
        env_writable: bool,
        env: dict[str, str],
        base: Path | None = None,
        extra_volumes: dict[str, dict[str, str]] | None = None,
        labels: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The container's quotas, mounts and labels (``workspace`` None: a folder of the run's own)."""
        mem = f"{limits.memory_mb}m"
        return {
            "user": f"{SANDBOX_UID}:{SANDBOX_UID}" if self.owner is not None else None,
            "working_dir": IN_WORKSPACE,
            "environment": env,
            "network_mode": "host" if network else "none",
            "mem_limit": mem,
            "memswap_limit": mem,
            "pids_limit": limits.pids,
            "nano_cpus": int(limits.cpus * 1e9),
            "read_only": True,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "volumes": {
                str(run.path): {"bind": IN_ROOT, "mode": "rw"},
                **({str(workspace): {"bind": IN_WORKSPACE, "mode": "rw"}} if workspace is not None else {}),
                str(env_dir): {"bind": IN_ENV, "mode": "rw" if env_writable else "ro"},
                str(INSIDE_DIR): {"bind": IN_TOOLS, "mode": "ro"},
                **({str(base): {"bind": IN_BASE, "mode": "ro"}} if base is not None else {}),
                **(extra_volumes or {}),
            },
            "labels": {LABEL: "1", **owner_labels(), **(labels or {})},
            "detach": True,
        }

    @staticmethod
    def _rlimits(limits: Limits) -> list[str]:
        """File size and core limits set inside (engines differ on API ulimits; podman+runc refuses them)."""
        fsize = limits.file_size_mb * 1024 * 1024
        return ["prlimit", f"--fsize={fsize}", "--core=0", "--"]

    def _execute(
        self, command: list[str], args: dict[str, Any], timeout_s: float, limits: Limits | None = None
    ) -> Outcome:
        import docker
        import requests

        command = self._rlimits(limits or self.limits) + command
        client = self._client()
        started = time.monotonic()
        try:
            container = client.containers.create(self.image, command=command, **args)
        except docker.errors.DockerException as exc:
            return Outcome(exit_code=None, start_error=f"container create failed: {exc}")
        timed_out = False
        try:
            try:
                container.start()
            except docker.errors.DockerException as exc:
                return Outcome(exit_code=None, start_error=f"container start failed: {exc}")
            try:
                status = container.wait(timeout=timeout_s)
                exit_code = int(status.get("StatusCode", -1))
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                timed_out = True
                with contextlib.suppress(docker.errors.DockerException):
                    container.kill()
                exit_code = int(container.wait(timeout=60).get("StatusCode", -1))
            duration = time.monotonic() - started
            container.reload()
            state = container.attrs.get("State", {})
            stdout = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
            stderr = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
            # Inside a container with a memory limit, the kernel's OOM killer is the one outside
            # sender of SIGKILL; engines flag OOMKilled only when it hit the container's first process.
            oom = bool(state.get("OOMKilled")) or (not timed_out and exit_code == 128 + 9)
            return Outcome(
                exit_code=exit_code,
                timed_out=timed_out,
                oom=oom,
                stdout=tail(stdout),
                stderr=tail(stderr),
                duration_s=duration,
            )
        finally:
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)

    # --- the interface -------------------------------------------------------------------------

    def run(self, prepared: PreparedRepo, request: RunRequest) -> RunResult:
        """An exec in a warm container of the repository when warm, else (or when that fails) cold."""
        if self.warm is not None and prepared.ok:
            result = self.warm.run(prepared, request)
            if result is not None:
                return result
        return super().run(prepared, request)

    def _forget(self, key: str) -> None:
        if self.warm is not None:
            self.warm.drop(key)

    def _python(self, spec: RepoSpec) -> str:
        return spec.python or "python3"

    def _image_of(self, repo: RepoSpec) -> tuple[str | None, str | None]:
        return self.image, self.image_digest

    def _launch_setup(
        self, run: RunDir, source: Path, env_dir: Path, spec: RepoSpec, command: list[str]
    ) -> SetupLaunch:
        args = self._container_args(
            run,
            source,
            env_dir,
            limits=self.limits,
            network=spec.setup_network,
            env_writable=True,
            env=base_env({"PYTHON": setup_python(spec, "python3")}),
        )
        return lambda timeout_s: self._execute(command, args, timeout_s)

    def _launch(
        self, run: RunDir, workspace: Path, prepared: PreparedRepo, request: RunRequest, limits: Limits
    ) -> tuple[list[str], Launch]:
        command = run.write_spec(request, self._python(prepared.spec))
        run.chown()
        args = self._container_args(
            run,
            workspace,
            prepared.env_dir,
            limits=limits,
            network=limits.network,
            env_writable=False,
            env=base_env(request.env),
            base=prepared.source_dir,
        )
        return command, lambda: self._execute(command, args, limits.timeout_s, limits)

    def close(self) -> None:
        if self.warm is not None:
            self.warm.close()
        client = getattr(self._local, "client", None)
        if client is not None:
            client.close()
            self._local.client = None
