"""End to end: `vtforge ui`, the asset graph in headless Chromium, a materialisation from the UI."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import require_service
from tests.warehouse.conftest import config_here, make_workspace
from vtforge.transport.quarantine import Rejected, quarantine

pytestmark = [pytest.mark.ui, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"vtforge ui exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"{url} did not answer in {timeout_s}s")


@pytest.fixture
def ui(workspace: Path) -> Iterator[str]:
    """`vtforge ui` on a free port in a workspace with one quarantined record and no landing files."""
    try:
        import playwright
    except ImportError:
        playwright = None
    require_service(playwright is not None and Path(CHROMIUM).exists(), "Chromium and Playwright")
    make_workspace(workspace)
    config = config_here()
    quarantine(
        config.quarantine_dir, "tests", [Rejected("x.jsonl:3", "schema_violation", "bad field", b"{}")]
    )
    port = free_port()
    vtforge = shutil.which("vtforge", path=str(Path(sys.executable).parent)) or "vtforge"
    log = open(workspace / "ui.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [vtforge, "ui", "--port", str(port)],
        cwd=workspace,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/server_info", process, 240)
        yield f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


def dismiss_welcome(page) -> None:
    """Dagster shows a one-time community dialog; close it when it is there."""
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(timeout=5_000)
        skip.click()
    except Exception:  # no dialog this time
        pass


def test_materialise_an_asset_from_the_ui(ui: str, workspace: Path) -> None:
    from dagster import AssetKey, DagsterInstance, DagsterRunStatus
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(60_000)
            # the asset graph lists our groups
            page.goto(f"{ui}/asset-groups", wait_until="domcontentloaded")
            dismiss_welcome(page)
            for group in ("raw", "curated", "datasets", "telemetry"):
                expect(page.get_by_text(group, exact=True).first).to_be_visible()
            # the recurring evaluation is listed, running (forge.eval.schedule), beside the sensors
            page.goto(f"{ui}/automation", wait_until="domcontentloaded")
            dismiss_welcome(page)
            expect(page.get_by_text("recurring_evaluation", exact=True).first).to_be_visible()
            expect(page.get_by_text("landing_sensor", exact=True).first).to_be_visible()
            # materialise `quarantine` from its asset page
            page.goto(f"{ui}/assets/quarantine", wait_until="domcontentloaded")
            dismiss_welcome(page)
            page.locator("button", has_text=re.compile(r"^\s*Materialize\s*$")).first.click()
            toast = page.get_by_text(re.compile(r"Launched run [0-9a-f]{8}"))
            expect(toast).to_be_visible()
            run_prefix = re.search(r"[0-9a-f]{8}", toast.inner_text()).group(0)
            # the run page reports success
            page.goto(f"{ui}/runs", wait_until="domcontentloaded")
            page.get_by_role("link", name=run_prefix).first.click()
            expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=180_000)
        finally:
            browser.close()

    home = workspace / ".forge" / "dagster"
    with DagsterInstance.from_config(str(home)) as instance:
        runs = [r for r in instance.get_runs() if r.run_id.startswith(run_prefix)]
        assert len(runs) == 1 and runs[0].status == DagsterRunStatus.SUCCESS
        materialized = instance.get_latest_materialization_event(AssetKey("quarantine"))
        assert materialized is not None and materialized.run_id == runs[0].run_id
        assert materialized.asset_materialization.metadata["dagster/row_count"].value == 1
