"""Isolated execution of untrusted patches and tests (bubblewrap, Docker API, Kubernetes), SWE-bench grading.

The public API lives in ``vtforge.sandbox.api`` (see its docstring); grading in ``vtforge.sandbox.grading``.
"""

from vtforge.sandbox.api import (
    RUN_STATUSES,
    TEST_STATUSES,
    Limits,
    PreparedRepo,
    RepoSpec,
    RunRequest,
    RunResult,
    Sandbox,
    SandboxUnavailable,
    TestOutcome,
    open_sandbox,
)
from vtforge.sandbox.grading import grade, is_resolved, tests_status

__all__ = [
    "RUN_STATUSES",
    "TEST_STATUSES",
    "Limits",
    "PreparedRepo",
    "RepoSpec",
    "RunRequest",
    "RunResult",
    "Sandbox",
    "SandboxUnavailable",
    "TestOutcome",
    "grade",
    "is_resolved",
    "open_sandbox",
    "tests_status",
]
