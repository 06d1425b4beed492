"""The kubernetes backend's manifests (no cluster is reachable here; see docs/SANDBOX.md)."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from pathlib import Path

import pytest

from tests.sandbox.toyrepo import ToyRepo
from vtforge.sandbox.api import Limits, RepoSpec, RunRequest, SandboxUnavailable
from vtforge.sandbox.kubernetes_backend import (
    KubernetesSandbox,
    build_configmap,
    build_network_policy,
    build_pod,
    parse_log,
)

LIMITS = Limits(cpus=0.5, memory_mb=300, pids=64, timeout_s=42, file_size_mb=20)


def test_pod_has_every_quota_and_no_privilege() -> None:
    pod = build_pod("vtforge-run-1", "ns", image="img:1", limits=LIMITS, python="python3", env={"A": "1"})
    container = pod["spec"]["containers"][0]
    assert container["resources"]["limits"]["memory"] == "300Mi"
    assert container["resources"]["limits"]["cpu"] == "0.5"
    assert container["resources"]["requests"] == {"cpu": "0.5", "memory": "300Mi"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["spec"]["securityContext"]["runAsUser"] == 65534
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["activeDeadlineSeconds"] == 42
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["spec"]["restartPolicy"] == "Never"
    assert {"name": "VTFORGE_RESULT_TO_STDOUT", "value": "1"} in container["env"]
    assert f"--fsize={20 * 1024 * 1024}" in container["command"][2]


def test_network_policy_denies_everything_for_sandbox_pods() -> None:
    policy = build_network_policy("ns")
    pod = build_pod("p", "ns", image="i", limits=LIMITS, python="python3", env={})
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in policy["spec"] and "egress" not in policy["spec"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


def test_configmap_carries_workspace_runner_and_patches(tmp_path: Path, toy: ToyRepo) -> None:
    box = KubernetesSandbox(LIMITS, work_dir=tmp_path, image="img:1", namespace="ns", connect=False)
    prepared = box.prepare(RepoSpec(toy.path, toy.base_commit))
    configmap, pod, command = box.manifests(
        prepared, RunRequest(patches=[toy.gold_patch], tests=["t::a"]), "n1"
    )
    assert configmap["metadata"]["name"] == pod["spec"]["volumes"][1]["configMap"]["name"] == "n1"
    assert {"tool-runner.py", "tool-vtforge_report.py", "spec.json", "patch-000.diff"} <= set(
        configmap["data"]
    )
    spec = json.loads(configmap["data"]["spec.json"])
    assert spec["tests"] == ["t::a"] and spec["patches"] == ["/tmp/out/patch-000.diff"]
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(configmap["binaryData"]["source.tgz"]))) as tar:
        assert "./toycalc/__init__.py" in tar.getnames()
    assert command[1:] == ["/tmp/.vtforge/runner.py", "/tmp/out/spec.json"]


def test_oversized_workspace_is_refused() -> None:
    with pytest.raises(ValueError, match="too large"):
        build_configmap("n", "ns", source_tgz=b"x" * 2_000_000, spec={}, patches={})


def test_result_is_read_from_the_log() -> None:
    log = 'collected 1 item\n.\n@@VTFORGE-RESULT@@{"exit_code": 0, "tests": {}}\n'
    text, result = parse_log(log)
    assert result["exit_code"] == 0 and "collected" in text
    assert parse_log("no marker") == ("no marker", {})


def test_without_a_cluster_the_backend_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(SandboxUnavailable):
        KubernetesSandbox(LIMITS, work_dir=tmp_path, image="i")
