"""The ``kubernetes`` backend: one Pod per run, with requests and limits, via the ``kubernetes`` client.

NOT run against a real cluster (none is reachable from the build machines; docs/SANDBOX.md says
what has and has not run). What is tested is the manifests this module generates, validated
offline against the Kubernetes JSON schemas (``kubernetes-validate``), and the repository's
tarball, fetch script and its checksum check, run by ``sh`` on this machine. The run loop (create
ConfigMap + Pod, wait, read the log, delete) follows the client's documented calls but has never
talked to an API server.

A Pod cannot see the host's folders, so the prepared checkout travels as a tarball that an init
container fetches and unpacks into the run's ``emptyDir`` (``/tmp/workspace`` and a read-only
``/tmp/base``), checking its SHA-256 first:

- ``volume``: ``prepare`` writes ``<key>.tar.gz`` into ``forge.sandbox.kubernetes_repo_store``, a
  folder the cluster sees as ``kubernetes_repo_volume`` (``pvc:CLAIM``, e.g. an NFS or CSI
  ReadOnlyMany claim, or ``hostPath:/PATH`` on a one-node cluster), mounted read-only;
- ``url``: the init container downloads ``<kubernetes_repo_url>/<key>.tar.gz`` (the store served
  over HTTP or synced to an object store); the deny-all NetworkPolicy then allows egress to
  ``kubernetes_repo_egress_cidr`` only (the run's container shares the Pod's network);
- ``configmap``: without a store, a repository whose tarball fits in a ConfigMap (about 1 MB)
  still travels in it; a larger one is an ``infra_failure`` naming these levers.

The per-run ConfigMap carries only the small things: the runner and pytest plugin, the spec and the
patches. The runner prints result.json to its log after a marker line.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import io
import json
import os
import shlex
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from vtforge import constants as C
from vtforge.sandbox.api import (
    Limits,
    PreparedRepo,
    RepoSpec,
    RunRequest,
    RunResult,
    Sandbox,
    SandboxUnavailable,
)
from vtforge.sandbox.inside import INSIDE_DIR
from vtforge.sandbox.layout import IN_BASE, IN_OUT, IN_ROOT, IN_TOOLS, IN_WORKSPACE, SANDBOX_UID, base_env
from vtforge.sandbox.prepare import prepare_cached
from vtforge.sandbox.results import Outcome, build_result, effective_limits, infra_result
from vtforge.sandbox.rundir import RunDir

CONFIGMAP_LIMIT = 1_000_000
RESULT_MARKER = "@@VTFORGE-RESULT@@"
LABELS = {"app.kubernetes.io/name": "vtforge-sandbox"}
IN_INPUT = "/vtforge-in"  # the per-run ConfigMap
IN_REPOS = "/vtforge-repos"  # the repository store's volume (read-only)
IN_FETCH = f"{IN_ROOT}/.fetch"

Transport = Literal["volume", "url", "configmap"]


@dataclass(frozen=True)
class RepoTarball:
    """A prepared checkout as the tarball an init container fetches."""

    name: str  # <key>.tar.gz
    sha256: str
    size: int
    data: bytes | None = None  # kept only for the configmap transport


def source_tarball(source: Path) -> bytes:
    """The checkout as a gzipped tar, byte-for-byte the same for the same files (fixed mtimes in
    the gzip header), so a store written by another process holds the same checksum."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        tar.add(source, arcname=".")
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return buffer.getvalue()


def publish_tarball(source: Path, key: str, store: Path | None) -> RepoTarball:
    """Write ``<key>.tar.gz`` into ``store`` once (atomically); without a store, keep the bytes."""
    name = f"{key}.tar.gz"
    if store is not None:
        target = store / name
        if target.is_file():
            data = target.read_bytes()
            return RepoTarball(name, hashlib.sha256(data).hexdigest(), len(data))
        data = source_tarball(source)
        store.mkdir(parents=True, exist_ok=True)
        partial = store / f".{name}.{uuid.uuid4().hex[:8]}"
        partial.write_bytes(data)
        os.chmod(partial, 0o644)
        partial.replace(target)
        return RepoTarball(name, hashlib.sha256(data).hexdigest(), len(data))
    data = source_tarball(source)
    return RepoTarball(name, hashlib.sha256(data).hexdigest(), len(data), data)


