"""Session-wide test set-up shared by every test package."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty workspace with its own vtcode.toml and data dir; the cwd while the test runs."""
    (tmp_path / "vtcode.toml").write_text(
        '[agent]\nprovider = "openai"\n\n[forge.warehouse]\ndata_dir = ".forge"\n'
    )
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("VTFORGE_") or name == "VTCODE_CONFIG_PATH":
            monkeypatch.delenv(name)
    return tmp_path


@pytest.fixture
def registry_url() -> Iterator[str]:
    """A stand-in Confluent schema registry (tests/registry_standin.py), empty, on a free port."""
    from tests.registry_standin import serve

    with serve() as url:
        yield url
