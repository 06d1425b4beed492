"""open_sandbox and the config levers."""

from __future__ import annotations

from pathlib import Path

import pytest

from vtforge.config import SandboxConfig, load_config
from vtforge.sandbox.api import RUN_STATUSES, Limits, open_sandbox


def test_limits_come_from_forge_sandbox(workspace: Path) -> None:
    (workspace / "vtcode.toml").write_text("[forge.sandbox]\nmemory_mb = 300\npids = 50\ntimeout_s = 9\n")
    limits = Limits.from_config(load_config().forge.sandbox)
    assert (limits.memory_mb, limits.pids, limits.timeout_s, limits.network) == (300, 50, 9.0, False)
    assert limits.as_strings()["memory_mb"] == "300"


@pytest.mark.bwrap
def test_open_sandbox_picks_the_configured_backend(workspace: Path) -> None:
    import shutil

    from tests.support import require_service

    require_service(shutil.which("bwrap") is not None, "bubblewrap")
    with open_sandbox(load_config()) as box:
        assert box.name == "local"
        assert box.work_dir == (workspace / ".forge" / "sandbox").resolve()
        assert box.limits == Limits.from_config(SandboxConfig())


def test_unknown_backend_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"forge\.sandbox\.backend"):
        open_sandbox(SandboxConfig(), backend="chroot", work_dir=tmp_path)


def test_status_vocabulary_matches_the_event_schema() -> None:
    from vtforge.schemas.catalog import default_catalog

    schema = default_catalog().current("execution_result")
    doc = next(f for f in schema.source["fields"] if f["name"] == "status")["doc"]
    assert [s.strip() for s in doc.split("|")] == list(RUN_STATUSES)