def build_configmap(
    name: str,
    namespace: str,
    *,
    spec: dict[str, Any],
    patches: dict[str, str],
    source_tgz: bytes | None = None,
) -> dict[str, Any]:
    """The run's small inputs (and, for the configmap transport only, the repository)."""
    data = {"spec.json": json.dumps(spec), **patches}
    for path in sorted(INSIDE_DIR.glob("*.py")):
        data[f"tool-{path.name}"] = path.read_text()
    binary = {"source.tgz": base64.b64encode(source_tgz).decode()} if source_tgz is not None else {}
    size = sum(len(v) for v in data.values()) + sum(len(v) for v in binary.values())
    if size > CONFIGMAP_LIMIT:
        what = "repository" if source_tgz is not None else "run's patches"
        raise ValueError(
            f"the {what} is too large for a ConfigMap ({size} bytes > {CONFIGMAP_LIMIT}); "
            "set forge.sandbox.kubernetes_repo_store with kubernetes_repo_volume or kubernetes_repo_url"
        )
    manifest: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(LABELS)},
        "data": data,
    }
    if binary:
        manifest["binaryData"] = binary
    return manifest


def fetch_script(transport: Transport, tarball: RepoTarball, url: str | None = None) -> str:
    """The init container's script: get the tarball, check its SHA-256, unpack it twice (the
    workspace and the read-only base), copy the runner, spec and patches from the ConfigMap."""
    source = {
        "volume": f"{IN_REPOS}/{tarball.name}",
        "configmap": f"{IN_INPUT}/source.tgz",
        "url": f"{IN_FETCH}/{tarball.name}",
    }[transport]
    lines = [
        "set -e",
        f"mkdir -p {IN_WORKSPACE} {IN_BASE} {IN_OUT} {IN_TOOLS} {IN_ROOT}/home {IN_ROOT}/tmp {IN_FETCH}",
    ]
    if transport == "url":
        download = "import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])"
        full = f"{(url or '').rstrip('/')}/{tarball.name}"
        lines.append(f"python3 -c {shlex.quote(download)} {shlex.quote(full)} {source}")
    lines += [
        f'echo "{tarball.sha256}  {source}" | sha256sum -c - >/dev/null '
        '|| { echo "repository tarball: checksum mismatch" >&2; exit 65; }',
        f"tar -xzf {source} -C {IN_WORKSPACE}",
        f"tar -xzf {source} -C {IN_BASE}",
        f"rm -rf {IN_FETCH}",
        f'for f in {IN_INPUT}/tool-*.py; do cp "$f" {IN_TOOLS}/"$(basename "$f" | sed s/^tool-//)"; done',
        f"cp {IN_INPUT}/spec.json {IN_OUT}/",
        f'for f in {IN_INPUT}/patch-*.diff; do if [ -e "$f" ]; then cp "$f" {IN_OUT}/; fi; done',
    ]
    return "\n".join(lines)


def _security_context() -> dict[str, Any]:
    return {
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }


def volume_of(spec: str) -> dict[str, Any]:
    """``pvc:CLAIM`` or ``hostPath:/PATH`` as a read-only Pod volume named ``repos``."""
    kind, _, where = spec.partition(":")
    if kind == "pvc" and where:
        return {"name": "repos", "persistentVolumeClaim": {"claimName": where, "readOnly": True}}
    if kind == "hostPath" and where.startswith("/"):
        return {"name": "repos", "hostPath": {"path": where, "type": "Directory"}}
    raise ValueError(
        f"forge.sandbox.kubernetes_repo_volume must be pvc:CLAIM or hostPath:/PATH, got {spec!r}"
    )


def build_pod(
    name: str,
    namespace: str,
    *,
    image: str,
    limits: Limits,
    python: str,
    env: dict[str, str],
    tarball: RepoTarball,
    transport: Transport = "configmap",
    volume: str | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    """A Pod whose init container fetches the repository and whose container starts the runner,
    with every quota of ``limits``."""
    memory = f"{limits.memory_mb}Mi"
    disk = f"{limits.file_size_mb * 2 + 2 * (tarball.size >> 20) * 8 + 64}Mi"  # the run + 2 unpacked copies
    run_script = (
        f"cd {IN_WORKSPACE}; exec prlimit --fsize={limits.file_size_mb * 1024 * 1024} --core=0 -- "
        f"{python} {IN_TOOLS}/runner.py {IN_OUT}/spec.json"
    )
    environment = [{"name": k, "value": v} for k, v in {**env, "VTFORGE_RESULT_TO_STDOUT": "1"}.items()]
    resources = {
        "requests": {"cpu": str(limits.cpus), "memory": memory},
        "limits": {"cpu": str(limits.cpus), "memory": memory, "ephemeral-storage": disk},
    }
    fetch_mounts = [
        {"name": "run", "mountPath": IN_ROOT},
        {"name": "input", "mountPath": IN_INPUT, "readOnly": True},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "run", "emptyDir": {"sizeLimit": disk}},
        {"name": "input", "configMap": {"name": name}},
    ]
    if transport == "volume":
        volumes.append(volume_of(volume or ""))
        fetch_mounts.append({"name": "repos", "mountPath": IN_REPOS, "readOnly": True})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(LABELS)},
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": max(1, int(limits.timeout_s)),
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {
                "runAsUser": SANDBOX_UID,
                "runAsGroup": SANDBOX_UID,
                "runAsNonRoot": True,
                "fsGroup": SANDBOX_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "initContainers": [
                {
                    "name": "fetch-repo",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", fetch_script(transport, tarball, url)],
                    "env": [{"name": "HOME", "value": f"{IN_ROOT}/home"}],
                    "resources": resources,
                    "securityContext": _security_context(),
                    "volumeMounts": fetch_mounts,
                }
            ],
            "containers": [
                {
                    "name": "run",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", run_script],
                    "env": environment,
                    "workingDir": IN_ROOT,
                    "resources": resources,
                    "securityContext": _security_context(),
                    "volumeMounts": [
                        {"name": "run", "mountPath": IN_ROOT},
                        {"name": "run", "mountPath": IN_BASE, "subPath": "base", "readOnly": True},
                    ],
                }
            ],
            "volumes": volumes,
        },
    }


