"""The ``kubernetes`` backend: one Pod per run, with requests and limits, via the ``kubernetes`` client.

NOT run against a real cluster here (none is reachable from the build machines). What is tested
is the manifests this module generates (pod security, quotas, deny-all network policy, the
ConfigMap that carries the workspace). The run loop (create ConfigMap + Pod, wait, read the log,
delete) follows the client's documented calls but has only been exercised by its unit tests.

A Pod cannot see the host's folders, so a run ships everything in one ConfigMap: the prepared
checkout as a gzipped tar, the runner and pytest plugin, the spec and the patches. ConfigMaps
hold about 1 MiB, so larger repositories need an image that already contains the checkout
(set ``forge.sandbox.image`` to it and keep the repository small in the ConfigMap) — see
docs/SANDBOX.md. The runner prints result.json to its log after a marker line.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

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
IN_INPUT = "/vtforge-in"


def source_tarball(source: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(source, arcname=".")
    return buffer.getvalue()


def build_configmap(
    name: str, namespace: str, *, source_tgz: bytes, spec: dict[str, Any], patches: dict[str, str]
) -> dict[str, Any]:
    binary = {"source.tgz": base64.b64encode(source_tgz).decode()}
    data = {"spec.json": json.dumps(spec), **patches}
    for path in sorted(INSIDE_DIR.glob("*.py")):
        data[f"tool-{path.name}"] = path.read_text()
    size = sum(len(v) for v in data.values()) + len(binary["source.tgz"])
    if size > CONFIGMAP_LIMIT:
        raise ValueError(f"workspace too large for a ConfigMap ({size} bytes > {CONFIGMAP_LIMIT})")
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(LABELS)},
        "data": data,
        "binaryData": binary,
    }


def build_pod(
    name: str, namespace: str, *, image: str, limits: Limits, python: str, env: dict[str, str]
) -> dict[str, Any]:
    """A Pod that unpacks the workspace and starts the runner, with every quota of ``limits``."""
    memory = f"{limits.memory_mb}Mi"
    script = (
        f"set -e; mkdir -p {IN_WORKSPACE} {IN_OUT} {IN_TOOLS} {IN_ROOT}/home {IN_ROOT}/tmp; "
        f"tar -xzf {IN_INPUT}/source.tgz -C {IN_WORKSPACE}; "
        f"mkdir -p {IN_BASE}; tar -xzf {IN_INPUT}/source.tgz -C {IN_BASE}; "
        f'for f in {IN_INPUT}/tool-*.py; do cp "$f" {IN_TOOLS}/$(basename "$f" | sed s/^tool-//); done; '
        f"cp {IN_INPUT}/spec.json {IN_OUT}/; "
        f'for f in {IN_INPUT}/patch-*.diff; do [ -e "$f" ] && cp "$f" {IN_OUT}/ || true; done; '
        f"cd {IN_WORKSPACE}; exec prlimit --fsize={limits.file_size_mb * 1024 * 1024} --core=0 -- "
        f"{python} {IN_TOOLS}/runner.py {IN_OUT}/spec.json"
    )
    environment = [{"name": k, "value": v} for k, v in {**env, "VTFORGE_RESULT_TO_STDOUT": "1"}.items()]
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
            "containers": [
                {
                    "name": "run",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", script],
                    "env": environment,
                    "workingDir": IN_ROOT,
                    "resources": {
                        "requests": {"cpu": str(limits.cpus), "memory": memory},
                        "limits": {
                            "cpu": str(limits.cpus),
                            "memory": memory,
                            "ephemeral-storage": f"{limits.file_size_mb * 2}Mi",
                        },
                    },
                    "securityContext": {
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                        "privileged": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "volumeMounts": [
                        {"name": "run", "mountPath": IN_ROOT},
                        {"name": "input", "mountPath": IN_INPUT, "readOnly": True},
                    ],
                }
            ],
            "volumes": [
                {"name": "run", "emptyDir": {"sizeLimit": f"{limits.file_size_mb * 2}Mi"}},
                {"name": "input", "configMap": {"name": name}},
            ],
        },
    }


def build_network_policy(namespace: str) -> dict[str, Any]:
    """Deny all ingress and egress for sandbox pods (needs a CNI that enforces NetworkPolicy)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "vtforge-sandbox-deny-all", "namespace": namespace},
        "spec": {"podSelector": {"matchLabels": dict(LABELS)}, "policyTypes": ["Ingress", "Egress"]},
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
    ) -> None:
        super().__init__(limits, work_dir=work_dir, image=image)
        self.namespace = namespace
        self.work_dir.mkdir(parents=True, exist_ok=True)
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

    def _ensure_policy(self) -> None:
        from kubernetes.client.rest import ApiException

        try:
            self.net.create_namespaced_network_policy(self.namespace, build_network_policy(self.namespace))
        except ApiException as exc:
            if exc.status != 409:  # already there
                raise

    def prepare(self, repo: RepoSpec) -> PreparedRepo:
        if repo.setup_commands:
            raise ValueError(
                "kubernetes backend: bake set-up into forge.sandbox.image (set-up pods not supported)"
            )
        return prepare_cached(
            repo,
            self.work_dir,
            backend=self.name,
            image=self.image,
            image_digest=None,
            timeout_s=self.limits.timeout_s,
            run_setup=lambda *a: (True, ""),
        )

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
        configmap = build_configmap(
            name, self.namespace, source_tgz=source_tarball(prepared.source_dir), spec=spec, patches=patches
        )
        pod = build_pod(
            name,
            self.namespace,
            image=self.image or "",
            limits=limits,
            python=python,
            env=base_env(request.env),
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
            phase, reason, exit_code, oom = "Pending", "", None, False
            deadline = started + limits.timeout_s + 120
            while time.monotonic() < deadline:
                status = self.core.read_namespaced_pod_status(name, self.namespace).status
                phase, reason = status.phase, status.reason or ""
                if phase in ("Succeeded", "Failed"):
                    for cs in status.container_statuses or []:
                        term = cs.state.terminated
                        if term is not None:
                            exit_code, oom = term.exit_code, term.reason == "OOMKilled"
                    break
                time.sleep(0.5)
            log = self.core.read_namespaced_pod_log(name, self.namespace)
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
