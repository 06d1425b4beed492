"""The public sandbox API: what to run, where, with which quotas, and what came back.

Everything another component needs is here (and re-exported from ``sandbox``)::

    from vtforge.sandbox import open_sandbox, RepoSpec, RunRequest

    with open_sandbox(cfg) as box:                      # cfg: Config or SandboxConfig
        repo = box.prepare(RepoSpec(repo_dir, base_commit))   # once per task (cached)
        base = box.run(repo, RunRequest())                    # whole suite: the passing baseline
        res = box.run(repo, RunRequest(patches=[fix, test_patch],
                                       tests=["tests/test_x.py::test_a", "tests/test_x.py::test_b"]))
        res.status            # "completed" | "timeout" | "oom" | "killed" | "denied" | ...
        res.tests["tests/test_x.py::test_a"].status   # "PASSED" | "FAILED" | ...

A run never raises for anything the candidate did: a patch that does not apply, a test that hangs,
a fork bomb, are all a ``RunResult`` with a status. Exceptions are kept for misuse of the API
(``ValueError``) and for a backend that cannot exist at all (``SandboxUnavailable`` from
``open_sandbox``); a backend that fails on one run reports ``status="infra_failure"``.

Tests are pytest node ids (``tests/test_x.py::test_name``) and run in ONE pytest session per
``run`` (patches applied once), with per-test outcomes from a machine-readable report.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    from vtforge.config import Config, SandboxConfig

# --- vocabularies ------------------------------------------------------------------------------

RunStatus = Literal[
    "completed",  # the command ran to its end (tests may have failed: see ``tests``)
    "timeout",  # wall-clock (or CPU-time) limit reached; the whole process tree was killed
    "oom",  # memory limit reached
    "disk_quota",  # the run's disk quota (forge.sandbox.disk_mb) is full: no space left on device
    "killed",  # ended by a signal for another reason (file-size limit, pids limit, …)
    "denied",  # failed on an isolation boundary (network, read-only root, hidden paths)
    "patch_apply_failed",  # a patch could not be applied by git apply nor patch --fuzz
    "invalid",  # non-zero exit and no test failure to explain it (collection error, crash)
    "infra_failure",  # the sandbox itself did not work: never counts against a candidate
]
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)

TestStatus = Literal["PASSED", "FAILED", "SKIPPED", "ERROR", "XFAIL"]
TEST_STATUSES: tuple[str, ...] = get_args(TestStatus)

BackendName = Literal["local", "docker", "kubernetes"]


class SandboxUnavailable(RuntimeError):
    """The chosen backend cannot run on this machine (bwrap missing, engine unreachable, …)."""


# --- inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Quotas of one run. ``from_config`` reads ``[forge.sandbox]``."""

    cpus: float = 1.0
    memory_mb: int = 2048
    pids: int = 256
    timeout_s: float = 300.0
    file_size_mb: int = 512
    network: bool = False

    @classmethod
    def from_config(cls, sandbox: SandboxConfig) -> Limits:
        return cls(
            cpus=sandbox.cpus,
            memory_mb=sandbox.memory_mb,
            pids=sandbox.pids,
            timeout_s=sandbox.timeout_s,
            file_size_mb=sandbox.file_size_mb,
            network=sandbox.network,
        )

    def as_strings(self) -> dict[str, str]:
        """For the ``limits`` map of execution events."""
        return {k: str(v) for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class RepoSpec:
    """A task's repository: a local git repository and the commit to start from.

    ``setup_commands`` prepare the environment once per task (shell lines run in the checkout, with
    network unless ``setup_network`` is False; ``$VTFORGE_ENV`` is a writable folder kept for later
    runs, where a virtualenv can go; ``$PYTHON`` is the backend's interpreter). Files they leave in
    the checkout are part of every candidate.
    ``python`` is the interpreter that runs tests (``local``: default the host's current one;
    container backends: ``python3`` of the image, or e.g. ``$VTFORGE_ENV/bin/python``).
    """

    repo_dir: Path
    base_commit: str = "HEAD"
    setup_commands: tuple[str, ...] = ()
    setup_network: bool = True
    python: str | None = None
    task_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "repo_dir", Path(self.repo_dir).expanduser().resolve())
        object.__setattr__(self, "setup_commands", tuple(self.setup_commands))


@dataclass(frozen=True)
class PreparedRepo:
    """A ``RepoSpec`` ready to run: checkout + environment, built once and cached by ``key``."""

    spec: RepoSpec
    key: str  # stable over (repo, resolved commit, set-up commands, backend, image)
    commit: str  # the resolved base commit
    source_dir: Path  # the prepared checkout (no .git) every candidate's copy is made from
    cache_dir: Path
    env_dir: Path  # $VTFORGE_ENV: the task's environment (read-only during runs)
    backend: str
    image: str | None = None
    image_digest: str | None = None
    setup_s: float = 0.0
    setup_status: RunStatus = "completed"  # "infra_failure" when set-up failed or timed out
    setup_log: str = ""

    @property
    def ok(self) -> bool:
        return self.setup_status == "completed"


