"""Sandbox test fixtures: a toy repository, and the local and docker backends (session-wide).

The docker backend needs podman's API service and the base image; both are started/built once
(the image's rootfs tarball is cached under ~/.cache/vtforge/, so later sessions only reuse it).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.sandbox.toyrepo import ToyRepo, make_toy_repo
from tests.support import require_service
from vtforge.sandbox.api import Limits, Sandbox, SandboxUnavailable

TEST_LIMITS = Limits(cpus=1.0, memory_mb=512, pids=128, timeout_s=60.0, file_size_mb=32)


@pytest.fixture(scope="session")
def toy(tmp_path_factory: pytest.TempPathFactory) -> ToyRepo:
    return make_toy_repo(tmp_path_factory.mktemp("toy"))


@pytest.fixture(scope="session")
def local_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    require_service(shutil.which("bwrap") is not None, "bubblewrap (bwrap)")
    from vtforge.sandbox.local import LocalSandbox

    box = LocalSandbox(TEST_LIMITS, work_dir=tmp_path_factory.mktemp("local-work"))
    yield box
    box.close()


@pytest.fixture(scope="session")
def warm_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The local backend with warm workers: pytest runs fork from a zygote per prepared repository."""
    require_service(shutil.which("bwrap") is not None, "bubblewrap (bwrap)")
    from vtforge.sandbox.local import LocalSandbox

    box = LocalSandbox(TEST_LIMITS, work_dir=tmp_path_factory.mktemp("warm-work"), warm=True, warm_idle_s=120)
    yield box
    box.close()


@pytest.fixture(scope="session")
def podman_url() -> str:
    require_service(shutil.which("podman") is not None, "podman")
    from vtforge.sandbox.podman_service import ensure_podman_service

    try:
        return ensure_podman_service()
    except SandboxUnavailable as exc:
        require_service(False, f"podman API service ({exc})")
        raise


@pytest.fixture(scope="session")
def docker_box(podman_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    from vtforge import constants as C
    from vtforge.sandbox.docker_backend import DockerSandbox

    try:
        box = DockerSandbox(
            TEST_LIMITS,
            work_dir=tmp_path_factory.mktemp("docker-work"),
            image=C.SANDBOX_IMAGE,
            docker_host=podman_url,
        )
    except SandboxUnavailable as exc:
        require_service(False, f"docker backend ({exc})")
        raise
    yield box
    box.close()


@pytest.fixture(params=["local", "warm", "docker"])
def box(request: pytest.FixtureRequest) -> Sandbox:
    """Each backend in turn (a test using it runs three times: cold and warm local, docker)."""
    if request.param == "docker":
        request.applymarker(pytest.mark.docker)
        return request.getfixturevalue("docker_box")
    request.applymarker(pytest.mark.bwrap)
    return request.getfixturevalue("warm_box" if request.param == "warm" else "local_box")


@pytest.fixture
def prepared(box: Sandbox, toy: ToyRepo):
    from vtforge.sandbox.api import RepoSpec

    repo = box.prepare(RepoSpec(toy.path, toy.base_commit))
    assert repo.ok, repo.setup_log
    return repo
