"""The kubernetes backend's manifests (no cluster is reachable here; see docs/SANDBOX.md).

Every manifest is validated offline against the Kubernetes JSON schemas that ``kubernetes-validate``
ships (strict: an unknown field fails), and the Pod's two containers are played under podman with
the Pod's mounts: the init container's fetch script unpacks the repository from the store and checks
its checksum, then the run container's command runs the candidate.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from tests.sandbox.toyrepo import ToyRepo
from tests.support import require_service
from vtforge.sandbox.api import Limits, RepoSpec, RunRequest, SandboxUnavailable
from vtforge.sandbox.kubernetes_backend import (
    KubernetesSandbox,
    RepoTarball,
    build_configmap,
    build_network_policy,
    build_pod,
    parse_log,
)

LIMITS = Limits(cpus=0.5, memory_mb=300, pids=64, timeout_s=42, file_size_mb=20)
TARBALL = RepoTarball("k.tar.gz", "0" * 64, 1000)


def test_pod_has_every_quota_and_no_privilege() -> None:
    pod = build_pod(
        "vtforge-run-1", "ns", image="img:1", limits=LIMITS, python="python3", env={"A": "1"}, tarball=TARBALL
    )
    container = pod["spec"]["containers"][0]
    assert pod["spec"]["initContainers"][0]["securityContext"] == container["securityContext"]
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
    pod = build_pod("p", "ns", image="i", limits=LIMITS, python="python3", env={}, tarball=TARBALL)
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in policy["spec"] and "egress" not in policy["spec"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


def test_small_repository_travels_in_the_configmap(tmp_path: Path, toy: ToyRepo) -> None:
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


def test_a_repository_from_a_volume_or_url_is_not_in_the_configmap(tmp_path: Path, toy: ToyRepo) -> None:
    store = tmp_path / "store"
    box = KubernetesSandbox(
        LIMITS, work_dir=tmp_path / "w", image="i", connect=False, repo_store=store, repo_volume="pvc:repos"
    )
    prepared = box.prepare(RepoSpec(toy.path, toy.base_commit))
    published = store / f"{prepared.key}.tar.gz"
    assert (
        published.is_file()
        and box.tarball(prepared).sha256 == hashlib.sha256(published.read_bytes()).hexdigest()
    )
    configmap, pod, _ = box.manifests(prepared, RunRequest(), "n2")
    assert "binaryData" not in configmap
    assert {"name": "repos", "persistentVolumeClaim": {"claimName": "repos", "readOnly": True}} in pod[
        "spec"
    ]["volumes"]
    assert box.tarball(prepared).sha256 in pod["spec"]["initContainers"][0]["command"][2]
    url = KubernetesSandbox(
        LIMITS,
        work_dir=tmp_path / "w",
        image="i",
        connect=False,
        repo_store=store,
        repo_url="http://repos.example:8080/vtforge",
        repo_egress_cidr="10.1.2.3/32",
    )
    _, pod, _ = url.manifests(url.prepare(RepoSpec(toy.path, toy.base_commit)), RunRequest(), "n3")
    assert (
        f"http://repos.example:8080/vtforge/{prepared.key}.tar.gz"
        in pod["spec"]["initContainers"][0]["command"][2]
    )
    assert url.network_policy()["spec"]["egress"] == [
        {"to": [{"ipBlock": {"cidr": "10.1.2.3/32"}}], "ports": [{"protocol": "TCP", "port": 8080}]}
    ]
    with pytest.raises(ValueError, match="pvc:CLAIM"):
        KubernetesSandbox(LIMITS, work_dir=tmp_path, connect=False, repo_store=store, repo_volume="nfs:x")


def test_oversized_repository_in_a_configmap_is_refused() -> None:
    with pytest.raises(ValueError, match="kubernetes_repo_store"):
        build_configmap("n", "ns", source_tgz=b"x" * 2_000_000, spec={}, patches={})


@pytest.mark.parametrize("version", ["1.29", "latest"])
def test_every_manifest_is_valid_kubernetes(tmp_path: Path, toy: ToyRepo, version: str) -> None:
    try:
        import kubernetes_validate
    except ImportError:  # the dev extra's schemas
        require_service(False, "kubernetes-validate")
        raise
    version = kubernetes_validate.latest_version() if version == "latest" else version
    spec = RepoSpec(toy.path, toy.base_commit)
    boxes = [
        KubernetesSandbox(LIMITS, work_dir=tmp_path / "c", image="img:1", connect=False),
        KubernetesSandbox(
            LIMITS,
            work_dir=tmp_path / "v",
            image="i",
            connect=False,
            repo_store=tmp_path / "s",
            repo_volume="hostPath:/srv/vtforge-repos",
        ),
        KubernetesSandbox(
            LIMITS,
            work_dir=tmp_path / "u",
            image="i",
            connect=False,
            repo_store=tmp_path / "s",
            repo_volume="pvc:repos",
        ),
        KubernetesSandbox(
            LIMITS,
            work_dir=tmp_path / "h",
            image="i",
            connect=False,
            repo_store=tmp_path / "s",
            repo_url="https://store.example/r",
            repo_egress_cidr="10.0.0.0/8",
        ),
    ]
    for box in boxes:
        configmap, pod, _ = box.manifests(
            box.prepare(spec),
            RunRequest(patches=[toy.gold_patch], tests=["t::a"], env={"X": "1"}),
            "vtforge-run-1",
        )
        for manifest in (configmap, pod, box.network_policy()):
            kubernetes_validate.validate(manifest, version, strict=True)
    broken = dict(pod, spec={**pod["spec"], "initContainers": [{"name": "x", "imagePullPolicy": 3}]})
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


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


@pytest.mark.docker
def test_the_pods_containers_fetch_and_run_under_podman(
    podman_url: str, tmp_path: Path, toy: ToyRepo
) -> None:
    """The Pod played by podman with the Pod's mounts: the init container's script unpacks the
    repository from the store (checksum checked), then the run container's command runs it."""
    import os

    import docker

    from vtforge import constants as C

    store = tmp_path / "store"
    box = KubernetesSandbox(
        LIMITS,
        work_dir=tmp_path / "w",
        image=C.SANDBOX_IMAGE,
        connect=False,
        repo_store=store,
        repo_volume="pvc:repos",
    )
    prepared = box.prepare(RepoSpec(toy.path, toy.base_commit))
    request = RunRequest(patches=[toy.gold_patch, toy.test_patch], tests=toy.fail_to_pass)
    configmap, pod, _ = box.manifests(prepared, request, "vtforge-run-1")
    given = tmp_path / "input"  # the ConfigMap as its volume shows it
    given.mkdir()
    for key, value in configmap["data"].items():
        (given / key).write_text(value)
    client = docker.DockerClient(base_url=podman_url)

    def play(container: dict, run: Path, extra: dict) -> tuple[int, str]:
        made = client.containers.run(
            C.SANDBOX_IMAGE,
            command=container["command"],
            user="65534:65534",
            network_mode="none",
            read_only=True,
            detach=True,
            environment={e["name"]: e["value"] for e in container["env"]},
            volumes={str(run): {"bind": "/tmp", "mode": "rw"}, **extra},
        )
        try:
            code = made.wait(timeout=120)["StatusCode"]
            return code, made.logs().decode()
        finally:
            made.remove(force=True)

    def fetch() -> tuple[Path, int, str]:
        run = Path(tempfile_dir(tmp_path))
        os.chown(run, 65534, 65534)
        mounts = {
            str(given): {"bind": "/vtforge-in", "mode": "ro"},
            str(store): {"bind": "/vtforge-repos", "mode": "ro"},
        }
        code, log = play(pod["spec"]["initContainers"][0], run, mounts)
        return run, code, log

    try:
        run, code, log = fetch()
        assert code == 0, log
        code, log = play(
            pod["spec"]["containers"][0], run, {str(run / "base"): {"bind": "/tmp/base", "mode": "ro"}}
        )
        _, result = parse_log(log)
        assert {n for n, r in result["tests"].items() if r["status"] == "PASSED"} == set(toy.fail_to_pass), (
            log
        )
        assert result["applied_with"] == ["git apply", "git apply"]
        tarball = store / f"{prepared.key}.tar.gz"
        tarball.write_bytes(tarball.read_bytes()[:-10] + b"0" * 10)  # a damaged or stale store
        _, code, log = fetch()
        assert code == 65 and "checksum mismatch" in log
    finally:
        client.close()


def tempfile_dir(root: Path) -> str:
    import tempfile

    return tempfile.mkdtemp(dir=root)