@dataclass(frozen=True)
class RunRequest:
    """One candidate: patches applied in order to a fresh copy, then tests or a command.

    - ``tests``: pytest node ids run in one pytest session; ``None`` (and no ``command``) runs the
      whole suite (the passing baseline). An id without ``::`` (a file or folder) is allowed.
    - ``command``: any other command (argv) instead of pytest; its exit code is the verdict.
    - ``pytest_args``: extra pytest arguments (e.g. ``["-x"]``); ``env``: extra variables.
    - ``flaky_reruns``: how many times tests whose outcome is not a pass are rerun (in a second
      session); a test whose status changes is marked ``flaky`` and keeps its best status.
    - ``timeout_s``: overrides ``Limits.timeout_s`` for this run.
    - ``reset_before``: ``{i: [paths]}``: before patch ``i`` is applied, put these paths back as
      they are in the prepared checkout (deleted if absent there). SWE-bench does this with the
      test patch's files, so a model patch that edited the tests cannot tamper with them;
      ``vtforge.sandbox.patches.files_in_patch(test_patch)`` gives the list.
    """

    patches: Sequence[str] = ()
    tests: Sequence[str] | None = None
    command: Sequence[str] | None = None
    pytest_args: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict)
    flaky_reruns: int = 0
    timeout_s: float | None = None
    label: str | None = None  # e.g. a patch id; copied to the result
    reset_before: dict[int, Sequence[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.tests is not None and self.command is not None:
            raise ValueError("RunRequest: give tests or command, not both")
        if isinstance(self.patches, str):
            raise ValueError("RunRequest.patches is a list of diffs, not one string")


# --- outputs -----------------------------------------------------------------------------------


@dataclass
class TestOutcome:
    """One test's result. ``reruns`` counts extra executions; ``flaky`` when they disagreed."""

    __test__ = False  # not a pytest class

    name: str
    status: TestStatus
    duration_s: float | None = None
    reruns: int = 0
    flaky: bool = False
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "duration_s": self.duration_s,
            "reruns": self.reruns,
            "flaky": self.flaky,
        }


@dataclass
class RunResult:
    """What ran and what came back. Every field is filled whatever the status."""

    status: RunStatus
    backend: str
    command: list[str]
    limits: Limits
    exit_code: int | None = None
    tests: dict[str, TestOutcome] = field(default_factory=dict)  # by pytest node id
    stdout_tail: str = ""
    stderr_tail: str = ""
    duration_s: float = 0.0  # the whole run: copy + apply + tests
    setup_s: float | None = None  # the task's cached set-up (0 when reused)
    cpu_s: float | None = None
    max_rss_mb: float | None = None
    image: str | None = None
    image_digest: str | None = None
    apply_errors: list[str] = field(default_factory=list)
    applied_with: list[str] = field(default_factory=list)  # per patch: "git apply" | "patch --fuzz"
    error: str | None = None  # human-readable reason for a non-"completed" status
    label: str | None = None

    @property
    def infra_failure(self) -> bool:
        return self.status == "infra_failure"

    @property
    def patch_applied(self) -> bool:
        return self.status not in ("patch_apply_failed", "infra_failure")

    def passed(self) -> set[str]:
        """Node ids that passed (PASSED or XFAIL, as SWE-bench counts them)."""
        return {n for n, t in self.tests.items() if t.status in ("PASSED", "XFAIL")}

    def failed(self) -> set[str]:
        return {n for n, t in self.tests.items() if t.status in ("FAILED", "ERROR")}

    def status_map(self) -> dict[str, str]:
        """``{node_id: status}``: the log-parser output SWE-bench grades from."""
        return {n: t.status for n, t in self.tests.items()}

    def to_event_payload(
        self, *, execution_id: str, patch_id: str | None = None, test_id: str | None = None
    ) -> dict[str, Any]:
        """The fields of an ``execution_result`` event (envelope left to ``new_event``)."""
        return {
            "execution_id": execution_id,
            "patch_id": patch_id,
            "test_id": test_id,
            "backend": self.backend,
            "image": self.image,
            "image_digest": self.image_digest,
            "command": list(self.command),
            "status": self.status,
            "exit_code": self.exit_code,
            "tests": [t.to_dict() for t in self.tests.values()],
            "duration_s": float(self.duration_s),
            "setup_s": self.setup_s,
            "cpu_s": self.cpu_s,
            "max_rss_mb": self.max_rss_mb,
            "limits": self.limits.as_strings(),
            "flaky_reruns": sum(t.reruns for t in self.tests.values()),
            "infra_failure": self.infra_failure,
            "error": self.error or ("; ".join(self.apply_errors) or None),
            "stdout_tail": self.stdout_tail or None,
            "stderr_tail": self.stderr_tail or None,
        }


# --- the interface -----------------------------------------------------------------------------


class Sandbox(abc.ABC):
    """One backend. Thread-safe: ``run`` may be called from several threads at once."""

    name: str = "abstract"

    def __init__(self, limits: Limits, *, work_dir: Path, image: str | None = None) -> None:
        self.limits = limits
        self.work_dir = Path(work_dir)
        self.image = image

    @abc.abstractmethod
    def prepare(self, repo: RepoSpec) -> PreparedRepo:
        """Check out ``repo`` at its commit and run its set-up once; cached across calls."""

    @abc.abstractmethod
    def run(self, prepared: PreparedRepo, request: RunRequest) -> RunResult:
        """Copy the prepared checkout cheaply, apply the patches, run, collect, clean up."""

    def drop(self, prepared: PreparedRepo) -> None:  # noqa: B027 - optional, backends with a cache
        """Free a prepared repository (its cached checkout, any warm worker); ``prepare`` rebuilds it."""

    def run_many(
        self, prepared: PreparedRepo, requests: Iterable[RunRequest], workers: int | None = None
    ) -> Iterator[RunResult]:
        """Run several candidates ``workers`` at a time; results in request order."""
        requests = list(requests)
        with ThreadPoolExecutor(max_workers=max(1, workers or self.concurrency)) as pool:
            yield from pool.map(lambda r: self.run(prepared, r), requests)

    concurrency: int = 1

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release engine connections and leftovers; idempotent."""

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_sandbox(
    config: Config | SandboxConfig | None = None,
    *,
    backend: str | None = None,
    work_dir: Path | None = None,
    limits: Limits | None = None,
) -> Sandbox:
    """The backend ``forge.sandbox.backend`` names (or ``backend``), with its quotas.

    ``work_dir`` holds cached checkouts and per-run folders (default: ``<data_dir>/sandbox`` for a
    full ``Config``, else ``~/.cache/vtforge/sandbox``).
    """
    from vtforge.config import Config, SandboxConfig

    if config is None:
        from vtforge.config import load_config

        config = load_config()
    if isinstance(config, Config):
        sandbox_cfg = config.forge.sandbox
        default_work = config.data_dir / "sandbox"
    elif isinstance(config, SandboxConfig):
        sandbox_cfg = config
        default_work = Path.home() / ".cache" / "vtforge" / "sandbox"
    else:
        raise TypeError(f"open_sandbox needs a Config or SandboxConfig, got {type(config).__name__}")
    name = backend or sandbox_cfg.backend
    limits = limits or Limits.from_config(sandbox_cfg)
    work = Path(work_dir) if work_dir is not None else default_work
    if name == "local":
        from vtforge.sandbox.local import LocalSandbox

        box: Sandbox = LocalSandbox(  # pyright: ignore[reportAssignmentType]
            limits,  # pyright: ignore[reportArgumentType]
            work_dir=work,
            warm=sandbox_cfg.warm_workers,
            warm_idle_s=sandbox_cfg.warm_idle_s,
            warm_template=sandbox_cfg.warm_template,
            disk_mb=sandbox_cfg.disk_mb or None,
            prepared_cache_gb=sandbox_cfg.prepared_cache_gb or None,
        )
    elif name == "docker":
        from vtforge.sandbox.docker_backend import DockerSandbox

        box = DockerSandbox(  # pyright: ignore[reportAssignmentType]
            limits,
            work_dir=work,
            image=sandbox_cfg.image,
            docker_host=sandbox_cfg.docker_host,
            warm=sandbox_cfg.warm_workers,
            warm_idle_s=sandbox_cfg.warm_idle_s,
            disk_mb=sandbox_cfg.disk_mb or None,
        )
    elif name == "kubernetes":
        from vtforge.sandbox.kubernetes_backend import KubernetesSandbox

        box = KubernetesSandbox(  # pyright: ignore[reportAssignmentType]
            limits,  # pyright: ignore[reportArgumentType]
            work_dir=work,
            image=sandbox_cfg.image,
            namespace=sandbox_cfg.kubernetes_namespace,
            repo_store=Path(sandbox_cfg.kubernetes_repo_store) if sandbox_cfg.kubernetes_repo_store else None,
            repo_volume=sandbox_cfg.kubernetes_repo_volume or None,
            repo_url=sandbox_cfg.kubernetes_repo_url or None,
            repo_egress_cidr=sandbox_cfg.kubernetes_repo_egress_cidr or None,
        )
    else:
        raise ValueError(f"forge.sandbox.backend must be one of local, docker, kubernetes, got {name!r}")
    box.concurrency = sandbox_cfg.concurrency
    return box