def build_network_policy(
    namespace: str, *, egress_cidr: str | None = None, url: str | None = None
) -> dict[str, Any]:
    """Deny all ingress and egress for sandbox pods (needs a CNI that enforces NetworkPolicy);
    with a repository URL, egress to its port on ``egress_cidr`` only."""
    spec: dict[str, Any] = {
        "podSelector": {"matchLabels": dict(LABELS)},
        "policyTypes": ["Ingress", "Egress"],
    }
    if egress_cidr and url:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        spec["egress"] = [
            {"to": [{"ipBlock": {"cidr": egress_cidr}}], "ports": [{"protocol": "TCP", "port": port}]}
        ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "vtforge-sandbox-deny-all", "namespace": namespace},
        "spec": spec,
    }


def parse_log(log: str) -> tuple[str, dict[str, Any]]:
    """The log without the result line, and the runner's result.json from it."""
    head, _, rest = log.rpartition(RESULT_MARKER)
    if not _:
        return log, {}
    try:
        return head, json.loads(rest.strip().splitlines()[0])
    except (ValueError, IndexError):
        return log, {}


class KubernetesSandbox(Sandbox):
    name = "kubernetes"

    def __init__(
        self,
        limits: Limits,
        *,
        work_dir: Path,
        image: str | None = None,
        namespace: str = C.KUBERNETES_NAMESPACE,
        connect: bool = True,
        repo_store: Path | None = None,
        repo_volume: str | None = None,
        repo_url: str | None = None,
        repo_egress_cidr: str | None = None,
    ) -> None:
        super().__init__(limits, work_dir=work_dir, image=image)
        self.namespace = namespace
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.repo_url = repo_url or None
        self.repo_volume = repo_volume or None
        self.repo_egress_cidr = repo_egress_cidr or None
        if self.repo_volume:
            volume_of(self.repo_volume)  # refuse a malformed lever now, not at the first run
        if (self.repo_url or self.repo_volume) and not repo_store:
            raise ValueError(
                "forge.sandbox.kubernetes_repo_store: the folder behind kubernetes_repo_volume/_url is needed"
            )
        if self.repo_url and not self.repo_egress_cidr:
            raise ValueError(
                "forge.sandbox.kubernetes_repo_url needs kubernetes_repo_egress_cidr (the store's)"
            )
        self.repo_store = Path(repo_store) if repo_store else None
        self.transport: Transport = "url" if self.repo_url else "volume" if self.repo_volume else "configmap"
        self._tarballs: dict[str, RepoTarball] = {}
        self._lock = threading.Lock()
        self.core: Any = None
        if connect:
            try:
                from kubernetes import client, config

                try:
                    config.load_incluster_config()
                except config.ConfigException:
                    config.load_kube_config()
                self.core = client.CoreV1Api()
                self.net = client.NetworkingV1Api()
            except Exception as exc:
                raise SandboxUnavailable(f"no Kubernetes cluster configured: {exc}") from exc
            self._ensure_policy()

    def network_policy(self) -> dict[str, Any]:
        return build_network_policy(self.namespace, egress_cidr=self.repo_egress_cidr, url=self.repo_url)

    def _ensure_policy(self) -> None:
        from kubernetes.client.rest import ApiException

        try:
            policy: Any = self.network_policy()  # the client takes a manifest as a plain dict
            self.net.create_namespaced_network_policy(self.namespace, policy)
        except ApiException as exc:
            if exc.status != 409:  # already there
                raise

    def prepare(self, repo: RepoSpec) -> PreparedRepo:
        if repo.setup_commands:
            raise ValueError(
                "kubernetes backend: bake set-up into forge.sandbox.image (set-up pods not supported)"
            )
        prepared = prepare_cached(
            repo,
            self.work_dir,
            backend=self.name,
            image=self.image,
            image_digest=None,
            timeout_s=self.limits.timeout_s,
            run_setup=lambda *a: (True, ""),
        )
        self.tarball(prepared)
        return prepared

    def tarball(self, prepared: PreparedRepo) -> RepoTarball:
        """The prepared checkout's tarball: written to the store once, or kept for a ConfigMap."""
        with self._lock:
            found = self._tarballs.get(prepared.key)
            if found is None:
                found = publish_tarball(prepared.source_dir, prepared.key, self.repo_store)
                self._tarballs[prepared.key] = found
            return found

    def drop(self, prepared: PreparedRepo) -> None:
        with self._lock:
            self._tarballs.pop(prepared.key, None)

    def manifests(
        self, prepared: PreparedRepo, request: RunRequest, name: str
    ) -> tuple[dict, dict, list[str]]:
        limits = effective_limits(self.limits, request)
        python = prepared.spec.python or "python3"
        run = RunDir.create(self.work_dir)
        try:
            command = run.write_spec(request, python)
            spec = json.loads((run.out / "spec.json").read_text())
            patches = {p.name: p.read_text() for p in sorted(run.out.glob("patch-*.diff"))}
        finally:
            run.remove()
        tarball = self.tarball(prepared)
        configmap = build_configmap(
            name,
            self.namespace,
            spec=spec,
            patches=patches,
            source_tgz=tarball.data if self.transport == "configmap" else None,
        )
        pod = build_pod(
            name,
            self.namespace,
            image=self.image or "",
            limits=limits,
            python=python,
            env=base_env(request.env),
            tarball=tarball,
            transport=self.transport,
            volume=self.repo_volume,
            url=self.repo_url,
        )
        return configmap, pod, command

    def run(self, prepared: PreparedRepo, request: RunRequest) -> RunResult:
        limits = effective_limits(self.limits, request)
        if self.core is None:
            return infra_result(self.name, request, limits, prepared, "not connected to a cluster")
        name = f"vtforge-run-{uuid.uuid4().hex[:12]}"
        try:
            configmap, pod, command = self.manifests(prepared, request, name)
        except ValueError as exc:
            return infra_result(self.name, request, limits, prepared, str(exc))
        started = time.monotonic()
        try:
            self.core.create_namespaced_config_map(self.namespace, configmap)
            self.core.create_namespaced_pod(self.namespace, pod)
            phase, reason, exit_code, oom, fetch_error = "Pending", "", None, False, None
            deadline = started + limits.timeout_s + 120
            while time.monotonic() < deadline:
                status = self.core.read_namespaced_pod_status(name, self.namespace).status
                phase, reason = status.phase, status.reason or ""
                if phase in ("Succeeded", "Failed"):
                    for cs in status.init_container_statuses or []:
                        term = cs.state.terminated
                        if term is not None and term.exit_code != 0:
                            fetch_error = f"repository fetch failed ({term.reason}, exit {term.exit_code})"
                    for cs in status.container_statuses or []:
                        term = cs.state.terminated
                        if term is not None:
                            exit_code, oom = term.exit_code, term.reason == "OOMKilled"
                    break
                time.sleep(0.5)
            if fetch_error is not None:
                with contextlib.suppress(Exception):
                    log = self.core.read_namespaced_pod_log(name, self.namespace, container="fetch-repo")
                    fetch_error += f": {log[-500:]}"
                return infra_result(self.name, request, limits, prepared, fetch_error)
            log = self.core.read_namespaced_pod_log(name, self.namespace, container="run")
            stdout, inner = parse_log(log)
            run = RunDir.create(self.work_dir)
            try:
                (run.out / "result.json").write_text(json.dumps(inner)) if inner else None
                outcome = Outcome(
                    exit_code=exit_code,
                    timed_out=reason == "DeadlineExceeded",
                    oom=oom,
                    stdout=stdout,
                    duration_s=time.monotonic() - started,
                    start_error=None if phase in ("Succeeded", "Failed") else f"pod {phase}",
                )
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
        except Exception as exc:  # the API server, not the candidate
            return infra_result(self.name, request, limits, prepared, f"kubernetes: {exc}")
        finally:
            for delete in (self.core.delete_namespaced_pod, self.core.delete_namespaced_config_map):
                with contextlib.suppress(Exception):  # best-effort clean-up
                    delete(name, self.namespace)
