"""Sandbox throughput: a small real repository's test suite, run N times on each backend and
directly on the host in the same process, plus each backend's start-up overhead (``true``).

    .venv/bin/python bench/sandbox.py [--runs N] [--no-docker]

Ends with ``ratio: X`` = local-backend executions/s divided by direct-host executions/s
(higher is better; 1.0 would mean isolation is free).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.sandbox.toyrepo import make_toy_repo  # noqa: E402
from vtforge.sandbox.api import Limits, RepoSpec, RunRequest, SandboxUnavailable  # noqa: E402

LIMITS = Limits(cpus=1.0, memory_mb=1024, pids=256, timeout_s=120.0, file_size_mb=64)


def timed(fn, runs: int) -> float:
    """Mean seconds per call (one warm-up call first)."""
    fn()
    started = time.perf_counter()
    for _ in range(runs):
        fn()
    return (time.perf_counter() - started) / runs


def host_suite(repo: Path, commit: str, python: str) -> tuple[float, float]:
    copy = Path(tempfile.mkdtemp(prefix="bench-host-"))
    subprocess.run(f"git -C {repo} archive {commit} | tar -x -C {copy}", shell=True, check=True)

    def suite() -> None:
        subprocess.run(
            [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=copy,
            capture_output=True,
            check=False,
        )

    return timed(suite, ARGS.runs), timed(lambda: subprocess.run(["true"], check=True), ARGS.runs)


def backend_suite(box, repo: Path, commit: str) -> tuple[float, float, float]:
    prepared = box.prepare(RepoSpec(repo, commit))
    suite = timed(lambda: _ok(box.run(prepared, RunRequest())), ARGS.runs)
    start = timed(lambda: _ok(box.run(prepared, RunRequest(command=["true"]))), ARGS.runs)
    started = time.perf_counter()
    batch = [RunRequest() for _ in range(ARGS.runs * 2)]
    for result in box.run_many(prepared, batch, workers=2):
        _ok(result)
    parallel = (time.perf_counter() - started) / len(batch)
    return suite, start, parallel


def _ok(result) -> None:
    if result.status != "completed":
        raise SystemExit(f"benchmark run failed: {result.status} {result.error} {result.stderr_tail[-300:]}")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    toy = make_toy_repo(work)
    rows = []
    host_s, host_true = host_suite(toy.path, toy.base_commit, sys.executable)
    rows.append(("host (direct)", host_s, host_true, None))
    from vtforge.sandbox.local import LocalSandbox

    local = LocalSandbox(LIMITS, work_dir=work / "local")
    local_s, local_true, local_par = backend_suite(local, toy.path, toy.base_commit)
    rows.append(("local (bwrap)", local_s, local_true, local_par))
    if not ARGS.no_docker:
        try:
            from vtforge.sandbox.docker_backend import DockerSandbox

            image = "localhost/vtforge-sandbox:bookworm"
            docker = DockerSandbox(LIMITS, work_dir=work / "docker", image=image)
            rows.append(("docker (podman)", *backend_suite(docker, toy.path, toy.base_commit)))
        except SandboxUnavailable as exc:
            print(f"docker backend skipped: {exc}")
    print(f"toy repository suite (11 tests), {ARGS.runs} runs each, mean per execution")
    print(f"{'where':18s} {'suite s':>9s} {'exec/s':>8s} {'start-up s':>11s} {'exec/s x2 workers':>18s}")
    for name, suite_s, true_s, par_s in rows:
        par = f"{1 / par_s:18.2f}" if par_s else f"{'-':>18s}"
        print(f"{name:18s} {suite_s:9.3f} {1 / suite_s:8.2f} {true_s:11.3f} {par}")
    print(f"local start-up overhead vs host: {local_true - host_true:+.3f} s per run")
    shutil.rmtree(work, ignore_errors=True)
    print(f"ratio: {host_s / local_s:.3f} (local-backend executions/s over direct-host executions/s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-docker", action="store_true")
    ARGS = parser.parse_args()
    main()
