"""Helpers for tests that need a real service (Kafka, podman, bubblewrap, Chromium)."""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_service(available: bool, what: str) -> None:
    """Skip when ``what`` is missing on a developer's machine; fail under ``CI=true``."""
    if available:
        return
    if in_ci():
        pytest.fail(f"{what} is required under CI=true but is not available")
    pytest.skip(f"{what} is not available")
